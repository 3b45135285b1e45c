package fsm

import (
	"slices"
	"strconv"
	"strings"
)

// Federation key epochs.
//
// The sovereign derives every bus link key and the federation's gossip key
// from its master secret and the key epoch its ledger holds
// (FedState.Keys): epoch 0 is the derivation of every ledger before its
// first rotation, each later epoch a different set of keys. Moving the
// epoch on makes every key a domain holds, or a revoked domain kept,
// useless; each domain receives its new keys at its next renewal. Keys
// never enter a log: the ledger holds the epoch only.
//
// Two commands move it, each from epoch E to exactly E+1 (a command for
// an epoch already reached is denied too_old, one further ahead
// invalid_argument), and neither is reachable from a bearer token:
//
//   - fed.keys.rotate: proposed by the sovereign's leader when its ledger
//     holds a revocation no rotation has answered yet. The evidence is
//     the revoked domain's name: the FSM checks that the domain's
//     passport was revoked (DomainRecord.Revoked) and that no rotation
//     since has answered it (KeyEpoch.Answered); otherwise DENY
//     no_revocation and nothing changes.
//   - fed.keys.sign: one federation operator's Ed25519 signature over
//     RotateKeysMessage(sovereign kernel id, E+1), submitted by anyone
//     (the signature is the authority). The FSM verifies it against the
//     operator keys it holds (unknown, revoked or forged: bad_signature;
//     an operator who already signed for E+1: duplicate_signature) and
//     keeps it in KeyEpoch.Pending; when M distinct operators, one of them
//     sovereign-level, have signed (operatorQuorum), the epoch moves on.
//
// Any rotation answers every revocation recorded before it and clears the
// signatures gathered for the epoch it reaches.

func init() {
	registerTyped(CmdFedKeysRotate, typedSpec[FedKeysRotate]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedKeysRotate) string { return keysEpochSubject(p.Epoch) },
		run:     applyFedKeysRotate,
	})
	// The actor is the operator whose signature the command relays.
	registerTyped(CmdFedKeysSign, typedSpec[FedKeysSign]{
		proposer: proposerInternal, role: RoleSovereign,
		actorOf: func(p *FedKeysSign) string { return p.Operator },
		subject: func(_ *Ledger, p *FedKeysSign) string { return keysEpochSubject(p.Epoch) },
		run:     applyFedKeysSign,
	})
}

// KeyEpoch is the sovereign's key epoch and how it got there.
type KeyEpoch struct {
	Epoch uint64 `codec:"epoch"`
	Seq   uint64 `codec:"seq"`   // the event that began it
	Since int64  `codec:"since"` // ledger time it began
	By    string `codec:"by"`    // "revocation of DOMAIN" or the operators who signed it
	// Answered lists, sorted, the revoked domains whose revocation a
	// rotation has answered.
	Answered []string `codec:"answered"`
	// Pending holds the operators' signatures gathered for Epoch+1.
	Pending []OperatorSignature `codec:"pending"`
}

// FedKeysRotate moves the key epoch on to Epoch after the revocation of
// Domain's passport.
type FedKeysRotate struct {
	Epoch  uint64 `codec:"epoch"`
	Domain string `codec:"domain"`
}

// FedKeysSign is one operator's signature over RotateKeysMessage(sovereign
// kernel id, Epoch).
type FedKeysSign struct {
	Epoch     uint64 `codec:"epoch"`
	Operator  string `codec:"operator"`
	Signature []byte `codec:"signature"`
}

// CurrentKeyEpoch is the key epoch in force (0 before any rotation).
func (f *FedState) CurrentKeyEpoch() uint64 {
	if f.Keys == nil {
		return 0
	}
	return f.Keys.Epoch
}

// PendingKeySigners names the operators who signed for the next key
// epoch, in signing order.
func (f *FedState) PendingKeySigners() []string {
	var out []string
	if f.Keys != nil {
		for _, s := range f.Keys.Pending {
			out = append(out, s.Operator)
		}
	}
	return out
}

