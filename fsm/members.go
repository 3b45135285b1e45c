package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
)

// Members: the kernel's own nodes as its ledger knows them.
//
// Genesis seals the hash of the kernel's join secret (Meta.JoinSecretHash:
// a node not yet in the Raft configuration joins an initialized kernel
// only with the secret, which the leader checks against this hash and
// which never enters the log) and the node keys of the voters the leader
// could reach (Genesis.Members). Later members' keys enter with
// member.update, so member-signed evidence can be verified against keys
// the ledger already holds.
//
// Who may propose:
//   - member.admit: an operator with operator.manage on "raft" (dominus
//     operator raft add-peer); it admits a node by name and address, which
//     may then join without the join secret.
//   - member.update: the kernel's own leader (internal: no token, never
//     reachable from the HTTP API; forwarded only between members of the
//     configuration), when a node joined or was added or removed. The FSM
//     checks the name and key, and never replaces a member's recorded key
//     with another: a node that changes its key is removed and added again.

// MaxMembers bounds the member table (Raft configurations are small).
const MaxMembers = 64

// OperatorRaft is the resource of membership changes in the
// operator.manage scope.
const OperatorRaft = "raft"

func init() {
	registerTyped(CmdMemberAdmit, typedSpec[MemberAdmit]{
		proposer: proposerCaller, op: OpOperatorManage, resource: OperatorRaft,
		subject: func(_ *Ledger, p *MemberAdmit) string { return p.Node },
		run:     applyMemberAdmit,
	})
	registerTyped(CmdMemberUpdate, typedSpec[MemberUpdate]{
		proposer: proposerInternal, actor: "kernel",
		subject: func(_ *Ledger, p *MemberUpdate) string { return p.Node },
		run:     applyMemberUpdate,
	})
}

// Member is one node of this kernel in the ledger.
type Member struct {
	Node     string `codec:"node"`
	PubKey   []byte `codec:"pub_key,omitempty"` // its node key (Ed25519), once known
	Addr     string `codec:"addr,omitempty"`    // its --bind address, as admitted or joined
	NonVoter bool   `codec:"non_voter,omitempty"`
	Admitted string `codec:"admitted,omitempty"` // the operator who admitted it (add-peer); "" if it joined otherwise
	Since    uint64 `codec:"since"`              // seq of the event that first recorded it
	Removed  bool   `codec:"removed,omitempty"`  // left the configuration
}

// GenesisMember is one of the first members, as genesis seals it.
type GenesisMember struct {
	Node     string `codec:"node"`
	PubKey   []byte `codec:"pub_key"`
	Addr     string `codec:"addr,omitempty"`
	NonVoter bool   `codec:"non_voter,omitempty"`
}

// MemberAdmit admits a node to join without the join secret.
type MemberAdmit struct {
	Node     string `codec:"node"`
	Addr     string `codec:"addr"`
	NonVoter bool   `codec:"non_voter,omitempty"`
}

// MemberUpdate records a member's key (a node that joined or was added)
// or its removal from the configuration.
type MemberUpdate struct {
	Node     string `codec:"node"`
	PubKey   []byte `codec:"pub_key,omitempty"`
	Addr     string `codec:"addr,omitempty"`
	NonVoter bool   `codec:"non_voter,omitempty"`
	Removed  bool   `codec:"removed,omitempty"`
}

// JoinSecretHash is what genesis seals for a join secret.
func JoinSecretHash(secret string) []byte {
	s := sha256.Sum256([]byte("dominus-join-secret-v1\x00" + secret))
	return s[:]
}

// CheckJoinSecret reports whether secret is this kernel's join secret.
func (s *State) CheckJoinSecret(secret string) bool {
	return len(s.Meta.JoinSecretHash) == sha256.Size && secret != "" && bytes.Equal(JoinSecretHash(secret), s.Meta.JoinSecretHash)
}

// Member returns the ledger's record of node, or nil.
func (s *State) Member(node string) *Member { return s.members[node] }

