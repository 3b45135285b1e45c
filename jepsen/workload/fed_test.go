package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// fakeDomain is one domain kernel's API as far as the fed workload uses
// it: grants, syscalls (cross-domain ones become outbox events), bus
// event reads, passports and status.
type fakeDomain struct {
	name string

	mu      sync.Mutex
	seq     uint64
	tokens  map[string]api.GrantRequest // token -> its grant
	remote  []string                    // remote tokens of cross-domain calls, in order
	outbox  []api.BusEvent
	expires time.Time
}

func (d *fakeDomain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	enc := json.NewEncoder(w)
	fail := func(status int, code string) {
		w.WriteHeader(status)
		_ = enc.Encode(api.ErrorBody{Error: api.Error{Code: code, Message: code}})
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/caps":
		var req api.GrantRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		tok := fmt.Sprintf("dmc_%s_%d", d.name, d.seq)
		d.tokens[tok] = req
		_ = enc.Encode(api.GrantResponse{Outcome: api.Outcome{Seq: d.seq, Decision: "permit", Reason: "ok"}, ID: fmt.Sprint(d.seq), Token: tok})
	case r.URL.Path == "/v1/syscall":
		var req api.SyscallRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if _, ok := d.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]; !ok {
			fail(http.StatusUnauthorized, api.CodeUnauthorized)
			return
		}
		out := api.SyscallResponse{Outcome: api.Outcome{Seq: d.seq, Decision: "permit", Reason: "ok", Time: time.Unix(100, int64(d.seq))}, Op: req.Op, Resource: req.Resource}
		if dest, res, ok := strings.Cut(req.Resource, ":"); ok {
			d.remote = append(d.remote, req.RemoteToken)
			e := api.BusEvent{ID: fmt.Sprintf("%s/%d", dest, len(d.outbox)+1), Dest: dest, Seq: uint64(len(d.outbox) + 1), Resource: res, Status: "pending"}
			if len(d.outbox)%2 == 0 {
				e.Status, e.Remote = "delivered", &api.RemoteRes{Decision: "permit", Reason: "ok", Seq: 40 + e.Seq}
			}
			d.outbox = append(d.outbox, e)
			out.EventID = e.ID
		}
		_ = enc.Encode(out)
	case strings.HasPrefix(r.URL.Path, "/v1/bus/"):
		for _, e := range d.outbox {
			if "/v1/bus/"+e.ID == r.URL.Path {
				_ = enc.Encode(e)
				return
			}
		}
		fail(http.StatusNotFound, api.CodeNotFound)
	case r.URL.Path == "/v1/passports":
		_ = enc.Encode([]api.Passport{
			{ID: "pp-b-3", Domain: "b", Serial: 3, Expires: d.expires.Add(-10 * time.Second)},
			{ID: "pp-b-4", Domain: "b", Serial: 4, Expires: d.expires, Revoked: true},
			{ID: "pp-a-9", Domain: "a", Serial: 9, Expires: d.expires.Add(time.Hour)},
		})
	case r.URL.Path == "/v1/status":
		_ = enc.Encode(api.Status{Node: d.name + "1", Passport: &api.PassportRef{ID: "pp-b-4", Expires: d.expires.Add(2 * time.Second)}})
	default:
		fail(http.StatusNotFound, api.CodeNotFound)
	}
}

