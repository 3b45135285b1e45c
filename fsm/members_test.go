package fsm

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"
)

func memberKey(seed byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return []byte(ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey))
}

// Genesis seals the join secret's hash and the first members' keys; a
// bad genesis field is refused.
func TestGenesisSealsJoinSecretAndMembers(t *testing.T) {
	g := &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: ProtocolVersion, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9,
		JoinSecretHash: JoinSecretHash("dms_secret"), Members: []GenesisMember{{Node: "n1", PubKey: memberKey(1), Addr: "127.0.0.11:8300"}, {Node: "n2", PubKey: memberKey(2)}}}
	l := New()
	if a := l.Apply(1, env(CmdGenesis, "", nil, t0, g)); a.Result.Decision != DecisionPermit {
		t.Fatalf("genesis: %s", a.Result.Reason)
	}
	st := l.State()
	if !st.CheckJoinSecret("dms_secret") || st.CheckJoinSecret("dms_other") || st.CheckJoinSecret("") {
		t.Fatal("the join secret check")
	}
	if !bytes.Equal(st.MemberKey("n1"), memberKey(1)) || st.MemberKey("n3") != nil || len(st.SortedMembers()) != 2 {
		t.Fatalf("members %+v", st.SortedMembers())
	}
	for name, bad := range map[string]func(*Genesis){
		"short secret hash": func(g *Genesis) { g.JoinSecretHash = []byte("short") },
		"short member key":  func(g *Genesis) { g.Members[0].PubKey = g.Members[0].PubKey[:5] },
		"a member twice":    func(g *Genesis) { g.Members[1].Node = "n1" },
		"a bad member name": func(g *Genesis) { g.Members[0].Node = "a/b" },
	} {
		c := *g
		c.Members = append([]GenesisMember(nil), g.Members...)
		bad(&c)
		l := New()
		if a := l.Apply(1, env(CmdGenesis, "", nil, t0, &c)); a.Result.Decision != DecisionDeny || l.State().Initialized {
			t.Errorf("%s: genesis %s %s", name, a.Result.Decision, a.Result.Reason)
		}
	}
	// A ledger sealed without them has neither.
	old := New()
	old.Apply(1, Encode(&Envelope{Type: CmdGenesis, Time: t0, Payload: Encode(&Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: 3, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9})}))
	if !old.State().Initialized || old.State().CheckJoinSecret("x") || len(old.State().SortedMembers()) != 0 {
		t.Fatal("a genesis without a join secret has one")
	}
}

// member.admit needs operator.manage; member.update never replaces a
// member's key; removal and re-admission follow; every refusal changes
// nothing; replicas and snapshots agree.
func TestMembers(t *testing.T) {
	g := newRecordingGate(t, ProtocolVersion)
	g.grant("agent", []string{"kv.put"}, []string{"*"}, time.Hour)
	root := testRootToken[:]
	admit := &MemberAdmit{Node: "n4", Addr: "127.0.0.14:8300"}
	g.refuse("admit by an agent", ReasonForbidden, tokenHash("agent"), CmdMemberAdmit, admit)
	g.refuse("admit by an unknown token", ReasonUnknownToken, tokenHash("nobody"), CmdMemberAdmit, admit)
	g.refuse("admit a bad name", ReasonInvalidArgument, root, CmdMemberAdmit, &MemberAdmit{Node: "a b", Addr: "x:1"})
	g.refuse("admit without an address", ReasonInvalidArgument, root, CmdMemberAdmit, &MemberAdmit{Node: "n4"})
	expect(t, g.as(root, CmdMemberAdmit, admit), DecisionPermit, ReasonOK)
	if m := g.State().Member("n4"); m == nil || m.Addr != admit.Addr || m.Admitted != RootOperatorName || m.PubKey != nil {
		t.Fatalf("admitted %+v", m)
	}
	g.refuse("the same admission again", ReasonAlreadyExists, root, CmdMemberAdmit, admit)

	upd := &MemberUpdate{Node: "n4", PubKey: memberKey(4), Addr: admit.Addr}
	expect(t, g.as(nil, CmdMemberUpdate, upd), DecisionPermit, ReasonOK)
	if !bytes.Equal(g.State().MemberKey("n4"), memberKey(4)) {
		t.Fatal("the key was not recorded")
	}
	g.refuse("the same key again", ReasonAlreadyExists, nil, CmdMemberUpdate, upd)
	g.refuse("another key for a live member", ReasonForbidden, nil, CmdMemberUpdate, &MemberUpdate{Node: "n4", PubKey: memberKey(9)})
	g.refuse("a short key", ReasonInvalidArgument, nil, CmdMemberUpdate, &MemberUpdate{Node: "n5", PubKey: []byte("short")})
	g.refuse("removing an unknown node", ReasonNotFound, nil, CmdMemberUpdate, &MemberUpdate{Node: "n9", Removed: true})
	expect(t, g.as(nil, CmdMemberUpdate, &MemberUpdate{Node: "n4", Removed: true}), DecisionPermit, ReasonOK)
	if g.State().MemberKey("n4") != nil {
		t.Fatal("a removed member still has a key")
	}
	g.refuse("removing it twice", ReasonNotFound, nil, CmdMemberUpdate, &MemberUpdate{Node: "n4", Removed: true})
	// Removed, it may come back with a new key.
	expect(t, g.as(nil, CmdMemberUpdate, &MemberUpdate{Node: "n4", PubKey: memberKey(9)}), DecisionPermit, ReasonOK)
	if !bytes.Equal(g.State().MemberKey("n4"), memberKey(9)) {
		t.Fatal("the re-added member's key")
	}

	r := New()
	for i, e := range g.log {
		r.Apply(uint64(i+1), e)
	}
	if r.State().Head != g.State().Head || r.Digest() != g.Digest() {
		t.Fatal("replay of member changes reached another head")
	}
	s := New()
	if _, err := s.Restore(g.Snapshot()); err != nil || s.Digest() != g.Digest() || !bytes.Equal(s.State().MemberKey("n4"), memberKey(9)) {
		t.Fatalf("snapshot round trip: %v", err)
	}
}
