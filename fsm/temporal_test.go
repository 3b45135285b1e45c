package fsm

import (
	"bytes"
	"math/rand"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/temporal"
)

// TestTemporalPolicyDeniesAProbingAgent: an agent probing outside its
// scope is denied out_of_scope five times; a policy on
// context.history.denials_1h then denies its sixth, in-scope call, while
// another agent's call passes. The judged request records the counters.
func TestTemporalPolicyDeniesAProbingAgent(t *testing.T) {
	g := newGateLedger(t)
	g.grant("prober", []string{"kv.get"}, []string{"public/*"}, 0, time.Hour)
	g.grant("honest", []string{"kv.get"}, []string{"public/*"}, 0, time.Hour)
	a := g.policy("probing", PolicyActive, `forbid(principal, action, resource) when { context.history.denials_1h > 4 };`)
	expect(t, a, DecisionPermit, ReasonOK)
	for i := 0; i < 5; i++ {
		expect(t, g.call("prober", "kv.get", "secret/"+string(rune('a'+i)), nil, ""), DecisionDeny, ReasonOutOfScope)
	}
	a = g.as(tokenHash("prober"), CmdKVGet, &KVKey{Key: "public/x"})
	expect(t, a, DecisionDeny, ReasonPolicyForbid)
	var d SyscallDetail
	if err := Decode(a.Event.Detail, &d); err != nil {
		t.Fatal(err)
	}
	if h := d.Request.History; h == nil || h.Denials1h != 5 || h.Calls1h != 5 || h.DistinctResources1h != 5 || h.OpCalls1h != 5 {
		t.Fatalf("recorded context.history: %+v", d.Request.History)
	}
	expect(t, g.as(tokenHash("honest"), CmdKVGet, &KVKey{Key: "public/x"}), DecisionPermit, ReasonNotFound)
	// A policy on an attribute outside the record is a policy error
	// (fail closed), not a pass.
	g.policy("probing", PolicyActive, `forbid(principal, action, resource) when { context.history.no_such_counter > 4 };`)
	expect(t, g.as(tokenHash("honest"), CmdKVGet, &KVKey{Key: "public/x"}), DecisionDeny, ReasonPolicyError)
}

