package fsm

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
)

func init() {
	registerTyped(CmdFedOperatorRekey, typedSpec[FedOperatorRekey]{
		proposer: proposerInternal, role: RoleSovereign,
		subject: func(_ *Ledger, p *FedOperatorRekey) string { return p.Operator },
		run:     applyFedOperatorRekey,
	})
}

// OperatorSignature is one operator's signature.
type OperatorSignature struct {
	Operator  string `codec:"operator"`
	Signature []byte `codec:"signature"`
}

// FedOperatorRekey replaces a (lost) operator key: M of the other
// operators sign the replacement, at least one of them sovereign-level.
type FedOperatorRekey struct {
	Operator   string              `codec:"operator"`
	NewPubKey  []byte              `codec:"new_pub_key"`
	Signatures []OperatorSignature `codec:"signatures"`
}

func applyFedOperatorRekey(l *Ledger, c *call, p *FedOperatorRekey) outcome {
	f := l.st.Fed
	target := f.Operators[p.Operator]
	if target == nil {
		return deny(ReasonNotFound)
	}
	if len(p.NewPubKey) != ed25519.PublicKeySize || bytes.Equal(p.NewPubKey, target.PubKey) || len(p.Signatures) > MaxOperators {
		return deny(ReasonInvalidArgument)
	}
	// The operator whose key is replaced cannot vouch for it.
	signers, r := operatorQuorum(f, RekeyMessage(p.Operator, target.PubKey, p.NewPubKey), p.Signatures, p.Operator)
	if r != ReasonOK {
		return deny(r)
	}
	c.actor = signers[0]
	target.PubKey = append([]byte(nil), p.NewPubKey...)
	fedDetail(c, p.Operator, "operator key replaced", hex.EncodeToString(p.NewPubKey))
	return outcome{decision: DecisionPermit}
}
