package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

func TestClassifyGate(t *testing.T) {
	inv := history.Op{Process: 2, F: checker.FSyscall, Key: "caps/1", CapID: "cap-3", RequestID: "r"}
	lt := time.Unix(50, 7)
	cases := []struct {
		name string
		o    api.Outcome
		err  error
		want history.Type
		test func(t *testing.T, out history.Op)
	}{
		{"permit", api.Outcome{Seq: 9, Decision: "permit", Reason: "ok", Time: lt}, nil, history.OK, func(t *testing.T, out history.Op) {
			if out.Seq != 9 || out.Decision != "permit" || out.LedgerTime != lt.UnixNano() {
				t.Errorf("permit %+v", out)
			}
		}},
		{"deny is a ledgered refusal", api.Outcome{Seq: 10, Decision: "deny", Reason: "uses_exhausted"}, nil, history.Fail, func(t *testing.T, out history.Op) {
			if out.Seq != 10 || out.Reason != "uses_exhausted" || out.Decision != "deny" {
				t.Errorf("deny %+v", out)
			}
		}},
		{"permit as earlier kernels spelt it", api.Outcome{Seq: 12, Decision: "PERMIT", Reason: "ok"}, nil, history.OK, nil},
		{"deny as earlier kernels spelt it", api.Outcome{Seq: 13, Decision: "DENY", Reason: "revoked"}, nil, history.Fail, nil},
		{"escalate is unexpected", api.Outcome{Seq: 11, Decision: "escalate", Reason: "approval_required"}, nil, history.Info, func(t *testing.T, out history.Op) {
			if !strings.Contains(out.Error, "unexpected decision") {
				t.Errorf("escalate %+v", out)
			}
		}},
		{"rate limited before proposing", api.Outcome{}, &client.Error{Status: 429, Code: api.CodeRateLimited}, history.Fail, nil},
		{"unknown token before proposing", api.Outcome{}, &client.Error{Status: 401, Code: api.CodeUnauthorized}, history.Fail, nil},
		{"timeout is unknown", api.Outcome{}, &client.Error{Status: 503, Code: api.CodeTimeout}, history.Info, nil},
		{"deadline is unknown", api.Outcome{}, context.DeadlineExceeded, history.Info, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := ClassifyGate(inv, &c.o, c.err)
			if out.Type != c.want {
				t.Fatalf("type %s, want %s (%+v)", out.Type, c.want, out)
			}
			if out.CapID != "cap-3" || out.RequestID != "r" || out.Key != "caps/1" {
				t.Fatalf("inputs not carried over: %+v", out)
			}
			if c.err != nil && out.Seq != 0 {
				t.Fatalf("an error answer carries seq %d", out.Seq)
			}
			if c.test != nil {
				c.test(t, out)
			}
		})
	}
}

// TestCapsGeneratorLifecycle drives the generator with acknowledged
// completions and checks each capability's life: granted with the limit,
// used at most OpsPerCap times, revoked (every other one) only after
// RevokeAfter syscalls, and replaced.
func TestCapsGeneratorLifecycle(t *testing.T) {
	const seed = 11
	t.Logf("seed %d", seed)
	w := &Caps{Slots: 2, Uses: 4, OpsPerCap: 8, RevokeAfter: 3}
	g := w.NewGenerator()
	rng := rand.New(rand.NewPCG(seed, 2))
	granted := map[string]bool{}
	used := map[string]int{}
	usedAtRevoke := map[string]int{}
	values := map[string]bool{}
	next := 2
	for i := 0; i < 2000; i++ {
		op := g.Next(i%4, rng)
		done := op
		done.Type = history.OK
		switch op.F {
		case checker.FGrant:
			if op.Limit != 4 || !strings.HasPrefix(op.Key, "jepsen-agent-s") {
				t.Fatalf("grant %+v: want limit 4 for a jepsen-agent entity", op)
			}
			done.CapID = fmt.Sprintf("cap-%d", next)
			next++
			granted[done.CapID] = true
		case checker.FSyscall:
			if !granted[op.CapID] {
				t.Fatalf("syscall with %q, which no acknowledged grant created", op.CapID)
			}
			if !strings.HasPrefix(op.Key, "caps/") || values[op.Value] {
				t.Fatalf("syscall %+v: want a caps/ resource and a fresh value", op)
			}
			values[op.Value] = true
			used[op.CapID]++
		case checker.FRevoke:
			if op.Key != op.CapID || !granted[op.CapID] {
				t.Fatalf("revoke %+v", op)
			}
			if _, twice := usedAtRevoke[op.CapID]; twice {
				t.Fatalf("%s revoked twice", op.CapID)
			}
			usedAtRevoke[op.CapID] = used[op.CapID]
		default:
			t.Fatalf("unknown op %+v", op)
		}
		g.Observe(done)
	}
	if len(granted) < 50 {
		t.Fatalf("only %d capabilities granted over 2000 ops at 8 syscalls each", len(granted))
	}
	for id, n := range used {
		if n > 8 {
			t.Errorf("%s used %d times, more than OpsPerCap", id, n)
		}
	}
	for id, n := range usedAtRevoke {
		if n < 3 {
			t.Errorf("%s revoked after %d syscalls, before RevokeAfter", id, n)
		}
	}
	if r := float64(len(usedAtRevoke)) / float64(len(granted)); r < 0.35 || r > 0.65 {
		t.Errorf("%d of %d capabilities revoked; want about half", len(usedAtRevoke), len(granted))
	}
	final := g.Final()
	if len(final) != min(len(usedAtRevoke), maxFinalRetries) {
		t.Errorf("%d final ops, want one per revoked capability (at most %d)", len(final), maxFinalRetries)
	}
	for _, op := range final {
		if op.F != checker.FSyscall || usedAtRevoke[op.CapID] == 0 {
			t.Errorf("final op %+v is not a syscall with a revoked capability", op)
		}
	}
}