// TestHistoryCountersMatchTheLedger runs random traffic (several agents,
// ops, resources, permits, denials of each kind, escalations, effect
// errors, gaps of seconds to a day) and checks every judged syscall's
// recorded context.history against a brute-force count over the events
// before it, and that a replay of the same entries gives the same head
// and state digest.
func TestHistoryCountersMatchTheLedger(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	tl := newTestLedger(t)
	var entries [][]byte
	now := t0 + 1e9
	applyAt := func(data []byte) Applied {
		entries = append(entries, data)
		return tl.apply(data)
	}
	root := func(ct CommandType, p any) Applied {
		now += 1e6
		return applyAt(env(ct, "", testRootToken[:], now, p))
	}
	agents := []string{"a1", "a2", "a3", "svc/b"}
	capEntity := map[string]string{}
	for _, e := range agents {
		a := root(CmdCapGrant, &CapGrant{TokenHash: tokenHash(e), Entity: e, Ops: []string{"kv.get", "kv.put", "mail.send"}, Resources: []string{"r/*"}, TTLNs: int64(30 * 24 * time.Hour)})
		capEntity[a.Result.ID] = e
	}
	expect(t, root(CmdPolicySet, &PolicySet{Name: "esc", Mode: PolicyActive, Text: `@escalate("review") forbid(principal, action, resource) when { resource.path == "r/review" };`}), DecisionPermit, ReasonOK)
	var hist []seenCall
	pendingEffects := map[uint64]string{} // seq -> entity
	for i := 0; i < 1500; i++ {
		switch r := rng.Intn(100); {
		case r < 80:
			now += rng.Int63n(int64(30e9)) + 1
		case r < 97:
			now += rng.Int63n(int64(1200e9)) + 1
		default:
			now += rng.Int63n(int64(26 * 3600e9))
		}
		if len(pendingEffects) > 0 && rng.Intn(4) == 0 {
			for seq, e := range pendingEffects {
				status := EffectOK
				if rng.Intn(2) == 0 {
					status = EffectFailed
				}
				a := applyAt(env(CmdEffectComplete, "", nil, now, &EffectComplete{Seq: seq, Status: status, Code: 500}))
				if a.Event != nil && status != EffectOK {
					hist = append(hist, seenCall{entity: e, err: true, t: a.Event.Time})
				}
				delete(pendingEffects, seq)
				break
			}
			continue
		}
		e := agents[rng.Intn(len(agents))]
		op := []string{"kv.get", "kv.put", "mail.send", "pay.charge"}[rng.Intn(4)]
		res := []string{"r/1", "r/2", "r/3", "r/review", "x/out"}[rng.Intn(5)]
		a := applyAt(env(CmdSyscall, "", tokenHash(e), now, &Syscall{Op: op, Resource: res, Args: []byte("v")}))
		if a.Event == nil {
			t.Fatalf("seed %d: no event for a syscall", seed)
		}
		var d SyscallDetail
		if err := Decode(a.Event.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if capEntity[d.CapID] != e {
			t.Fatalf("seed %d: detail names cap %s", seed, d.CapID)
		}
		if d.Judged {
			want := bruteHistory(hist, e, op, a.Event.Time)
			if d.Request.History == nil || *d.Request.History != want {
				t.Fatalf("seed %d call %d: %s %s at %d: recorded %+v, brute force %+v", seed, i, e, op, a.Event.Time, d.Request.History, want)
			}
		}
		hist = append(hist, seenCall{entity: e, op: op, res: res, d: a.Event.Decision, t: a.Event.Time})
		if a.Event.Decision == DecisionPermit && op == "mail.send" {
			pendingEffects[a.Event.Seq] = e
		}
	}
	// Replay: the same entries on a fresh ledger give the same chain and state.
	re := &testLedger{Ledger: New()}
	re.apply(genesisEntry(t0))
	for _, data := range entries {
		re.apply(data)
	}
	if re.Head().String() != tl.Head().String() || re.Digest() != tl.Digest() {
		t.Fatalf("seed %d: replay head %s digest %x, original %s %x", seed, re.Head(), re.Digest(), tl.Head(), tl.Digest())
	}
	if !bytes.Equal(re.State().Activity.Encode(), tl.State().Activity.Encode()) {
		t.Fatalf("seed %d: replayed counters differ", seed)
	}
	// And a snapshot carries the counters.
	back := New()
	if _, err := back.Restore(tl.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if back.Digest() != tl.Digest() {
		t.Fatalf("seed %d: a restored snapshot has another digest", seed)
	}
}

// seenCall is one decision (or effect error) of an entity, as the
// brute-force count sees it.
type seenCall struct {
	entity, op, res string
	d               Decision
	err             bool
	t               int64
}

// bruteHistory counts over every earlier decision, by the windows of
// package temporal.
func bruteHistory(hist []seenCall, entity, op string, now int64) HistoryContext {
	var c HistoryContext
	hour, day := temporal.HourStart(now), temporal.DayStart(now)
	first := int64(-1)
	res := map[string]bool{}
	for _, x := range hist {
		if x.entity != entity {
			continue
		}
		if first < 0 {
			first = x.t
		}
		if x.err {
			if x.t >= hour {
				c.Errors1h++
			}
			continue
		}
		if x.t >= hour {
			c.Calls1h++
			if x.d == DecisionDeny {
				c.Denials1h++
			}
			if x.op == op {
				c.OpCalls1h++
			}
			res[x.res] = true
		}
		if x.t >= day {
			c.Calls24h++
			if x.d == DecisionDeny {
				c.Denials24h++
			}
			if x.d == DecisionEscalate {
				c.Escalations24h++
			}
			if x.op == op {
				c.OpCalls24h++
			}
		}
	}
	c.DistinctResources1h = int64(len(res))
	if first >= 0 && now > first {
		c.FirstSeenS = (now - first) / 1e9
	}
	return c
}

// TestAsOfRead: kv.get with an as-of seq is judged on the current state,
// records the seq, and carries no current value; a seq beyond the ledger,
// an as-of delete, and an as-of read before protocol 7 are malformed; a
// caller without a current capability is denied, and the denial is
// ledgered.
func TestAsOfRead(t *testing.T) {
	g := newGateLedger(t)
	g.grant("reader", []string{"kv.get"}, []string{"k"}, 0, time.Hour)
	w := g.as(testRootToken[:], CmdKVPut, &KVPut{Key: "k", Value: []byte("old")})
	expect(t, w, DecisionPermit, ReasonOK)
	g.as(testRootToken[:], CmdKVPut, &KVPut{Key: "k", Value: []byte("new")})
	a := g.as(tokenHash("reader"), CmdKVGet, &KVKey{Key: "k", AsOf: w.Result.Seq})
	expect(t, a, DecisionPermit, ReasonOK)
	if a.Result.Found || a.Result.Value != nil || a.Result.Version != w.Result.Seq {
		t.Fatalf("as-of answer carries the current value: %+v", a.Result)
	}
	var d SyscallDetail
	if err := Decode(a.Event.Detail, &d); err != nil || d.AsOf != w.Result.Seq {
		t.Fatalf("detail as_of = %d (%v), want %d", d.AsOf, err, w.Result.Seq)
	}
	expect(t, g.as(tokenHash("reader"), CmdKVGet, &KVKey{Key: "k", AsOf: g.State().Seq + 5}), DecisionDeny, ReasonMalformed)
	expect(t, g.as(testRootToken[:], CmdKVDelete, &KVKey{Key: "k", AsOf: 1}), DecisionDeny, ReasonMalformed)
	// No current capability: denied and ledgered, nothing read.
	before := governed(g.Ledger)
	a = g.as(tokenHash("stranger"), CmdKVGet, &KVKey{Key: "k", AsOf: w.Result.Seq})
	if a.Event == nil || a.Result.Decision != DecisionDeny {
		t.Fatalf("a stranger's as-of read: %+v", a.Result)
	}
	if governed(g.Ledger) != before {
		t.Fatal("a denied as-of read changed the state")
	}
	// Before protocol 7 the field does not exist.
	old := &gateLedger{testLedger: &testLedger{Ledger: New()}, t: t, now: t0 + 1e9}
	old.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: ProtocolCallerEffects, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
	expect(t, old.as(testRootToken[:], CmdKVGet, &KVKey{Key: "k", AsOf: 1}), DecisionDeny, ReasonMalformed)
	a = old.as(testRootToken[:], CmdKVGet, &KVKey{Key: "k"})
	var od SyscallDetail
	if err := Decode(a.Event.Detail, &od); err != nil || !od.Judged || od.Request.History != nil {
		t.Fatalf("protocol 5 records context.history: %+v (%v)", od.Request.History, err)
	}
}

// TestTemporalRulesStartAtTheUpgrade: under protocol 5 no counters are
// kept and no request carries context.history; the upgrade to 7 starts
// both from its entry on (the calls before it are not counted).
func TestTemporalRulesStartAtTheUpgrade(t *testing.T) {
	g := &gateLedger{testLedger: &testLedger{Ledger: New()}, t: t, now: t0 + 1e9}
	g.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: ProtocolCallerEffects, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
	g.grant("a", []string{"kv.get"}, []string{"k"}, 0, time.Hour)
	for i := 0; i < 3; i++ {
		expect(t, g.call("a", "kv.get", "other", nil, ""), DecisionDeny, ReasonOutOfScope)
	}
	if g.State().Activity != nil {
		t.Fatal("protocol 5 keeps history counters")
	}
	expect(t, g.as(testRootToken[:], CmdProtocolUpgrade, &ProtocolUpgrade{Version: ProtocolTemporal}), DecisionPermit, ReasonOK)
	expect(t, g.call("a", "kv.get", "other", nil, ""), DecisionDeny, ReasonOutOfScope)
	a := g.call("a", "kv.get", "k", nil, "")
	var d SyscallDetail
	if err := Decode(a.Event.Detail, &d); err != nil {
		t.Fatal(err)
	}
	if h := d.Request.History; h == nil || h.Calls1h != 1 || h.Denials1h != 1 {
		t.Fatalf("after the upgrade: %+v, want the one call since it", d.Request.History)
	}
}
