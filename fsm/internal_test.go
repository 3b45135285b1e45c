package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"sort"
	"testing"

	"github.com/dominus-kernel/dominus/passport"
)

// internalTypes are the internal command types in number order.
func internalTypes() []CommandType {
	var out []CommandType
	for t := range handlers { // detcheck:ordered sorted below
		if IsInternal(t) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// The command table: every command is a caller command or internal, and
// the internal ones are exactly those proposed by a kernel's own nodes.
func TestCommandTableSaysWhoProposes(t *testing.T) {
	want := []CommandType{CmdFedJoin, CmdFedPassport, CmdFedSigner, CmdFedWitness, CmdFedAmendSign, CmdFedCanonAck, CmdFedUpdate,
		CmdFedResume, CmdBusReceive, CmdBusDelivered, CmdKnowledge, CmdEffectComplete, CmdFedSuspend, CmdFedProtocolAck,
		CmdMemberUpdate, CmdFedKeysRotate, CmdFedKeysSign, CmdFedOperatorRekey, CmdEvolveTick}
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	got := internalTypes()
	if len(got) != len(want) {
		t.Fatalf("internal commands %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("internal commands %v, want %v", got, want)
		}
	}
	if IsInternal(CmdGenesis) || IsInternal(CmdSyscall) || IsInternal(CmdCapGrant) {
		t.Fatal("genesis and caller commands are not internal")
	}
}

// Finding: internal commands were accepted with a bearer token, as the
// HTTP API proposes them. From protocol 4 each is DENY internal_only,
// whatever its payload, and nothing changes.
func TestInternalCommandsRefusedFromTheAPI(t *testing.T) {
	g := newRecordingGate(t, ProtocolAuthority)
	for _, ct := range internalTypes() {
		before := stateFields(g.Ledger)
		// Even with a member's valid signature beside the token.
		e := Envelope{Type: ct, Auth: testRootToken[:], Time: g.tick(), Payload: Encode(&FedSigner{Node: testMemberNode, PubKey: testMemberKey.Public().(ed25519.PublicKey)})}
		SignMember(&e, g.State().Meta.KernelID, testMemberNode, testMemberKey)
		a := g.rec(Encode(&e))
		if a.Event == nil || a.Result.Decision != DecisionDeny || a.Result.Reason != ReasonInternalOnly {
			t.Errorf("%s with a token: %s %s, want DENY internal_only", ct, a.Result.Decision, a.Result.Reason)
		}
		if ch := changedFields(before, stateFields(g.Ledger)); len(ch) > 0 {
			t.Errorf("%s with a token changed %v", ct, ch)
		}
	}
}

// Internal commands need a current member's signature over this
// kernel's id, the command and its payload; anything else is DENY
// member_unverified and changes nothing. Under protocol 3 they needed
// none (old ledgers replay so).
func TestInternalCommandsNeedMemberEvidence(t *testing.T) {
	g := newRecordingGate(t, ProtocolAuthority)
	kid := g.State().Meta.KernelID
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	n1 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	// n1 joins (recorded by the test member), then is removed.
	mustPermitted(t, "n1 joins", g.rec(env(CmdMemberUpdate, "", nil, g.tick(), &MemberUpdate{Node: "n1", PubKey: n1.Public().(ed25519.PublicKey)})))
	mustPermitted(t, "n1 leaves", g.rec(env(CmdMemberUpdate, "", nil, g.tick(), &MemberUpdate{Node: "n1", Removed: true})))

	payload := Encode(&Knowledge{Kind: "finding", Summary: "y"})
	forge := map[string]func(e *Envelope){
		"unsigned":                          func(e *Envelope) {},
		"a stranger's key":                  func(e *Envelope) { SignMember(e, kid, "n9", stranger) },
		"a member's name, a stranger's key": func(e *Envelope) { SignMember(e, kid, testMemberNode, stranger) },
		"a removed member":                  func(e *Envelope) { SignMember(e, kid, "n1", n1) },
		"signed for another kernel":         func(e *Envelope) { SignMember(e, "other-kernel", testMemberNode, testMemberKey) },
		"payload changed after signing": func(e *Envelope) {
			SignMember(e, kid, testMemberNode, testMemberKey)
			e.Payload = Encode(&Knowledge{Kind: "finding", Summary: "z"})
		},
		"type changed after signing": func(e *Envelope) {
			SignMember(e, kid, testMemberNode, testMemberKey)
			if e.Type == CmdEffectComplete {
				e.Type = CmdBusDelivered
			} else {
				e.Type = CmdEffectComplete
			}
		},
		"request id changed after signing": func(e *Envelope) {
			SignMember(e, kid, testMemberNode, testMemberKey)
			e.RequestID = "other"
		},
	}
	names := make([]string, 0, len(forge))
	for n := range forge { // detcheck:ordered sorted below
		names = append(names, n)
	}
	sort.Strings(names)
	for _, ct := range internalTypes() {
		for _, name := range names {
			e := Envelope{Type: ct, Time: g.tick(), Payload: payload}
			forge[name](&e)
			before := stateFields(g.Ledger)
			data := Encode(&e)
			g.log = append(g.log, data)
			g.index++
			a := g.Ledger.Apply(g.index, data) // as it is: no harness signature
			if a.Event == nil || a.Result.Decision != DecisionDeny || a.Result.Reason != ReasonMemberUnverified {
				t.Errorf("%s %s: %s %s, want DENY member_unverified", e.Type, name, a.Result.Decision, a.Result.Reason)
			}
			if ch := changedFields(before, stateFields(g.Ledger)); len(ch) > 0 {
				t.Errorf("%s %s changed %v", e.Type, name, ch)
			}
		}
	}
	// The member's own evidence reaches the handler (here: knowledge on
	// a standalone kernel is the wrong role, not an unverified member).
	e := Envelope{Type: CmdKnowledge, Time: g.tick(), Payload: payload}
	SignMember(&e, kid, testMemberNode, testMemberKey)
	if a := g.rec(Encode(&e)); a.Result.Reason == ReasonMemberUnverified || a.Result.Reason == ReasonInternalOnly {
		t.Fatalf("a member's knowledge: %s %s", a.Result.Decision, a.Result.Reason)
	}
	// A replay of everything reproduces the head.
	r := New()
	for i, e := range g.log {
		r.Apply(uint64(i+1), e)
	}
	if r.State().Head != g.State().Head {
		t.Fatal("a replay of refused internal commands does not reproduce the head")
	}

	// Protocol 3: the same unsigned command goes to its handler.
	old := newRecordingGate(t, 3)
	a := old.apply(Encode(&Envelope{Type: CmdMemberUpdate, Time: old.tick(), Payload: Encode(&MemberUpdate{Node: "n2", PubKey: n1.Public().(ed25519.PublicKey)})}))
	mustPermitted(t, "an unsigned member.update under protocol 3", a)
}

// Finding: fed.signer was unauthenticated, so any proposer registered a
// passport-signing key every domain then trusted. From protocol 4 a
// member registers only itself, with the key the ledger holds for it.
func TestForgedFedSigner(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2) // registers the signer node's own key
	kid := w.State().Meta.KernelID
	signers := func() int { return len(w.State().Fed.Signers) }
	n := signers()
	forged := []struct {
		name string
		e    Envelope
	}{
		{"unsigned", Envelope{Type: CmdFedSigner, Payload: Encode(&FedSigner{Node: "rogue", PubKey: pubOf(k.rogue)})}},
		{"a member registering another key for itself", Envelope{Type: CmdFedSigner, Payload: Encode(&FedSigner{Node: fedSignerNode, PubKey: pubOf(k.rogue)})}},
		{"a member registering another node", Envelope{Type: CmdFedSigner, Payload: Encode(&FedSigner{Node: "rogue", PubKey: pubOf(k.rogue)})}},
		{"a stranger registering itself", Envelope{Type: CmdFedSigner, Payload: Encode(&FedSigner{Node: "rogue", PubKey: pubOf(k.rogue)})}},
		{"through the API", Envelope{Type: CmdFedSigner, Auth: opToken("alice"), Payload: Encode(&FedSigner{Node: "rogue", PubKey: pubOf(k.rogue)})}},
	}
	SignMember(&forged[1].e, kid, fedSignerNode, k.signer)
	SignMember(&forged[2].e, kid, fedSignerNode, k.signer)
	SignMember(&forged[3].e, kid, "rogue", k.rogue)
	for _, f := range forged {
		f.e.Time = w.tick()
		before := stateFields(w.Ledger)
		data := Encode(&f.e)
		w.log = append(w.log, data)
		a := w.apply(data)
		want := ReasonMemberUnverified
		if f.e.Auth != nil {
			want = ReasonInternalOnly
		}
		if a.Event == nil || a.Result.Decision != DecisionDeny || a.Result.Reason != want {
			t.Errorf("%s: %s %s, want DENY %s", f.name, a.Result.Decision, a.Result.Reason, want)
		}
		if ch := changedFields(before, stateFields(w.Ledger)); len(ch) > 0 || signers() != n {
			t.Errorf("%s changed %v", f.name, ch)
		}
	}
	if !bytes.Equal(w.State().Fed.Signers[fedSignerNode], pubOf(k.signer)) || w.State().Fed.Signers["rogue"] != nil {
		t.Fatalf("signers %v", w.State().Fed.Signers)
	}
}

// Finding: fed.update brought its own trust anchor: its passports were
// checked against the keys it carried, which then replaced the domain's
// sovereign keys, operators and halt. From protocol 4 a view must be
// signed by a key the domain pinned at join and be no older than the
// last one; a self-signed view is DENY bad_signature and changes
// nothing, even when a member proposes it.
func TestSelfSignedFedUpdate(t *testing.T) {
	k := newFedKeys(t)
	d := newDomainLedger(t, "acme")
	first := k.view("acme", []string{"other"}, nil)
	first.Halt = &FedHalt{ID: "fh-1", Reason: "drill", By: "alice"}
	first.SovereignSeq = 10
	SignFedUpdate(first, "acme", fedSignerNode, k.signer)
	d.must("the first view, at join", CmdFedUpdate, nil, first)

	rogueView := func(mut func(*FedUpdate)) *FedUpdate {
		u := k.view("acme", []string{"other"}, nil)
		u.SovereignKeys = []NodeKey{{Node: "rogue", PubKey: pubOf(k.rogue)}}
		u.Passport = k.issue("acme", 2, t0, k.rogue, func(p *passport.Passport) { p.KeyID = "rogue" })
		u.Peers = u.Peers[:1]
		u.Operators = []OperatorKey{{Name: "mallory", PubKey: pubOf(k.ops["mallory"]), Level: LevelSovereign}}
		u.Threshold = 1
		u.SovereignSeq = 11
		mut(u)
		return u
	}
	cases := []struct {
		name string
		u    *FedUpdate
		want Reason
	}{
		{"self-signed: new keys, operators, no halt", rogueView(func(u *FedUpdate) { SignFedUpdate(u, "acme", "rogue", k.rogue) }), ReasonBadSignature},
		{"unsigned", rogueView(func(u *FedUpdate) {}), ReasonBadSignature},
		{"signed by the pinned key's name, another key", rogueView(func(u *FedUpdate) { SignFedUpdate(u, "acme", fedSignerNode, k.rogue) }), ReasonBadSignature},
		{"a stranger's signature beside a forged one by the pinned node", rogueView(func(u *FedUpdate) {
			SignFedUpdate(u, "acme", "rogue", k.rogue)
			u.Signatures = append(u.Signatures, ViewSignature{Node: fedSignerNode, Signature: make([]byte, ed25519.SignatureSize)})
		}), ReasonBadSignature},
		{"signed for another domain", func() *FedUpdate {
			u := k.view("acme", []string{"other"}, nil)
			u.SovereignSeq = 12
			SignFedUpdate(u, "other", fedSignerNode, k.signer)
			return u
		}(), ReasonBadSignature},
		{"altered after signing: the halt cleared", func() *FedUpdate {
			u := k.view("acme", []string{"other"}, nil)
			u.Halt = &FedHalt{ID: "fh-1", Reason: "drill", By: "alice"}
			u.SovereignSeq = 12
			SignFedUpdate(u, "acme", fedSignerNode, k.signer)
			u.Halt = nil
			return u
		}(), ReasonBadSignature},
		{"older than the last view", func() *FedUpdate {
			u := k.view("acme", []string{"other"}, nil)
			u.SovereignSeq = 9
			SignFedUpdate(u, "acme", fedSignerNode, k.signer)
			return u
		}(), ReasonTooOld},
	}
	for _, c := range cases {
		d.reject(c.name, c.want, CmdFedUpdate, nil, c.u)
	}
	f := d.State().Fed
	if f.Halt == nil || f.Operators["mallory"] != nil || !bytes.Equal(f.SovereignKeys[fedSignerNode], pubOf(k.signer)) || f.SovereignKeys["rogue"] != nil {
		t.Fatalf("a refused view changed the federation state: halt %v operators %v keys %v", f.Halt, f.Operators, f.SovereignKeys)
	}
	// The pinned key may vouch for a new one, and clear the halt.
	u := k.view("acme", []string{"other"}, nil)
	u.SovereignKeys = append(u.SovereignKeys, NodeKey{Node: "sov-2", PubKey: pubOf(k.rogue)})
	u.SovereignSeq = 12
	SignFedUpdate(u, "acme", fedSignerNode, k.signer)
	d.must("a view signed by the pinned key", CmdFedUpdate, nil, u)
	if f := d.State().Fed; f.Halt != nil || !bytes.Equal(f.SovereignKeys["sov-2"], pubOf(k.rogue)) || f.ViewSeq != 12 {
		t.Fatalf("after the signed view: halt %v keys %v seq %d", f.Halt, f.SovereignKeys, f.ViewSeq)
	}

	// Protocol 3 ledgers took the self-signed view (and replay so).
	old := newFedLedger(t)
	old.must("genesis at 3", CmdGenesis, nil, &Genesis{KernelID: "acme-k", CanonHash: testCanon[:], Protocol: 3, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9, Domain: "acme", Role: RoleDomain})
	old.must("first view", CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	old.must("the self-signed view under protocol 3", CmdFedUpdate, nil, rogueView(func(u *FedUpdate) {}))
	if old.State().Fed.Operators["mallory"] == nil {
		t.Fatal("protocol 3 no longer replays as it did")
	}
}

// The member evidence message binds every field it names.
func TestMemberCommandMessageBindsItsFields(t *testing.T) {
	base := Envelope{Type: CmdKnowledge, RequestID: "r", Payload: []byte("p"), Node: "n0"}
	sum := sha256.Sum256(MemberCommandMessage("k", &base))
	for name, mut := range map[string]func(*Envelope){ // detcheck:ordered each case is independent
		"type":    func(e *Envelope) { e.Type = CmdEffectComplete },
		"rid":     func(e *Envelope) { e.RequestID = "s" },
		"payload": func(e *Envelope) { e.Payload = []byte("q") },
		"node":    func(e *Envelope) { e.Node = "n1" },
	} {
		e := base
		mut(&e)
		if sha256.Sum256(MemberCommandMessage("k", &e)) == sum {
			t.Errorf("changing the %s leaves the signed message the same", name)
		}
	}
	if sha256.Sum256(MemberCommandMessage("k2", &base)) == sum {
		t.Error("another kernel's message is the same")
	}
}

// A member the genesis did not reach records its own key once, signed
// with it; it cannot record another node's key that way, nor replace a
// recorded key.
func TestMemberRecordsItsOwnKeyOnce(t *testing.T) {
	g := newRecordingGate(t, ProtocolAuthority)
	kid := g.State().Meta.KernelID
	n5 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	n6 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))
	apply := func(what string, want Reason, node string, key ed25519.PrivateKey, u *MemberUpdate) {
		t.Helper()
		e := Envelope{Type: CmdMemberUpdate, Time: g.tick(), Payload: Encode(u)}
		SignMember(&e, kid, node, key)
		before := stateFields(g.Ledger)
		a := g.rec(Encode(&e))
		if a.Event == nil || a.Result.Reason != want {
			t.Fatalf("%s: %s %s, want %s", what, a.Result.Decision, a.Result.Reason, want)
		}
		if want != ReasonOK {
			if ch := changedFields(before, stateFields(g.Ledger)); len(ch) > 0 {
				t.Fatalf("%s changed %v", what, ch)
			}
		}
	}
	pub := func(k ed25519.PrivateKey) []byte { return k.Public().(ed25519.PublicKey) }
	apply("an unrecorded node records another's key", ReasonMemberUnverified, "n5", n5, &MemberUpdate{Node: "n6", PubKey: pub(n6)})
	apply("an unrecorded node records its removal", ReasonMemberUnverified, "n5", n5, &MemberUpdate{Node: "n5", Removed: true})
	apply("a key that did not sign", ReasonMemberUnverified, "n5", n6, &MemberUpdate{Node: "n5", PubKey: pub(n5)})
	apply("an unrecorded node records its own key", ReasonOK, "n5", n5, &MemberUpdate{Node: "n5", PubKey: pub(n5), Addr: "127.0.0.15:8300"})
	if !bytes.Equal(g.State().MemberKey("n5"), pub(n5)) {
		t.Fatal("n5's key not recorded")
	}
	apply("a recorded node replaces its key with a new one", ReasonMemberUnverified, "n5", n6, &MemberUpdate{Node: "n5", PubKey: pub(n6)})
	// Once recorded, its evidence counts like any member's.
	apply("n5 records n6", ReasonOK, "n5", n5, &MemberUpdate{Node: "n6", PubKey: pub(n6)})
}
