package fsm

import (
	"crypto/ed25519"
	"strconv"
	"strings"
)

// Protocol versions and upgrades.
//
// A protocol version names a set of decision rules. Genesis seals the
// version a ledger starts under; `protocol.upgrade` moves a running kernel
// to a newer one at the entry that records it: every later entry is
// judged by the new version's rules, every earlier one replays under its
// own. A binary that does not implement the version stops at that entry
// (UnknownProtocolError) rather than judge what follows by older rules.
//
// Who may propose it, and what the FSM checks:
//   - standalone kernel: an operator with operator.manage on "protocol";
//     in force at once.
//   - sovereign: the same scope, plus the signatures of M of the N
//     federation operators, one of them sovereign-level, over
//     ProtocolMessage(sovereign kernel id, version); in force on the
//     sovereign at once, and carried to every domain in its federation
//     view (fed.update), where the domain verifies the same signatures
//     against the operator keys it already trusts before it takes the
//     version. Each domain acknowledges the version it runs
//     (fed.protocol.ack); one that has not acknowledged AckDeadline after
//     ratification is suspended, as for a canon amendment.
//   - domain: only through its federation view; a direct upgrade is
//     refused (wrong_role).
//
// Versions only move forward. Whether every voter's binary implements the
// version is checked before the command is proposed (the kernel asks
// each member), because the FSM cannot know the binaries it runs on.

// ProtocolContract is the first protocol whose Cedar model is the
// contract's: namespaced entity types (Dominus::Entity, Dominus::Action,
// Dominus::Resource), context time and args_digest, principal domain
// (policy.go). Policies with the earlier, un-namespaced types keep working.
const ProtocolContract uint16 = 3

// OperatorProtocol is the resource of protocol upgrades in the
// operator.manage scope.
const OperatorProtocol = "protocol"

func init() {
	registerTyped(CmdProtocolUpgrade, typedSpec[ProtocolUpgrade]{
		proposer: proposerCaller, op: OpOperatorManage, resource: OperatorProtocol,
		subject: func(_ *Ledger, p *ProtocolUpgrade) string {
			return "protocol " + strconv.FormatUint(uint64(p.Version), 10)
		},
		run: applyProtocolUpgrade,
	})
	registerTyped(CmdFedProtocolAck, typedSpec[FedProtocolAck]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedProtocolAck) string { return p.Domain },
		run:     applyFedProtocolAck,
	})
}

// ProtocolUpgrade moves the kernel to protocol Version. On the sovereign
// it carries the operators' signatures.
type ProtocolUpgrade struct {
	Version    uint16              `codec:"version"`
	Signatures []OperatorSignature `codec:"signatures,omitempty"`
}

// ProtocolChange is one upgrade in a kernel's history.
type ProtocolChange struct {
	Version uint16 `codec:"version"`
	From    uint16 `codec:"from"`
	Seq     uint64 `codec:"seq"`  // the event that made it
	Time    int64  `codec:"time"` // ledger time of that event
	By      string `codec:"by"`   // the operator, or the federation operators who signed it
}

// ProtocolRatification is the sovereign's latest upgrade as it travels to
// the domains: the version and the operators' signatures over it.
type ProtocolRatification struct {
	Version    uint16              `codec:"version"`
	Signatures []OperatorSignature `codec:"signatures"`
	Ratified   int64               `codec:"ratified"` // the sovereign's ledger time
}

// FedProtocolAck records on the sovereign the protocol a domain runs.
type FedProtocolAck struct {
	Domain  string `codec:"domain"`
	Version uint16 `codec:"version"`
}

// UnknownProtocolError is the panic value when an entry puts in force a
// protocol version this binary does not implement: the node must stop
// rather than judge later entries by older rules.
type UnknownProtocolError struct {
	Protocol uint16
	Index    uint64 // the Raft index of the entry, when known
}

func (e UnknownProtocolError) Error() string {
	return "the ledger moved to protocol " + strconv.FormatUint(uint64(e.Protocol), 10) + " at raft index " +
		strconv.FormatUint(e.Index, 10) + ", but this binary implements protocols up to " + strconv.FormatUint(uint64(ProtocolVersion), 10) +
		": install a release that implements protocol " + strconv.FormatUint(uint64(e.Protocol), 10) + " on this node and start it again"
}

// requireProtocol stops this replica if it cannot judge by version's rules.
func requireProtocol(c *call, version uint16) {
	if version > ProtocolVersion {
		panic(UnknownProtocolError{Protocol: version, Index: c.index})
	}
}

