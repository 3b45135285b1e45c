package fsm

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strconv"
)

// Who may propose each command.
//
// Every command type but genesis is one of two kinds (its registration
// names the proposer: register.go):
//
//   - Caller commands carry the hash of a bearer token (Envelope.Auth);
//     the FSM finds the caller's capability and checks the scope the
//     command needs (kv.*, cap.grant, policy.set, operator.manage, ...).
//     They are what the HTTP API proposes.
//   - Internal commands carry no token: a node of the kernel proposes
//     them on its own account (effect completion, bus delivery and
//     receipt, cortex knowledge, federation views, renewals, member
//     records) or on behalf of evidence that is itself signed (an
//     operator's signature over an amendment, a resume, a key rotation,
//     a rekey, a protocol ratification). From protocol 4 an internal
//     command must carry the proposing member's evidence: Envelope.Node
//     names a member of this kernel and Envelope.NodeSig is that node's
//     Ed25519 signature over MemberCommandMessage, verified against the
//     node key the ledger holds for it (genesis's members, member.update).
//     An internal command carrying a token — proposed through the HTTP
//     API — is DENY internal_only; one without a current member's valid
//     signature is DENY member_unverified. Nothing changes either way.
//
// Member nodes are trusted to propose: a node with a member key can
// propose any internal command, and each handler then checks what it can
// against keys the ledger already trusts (operator keys for signed
// evidence, sovereign keys pinned at join for federation views, the
// member's own key for fed.signer). Genesis is the one command before
// any member exists; it is valid only as the first entry. A member the
// genesis did not record (it was not reachable then) records its own
// key with a member.update signed by that key, once; a recorded key is
// never replaced.

const ctxMemberCommand = "dominus-member-command-v1\x00"

// MemberCommandMessage is what a member node signs to propose the
// internal command env to kernel kernelID: the command type, request id
// and the digest of the payload. The leader's time stamp is not covered
// (the leader sets it after the proposer signed).
func MemberCommandMessage(kernelID string, env *Envelope) []byte {
	sum := sha256.Sum256(env.Payload)
	msg := make([]byte, 0, len(ctxMemberCommand)+len(kernelID)+len(env.RequestID)+len(env.Node)+48)
	msg = append(msg, ctxMemberCommand...)
	msg = append(msg, kernelID...)
	msg = append(msg, 0)
	msg = strconv.AppendUint(msg, uint64(env.Type), 10)
	msg = append(msg, 0)
	msg = append(msg, env.Node...)
	msg = append(msg, 0)
	msg = append(msg, env.RequestID...)
	msg = append(msg, 0)
	return append(msg, sum[:]...)
}

// SignMember sets env's member evidence: node's signature with key over
// MemberCommandMessage(kernelID, env).
func SignMember(env *Envelope, kernelID, node string, key ed25519.PrivateKey) {
	env.Node = node
	env.NodeSig = ed25519.Sign(key, MemberCommandMessage(kernelID, env))
}

// IsInternal reports whether t is an internal command: one no bearer
// token may propose (see above). Genesis is not: it precedes members.
func IsInternal(t CommandType) bool {
	spec, ok := handlers[t]
	return ok && spec.proposer == proposerInternal
}

// memberEvidence checks an internal command's proposer (protocol 4).
func (l *Ledger) memberEvidence(c *call) Reason {
	env := &c.env
	if len(env.Auth) != 0 {
		return ReasonInternalOnly
	}
	key := l.st.MemberKey(env.Node)
	if key == nil {
		key = selfRecord(l.st, env)
	}
	if key == nil || len(env.NodeSig) != ed25519.SignatureSize ||
		!ed25519.Verify(key, MemberCommandMessage(l.st.Meta.KernelID, env), env.NodeSig) {
		return ReasonMemberUnverified
	}
	return ReasonOK
}

// selfRecord is the key a member.update brings for its own proposer when
// the ledger holds none for it yet: a node the genesis did not reach
// records its own key, signed with that key (possession is the evidence;
// the name is the proposer's, and proposers are members). It never
// replaces a recorded key; nil otherwise.
func selfRecord(st *State, env *Envelope) ed25519.PublicKey {
	if env.Type != CmdMemberUpdate {
		return nil
	}
	var u MemberUpdate
	if Decode(env.Payload, &u) != nil || u.Removed || u.Node != env.Node || len(u.PubKey) != ed25519.PublicKeySize {
		return nil
	}
	if m := st.Member(u.Node); m != nil && len(m.PubKey) > 0 {
		return nil
	}
	return ed25519.PublicKey(u.PubKey)
}
