package fsm

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"
)

func keysSign(key ed25519.PrivateKey, op string, epoch uint64) *FedKeysSign {
	return &FedKeysSign{Epoch: epoch, Operator: op, Signature: ed25519.Sign(key, RotateKeysMessage(fedSovereignID, epoch))}
}

// keysWorld is a sovereign with operators alice and bob (sovereign level)
// and cara (co-operator), threshold 2, and domains acme and globex joined.
func keysWorld(t *testing.T, k *fedKeys) *sovWorld {
	w := newSovereign(t, k, []fedOp{{"alice", LevelSovereign}, {"bob", LevelSovereign}, {"cara", LevelCoOperator}}, 2)
	for _, d := range []string{"acme", "globex"} {
		w.create(d)
		w.join(d)
	}
	return w
}

// After a revocation the sovereign's leader moves the key epoch on, with
// the revoked domain as evidence; without a revocation no rotation is
// permitted, and each revocation is answered once.
func TestFedKeysRotateAfterRevocation(t *testing.T) {
	k := newFedKeys(t)
	w := keysWorld(t, k)
	if e := w.State().Fed.CurrentKeyEpoch(); e != 0 || w.State().Fed.Keys != nil {
		t.Fatalf("a new sovereign is at key epoch %d (%+v), want 0 and no record", e, w.State().Fed.Keys)
	}
	if bytes.Contains(Encode(w.State().Fed), []byte("\xa4keys")) { // the msgpack string "keys"
		t.Fatal("a federation state without a rotation encodes a keys field: old states would change")
	}
	w.reject("rotation without a revocation", ReasonNoRevocation, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "acme"})
	w.reject("rotation naming an unknown domain", ReasonNoRevocation, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "nowhere"})
	w.reject("rotation naming no domain", ReasonNoRevocation, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1})
	if d := w.State().Fed.UnansweredRevocation(); d != "" {
		t.Fatalf("unanswered revocation %q before any revocation", d)
	}

	w.must("revoke acme", CmdFedPassportRevoke, opToken("alice"), &FedPassportRevoke{ID: PassportID("acme", 1)})
	if d := w.State().Fed.UnansweredRevocation(); d != "acme" {
		t.Fatalf("unanswered revocation %q, want acme", d)
	}
	w.reject("rotation of an epoch already in force", ReasonTooOld, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 0, Domain: "acme"})
	w.reject("rotation skipping an epoch", ReasonInvalidArgument, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 2, Domain: "acme"})
	w.reject("rotation naming the unrevoked domain", ReasonNoRevocation, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "globex"})

	a := w.must("rotation after acme's revocation", CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "acme"})
	f := w.State().Fed
	if !a.Result.Found || a.Result.Version != 1 || f.CurrentKeyEpoch() != 1 {
		t.Fatalf("rotation: found %v version %d epoch %d", a.Result.Found, a.Result.Version, f.CurrentKeyEpoch())
	}
	if ks := f.Keys; ks.By != "revocation of acme" || ks.Seq != w.State().Seq || !slices.Equal(ks.Answered, []string{"acme"}) {
		t.Fatalf("key epoch record %+v", ks)
	}
	if d := f.UnansweredRevocation(); d != "" {
		t.Fatalf("unanswered revocation %q after the rotation", d)
	}
	if !bytes.Contains(Encode(f), []byte("\xa4keys")) {
		t.Fatal("the key epoch is not in the federation state's encoding")
	}
	w.reject("the same rotation again", ReasonTooOld, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "acme"})
	w.reject("a second rotation for the answered revocation", ReasonNoRevocation, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 2, Domain: "acme"})

	// A later revocation is answered by the next epoch.
	w.must("revoke globex", CmdFedPassportRevoke, opToken("bob"), &FedPassportRevoke{ID: PassportID("globex", 1)})
	w.must("rotation after globex's revocation", CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 2, Domain: "globex"})
	if ks := w.State().Fed.Keys; ks.Epoch != 2 || !slices.Equal(ks.Answered, []string{"acme", "globex"}) {
		t.Fatalf("key epoch record after the second rotation %+v", ks)
	}
}

