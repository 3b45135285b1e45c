package fsm

import (
	"fmt"
	"testing"
	"time"
)

const window = int64(10 * time.Second) // sense.DefaultConfig().WindowNs

// Tier is Cedar principal data: a policy naming it denies a probation
// entity and permits it again once its trust is restored.
func TestTierIsPolicyContext(t *testing.T) {
	g := newGateLedger(t)
	g.grant("agent", []string{"payments.send"}, []string{"*"}, 0, 0)
	expect(t, g.policy("tiers", PolicyActive, `forbid(principal, action == Action::"payments.send", resource) unless { principal.tier == "trusted" || principal.tier == "standard" };`), DecisionPermit, ReasonOK)
	expect(t, g.call("agent", "payments.send", "acct/1", nil, ""), DecisionPermit, ReasonOK)
	a := g.as(testRootToken[:], CmdTrustAdjust, &TrustAdjust{Entity: "agent", Delta: -400, Reason: "fraud report"})
	expect(t, a, DecisionPermit, ReasonOK)
	if a.Result.ID != "probation" {
		t.Fatalf("tier after -400: %q", a.Result.ID)
	}
	expect(t, g.call("agent", "payments.send", "acct/1", nil, ""), DecisionDeny, ReasonPolicyForbid)
	expect(t, g.as(testRootToken[:], CmdTrustAdjust, &TrustAdjust{Entity: "agent", Delta: 400, Reason: "cleared"}), DecisionPermit, ReasonOK)
	expect(t, g.call("agent", "payments.send", "acct/1", nil, ""), DecisionPermit, ReasonOK)
}

// Denials are part of an entity's record: a stream of them lowers its
// trust, while the same number of permits does not.
func TestDenialsLowerTrust(t *testing.T) {
	g := newGateLedger(t)
	g.grant("good", []string{"kv.put"}, []string{"orders/*"}, 0, 0)
	g.grant("bad", []string{"kv.put"}, []string{"orders/*"}, 0, 0)
	for i := 0; i < 30; i++ {
		g.call("good", "kv.put", fmt.Sprint("orders/", i), []byte("v"), "")
		g.call("bad", "kv.put", fmt.Sprint("secrets/", i), []byte("v"), "") // out of scope
	}
	good, bad := g.State().Sense.Trust("good"), g.State().Sense.Trust("bad")
	if bad.Score >= good.Score || bad.Score >= DefaultTrust {
		t.Fatalf("trust after 30 denials %d, after 30 permits %d (start %d)", bad.Score, good.Score, DefaultTrust)
	}
}

// An incident signal of 100 drives posture to critical, and at critical a
// deviating entity's permitted call escalates to a human (model 1,
// protocol 4; model 2 in sensing2_test.go).
func TestCriticalPostureEscalatesDeviations(t *testing.T) {
	g := newRecordingGate(t, ProtocolAuthority).gateLedger
	g.grant("agent", []string{"kv.put"}, []string{"orders/*"}, 0, 0)
	g.grant("sensor", []string{OpSignalIngest}, []string{"*"}, 0, 0)
	// A steady baseline: two calls per window for 40 windows.
	for w := 0; w < 40; w++ {
		g.now += window
		for i := 0; i < 2; i++ {
			expect(t, g.call("agent", "kv.put", fmt.Sprint("orders/", w), []byte("v"), ""), DecisionPermit, ReasonOK)
		}
	}
	a := g.as(tokenHash("sensor"), CmdSignalIngest, &SignalIngest{Kind: "incident_level", Value: 100})
	expect(t, a, DecisionPermit, ReasonOK)
	if a.Result.ID != "critical" {
		t.Fatalf("posture after incident_level 100: %s", a.Result.ID)
	}
	// A burst in the next window.
	g.now += window
	escalated := -1
	for i := 0; i < 60 && escalated < 0; i++ {
		if r := g.call("agent", "kv.put", fmt.Sprint("orders/burst", i), []byte("v"), ""); r.Result.Decision == DecisionEscalate {
			escalated = i
		}
	}
	if escalated < 0 {
		t.Fatal("a 60-call burst at critical posture never escalated")
	}
	t.Logf("escalated at call %d of the burst", escalated)
}

