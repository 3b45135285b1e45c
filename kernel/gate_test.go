package kernel

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
)

type gateEnv struct {
	t    *testing.T
	urls []string
	root string
}

func (g *gateEnv) as(token string, i int) *client.Client {
	c, err := client.New(client.Config{Addr: g.urls[i%len(g.urls)], Token: token, RetryFor: 5 * time.Second})
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func newGateEnv(t *testing.T, block int) (*gateEnv, *testCluster) {
	tc := startCluster(t, block, 3)
	tc.leader(10 * time.Second)
	g := &gateEnv{t: t}
	for _, n := range tc.nodes {
		srv := httptest.NewServer(n.Handler())
		t.Cleanup(srv.Close)
		g.urls = append(g.urls, srv.URL)
	}
	r, err := g.as("", 0).Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g.root = r.RootToken
	return g, tc
}

func mustDecision(t *testing.T, o api.Outcome, err error, decision, reason string) {
	t.Helper()
	if err != nil {
		t.Fatalf("want %s %s, got error %v", decision, reason, err)
	}
	if o.Decision != decision || o.Reason != reason {
		t.Fatalf("got %s %s, want %s %s", o.Decision, o.Reason, decision, reason)
	}
}

// TestGateStory walks the gate's acceptance story over HTTP on a 3-node
// cluster, each call through a different node.
func TestGateStory(t *testing.T) {
	g, tc := newGateEnv(t, 38)
	ctx := context.Background()
	root := func(i int) *client.Client { return g.as(g.root, i) }

	// A named operator does the governance; every action names her.
	op, err := root(0).OperatorAdd(ctx, api.OperatorRequest{Name: "alice", Scopes: []string{"cap.grant", "cap.revoke", "cap.read", "policy.set", "approval.decide", "halt", "audit.read", "kv.*", "payments.*"}})
	mustDecision(t, op.Outcome, err, "permit", "ok")
	alice := func(i int) *client.Client { return g.as(op.Token, i) }

	// 3 uses on orders/*: three permits, the fourth uses_exhausted.
	gr, err := alice(1).Grant(ctx, api.GrantRequest{Entity: "agent-a", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}, Uses: 3, TTL: "1h"})
	mustDecision(t, gr.Outcome, err, "permit", "ok")
	if gr.GrantedBy != "alice" || gr.Token == "" {
		t.Fatalf("grant: %+v", gr)
	}
	for i := 0; i < 3; i++ {
		r, err := g.as(gr.Token, i).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: fmt.Sprint("orders/", i), Args: "v"})
		mustDecision(t, r.Outcome, err, "permit", "ok")
	}
	r, err := g.as(gr.Token, 2).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/9", Args: "v"})
	mustDecision(t, r.Outcome, err, "deny", "uses_exhausted")

	// Delegation: a 1-use child from a 5-use parent works once and leaves 4.
	p5, err := alice(0).Grant(ctx, api.GrantRequest{Entity: "agent-b", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}, Uses: 5})
	mustDecision(t, p5.Outcome, err, "permit", "ok")
	child, err := g.as(p5.Token, 1).Delegate(ctx, api.GrantRequest{Entity: "agent-b/helper", Ops: []string{"kv.put"}, Resources: []string{"orders/vip/*"}, Uses: 1})
	mustDecision(t, child.Outcome, err, "permit", "ok")
	r, err = g.as(child.Token, 2).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/vip/1", Args: "x"})
	mustDecision(t, r.Outcome, err, "permit", "ok")
	r, err = g.as(child.Token, 0).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/vip/2", Args: "x"})
	mustDecision(t, r.Outcome, err, "deny", "uses_exhausted")
	pc, err := g.as(p5.Token, 0).Cap(ctx, p5.ID)
	if err != nil || pc.Remaining != 4 {
		t.Fatalf("parent remaining: %+v %v", pc, err)
	}
	wide, err := g.as(p5.Token, 0).Delegate(ctx, api.GrantRequest{Entity: "agent-b/wide", Ops: []string{"kv.put"}, Resources: []string{"*"}, Uses: 1})
	mustDecision(t, wide.Outcome, err, "deny", "wider_than_parent")
	// Revoking the parent revokes the child too.
	rv, err := alice(1).Revoke(ctx, p5.ID)
	mustDecision(t, rv.Outcome, err, "permit", "ok")
	for _, tok := range []string{p5.Token, child.Token} {
		r, err = g.as(tok, 2).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/vip/3", Args: "x"})
		mustDecision(t, r.Outcome, err, "deny", "revoked")
	}

	// Cedar: SHADOW only records; ACTIVE denies with policy_forbid.
	agent, err := alice(0).Grant(ctx, api.GrantRequest{Entity: "agent-c", Ops: []string{"kv.put", "payments.send"}, Resources: []string{"*"}})
	mustDecision(t, agent.Outcome, err, "permit", "ok")
	ac := func(i int) *client.Client { return g.as(agent.Token, i) }
	vip := `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };`
	ps, err := alice(1).PolicySet(ctx, api.PolicyRequest{Name: "vip", Text: vip, Mode: "SHADOW"})
	mustDecision(t, ps.Outcome, err, "permit", "ok")
	r, err = ac(0).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/vip/7", Args: "x"})
	mustDecision(t, r.Outcome, err, "permit", "ok")
	shadowSeq := r.Seq
	ps, err = alice(1).PolicySet(ctx, api.PolicyRequest{Name: "vip", Text: vip, Mode: "ACTIVE"})
	mustDecision(t, ps.Outcome, err, "permit", "ok")
	r, err = ac(1).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/vip/8", Args: "x"})
	mustDecision(t, r.Outcome, err, "deny", "policy_forbid")
	// A policy that does not validate is refused with the validator's message.
	if _, err := alice(0).PolicySet(ctx, api.PolicyRequest{Name: "bad", Text: `forbid(principal, action, resource) when { principal.clearance > 3 };`}); !client.IsCode(err, api.CodePolicyInvalid) {
		t.Fatalf("invalid policy: %v", err)
	}

	// Escalation: runs once after approval, never for other args.
	ps, err = alice(0).PolicySet(ctx, api.PolicyRequest{Name: "money", Text: `@escalate("payments need a human") forbid(principal, action == Action::"payments.send", resource);`})
	mustDecision(t, ps.Outcome, err, "permit", "ok")
	r, err = ac(2).Syscall(ctx, api.SyscallRequest{Op: "payments.send", Resource: "acct/1", Args: `{"amount":900}`})
	mustDecision(t, r.Outcome, err, "escalate", "approval_required")
	apr := r.ApprovalID
	if apr == "" || r.EscalationID != apr {
		t.Fatalf("escalation_id %q, approval_id %q: want the same id", r.EscalationID, apr)
	}
	d, err := alice(1).Decide(ctx, apr, true)
	mustDecision(t, d.Outcome, err, "permit", "approved")
	r, err = ac(0).Syscall(ctx, api.SyscallRequest{Op: "payments.send", Resource: "acct/1", Args: `{"amount":901}`, ApprovalID: apr})
	mustDecision(t, r.Outcome, err, "deny", "approval_invalid")
	r, err = ac(1).Syscall(ctx, api.SyscallRequest{Op: "payments.send", Resource: "acct/1", Args: `{"amount":900}`, ApprovalID: apr})
	mustDecision(t, r.Outcome, err, "permit", "ok")
	r, err = ac(2).Syscall(ctx, api.SyscallRequest{Op: "payments.send", Resource: "acct/1", Args: `{"amount":900}`, ApprovalID: apr})
	mustDecision(t, r.Outcome, err, "deny", "approval_invalid")

	// Halt: everything but governance denied; resume restores.
	h, err := alice(0).Halt(ctx, "", "incident 7")
	mustDecision(t, h.Outcome, err, "permit", "ok")
	r, err = ac(1).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/1", Args: "x"})
	mustDecision(t, r.Outcome, err, "deny", "halted")
	gov, err := alice(2).Grant(ctx, api.GrantRequest{Entity: "agent-d", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	mustDecision(t, gov.Outcome, err, "permit", "ok")
	h, err = alice(1).Resume(ctx, "", "resolved")
	mustDecision(t, h.Outcome, err, "permit", "ok")
	r, err = ac(2).Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: "orders/1", Args: "x"})
	mustDecision(t, r.Outcome, err, "permit", "ok")

	// The ledger shows each decision with its human.
	evs, err := alice(0).LedgerTail(ctx, 200, true)
	if err != nil {
		t.Fatal(err)
	}
	var grants, denies int
	for _, ev := range evs {
		if ev.Type == "cap.grant" && ev.GrantedBy == "" {
			t.Fatalf("grant event without granted_by: %+v", ev)
		}
		if ev.Type == "cap.grant" {
			grants++
		}
		if ev.Decision == "deny" {
			denies++
		}
		if ev.Seq == shadowSeq && len(ev.Shadow) != 1 {
			t.Fatalf("shadow decision not recorded: %+v", ev)
		}
	}
	if grants < 4 || denies < 8 {
		t.Fatalf("ledger tail: %d grants, %d denies", grants, denies)
	}
	// A token without audit scope cannot read the ledger.
	if _, err := ac(0).LedgerTail(ctx, 5, false); !client.IsCode(err, api.CodeForbidden) {
		t.Fatalf("agent read the ledger: %v", err)
	}

	// Backtest: a stricter policy lists the earlier permits it would deny.
	bt, err := alice(2).Backtest(ctx, api.BacktestRequest{Text: `forbid(principal, action == Action::"kv.put", resource) when { resource.path like "orders/*" };`, From: 1})
	if err != nil {
		t.Fatal(err)
	}
	if bt.Changed == 0 || len(bt.Transitions) == 0 || bt.Transitions[0].From != "permit" || bt.Transitions[0].To != "deny" || bt.ByTransition["permit->deny"] != bt.Transitions[0].Count {
		t.Fatalf("backtest: %+v", bt)
	}
	t.Logf("backtest: evaluated %d, changed %d, %+v", bt.Evaluated, bt.Changed, bt.Transitions)
	tc.requireSameHead(10 * time.Second)
}