// UnansweredRevocation names the first revoked domain (by name) whose
// revocation no key rotation has answered yet; "" when there is none.
func (f *FedState) UnansweredRevocation() string {
	for _, d := range f.SortedDomains() {
		if d.Revoked && !f.revocationAnswered(d.Name) {
			return d.Name
		}
	}
	return ""
}

func (f *FedState) revocationAnswered(domain string) bool {
	if f.Keys == nil {
		return false
	}
	_, ok := slices.BinarySearch(f.Keys.Answered, domain)
	return ok
}

// nextKeyEpoch checks that a command moves the key epoch to exactly the
// next one.
func nextKeyEpoch(f *FedState, epoch uint64) Reason {
	switch next := f.CurrentKeyEpoch() + 1; {
	case epoch < next:
		return ReasonTooOld
	case epoch > next:
		return ReasonInvalidArgument
	}
	return ReasonOK
}

// rotateKeys moves the key epoch on by one: it answers every revocation
// recorded so far and drops the signatures gathered for it.
func (l *Ledger) rotateKeys(c *call, f *FedState, by string) uint64 {
	var answered []string
	for _, d := range f.SortedDomains() {
		if d.Revoked {
			answered = append(answered, d.Name)
		}
	}
	epoch := f.CurrentKeyEpoch() + 1
	f.Keys = &KeyEpoch{Epoch: epoch, Seq: l.st.Seq + 1, Since: c.now, By: by, Answered: answered}
	fedDetail(c, "keys", "federation keys rotated to epoch "+strconv.FormatUint(epoch, 10), by)
	return epoch
}

func keysEpochSubject(epoch uint64) string { return "keys epoch " + strconv.FormatUint(epoch, 10) }

func applyFedKeysRotate(l *Ledger, c *call, p *FedKeysRotate) outcome {
	f := l.st.Fed
	if r := nextKeyEpoch(f, p.Epoch); r != ReasonOK {
		return deny(r)
	}
	if d := f.Domains[p.Domain]; d == nil || !d.Revoked || f.revocationAnswered(p.Domain) {
		return deny(ReasonNoRevocation)
	}
	epoch := l.rotateKeys(c, f, "revocation of "+p.Domain)
	return outcome{decision: DecisionPermit, version: epoch, found: true}
}

func applyFedKeysSign(l *Ledger, c *call, p *FedKeysSign) outcome {
	f := l.st.Fed
	if !validName(p.Operator) {
		c.actor = ""
		return deny(ReasonInvalidArgument)
	}
	if r := nextKeyEpoch(f, p.Epoch); r != ReasonOK {
		return deny(r)
	}
	msg := RotateKeysMessage(l.st.Meta.KernelID, p.Epoch)
	sig := OperatorSignature{Operator: p.Operator, Signature: append([]byte(nil), p.Signature...)}
	if _, _, r := operatorSignatures(f, msg, []OperatorSignature{sig}, ""); r != ReasonOK {
		return deny(r)
	}
	var held []OperatorSignature
	if f.Keys != nil {
		for _, s := range f.Keys.Pending {
			if s.Operator == p.Operator {
				return deny(ReasonDuplicateSignature)
			}
			// A signature whose operator has since been revoked or
			// re-keyed no longer counts.
			if _, _, r := operatorSignatures(f, msg, []OperatorSignature{s}, ""); r == ReasonOK {
				held = append(held, s)
			}
		}
	}
	held = append(held, sig)
	if signers, r := operatorQuorum(f, msg, held, ""); r == ReasonOK {
		epoch := l.rotateKeys(c, f, strings.Join(signers, ","))
		return outcome{decision: DecisionPermit, version: epoch, found: true}
	}
	if f.Keys == nil {
		f.Keys = &KeyEpoch{}
	}
	f.Keys.Pending = held
	fedDetail(c, "keys", "key rotation signed", strconv.Itoa(len(held))+"/"+strconv.Itoa(f.Threshold))
	return outcome{decision: DecisionPermit, version: f.Keys.Epoch}
}
