package fsm

import (
	"strings"
)

// Limits on capabilities.
const (
	MaxDelegationDepth = 8
	MaxPatterns        = 16
	MaxPatternBytes    = 256
	MaxEntityBytes     = 128
	MaxPolicySets      = 64
	MaxApprovals       = 10_000
	DefaultApprovalTTL = int64(3600 * 1e9) // an escalation's approval window: 1 h of ledger time
)

// Governance operations: what operator capabilities are scoped to. They
// are never denied by a halt.
const (
	OpCapGrant       = "cap.grant"
	OpCapRevoke      = "cap.revoke"
	OpCapRead        = "cap.read"
	OpPolicySet      = "policy.set"
	OpApprovalDecide = "approval.decide"
	OpHalt           = "halt"
	OpOperatorManage = "operator.manage"
	OpAuditRead      = "audit.read"
	OpSnapshot       = "snapshot.manage"
)

// IsGovernanceOp reports whether op is a governance operation.
func IsGovernanceOp(op string) bool {
	switch op {
	case OpCapGrant, OpCapRevoke, OpCapRead, OpPolicySet, OpApprovalDecide, OpHalt, OpOperatorManage, OpAuditRead, OpSnapshot,
		OpFederationManage, OpCanonAmend, OpFederationHalt, OpSignalIngest, OpTrustAdjust:
		return true
	}
	return false
}

// Capability is an unforgeable grant: the token is a 256-bit secret held
// by the entity; only its SHA-256 is in the ledger.
type Capability struct {
	ID        string   `codec:"id"`
	TokenHash string   `codec:"token_hash"` // hex
	Entity    string   `codec:"entity"`
	Operator  bool     `codec:"operator"` // a named human's governance capability
	Domain    string   `codec:"domain"`
	Ops       []string `codec:"ops"`
	Resources []string `codec:"resources"`
	Expires   int64    `codec:"expires"` // ledger ns; 0 = no expiry
	Uses      int64    `codec:"uses"`    // total; 0 = unlimited
	Used      int64    `codec:"used"`
	Reserved  int64    `codec:"reserved"` // uses handed to children
	Parent    string   `codec:"parent"`
	Depth     uint8    `codec:"depth"`
	GrantedBy string   `codec:"granted_by"`
	Revoked   bool     `codec:"revoked"`
	Created   uint64   `codec:"created"`
}

// Remaining is the number of uses left (-1 for unlimited).
func (c *Capability) Remaining() int64 {
	if c.Uses == 0 {
		return -1
	}
	return c.Uses - c.Used - c.Reserved
}

// Match reports whether value matches pattern: exact, or pattern ends in
// '*' and value starts with the rest ('*' matches any suffix including '/').
func Match(pattern, value string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(value, p)
	}
	return pattern == value
}

// Within reports whether pattern child is contained in pattern parent.
func Within(child, parent string) bool {
	if p, ok := strings.CutSuffix(parent, "*"); ok {
		return strings.HasPrefix(child, p)
	}
	return child == parent
}

func matchAny(patterns []string, value string) bool {
	for _, p := range patterns {
		if Match(p, value) {
			return true
		}
	}
	return false
}

// scopeWithin reports whether every child pattern lies within some parent
// pattern.
func scopeWithin(child, parent []string) bool {
	for _, c := range child {
		ok := false
		for _, p := range parent {
			if Within(c, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func validPatterns(ps []string) bool {
	if len(ps) == 0 || len(ps) > MaxPatterns {
		return false
	}
	for _, p := range ps {
		if p == "" || len(p) > MaxPatternBytes || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			return false
		}
	}
	return true
}

func validName(s string) bool {
	if s == "" || len(s) > MaxEntityBytes {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '/' || r == '@') {
			return false
		}
	}
	return true
}

// revokedAlongChain walks the bounded ancestor chain: revoking any
// ancestor revokes the whole subtree, without touching it.
func (s *State) revokedAlongChain(c *Capability) bool {
	for i := 0; i <= MaxDelegationDepth; i++ {
		if c == nil {
			return true // a dangling parent: fail closed
		}
		if c.Revoked {
			return true
		}
		if c.Parent == "" {
			return false
		}
		c = s.Caps[c.Parent]
	}
	return true
}

// ancestorExpired reports whether c or an ancestor has expired at now.
func (s *State) expiredAlongChain(c *Capability, now int64) bool {
	for i := 0; c != nil && i <= MaxDelegationDepth; i++ {
		if c.Expires != 0 && now >= c.Expires {
			return true
		}
		if c.Parent == "" {
			return false
		}
		c = s.Caps[c.Parent]
	}
	return false
}

// Approval is an escalation waiting for (or given) a human decision. It
// binds to the exact call.
type Approval struct {
	ID            string `codec:"id"`
	CapID         string `codec:"cap_id"`
	Entity        string `codec:"entity"`
	Op            string `codec:"op"`
	Resource      string `codec:"resource"`
	ArgsDigest    string `codec:"args_digest"`
	PolicyVersion uint64 `codec:"policy_version"`
	Why           string `codec:"why"`
	Requested     uint64 `codec:"requested"` // seq
	Expires       int64  `codec:"expires"`
	State         string `codec:"state"` // pending, approved, denied, used
	DecidedBy     string `codec:"decided_by"`
}

// PolicyRecord is one named Cedar policy set.
type PolicyRecord struct {
	Name    string `codec:"name"`
	Text    string `codec:"text"`
	Mode    string `codec:"mode"` // ACTIVE or SHADOW
	Version uint64 `codec:"version"`
	SetBy   string `codec:"set_by"`
}

// Halt records a kill switch in force.
type Halt struct {
	Entity string `codec:"entity"` // "" = the whole kernel
	Reason string `codec:"reason"`
	By     string `codec:"by"`
	Seq    uint64 `codec:"seq"`
}