// TestBacktestMatchesDirectEvaluation records history under policy A and
// checks that a backtest against policy B reports exactly the decisions
// that differ when each recorded request is evaluated directly.
func TestBacktestMatchesDirectEvaluation(t *testing.T) {
	n, _ := singleNode(t, 39, nil)
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	policyA := `forbid(principal, action, resource) when { resource.path like "a/*" };`
	policyB := `forbid(principal, action, resource) when { resource.path like "b/*" };`
	if _, err := root.PolicySet(ctx, api.PolicyRequest{Name: "p", Text: policyA}); err != nil {
		t.Fatal(err)
	}
	gr, err := root.Grant(ctx, api.GrantRequest{Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	agent, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token})
	for i := 0; i < 30; i++ {
		key := []string{"a/", "b/", "c/"}[i%3] + fmt.Sprint(i)
		if _, err := agent.Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: key, Args: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	bt, err := root.Backtest(ctx, api.BacktestRequest{Name: "p", Text: policyB, From: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Direct evaluation of every recorded request.
	csB, err := fsm.CompilePolicySet("p", fsm.PolicyActive, 0, policyB)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	var wantExamples []uint64
	evaluated := 0
	evs, _ := root.LedgerTail(ctx, 1000, false)
	for _, ev := range evs {
		if ev.Type != "syscall" {
			continue
		}
		rec, err := n.arch.ReadSeq(ev.Seq)
		if err != nil {
			t.Fatal(err)
		}
		ae, _ := fsm.DecodeArchived(rec.Data)
		var d fsm.SyscallDetail
		if err := fsm.Decode(ae.Event.Detail, &d); err != nil || !d.Judged {
			continue
		}
		evaluated++
		d.Request.ArgsDigest = d.ArgsDigest
		now := fsm.EvaluatePolicies([]*fsm.CompiledSet{csB}, d.Request, n.protocolInForce())
		if now.Decision != d.Policy.Decision {
			want[d.Policy.Decision.JSON()+"->"+now.Decision.JSON()]++
			if len(wantExamples) < 10 {
				wantExamples = append(wantExamples, ev.Seq)
			}
		}
	}
	got := map[string]int{}
	for _, tr := range bt.Transitions {
		got[tr.From+"->"+tr.To] = tr.Count
	}
	if bt.Evaluated != evaluated || fmt.Sprint(got) != fmt.Sprint(want) || want["permit->deny"] != 10 || want["deny->permit"] != 10 {
		t.Fatalf("backtest %+v (evaluated %d), direct evaluation %v (evaluated %d)", got, bt.Evaluated, want, evaluated)
	}
	// by_transition and examples say the same in the contract's shape.
	if fmt.Sprint(bt.ByTransition) != fmt.Sprint(want) || fmt.Sprint(bt.Examples) != fmt.Sprint(wantExamples) {
		t.Fatalf("backtest by_transition %v examples %v, direct evaluation %v examples %v", bt.ByTransition, bt.Examples, want, wantExamples)
	}
}

func TestSyscallEdgeRejections(t *testing.T) {
	n, _ := singleNode(t, 42, func(c *Config) { c.RateLimitPerSec, c.RateLimitBurst = 1, 3 })
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	gr, err := root.Grant(ctx, api.GrantRequest{Entity: "agent", Ops: []string{"email.send"}, Resources: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	agent, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token, RetryFor: time.Millisecond})
	before, _ := n.Head()
	// Oversized args: refused before Raft.
	big := make([]byte, fsm.MaxArgsBytes+1)
	for i := range big {
		big[i] = 'x'
	}
	if _, err := agent.Syscall(ctx, api.SyscallRequest{Op: "email.send", Resource: "ops", Args: string(big)}); !client.IsCode(err, api.CodeTooLarge) {
		t.Fatalf("oversized args: %v", err)
	}
	if h, _ := n.Head(); h.Seq != before.Seq {
		t.Fatal("oversized request reached the ledger")
	}
	// The entity's burst of 3 passes, then the rate limit refuses before Raft.
	var limited int
	for i := 0; i < 6; i++ {
		_, err := agent.Syscall(ctx, api.SyscallRequest{Op: "email.send", Resource: "ops", Args: "{}"})
		if client.IsCode(err, api.CodeRateLimited) {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited < 2 {
		t.Fatalf("rate limit refused %d of 6 calls over a burst of 3", limited)
	}
	decisions := 0
	_ = n.Events(before.Seq+1, func(ev api.Event) error {
		if ev.Type == "syscall" {
			decisions++
		}
		return nil
	})
	if decisions != 6-limited {
		t.Fatalf("%d syscall events for %d admitted calls", decisions, 6-limited)
	}
}
