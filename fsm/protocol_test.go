package fsm

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recordingGate is a gate ledger sealed under a given protocol that keeps
// every entry it applies, so a test can replay the exact stream.
type recordingGate struct {
	*gateLedger
	log [][]byte
}

func newRecordingGate(t *testing.T, protocol uint16) *recordingGate {
	t.Helper()
	g := &recordingGate{gateLedger: &gateLedger{testLedger: &testLedger{Ledger: New()}, t: t, now: t0 + 1e9}}
	a := g.rec(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: protocol, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
	if a.Result.Decision != DecisionPermit || g.State().Meta.Protocol != protocol {
		t.Fatalf("genesis at protocol %d: %+v", protocol, a.Result)
	}
	return g
}

func (g *recordingGate) rec(e []byte) Applied {
	e = g.sign(e)
	g.log = append(g.log, e)
	return g.apply(e)
}

func (g *recordingGate) as(token []byte, ct CommandType, payload any) Applied {
	return g.rec(env(ct, "", token, g.tick(), payload))
}

func (g *recordingGate) grant(entity string, ops, res []string, ttl time.Duration) {
	g.t.Helper()
	a := g.as(testRootToken[:], CmdCapGrant, &CapGrant{TokenHash: tokenHash(entity), Entity: entity, Ops: ops, Resources: res, TTLNs: int64(ttl)})
	if a.Result.Decision != DecisionPermit {
		g.t.Fatalf("grant %s: %s", entity, a.Result.Reason)
	}
}

func (g *recordingGate) call(entity, op, resource string, args []byte) Applied {
	return g.as(tokenHash(entity), CmdSyscall, &Syscall{Op: op, Resource: resource, Args: args})
}

// refuse applies a command that must be denied with r and change nothing
// but seq, head and time.
func (g *recordingGate) refuse(what string, r Reason, token []byte, ct CommandType, payload any) {
	g.t.Helper()
	before := stateFields(g.Ledger)
	a := g.as(token, ct, payload)
	if a.Event == nil || a.Result.Decision != DecisionDeny || a.Result.Reason != r {
		g.t.Errorf("%s: got %s %s, want DENY %s", what, a.Result.Decision, a.Result.Reason, r)
	}
	if ch := changedFields(before, stateFields(g.Ledger)); len(ch) > 0 {
		g.t.Errorf("%s: a refused upgrade changed %v", what, ch)
	}
}

// expectUnknownProtocol applies e and requires the replica to stop with
// UnknownProtocolError naming version and the entry's index.
func expectUnknownProtocol(t *testing.T, l *Ledger, index uint64, e []byte, version uint16) {
	t.Helper()
	defer func() {
		r := recover()
		var up UnknownProtocolError
		err, _ := r.(error)
		if !errors.As(err, &up) {
			t.Fatalf("recovered %v, want UnknownProtocolError", r)
		}
		if up.Protocol != version || up.Index != index {
			t.Fatalf("stopped with %+v, want protocol %d at index %d", up, version, index)
		}
		msg := up.Error()
		if !strings.Contains(msg, fmt.Sprintf("protocol %d", version)) || !strings.Contains(msg, fmt.Sprintf("up to %d", ProtocolVersion)) {
			t.Fatalf("message %q does not name the version it needs and the one it has", msg)
		}
	}()
	l.Apply(index, e)
	t.Fatal("a replica applied an upgrade to a protocol its binary does not implement")
}

// A standalone kernel moves from protocol 2 to 3 at the upgrade entry:
// the same policies are judged by 2's rules before it and by 3's after;
// refused upgrades change nothing; a replay reproduces the head.
func TestProtocolUpgradeStandalone(t *testing.T) {
	g := newRecordingGate(t, 2)
	g.grant("agent", []string{"kv.put"}, []string{"*"}, time.Hour)
	// "context has args_digest" is false under 2 (no such attribute) and
	// true under 3; the namespaced policy names types 2 does not use.
	if a := g.as(testRootToken[:], CmdPolicySet, &PolicySet{Name: "guard", Mode: PolicyActive,
		Text: `forbid (principal, action, resource == Resource::"locked") when { context has args_digest };`}); a.Result.Decision != DecisionPermit {
		t.Fatalf("policy guard: %s", a.Result.Reason)
	}
	if a := g.as(testRootToken[:], CmdPolicySet, &PolicySet{Name: "ns", Mode: PolicyActive,
		Text: `forbid (principal == Dominus::Entity::"agent", action == Dominus::Action::"kv.put", resource == Dominus::Resource::"ns-locked");`}); a.Result.Decision != DecisionPermit {
		t.Fatalf("policy ns: %s", a.Result.Reason)
	}
	expect(t, g.call("agent", "kv.put", "locked", []byte("v")), DecisionPermit, ReasonOK)
	expect(t, g.call("agent", "kv.put", "ns-locked", []byte("v")), DecisionPermit, ReasonOK)

	g.refuse("an agent capability", ReasonForbidden, tokenHash("agent"), CmdProtocolUpgrade, &ProtocolUpgrade{Version: 3})
	g.refuse("the version in force", ReasonInvalidArgument, testRootToken[:], CmdProtocolUpgrade, &ProtocolUpgrade{Version: 2})
	g.refuse("an older version", ReasonInvalidArgument, testRootToken[:], CmdProtocolUpgrade, &ProtocolUpgrade{Version: 1})
	g.refuse("signatures on a standalone kernel", ReasonInvalidArgument, testRootToken[:], CmdProtocolUpgrade,
		&ProtocolUpgrade{Version: 3, Signatures: []OperatorSignature{{Operator: "alice", Signature: make([]byte, 64)}}})
	g.refuse("an unknown token", ReasonUnknownToken, tokenHash("nobody"), CmdProtocolUpgrade, &ProtocolUpgrade{Version: 3})
	if g.State().Meta.Protocol != 2 {
		t.Fatal("a refused upgrade moved the protocol")
	}

	up := g.as(testRootToken[:], CmdProtocolUpgrade, &ProtocolUpgrade{Version: 3})
	expect(t, up, DecisionPermit, ReasonOK)
	m := g.State().Meta
	if m.Protocol != 3 || len(m.ProtocolHistory) != 1 {
		t.Fatalf("after the upgrade: protocol %d, history %+v", m.Protocol, m.ProtocolHistory)
	}
	if h := m.ProtocolHistory[0]; h.Version != 3 || h.From != 2 || h.Seq != up.Result.Seq || h.Time != up.Result.Time || h.By != RootOperatorName {
		t.Fatalf("history entry %+v, want 2 -> 3 at seq %d by root", h, up.Result.Seq)
	}
	expect(t, g.call("agent", "kv.put", "locked", []byte("v")), DecisionDeny, ReasonPolicyForbid)
	expect(t, g.call("agent", "kv.put", "ns-locked", []byte("v")), DecisionDeny, ReasonPolicyForbid)
	expect(t, g.call("agent", "kv.put", "open", []byte("v")), DecisionPermit, ReasonOK)
	g.refuse("the same upgrade again", ReasonInvalidArgument, testRootToken[:], CmdProtocolUpgrade, &ProtocolUpgrade{Version: 3})

	// An upgrade to a version this binary does not implement stops the
	// replica at that entry, before it changes anything.
	next := ProtocolVersion + 1
	before := wholeState(g.Ledger)
	g.index++
	expectUnknownProtocol(t, g.Ledger, g.index, env(CmdProtocolUpgrade, "", testRootToken[:], g.tick(), &ProtocolUpgrade{Version: next}), next)
	g.index-- // the stopped entry was never applied
	if wholeState(g.Ledger) != before {
		t.Fatal("the stopped upgrade changed the state")
	}

	// Every entry replays under the protocol in force when it was written.
	r := New()
	for i, e := range g.log {
		r.Apply(uint64(i+1), e)
	}
	if r.State().Head != g.State().Head || r.Digest() != g.Digest() {
		t.Fatal("replay of a ledger with an upgrade in the middle reached another head")
	}
	snap := New()
	for i, e := range g.log[:len(g.log)/2] {
		snap.Apply(uint64(i+1), e)
	}
	restored := New()
	if _, err := restored.Restore(snap.Snapshot()); err != nil {
		t.Fatal(err)
	}
	for i := len(g.log) / 2; i < len(g.log); i++ {
		restored.Apply(uint64(i+1), g.log[i])
	}
	if restored.State().Head != g.State().Head || restored.Digest() != g.Digest() {
		t.Fatal("snapshot + tail across the upgrade reached another head")
	}
}

// The contract's Cedar model from protocol 3: namespaced types, context
// time and args_digest, principal domain; un-namespaced policies keep
// deciding as they did.
func TestCedarContractModel(t *testing.T) {
	args := []byte("hello")
	digest := argsDigest(args)
	cases := []struct {
		name, policy string
		want         Reason // for a kv.put of "hello" by agent on orders/1
	}{
		{"namespaced principal and action", `forbid (principal == Dominus::Entity::"agent", action == Dominus::Action::"kv.put", resource);`, ReasonPolicyForbid},
		{"namespaced resource", `forbid (principal, action, resource == Dominus::Resource::"orders/1");`, ReasonPolicyForbid},
		{"namespaced is", `forbid (principal is Dominus::Entity, action in [Dominus::Action::"kv.put"], resource);`, ReasonPolicyForbid},
		{"namespaced, other entity", `forbid (principal == Dominus::Entity::"someone", action, resource);`, ReasonOK},
		{"un-namespaced still enforced", `forbid (principal == Entity::"agent", action == Action::"kv.put", resource);`, ReasonPolicyForbid},
		{"un-namespaced, other entity", `forbid (principal == Entity::"someone", action, resource);`, ReasonOK},
		{"context.time is ledger seconds", `forbid (principal, action, resource) when { context.time == context.ledger_time && context.time > 1000 };`, ReasonPolicyForbid},
		{"context.args_digest", fmt.Sprintf(`forbid (principal, action, resource) when { context.args_digest == "%s" };`, digest), ReasonPolicyForbid},
		{"principal.domain", `forbid (principal, action, resource) when { principal.domain == "default" };`, ReasonPolicyForbid},
		{"attributes only, not matching", `forbid (principal, action, resource) when { principal.domain == "globex" };`, ReasonOK},
		{"tier and trust as before", `forbid (principal, action, resource) when { principal.tier == "standard" && principal.trust >= 0 };`, ReasonPolicyForbid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRecordingGate(t, ProtocolContract)
			g.grant("agent", []string{"kv.put"}, []string{"*"}, time.Hour)
			if a := g.as(testRootToken[:], CmdPolicySet, &PolicySet{Name: "p", Mode: PolicyActive, Text: c.policy}); a.Result.Decision != DecisionPermit {
				t.Fatalf("policy set: %s", a.Result.Reason)
			}
			want := DecisionPermit
			if c.want != ReasonOK {
				want = DecisionDeny
			}
			expect(t, g.call("agent", "kv.put", "orders/1", args), want, c.want)
		})
	}

	// Under protocol 2 the contract's attributes do not exist: reading one
	// is an evaluation error, never a silent permit.
	g := newRecordingGate(t, 2)
	g.grant("agent", []string{"kv.put"}, []string{"*"}, time.Hour)
	g.as(testRootToken[:], CmdPolicySet, &PolicySet{Name: "p", Mode: PolicyActive, Text: `forbid (principal, action, resource) when { context.time < 0 };`})
	expect(t, g.call("agent", "kv.put", "orders/1", args), DecisionDeny, ReasonPolicyError)
}