// Out-of-range values and unknown kinds are refused and change nothing,
// the sensing state included; signals need the signal.ingest capability.
func TestBadSignalsChangeNothing(t *testing.T) {
	g := newGateLedger(t)
	g.grant("sensor", []string{OpSignalIngest}, []string{"*"}, 0, 0)
	g.grant("agent", []string{"kv.put"}, []string{"*"}, 0, 0)
	expect(t, g.as(tokenHash("sensor"), CmdSignalIngest, &SignalIngest{Kind: "incident_level", Value: 10}), DecisionPermit, ReasonOK)
	for _, c := range []struct {
		who  string
		p    SignalIngest
		want Reason
	}{
		{"sensor", SignalIngest{Kind: "incident_level", Value: 101}, ReasonInvalidArgument},
		{"sensor", SignalIngest{Kind: "incident_level", Value: -1}, ReasonInvalidArgument},
		{"sensor", SignalIngest{Kind: "moon_phase", Value: 3}, ReasonInvalidArgument},
		{"agent", SignalIngest{Kind: "incident_level", Value: 100}, ReasonForbidden},
	} {
		b := wholeState(g.Ledger)
		expect(t, g.as(tokenHash(c.who), CmdSignalIngest, &c.p), DecisionDeny, c.want)
		if wholeState(g.Ledger) != b {
			t.Fatalf("%+v changed state", c.p)
		}
	}
}

// wholeState is the state apart from the chain position and dedup window,
// the sensing fold included.
func wholeState(l *Ledger) string {
	b := l.State().body()
	b.Seq, b.Head, b.Time, b.Dedup = 0, nil, 0, nil
	return string(Encode(&b))
}

// A ledger sealed under protocol 1 replays without sensing.
func TestProtocolOneLedgerHasNoSensing(t *testing.T) {
	g := &gateLedger{testLedger: &testLedger{Ledger: New()}, t: t, now: t0 + 1e9}
	g.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: 1, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
	g.grant("agent", []string{"kv.put"}, []string{"*"}, 0, 0)
	expect(t, g.call("agent", "kv.put", "k", []byte("v"), ""), DecisionPermit, ReasonOK)
	if g.State().Sense != nil {
		t.Fatal("a protocol 1 ledger folded a decision into sensing")
	}
	expect(t, g.as(testRootToken[:], CmdSignalIngest, &SignalIngest{Kind: "incident_level", Value: 1}), DecisionDeny, ReasonUnsupportedProtocol)
}

// An external effect that fails is an error in its entity's record: its
// trust falls below that of an entity whose effects succeed.
func TestFailedEffectsAreErrors(t *testing.T) {
	g := newGateLedger(t)
	g.grant("ok", []string{"email.send"}, []string{"*"}, 0, 0)
	g.grant("failing", []string{"email.send"}, []string{"*"}, 0, 0)
	for i := 0; i < 20; i++ {
		for _, who := range []string{"ok", "failing"} {
			a := g.call(who, "email.send", fmt.Sprint("mail/", i), nil, "")
			expect(t, a, DecisionPermit, ReasonOK)
			status := EffectOK
			if who == "failing" {
				status = EffectFailed
			}
			g.apply(env(CmdEffectComplete, "", nil, g.tick(), &EffectComplete{Seq: a.Result.Seq, Status: status}))
		}
	}
	ok, failing := g.State().Sense.Trust("ok"), g.State().Sense.Trust("failing")
	if failing.Score >= ok.Score {
		t.Fatalf("trust with 20 failed effects %d, with 20 good ones %d", failing.Score, ok.Score)
	}
}