// Operators move the key epoch on with M distinct valid signatures, one
// sovereign-level; forged, foreign, misdirected and repeated signatures
// are denied and change nothing.
func TestFedKeysSignNeedsMOperators(t *testing.T) {
	k := newFedKeys(t)
	w := keysWorld(t, k)
	w.reject("bob's name under mallory's key", ReasonBadSignature, CmdFedKeysSign, nil, keysSign(k.ops["mallory"], "bob", 1))
	w.reject("an operator not in genesis", ReasonBadSignature, CmdFedKeysSign, nil, keysSign(k.ops["mallory"], "mallory", 1))
	w.reject("a node key, not an operator key", ReasonBadSignature, CmdFedKeysSign, nil, keysSign(k.signer, "alice", 1))
	other := &FedKeysSign{Epoch: 1, Operator: "alice", Signature: ed25519.Sign(k.ops["alice"], RotateKeysMessage("another-sovereign", 1))}
	w.reject("a signature for another federation", ReasonBadSignature, CmdFedKeysSign, nil, other)
	w.reject("a signature over another epoch", ReasonBadSignature, CmdFedKeysSign, nil, &FedKeysSign{Epoch: 1, Operator: "alice", Signature: keysSign(k.ops["alice"], "alice", 2).Signature})
	w.reject("a truncated signature", ReasonBadSignature, CmdFedKeysSign, nil, &FedKeysSign{Epoch: 1, Operator: "alice", Signature: keysSign(k.ops["alice"], "alice", 1).Signature[:10]})
	w.reject("the epoch in force", ReasonTooOld, CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 0))
	w.reject("an epoch ahead of the next", ReasonInvalidArgument, CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 2))
	w.reject("an invalid operator name", ReasonInvalidArgument, CmdFedKeysSign, nil, keysSign(k.ops["alice"], "", 1))

	a := w.must("alice signs", CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1))
	f := w.State().Fed
	if a.Result.Found || f.CurrentKeyEpoch() != 0 || !slices.Equal(f.PendingKeySigners(), []string{"alice"}) {
		t.Fatalf("one signature of two: found %v epoch %d pending %v", a.Result.Found, f.CurrentKeyEpoch(), f.PendingKeySigners())
	}
	w.reject("alice again", ReasonDuplicateSignature, CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1))
	w.reject("mallory after alice", ReasonBadSignature, CmdFedKeysSign, nil, keysSign(k.ops["mallory"], "mallory", 1))

	a = w.must("bob signs", CmdFedKeysSign, nil, keysSign(k.ops["bob"], "bob", 1))
	f = w.State().Fed
	if !a.Result.Found || a.Result.Version != 1 || f.CurrentKeyEpoch() != 1 || f.Keys.By != "alice,bob" || len(f.Keys.Pending) != 0 {
		t.Fatalf("two signatures: found %v version %d record %+v", a.Result.Found, a.Result.Version, f.Keys)
	}
	w.reject("bob's signature replayed", ReasonTooOld, CmdFedKeysSign, nil, keysSign(k.ops["bob"], "bob", 1))
	w.reject("alice's old signature for the next epoch", ReasonBadSignature, CmdFedKeysSign, nil, &FedKeysSign{Epoch: 2, Operator: "alice", Signature: keysSign(k.ops["alice"], "alice", 1).Signature})

	// A co-operator's signature counts only beside a sovereign operator's.
	solo := newSovereign(t, k, []fedOp{{"alice", LevelSovereign}, {"cara", LevelCoOperator}}, 1)
	if a := solo.must("cara alone", CmdFedKeysSign, nil, keysSign(k.ops["cara"], "cara", 1)); a.Result.Found || solo.State().Fed.CurrentKeyEpoch() != 0 {
		t.Fatal("a co-operator alone moved the key epoch")
	}
	solo.must("alice with cara", CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1))
	if e := solo.State().Fed.CurrentKeyEpoch(); e != 1 {
		t.Fatalf("epoch %d after a sovereign operator joined a co-operator", e)
	}
}