// setProtocol puts version in force from the next event on (the event
// being recorded is the upgrade itself).
func (l *Ledger) setProtocol(c *call, version uint16, by string) {
	requireProtocol(c, version)
	m := &l.st.Meta
	m.ProtocolHistory = append(m.ProtocolHistory, ProtocolChange{Version: version, From: m.Protocol, Seq: l.st.Seq + 1, Time: c.now, By: by})
	m.Protocol = version
	l.setsOK = false
}

func applyProtocolUpgrade(l *Ledger, c *call, p *ProtocolUpgrade) outcome {
	st := l.st
	if p.Version <= st.Meta.Protocol || len(p.Signatures) > MaxOperators {
		return deny(ReasonInvalidArgument)
	}
	by := c.actor
	switch st.Meta.Role {
	case RoleDomain:
		// A domain takes the federation's version from its view.
		return deny(ReasonWrongRole)
	case RoleSovereign:
		signers, r := operatorQuorum(st.Fed, ProtocolMessage(st.Meta.KernelID, p.Version), p.Signatures, "")
		if r != ReasonOK {
			return deny(r)
		}
		by = strings.Join(signers, ",")
		requireProtocol(c, p.Version)
		st.Fed.Protocol = &ProtocolRatification{Version: p.Version, Signatures: cloneSignatures(p.Signatures), Ratified: c.now}
	default:
		if len(p.Signatures) > 0 {
			return deny(ReasonInvalidArgument)
		}
	}
	from := st.Meta.Protocol
	l.setProtocol(c, p.Version, by)
	c.detail = Encode(&GovernanceDetail{Target: c.subject, Note: "from protocol " + strconv.FormatUint(uint64(from), 10) + " by " + by})
	return outcome{decision: DecisionPermit, version: uint64(p.Version)}
}

// operatorQuorum verifies signatures over msg by the federation operators
// of f: each a known, unrevoked operator other than exclude, each once,
// at least f.Threshold of them, one sovereign-level. It returns the
// signers in order.
func operatorQuorum(f *FedState, msg []byte, sigs []OperatorSignature, exclude string) ([]string, Reason) {
	signers, sovereignSigned, r := operatorSignatures(f, msg, sigs, exclude)
	if r != ReasonOK {
		return nil, r
	}
	if len(signers) < f.Threshold || !sovereignSigned {
		return nil, ReasonForbidden
	}
	return signers, ReasonOK
}

// operatorSignatures verifies signatures over msg by the federation
// operators of f: each a known, unrevoked operator other than exclude,
// each once. It returns the signers in order and whether one of them is
// sovereign-level; it does not count them against the threshold.
func operatorSignatures(f *FedState, msg []byte, sigs []OperatorSignature, exclude string) ([]string, bool, Reason) {
	var signers []string
	sovereignSigned := false
	for _, s := range sigs {
		op := f.Operators[s.Operator]
		if op == nil || op.Revoked || s.Operator == exclude || len(s.Signature) != ed25519.SignatureSize ||
			!ed25519.Verify(ed25519.PublicKey(op.PubKey), msg, s.Signature) {
			return nil, false, ReasonBadSignature
		}
		for _, seen := range signers {
			if seen == s.Operator {
				return nil, false, ReasonDuplicateSignature
			}
		}
		signers = append(signers, s.Operator)
		sovereignSigned = sovereignSigned || op.Level == LevelSovereign
	}
	return signers, sovereignSigned, ReasonOK
}

func cloneSignatures(in []OperatorSignature) []OperatorSignature {
	out := make([]OperatorSignature, len(in))
	for i, s := range in {
		out[i] = OperatorSignature{Operator: s.Operator, Signature: append([]byte(nil), s.Signature...)}
	}
	return out
}

func applyFedProtocolAck(l *Ledger, c *call, p *FedProtocolAck) outcome {
	_, d, r := l.joinedDomain(p.Domain)
	if r != ReasonOK {
		return deny(r)
	}
	if p.Version <= d.ProtocolAck {
		return deny(ReasonInvalidArgument)
	}
	d.ProtocolAck = p.Version
	fedDetail(c, p.Domain, "protocol acknowledged", strconv.FormatUint(uint64(p.Version), 10))
	return outcome{decision: DecisionPermit}
}

// ProtocolAckOverdue reports whether domain d has not acknowledged the
// sovereign's latest protocol AckDeadline after its ratification.
func (f *FedState) ProtocolAckOverdue(d *DomainRecord, now int64) bool {
	return f.Protocol != nil && d.ProtocolAck < f.Protocol.Version && now >= f.Protocol.Ratified+AckDeadline
}
