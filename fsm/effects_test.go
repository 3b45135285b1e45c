package fsm

import (
	"testing"
	"time"
)

func TestExternalEffectLifecycle(t *testing.T) {
	g := newGateLedger(t)
	g.grant("a", []string{"webhook.call", "kv.put"}, []string{"*"}, 0, time.Hour)
	a := g.call("a", "webhook.call", "https://hooks.example/x", []byte(`{"n":1}`), "")
	expect(t, a, DecisionPermit, ReasonOK)
	seq := a.Result.Seq
	pend := g.State().PendingEffects()
	if len(pend) != 1 || pend[0].Seq != seq || pend[0].Status != EffectPending || string(pend[0].Args) != `{"n":1}` {
		t.Fatalf("pending effects: %+v", pend)
	}
	// In-ledger effects are not pending.
	expect(t, g.call("a", "kv.put", "k", []byte("v"), ""), DecisionPermit, ReasonOK)
	if len(g.State().PendingEffects()) != 1 {
		t.Fatal("a kv op became an external effect")
	}
	complete := func(seq uint64, status string) Applied {
		return g.apply(env(CmdEffectComplete, "", nil, g.tick(), &EffectComplete{Seq: seq, Status: status, Code: 200}))
	}
	expect(t, complete(seq, EffectOK), DecisionNone, ReasonOK)
	if e := g.State().Effects[seq]; e.Status != EffectOK || e.Completed == 0 {
		t.Fatalf("effect after completion: %+v", e)
	}
	before := governed(g.Ledger)
	expect(t, complete(seq, EffectOK), DecisionDeny, ReasonNotFound) // a second completion changes nothing
	expect(t, complete(999, EffectOK), DecisionDeny, ReasonNotFound)
	if governed(g.Ledger) != before {
		t.Fatal("rejected completion changed state")
	}
	b := g.call("a", "webhook.call", "https://hooks.example/y", nil, "")
	expect(t, complete(b.Result.Seq, EffectIndeterminate), DecisionNone, ReasonIndeterminate)
	c := g.call("a", "webhook.call", "https://hooks.example/z", nil, "")
	expect(t, complete(c.Result.Seq, EffectFailed), DecisionNone, ReasonEffectFailed)
	expect(t, complete(c.Result.Seq+100, "bogus"), DecisionDeny, ReasonNotFound)
}