// A pending signature of an operator whose key was replaced since no
// longer counts towards the quorum.
func TestFedKeysSignDropsReplacedKeys(t *testing.T) {
	k := newFedKeys(t)
	w := keysWorld(t, k)
	w.must("alice signs", CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1))
	newKey := pubOf(k.ops["dan"])
	msg := RekeyMessage("alice", pubOf(k.ops["alice"]), newKey)
	w.must("alice's key replaced", CmdFedOperatorRekey, nil, &FedOperatorRekey{Operator: "alice", NewPubKey: newKey, Signatures: []OperatorSignature{
		{Operator: "bob", Signature: ed25519.Sign(k.ops["bob"], msg)}, {Operator: "cara", Signature: ed25519.Sign(k.ops["cara"], msg)}}})
	a := w.must("bob signs", CmdFedKeysSign, nil, keysSign(k.ops["bob"], "bob", 1))
	if f := w.State().Fed; a.Result.Found || f.CurrentKeyEpoch() != 0 || !slices.Equal(f.PendingKeySigners(), []string{"bob"}) {
		t.Fatalf("a replaced key's signature counted: found %v epoch %d pending %v", a.Result.Found, f.CurrentKeyEpoch(), f.PendingKeySigners())
	}
	w.must("alice signs with her new key", CmdFedKeysSign, nil, keysSign(k.ops["dan"], "alice", 1))
	if e := w.State().Fed.CurrentKeyEpoch(); e != 1 {
		t.Fatalf("epoch %d", e)
	}
}

// Key rotations are commands: a replica, a replay and a snapshot restored
// at any entry reach the same head, digest and snapshot.
func TestFedKeysDeterminism(t *testing.T) {
	k := newFedKeys(t)
	w := keysWorld(t, k)
	w.do(CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "acme"}) // no revocation: denied
	w.do(CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1))
	w.do(CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1)) // duplicate
	w.do(CmdFedKeysSign, nil, keysSign(k.ops["mallory"], "bob", 1)) // forged
	w.do(CmdFedPassportRevoke, opToken("alice"), &FedPassportRevoke{ID: PassportID("acme", 1)})
	w.do(CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "acme"}) // clears alice's signature
	w.do(CmdFedKeysSign, nil, keysSign(k.ops["bob"], "bob", 1))           // too old
	w.do(CmdFedKeysSign, nil, keysSign(k.ops["cara"], "cara", 2))
	w.do(CmdFedKeysSign, nil, keysSign(k.ops["bob"], "bob", 2))
	w.do(CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 3, Domain: "acme"}) // answered
	if e := w.State().Fed.CurrentKeyEpoch(); e != 2 {
		t.Fatalf("stream ends at epoch %d, want 2", e)
	}
	checkFedReplay(t, w.fedLedger)
}

// Key commands run only on the sovereign.
func TestFedKeysOnlyOnTheSovereign(t *testing.T) {
	k := newFedKeys(t)
	dom := newDomainLedger(t, "acme").viewsBy(k)
	dom.reject("domain rotation", ReasonWrongRole, CmdFedKeysRotate, nil, &FedKeysRotate{Epoch: 1, Domain: "acme"})
	dom.reject("domain signature", ReasonWrongRole, CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1))
	standalone := newFedLedger(t)
	standalone.must("standalone genesis", CmdGenesis, nil, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: ProtocolVersion, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9})
	standalone.reject("standalone signature", ReasonWrongRole, CmdFedKeysSign, nil, keysSign(k.ops["alice"], "alice", 1))
}