func fakeFed(t *testing.T) (map[string]*fakeDomain, func(domain, token string) *client.Client) {
	t.Helper()
	ds := map[string]*fakeDomain{}
	urls := map[string]string{}
	for _, n := range []string{"a", "b"} {
		d := &fakeDomain{name: n, tokens: map[string]api.GrantRequest{"root-" + n: {}}, expires: time.Date(2026, 1, 1, 0, 0, 35, 0, time.UTC)}
		srv := httptest.NewServer(d)
		t.Cleanup(srv.Close)
		ds[n], urls[n] = d, srv.URL
	}
	mk := func(domain, token string) *client.Client {
		c, err := client.New(client.Config{Addr: urls[domain], Token: token, Timeout: 2 * time.Second, RetryFor: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return ds, mk
}

// TestFedCallsCarryTheDestinationsGrant: setup makes every grant; a
// cross-domain call sends the origin's agent token and, as the remote
// token, the grant the destination issued to the origin's agent; the
// event id comes back in Result and its final state is read by id.
func TestFedCallsCarryTheDestinationsGrant(t *testing.T) {
	ds, mk := fakeFed(t)
	w := &Fed{}
	ctx := context.Background()
	if err := w.Setup(ctx, map[string]*client.Client{"a": mk("a", "root-a"), "b": mk("b", "root-b")}); err != nil {
		t.Fatal(err)
	}
	// b granted a's agent kv.put on fed/*; a granted its own agent kv.*.
	var grantToA string
	for tok, g := range ds["b"].tokens {
		if g.Entity == "a/agent" {
			grantToA = tok
			if strings.Join(g.Ops, ",") != "kv.put" || strings.Join(g.Resources, ",") != "fed/*" {
				t.Errorf("b's grant to a/agent: %+v", g)
			}
		}
	}
	if grantToA == "" || w.AgentToken("a") == "" || ds["a"].tokens[w.AgentToken("a")].Entity != "agent" {
		t.Fatalf("grants: b %v, a's agent %q", ds["b"].tokens, w.AgentToken("a"))
	}
	agent := mk("a", w.AgentToken("a"))
	var ids []string
	for i := 1; i <= 2; i++ {
		inv := w.CallOp("b", "a", fmt.Sprintf("run-p0-%d", i))
		inv.RequestID = fmt.Sprintf("r%d", i)
		if inv.F != checker.FFedCall || inv.Key != fmt.Sprintf("b:fed/a-run-p0-%d", i) {
			t.Fatalf("call op %+v", inv)
		}
		out := w.Call(ctx, agent, "a", inv)
		if out.Type != history.OK || out.Result != fmt.Sprintf("b/%d", i) || out.Seq == 0 || out.LedgerTime == 0 {
			t.Fatalf("call %d: %+v", i, out)
		}
		ids = append(ids, out.Result)
	}
	if ds["a"].remote[0] != grantToA || ds["a"].remote[1] != grantToA {
		t.Fatalf("remote tokens sent %v, want b's grant to a/agent %q", ds["a"].remote, grantToA)
	}
	root := mk("a", "root-a")
	st, err := w.Status(ctx, root, history.Op{F: checker.FFedStatus, Key: ids[0]})
	if err != nil || st.Type != history.OK || st.Result != "delivered" || st.Decision != "permit" || st.Seq != 41 || st.Value != "fed/a-run-p0-1" {
		t.Fatalf("status of %s: %+v %v", ids[0], st, err)
	}
	st, err = w.Status(ctx, root, history.Op{F: checker.FFedStatus, Key: ids[1]})
	if err != nil || st.Result != "pending" || st.Decision != "" {
		t.Fatalf("status of %s: %+v %v", ids[1], st, err)
	}
	st, err = w.Status(ctx, root, history.Op{F: checker.FFedStatus, Key: "b/3"})
	if !errors.Is(err, ErrNoEvent) || st.Type != history.Fail {
		t.Fatalf("status of an unknown event: %+v %v", st, err)
	}
	// A call to a domain that issued no grant fails without a request.
	before := len(ds["a"].remote)
	if out := w.Call(ctx, agent, "a", w.CallOp("c", "a", "x")); out.Type != history.Fail || len(ds["a"].remote) != before {
		t.Fatalf("call without a grant: %+v", out)
	}
}

func TestFedPassportRead(t *testing.T) {
	_, mk := fakeFed(t)
	w := &Fed{}
	ctx := context.Background()
	out := w.PassportRead(ctx, mk("a", "root-a"), nil, history.Op{F: checker.FPassportRead, Key: "b"})
	if out.Type != history.OK || out.Result != "pp-b-4" || !out.Found || out.Value != "2026-01-01T00:00:35Z" {
		t.Fatalf("read of b's passports: %+v", out)
	}
	// The domain's own view may hold a later expiry: the latest wins.
	out = w.PassportRead(ctx, mk("a", "root-a"), mk("b", "root-b"), history.Op{F: checker.FPassportRead, Key: "b"})
	if out.Value != "2026-01-01T00:00:37Z" {
		t.Fatalf("read with b's own status: %+v", out)
	}
	if out := w.PassportRead(ctx, mk("a", "root-a"), nil, history.Op{F: checker.FPassportRead, Key: "zz"}); out.Type != history.Fail {
		t.Fatalf("read of an unknown domain: %+v", out)
	}
}
