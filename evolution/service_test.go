package evolution

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/kernel/kerneltest"
)

const (
	base       = `forbid(principal, action, resource) when { resource.path like "secret/*" };`
	regression = base + "\n" + `forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/*" };`
	harmless   = base + "\n" + `forbid(principal, action, resource) when { resource.path like "archive/*" };`
	agents     = 40
)

// The evolution API end to end on one node, its windows closed by the
// leader's duty: a regression goes shadow → canary 25 % → rolled_back
// with deny_rate breached; a harmless candidate passes every step, waits
// for a human, is promoted, and the set's history lists both versions;
// rollback reinstalls the first. An agent cannot start, promote or roll
// back.
func TestEvolutionOverHTTP(t *testing.T) {
	n := kerneltest.SingleNode(t, "127.0.170.1", nil, New())
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	var clients []*client.Client
	for i := range agents {
		gr, err := root.Grant(ctx, api.GrantRequest{Entity: fmt.Sprintf("agent-%02d", i), Ops: []string{"kv.*"}, Resources: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token})
		clients = append(clients, c)
	}
	if r, err := root.PolicySet(ctx, api.PolicyRequest{Name: "base", Text: base, Mode: api.PolicyActive}); err != nil || r.Decision != "permit" {
		t.Fatalf("policy set: %v %+v", err, r)
	}
	agent := clients[0]
	if _, err := agent.EvolveStart(ctx, api.EvolveStartRequest{Name: "base", Text: regression}); err == nil {
		t.Fatal("an agent started an evolution")
	}

	run := func(text string, steps []int64, until ...string) *api.Evolution {
		t.Helper()
		r, err := root.EvolveStart(ctx, api.EvolveStartRequest{Name: "base", Text: text, Steps: steps, WindowMs: 1000, MinShadow: 10})
		if err != nil || r.Decision != "permit" || r.ID == "" || r.Seq == 0 {
			t.Fatalf("start: %v %+v", err, r)
		}
		deadline := time.Now().Add(30 * time.Second)
		resumes := 0
		for time.Now().Before(deadline) {
			for i, c := range clients {
				if _, err := c.KVPut(ctx, fmt.Sprintf("orders/%d", i), "v"); err != nil {
					t.Fatal(err)
				}
			}
			e, err := root.Evolution(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if e.Phase == api.PhasePaused && e.PausedFrom == api.PhaseCanary && resumes < 3 {
				// A window this machine's load left with too few canary
				// decisions is inconclusive; a human resumes the step.
				resumes++
				if rr, err := root.EvolveStep(ctx, r.ID, "resume"); err != nil || rr.Decision != "permit" {
					t.Fatalf("resume: %v %+v", err, rr)
				}
				continue
			}
			for _, u := range until {
				if e.Phase == u {
					return e
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		e, _ := root.Evolution(ctx, r.ID)
		t.Fatalf("evolution %s stuck at %s: %+v", r.ID, e.Phase, e.Verdicts)
		return nil
	}

	bad := run(regression, []int64{25, 100}, api.PhaseRolledBack, api.PhaseAwaitingPromotion, api.PhasePaused)
	if bad.Phase != api.PhaseRolledBack {
		t.Fatalf("the regression ended %s: %+v", bad.Phase, bad.Verdicts)
	}
	last := bad.Verdicts[len(bad.Verdicts)-1]
	m := last.Metrics["deny_rate"]
	if last.Verdict != "failed" || last.Weight != 25 || m.Outcome != "fail" || m.P == nil || *m.P > 0.05 || m.Canary <= m.Baseline+m.Threshold {
		t.Fatalf("rollback verdict %+v, deny_rate %+v", last, m)
	}
	if bad.Verdicts[0].Phase != api.PhaseShadow || bad.Verdicts[0].Verdict != "successful" {
		t.Fatalf("verdicts %+v", bad.Verdicts)
	}

	good := run(harmless, []int64{25, 100}, api.PhaseAwaitingPromotion, api.PhaseRolledBack, api.PhasePaused)
	if good.Phase != api.PhaseAwaitingPromotion {
		t.Fatalf("the harmless candidate ended %s: %+v", good.Phase, good.Verdicts)
	}
	if r, err := agent.EvolveStep(ctx, good.ID, "promote"); err == nil && r.Decision == "permit" {
		t.Fatal("an agent promoted")
	}
	p, err := root.EvolveStep(ctx, good.ID, "promote")
	if err != nil || p.Decision != "permit" || p.Phase != api.PhasePromoted || p.Version != 2 {
		t.Fatalf("promote: %v %+v", err, p)
	}
	h, err := root.PolicyHistory(ctx, "base")
	if err != nil || len(h) != 2 || h[0].Version != 1 || h[0].Via != "" || h[1].Version != 2 || h[1].Via != good.ID || h[1].Text != harmless {
		t.Fatalf("history: %v %+v", err, h)
	}
	if r, err := agent.PolicyRollback(ctx, "base", 1); err == nil && r.Decision == "permit" {
		t.Fatal("an agent rolled back")
	}
	rb, err := root.PolicyRollback(ctx, "base", 1)
	if err != nil || rb.Decision != "permit" || rb.Version != 3 {
		t.Fatalf("rollback: %v %+v", err, rb)
	}
	ps, _ := root.Policies(ctx)
	for _, p := range ps {
		if p.Name == "base" && p.Text != base {
			t.Fatal("rollback did not reinstall version 1")
		}
	}

	// An operator scoped to policy.set on base alone may evolve base, and
	// nothing else.
	gr, err := root.Grant(ctx, api.GrantRequest{Entity: "carol", Ops: []string{"policy.set"}, Resources: []string{"base"}})
	if err != nil || gr.Decision != "permit" {
		t.Fatalf("grant carol: %v %+v", err, gr)
	}
	carol, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token})
	if _, err := carol.EvolveStart(ctx, api.EvolveStartRequest{Name: "other", Text: harmless}); err == nil {
		t.Fatal("carol started an evolution of another set")
	}
	st, err := carol.EvolveStart(ctx, api.EvolveStartRequest{Name: "base", Text: harmless})
	if err != nil || st.Decision != "permit" {
		t.Fatalf("carol on base: %v %+v", err, st)
	}
	if a, err := carol.EvolveStep(ctx, st.ID, "abort"); err != nil || a.Decision != "permit" || a.Phase != api.PhaseAborted {
		t.Fatalf("carol aborts: %v %+v", err, a)
	}
}