// SortedMembers returns the member records in name order.
func (s *State) SortedMembers() []*Member {
	out := make([]*Member, 0, len(s.members))
	for _, m := range s.members { // detcheck:ordered sorted below before use
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// MemberKey returns a current member's recorded node key.
func (s *State) MemberKey(node string) ed25519.PublicKey {
	if m := s.members[node]; m != nil && !m.Removed && len(m.PubKey) == ed25519.PublicKeySize {
		return ed25519.PublicKey(m.PubKey)
	}
	return nil
}

func validAddr(a string) bool { return a != "" && len(a) <= 64 }

// validNodeName is the node-name rule of node certificates: 1 to 64
// letters, digits, '-', '_' or '.', and not "." or "..".
func validNodeName(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// sealMembers validates genesis's members and join secret hash.
func sealMembers(g *Genesis, seq uint64) (map[string]*Member, Reason) {
	if g.JoinSecretHash != nil && len(g.JoinSecretHash) != sha256.Size {
		return nil, ReasonInvalidArgument
	}
	if len(g.Members) > MaxMembers {
		return nil, ReasonTooLarge
	}
	out := map[string]*Member{}
	for _, k := range g.Members {
		if !validNodeName(k.Node) || len(k.PubKey) != ed25519.PublicKeySize || (k.Addr != "" && !validAddr(k.Addr)) {
			return nil, ReasonInvalidArgument
		}
		if _, dup := out[k.Node]; dup {
			return nil, ReasonInvalidArgument
		}
		out[k.Node] = &Member{Node: k.Node, PubKey: append([]byte(nil), k.PubKey...), Addr: k.Addr, NonVoter: k.NonVoter, Since: seq}
	}
	return out, ReasonOK
}

// liveMembers counts the members not removed.
func (s *State) liveMembers() int {
	n := 0
	for _, m := range s.members { // detcheck:ordered counts only
		if !m.Removed {
			n++
		}
	}
	return n
}

// newMember starts a fresh record for node (replacing a removed one),
// dropping the oldest removed record when the table is full.
func (l *Ledger) newMember(node string) *Member {
	st := l.st
	if _, ok := st.members[node]; !ok && len(st.members) >= 2*MaxMembers {
		var oldest *Member
		for _, m := range st.SortedMembers() {
			if m.Removed && (oldest == nil || m.Since < oldest.Since) {
				oldest = m
			}
		}
		if oldest != nil {
			delete(st.members, oldest.Node)
		}
	}
	m := &Member{Node: node, Since: st.Seq + 1}
	st.members[node] = m
	return m
}

func applyMemberAdmit(l *Ledger, c *call, p *MemberAdmit) outcome {
	st := l.st
	if !validNodeName(p.Node) || !validAddr(p.Addr) {
		return deny(ReasonInvalidArgument)
	}
	m := st.members[p.Node]
	if m != nil && !m.Removed {
		if m.Addr == p.Addr && m.NonVoter == p.NonVoter {
			return deny(ReasonAlreadyExists)
		}
	} else if st.liveMembers() >= MaxMembers {
		return deny(ReasonTooLarge)
	}
	if m == nil || m.Removed {
		m = l.newMember(p.Node)
	}
	m.Addr, m.NonVoter, m.Admitted = p.Addr, p.NonVoter, c.actor
	c.detail = Encode(&GovernanceDetail{Target: p.Node, Note: "admitted at " + p.Addr + voterNote(p.NonVoter)})
	return outcome{decision: DecisionPermit}
}

func voterNote(nonVoter bool) string {
	if nonVoter {
		return " as a non-voter"
	}
	return ""
}

func applyMemberUpdate(l *Ledger, c *call, p *MemberUpdate) outcome {
	st := l.st
	if !validNodeName(p.Node) || (p.Addr != "" && !validAddr(p.Addr)) {
		return deny(ReasonInvalidArgument)
	}
	m := st.members[p.Node]
	if p.Removed {
		if m == nil || m.Removed {
			return deny(ReasonNotFound)
		}
		m.Removed = true
		c.detail = Encode(&GovernanceDetail{Target: p.Node, Note: "left the configuration"})
		return outcome{decision: DecisionPermit}
	}
	if len(p.PubKey) != ed25519.PublicKeySize {
		return deny(ReasonInvalidArgument)
	}
	live := m != nil && !m.Removed
	switch {
	case live && len(m.PubKey) > 0 && bytes.Equal(m.PubKey, p.PubKey) && (p.Addr == "" || p.Addr == m.Addr) && p.NonVoter == m.NonVoter:
		return deny(ReasonAlreadyExists)
	case live && len(m.PubKey) > 0 && !bytes.Equal(m.PubKey, p.PubKey):
		// A member's key is never silently replaced.
		return deny(ReasonForbidden)
	case !live && st.liveMembers() >= MaxMembers:
		return deny(ReasonTooLarge)
	}
	if !live {
		m = l.newMember(p.Node)
	}
	m.PubKey = append([]byte(nil), p.PubKey...)
	if p.Addr != "" {
		m.Addr = p.Addr
	}
	m.NonVoter = p.NonVoter
	c.detail = Encode(&GovernanceDetail{Target: p.Node, Note: "member key " + hex.EncodeToString(p.PubKey) + voterNote(p.NonVoter) + " since seq " + strconv.FormatUint(m.Since, 10)})
	return outcome{decision: DecisionPermit}
}