// TestCapsGeneratorKeepsCapabilityUntilRegranted: a failed grant leaves
// the old capability in use and the slot asks again.
func TestCapsGeneratorKeepsCapabilityUntilRegranted(t *testing.T) {
	w := &Caps{Slots: 1, Uses: 2, OpsPerCap: 2, RevokeEvery: 1000}
	g := w.NewGenerator()
	rng := rand.New(rand.NewPCG(5, 5))
	first := g.Next(0, rng)
	if first.F != checker.FGrant {
		t.Fatalf("first op %+v, want a grant", first)
	}
	if op := g.Next(1, rng); op.F != checker.FGrant {
		t.Fatalf("with the only grant outstanding and no capability: %+v, want another grant", op)
	}
	ok := first
	ok.Type, ok.CapID = history.OK, "cap-7"
	g.Observe(ok)
	for i := 0; i < 2; i++ {
		if op := g.Next(0, rng); op.F != checker.FSyscall || op.CapID != "cap-7" {
			t.Fatalf("op %d: %+v, want a syscall with cap-7", i, op)
		}
	}
	regrant := g.Next(0, rng)
	if regrant.F != checker.FGrant {
		t.Fatalf("after OpsPerCap syscalls: %+v, want a grant", regrant)
	}
	if op := g.Next(0, rng); op.F != checker.FSyscall || op.CapID != "cap-7" {
		t.Fatalf("while the new grant is outstanding: %+v, want cap-7 still in use", op)
	}
	failed := regrant
	failed.Type = history.Info
	g.Observe(failed)
	if op := g.Next(0, rng); op.F != checker.FGrant {
		t.Fatalf("after a grant of unknown outcome: %+v, want a new grant", op)
	}
}

// fakeGate is one node of a fake kernel: it grants tokens, revokes and
// answers syscalls by token, and records what it was sent.
type fakeGate struct {
	node string
	k    *fakeKernel
}

type fakeKernel struct {
	mu     sync.Mutex
	seq    uint64
	tokens map[string]string // token -> capability
	uses   map[string]int64  // capability -> uses left
	calls  []fakeCall
}

type fakeCall struct {
	node, path, token, requestID string
}