func TestPolicyForm(t *testing.T) {
	cases := []struct {
		text               string
		legacy, namespaced bool
	}{
		{`permit (principal, action, resource);`, false, false},
		{`forbid (principal == Entity::"a", action, resource);`, true, false},
		{`forbid (principal, action in [Action::"kv.put", Action::"kv.get"], resource);`, true, false},
		{`forbid (principal is Resource, action, resource);`, true, false},
		{`forbid (principal, action, resource) when { resource in Resource::"x" };`, true, false},
		{`forbid (principal, action, resource) when { [1, {a: Dominus::Resource::"x"}].contains(2) };`, false, true},
		{`forbid (principal, action, resource is Dominus::Resource in Dominus::Resource::"x");`, false, true},
		{`forbid (principal, action, resource) when { principal is Dominus::Entity };`, false, true},
		{`forbid (principal == Dominus::Entity::"a", action == Action::"kv.put", resource);`, true, true},
		{`forbid (principal == User::"a", action, resource);`, false, false},
	}
	for _, c := range cases {
		cs, err := CompilePolicySet("t", PolicyActive, 1, c.text)
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		legacy, ns := PolicyForm(cs.entries[0].policy)
		if legacy != c.legacy || ns != c.namespaced {
			t.Errorf("%s: legacy %v namespaced %v, want %v %v", c.text, legacy, ns, c.legacy, c.namespaced)
		}
	}
}

