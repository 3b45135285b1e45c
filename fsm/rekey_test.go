package fsm

import (
	"crypto/ed25519"
	"testing"
)

func rekeyBy(target string, oldKey, newKey []byte, signers map[string]ed25519.PrivateKey, names ...string) *FedOperatorRekey {
	p := &FedOperatorRekey{Operator: target, NewPubKey: newKey}
	for _, n := range names {
		p.Signatures = append(p.Signatures, OperatorSignature{Operator: n, Signature: ed25519.Sign(signers[n], RekeyMessage(target, oldKey, newKey))})
	}
	return p
}

// A lost operator key is replaced only by M distinct other operators'
// signatures over the exact replacement; afterwards the new key signs and
// the old one does not.
func TestOperatorKeyReplacementNeedsMOfN(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	oldKey := pubOf(k.ops["carol"])
	newPriv := ed25519.NewKeyFromSeed(headHash("carol's new key"))
	newKey := pubOf(newPriv)
	w.reject("one signature", ReasonForbidden, CmdFedOperatorRekey, nil, rekeyBy("carol", oldKey, newKey, k.ops, "alice"))
	w.reject("the same operator twice", ReasonDuplicateSignature, CmdFedOperatorRekey, nil, rekeyBy("carol", oldKey, newKey, k.ops, "alice", "alice"))
	w.reject("the replaced operator vouching for herself", ReasonBadSignature, CmdFedOperatorRekey, nil, rekeyBy("carol", oldKey, newKey, k.ops, "alice", "carol"))
	other := ed25519.NewKeyFromSeed(headHash("someone else's key"))
	bad := rekeyBy("carol", oldKey, newKey, k.ops, "alice", "bob")
	bad.NewPubKey = pubOf(other) // signatures over a different key
	w.reject("signatures over another key", ReasonBadSignature, CmdFedOperatorRekey, nil, bad)
	w.reject("unknown operator", ReasonNotFound, CmdFedOperatorRekey, nil, rekeyBy("mallory", oldKey, newKey, k.ops, "alice", "bob"))
	w.must("alice and bob replace carol's key", CmdFedOperatorRekey, nil, rekeyBy("carol", oldKey, newKey, k.ops, "alice", "bob"))
	// Replaying the same signatures replaces nothing more.
	w.reject("replayed replacement", ReasonInvalidArgument, CmdFedOperatorRekey, nil, rekeyBy("carol", oldKey, newKey, k.ops, "alice", "bob"))

	text := "Article 7. Keys are replaceable.\n"
	id := w.must("propose", CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: text}).Result.ID
	w.reject("carol's lost key", ReasonBadSignature, CmdFedAmendSign, nil, amendSign(k.ops["carol"], "carol", id, text))
	w.must("carol's new key", CmdFedAmendSign, nil, amendSign(newPriv, "carol", id, text))
}