func (g fakeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := g.k
	k.mu.Lock()
	defer k.mu.Unlock()
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	k.calls = append(k.calls, fakeCall{g.node, r.URL.Path, token, r.Header.Get(api.HeaderRequestID)})
	k.seq++
	enc := json.NewEncoder(w)
	switch {
	case r.URL.Path == "/v1/caps":
		var req api.GrantRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		id, tok := fmt.Sprintf("cap-%d", k.seq), fmt.Sprintf("dmc_%d", k.seq)
		k.tokens[tok], k.uses[id] = id, req.Uses
		_ = enc.Encode(api.GrantResponse{Outcome: api.Outcome{Seq: k.seq, Decision: "permit", Reason: "ok"}, ID: id, Token: tok})
	case strings.HasSuffix(r.URL.Path, "/revoke"):
		_ = enc.Encode(api.GrantResponse{Outcome: api.Outcome{Seq: k.seq, Decision: "permit", Reason: "ok"}, ID: strings.Split(r.URL.Path, "/")[3]})
	case r.URL.Path == "/v1/syscall":
		id, ok := k.tokens[token]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_ = enc.Encode(api.ErrorBody{Error: api.Error{Code: api.CodeUnauthorized, Message: "unknown token"}})
			return
		}
		out := api.SyscallResponse{Outcome: api.Outcome{Seq: k.seq, Decision: "deny", Reason: "uses_exhausted"}, CapID: id}
		if k.uses[id] > 0 {
			k.uses[id]--
			out.Decision, out.Reason = "permit", "ok"
		}
		_ = enc.Encode(out)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// TestCapsInvokeUsesEachCapabilitysToken runs setup and a few ops against
// two fake nodes: grants and revokes carry the root token, syscalls the
// token their capability's grant returned, sent to the node the op names,
// each with the op's request id.
func TestCapsInvokeUsesEachCapabilitysToken(t *testing.T) {
	const seed = 21
	t.Logf("seed %d", seed)
	k := &fakeKernel{tokens: map[string]string{}, uses: map[string]int64{}}
	urls := map[string]string{}
	for _, n := range []string{"n1", "n2"} {
		srv := httptest.NewServer(fakeGate{n, k})
		defer srv.Close()
		urls[n] = srv.URL
	}
	mk := func(node, token string) (*client.Client, error) {
		return client.New(client.Config{Addr: urls[node], Token: token, Timeout: 2 * time.Second, RetryFor: time.Nanosecond})
	}
	roots := map[string]*client.Client{}
	for n := range urls {
		c, err := mk(n, "root-token")
		if err != nil {
			t.Fatal(err)
		}
		roots[n] = c
	}
	w := &Caps{Slots: 2, Uses: 3, OpsPerCap: 5, RevokeAfter: 1}
	g := w.NewGenerator()
	rec := history.NewRecorder(history.NewClock(), nil)
	n := 0
	perform := func(ctx context.Context, inv history.Op, node string) history.Op {
		n++
		inv.Node, inv.RequestID = node, fmt.Sprintf("rid-%d", n)
		inv, err := rec.Invoke(inv)
		if err != nil {
			t.Fatal(err)
		}
		out, err := rec.Complete(w.Invoke(ctx, roots[node], inv))
		if err != nil {
			t.Fatal(err)
		}
		g.Observe(out)
		return out
	}
	ctx := context.Background()
	env := Env{Nodes: []string{"n1", "n2"}, Client: mk, Perform: func(ctx context.Context, inv history.Op) history.Op {
		inv.Process = 99
		return perform(ctx, inv, "n1")
	}}
	if err := w.Setup(ctx, env); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < 40; i++ {
		inv := g.Next(0, rng)
		inv.Process = 0
		perform(ctx, inv, []string{"n1", "n2"}[rng.IntN(2)])
	}
	ps, err := history.Pairs(rec.Ops())
	if err != nil {
		t.Fatal(err)
	}
	byRID := map[string]fakeCall{}
	for _, c := range k.calls {
		byRID[c.requestID] = c
	}
	tokenOf := map[string]string{}
	for tok, id := range k.tokens {
		tokenOf[id] = tok
	}
	counts := map[string]int{}
	for _, p := range ps {
		call, ok := byRID[p.Invoke.RequestID]
		if !ok {
			t.Fatalf("op %+v never reached the fake kernel", p.Invoke)
		}
		if call.node != p.Invoke.Node {
			t.Errorf("op %d went to %s, want %s", p.Invoke.Index, call.node, p.Invoke.Node)
		}
		counts[p.Invoke.F+"/"+string(p.Type())]++
		switch p.Invoke.F {
		case checker.FGrant, checker.FRevoke:
			if call.token != "root-token" {
				t.Errorf("%s sent token %q, want the root token", p.Invoke.F, call.token)
			}
			if p.Invoke.F == checker.FGrant && (p.Type() != history.OK || p.Complete.CapID == "") {
				t.Errorf("grant %+v: want ok with the new capability", p.Complete)
			}
		case checker.FSyscall:
			if call.token != tokenOf[p.Invoke.CapID] {
				t.Errorf("syscall with %s sent token %q, want %q", p.Invoke.CapID, call.token, tokenOf[p.Invoke.CapID])
			}
			if p.Type() == history.Fail && (p.Complete.Seq == 0 || p.Complete.Reason != "uses_exhausted") {
				t.Errorf("denied syscall %+v: want its seq and reason", p.Complete)
			}
		}
	}
	t.Logf("outcomes %v", counts)
	if counts["syscall/ok"] == 0 || counts["syscall/fail"] == 0 || counts["revoke/ok"] == 0 || counts["grant/ok"] < 3 {
		t.Fatalf("outcomes %v: want permits, denials, revokes and regrants", counts)
	}
}