func protocolSigs(k *fedKeys, sovereignID string, version uint16, ops ...string) []OperatorSignature {
	var out []OperatorSignature
	for _, op := range ops {
		out = append(out, OperatorSignature{Operator: op, Signature: ed25519.Sign(k.ops[op], ProtocolMessage(sovereignID, version))})
	}
	return out
}

// On a federation an upgrade needs M of N operators' signatures on the
// sovereign; each domain verifies them against the operators it already
// trusts before it takes the version, acknowledges it, and is suspended
// if it has not AckDeadline after ratification.
func TestProtocolUpgradeFederation(t *testing.T) {
	k := newFedKeys(t)
	w := &sovWorld{fedLedger: newFedLedger(t), k: k}
	g := sovereignGenesis(k, threeSovereigns, 2)
	g.Protocol = 2
	w.must("sovereign genesis at 2", CmdGenesis, nil, g)
	w.must("register signer", CmdFedSigner, nil, &FedSigner{Node: fedSignerNode, PubKey: pubOf(k.signer)})
	w.create("acme")
	ts := w.tick()
	join := w.joinPayload("acme", k.issue("acme", 1, ts, nil))
	join.Protocol = 2
	w.mustAt(ts, "join acme", CmdFedJoin, nil, join)
	if d := w.State().Fed.Domains["acme"]; d.ProtocolAck != 2 {
		t.Fatalf("joined at protocol %d, want 2", d.ProtocolAck)
	}

	up := func(sigs []OperatorSignature) *ProtocolUpgrade { return &ProtocolUpgrade{Version: 3, Signatures: sigs} }
	w.reject("no signatures", ReasonForbidden, CmdProtocolUpgrade, opToken("alice"), up(nil))
	w.reject("one of two", ReasonForbidden, CmdProtocolUpgrade, opToken("alice"), up(protocolSigs(k, fedSovereignID, 3, "alice")))
	w.reject("a signature twice", ReasonDuplicateSignature, CmdProtocolUpgrade, opToken("alice"), up(protocolSigs(k, fedSovereignID, 3, "alice", "alice")))
	forged := protocolSigs(k, fedSovereignID, 3, "alice")
	forged = append(forged, OperatorSignature{Operator: "bob", Signature: ed25519.Sign(k.ops["mallory"], ProtocolMessage(fedSovereignID, 3))})
	w.reject("a forged signature", ReasonBadSignature, CmdProtocolUpgrade, opToken("alice"), up(forged))
	w.reject("signatures over another version", ReasonBadSignature, CmdProtocolUpgrade, opToken("alice"), up(protocolSigs(k, fedSovereignID, 4, "alice", "bob")))
	w.reject("signatures for another federation", ReasonBadSignature, CmdProtocolUpgrade, opToken("alice"), up(protocolSigs(k, "sov2", 3, "alice", "bob")))
	w.reject("an unknown operator", ReasonBadSignature, CmdProtocolUpgrade, opToken("alice"), up(protocolSigs(k, fedSovereignID, 3, "alice", "mallory")))

	sigs := protocolSigs(k, fedSovereignID, 3, "bob", "alice")
	a := w.must("ratified upgrade", CmdProtocolUpgrade, opToken("alice"), up(sigs))
	f := w.State().Fed
	if w.State().Meta.Protocol != 3 || f.Protocol == nil || f.Protocol.Version != 3 || f.Protocol.Ratified != a.Result.Time {
		t.Fatalf("sovereign after the upgrade: protocol %d, ratification %+v", w.State().Meta.Protocol, f.Protocol)
	}
	if h := w.State().Meta.ProtocolHistory; len(h) != 1 || h[0].By != "bob,alice" {
		t.Fatalf("history %+v, want one change by bob,alice", h)
	}

	// acme has not acknowledged: not due before the deadline, due after.
	w.reject("suspension before the deadline", ReasonInvalidArgument, CmdFedSuspend, nil, &FedSuspend{Domain: "acme"})
	w.must("ack 3", CmdFedProtocolAck, nil, &FedProtocolAck{Domain: "acme", Version: 3})
	w.reject("an ack that is not newer", ReasonInvalidArgument, CmdFedProtocolAck, nil, &FedProtocolAck{Domain: "acme", Version: 3})
	w.reject("an ack for an unknown domain", ReasonNotFound, CmdFedProtocolAck, nil, &FedProtocolAck{Domain: "nobody", Version: 3})
	w.create("globex")
	w.join("globex") // joins without reporting a protocol: 0
	w.now += AckDeadline
	w.reject("acme acknowledged", ReasonInvalidArgument, CmdFedSuspend, nil, &FedSuspend{Domain: "acme"})
	w.must("globex overdue", CmdFedSuspend, nil, &FedSuspend{Domain: "globex"})
	if d := w.State().Fed.Domains["globex"]; !d.Suspended || d.SuspendReason != "protocol acknowledgement overdue" {
		t.Fatalf("globex %+v", d)
	}

	// A domain at protocol 2 takes 3 from its view once the signatures
	// verify against the operators it trusts.
	trusted := []OperatorKey{
		{Name: "alice", PubKey: pubOf(k.ops["alice"]), Level: LevelSovereign},
		{Name: "bob", PubKey: pubOf(k.ops["bob"]), Level: LevelSovereign},
		{Name: "carol", PubKey: pubOf(k.ops["carol"]), Level: LevelSovereign},
	}
	d := newFedLedger(t)
	d.must("domain genesis at 2", CmdGenesis, nil, &Genesis{KernelID: "acme-k", CanonHash: testCanon[:], Protocol: 2, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9, Domain: "acme", Role: RoleDomain})
	d.reject("a direct upgrade on a domain", ReasonWrongRole, CmdProtocolUpgrade, testRootToken[:], &ProtocolUpgrade{Version: 3})
	view := k.view("acme", nil, nil)
	view.Operators = trusted
	d.must("first view", CmdFedUpdate, nil, view)

	// A view whose operators and signatures are both the attacker's: the
	// domain checks against the operators it already holds.
	rogue := k.view("acme", nil, nil)
	rogue.Operators = []OperatorKey{{Name: "alice", PubKey: pubOf(k.ops["mallory"]), Level: LevelSovereign}, {Name: "bob", PubKey: pubOf(k.ops["dan"]), Level: LevelSovereign}}
	rogue.Protocol = &ProtocolRatification{Version: 3, Signatures: []OperatorSignature{
		{Operator: "alice", Signature: ed25519.Sign(k.ops["mallory"], ProtocolMessage(fedSovereignID, 3))},
		{Operator: "bob", Signature: ed25519.Sign(k.ops["dan"], ProtocolMessage(fedSovereignID, 3))},
	}}
	d.reject("a self-signed protocol", ReasonBadSignature, CmdFedUpdate, nil, rogue)
	short := k.view("acme", nil, nil)
	short.Operators = trusted
	short.Protocol = &ProtocolRatification{Version: 3, Signatures: protocolSigs(k, fedSovereignID, 3, "alice")}
	d.reject("one signature of two", ReasonBadSignature, CmdFedUpdate, nil, short)
	if d.State().Meta.Protocol != 2 {
		t.Fatal("a refused view moved the domain's protocol")
	}

	good := k.view("acme", nil, nil)
	good.Operators = trusted
	good.Protocol = &ProtocolRatification{Version: 3, Signatures: sigs, Ratified: a.Result.Time}
	d.must("signed view", CmdFedUpdate, nil, good)
	if m := d.State().Meta; m.Protocol != 3 || len(m.ProtocolHistory) != 1 || m.ProtocolHistory[0].By != "federation:bob,alice" {
		t.Fatalf("domain after the view: protocol %d history %+v", m.Protocol, m.ProtocolHistory)
	}
	d.must("the same view again", CmdFedUpdate, nil, good)
	if len(d.State().Meta.ProtocolHistory) != 1 {
		t.Fatal("a repeated view upgraded twice")
	}

	// A view that carries a version this binary lacks stops the replica.
	next := ProtocolVersion + 1
	beyond := k.view("acme", nil, nil)
	beyond.Operators = trusted
	beyond.Protocol = &ProtocolRatification{Version: next, Signatures: protocolSigs(k, fedSovereignID, next, "alice", "bob")}
	d.index++
	expectUnknownProtocol(t, d.Ledger, d.index, env(CmdFedUpdate, "", nil, d.tick(), beyond), next)
	d.index-- // the stopped entry was never applied

	for i := 0; i < 4; i++ {
		d.must("put", CmdKVPut, testRootToken[:], &KVPut{Key: fmt.Sprint("k", i), Value: []byte("v")})
	}
	for _, ref := range []*fedLedger{w.fedLedger, d} {
		checkFedReplay(t, ref)
	}
}
