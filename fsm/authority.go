package fsm

import "slices"

// Authority never grows (DESIGN.md §5b): the rules of protocol 4.
//
//   - A governance operation is covered by a capability's scope only by
//     its own name, unless the capability is an operator's (a named
//     human's, which only holders of operator.manage can grant): an
//     agent's "*" covers every op but the governance ones.
//   - A grant is a subset of its granter's own scope: ops, resources,
//     expiry, uses and the operator bit (wider_than_granter). A
//     delegation already was (wider_than_parent); it now also cannot name
//     a governance op its parent does not hold by name.
//   - An approval is decided only by an operator capability that is
//     neither the escalated caller's nor in its delegation chain
//     (self_approval).
//   - A halt of an entity halts every capability delegated from it.
//
// Ledgers under earlier protocols replay with the earlier rules.

// ProtocolAuthority is the first protocol with the rules above (and the
// bounded dedup window and limits of dedup.go and limits.go).
const ProtocolAuthority uint16 = 4

// authority reports whether the rules of ProtocolAuthority are in force.
func (l *Ledger) authority() bool { return l.st.Meta.Protocol >= ProtocolAuthority }

// Covers reports whether c's scope covers op on resource under the rules
// in force (the gate's edge asks it too).
func (s *State) Covers(c *Capability, op, resource string) bool {
	if s.Meta.Protocol >= ProtocolAuthority && governanceOp(op, s.Meta.Protocol) && !c.Operator {
		return slices.Contains(c.Ops, op) && matchAny(c.Resources, resource)
	}
	return c.Allows(op, resource)
}

func (l *Ledger) covers(c *Capability, op, resource string) bool { return l.st.Covers(c, op, resource) }

// namedGovernance reports whether every governance op named in ops is
// covered by g (so a pattern that g's wildcard contains cannot smuggle in
// a governance op g lacks by name).
func (l *Ledger) namedGovernance(ops []string, g *Capability) bool {
	for _, op := range ops {
		if governanceOp(op, l.st.Meta.Protocol) && !l.covers(g, op, "*") {
			return false
		}
	}
	return true
}

// grantWithin checks a grant against its granter g (protocol 4): the
// reason it is wider, or ReasonOK.
func (l *Ledger) grantWithin(g *Capability, p *CapGrant, expires int64) Reason {
	if !l.authority() {
		return ReasonOK
	}
	switch {
	case !scopeWithin(p.Ops, g.Ops) || !l.namedGovernance(p.Ops, g) || !scopeWithin(p.Resources, g.Resources):
		return ReasonWiderThanGranter
	case p.Operator && !g.Operator:
		return ReasonWiderThanGranter
	}
	if end := l.st.chainExpiry(g); end != 0 && (expires == 0 || expires > end) {
		return ReasonWiderThanGranter
	}
	if g.Uses > 0 && (p.Uses == 0 || p.Uses > g.Remaining()) {
		return ReasonWiderThanGranter
	}
	return ReasonOK
}

// chainExpiry is the earliest expiry along c's ancestor chain (0: none).
func (s *State) chainExpiry(c *Capability) int64 {
	var end int64
	for i := 0; c != nil && i <= MaxDelegationDepth; i++ {
		if c.Expires != 0 && (end == 0 || c.Expires < end) {
			end = c.Expires
		}
		if c.Parent == "" {
			break
		}
		c = s.Caps[c.Parent]
	}
	return end
}

// inChain reports whether a and b are the same capability or one is an
// ancestor of the other.
func (s *State) inChain(a, b *Capability) bool {
	return s.ancestorOf(a, b) || s.ancestorOf(b, a)
}

// ancestorOf reports whether anc is c or one of its ancestors.
func (s *State) ancestorOf(anc, c *Capability) bool {
	for i := 0; c != nil && i <= MaxDelegationDepth; i++ {
		if c.ID == anc.ID {
			return true
		}
		if c.Parent == "" {
			return false
		}
		c = s.Caps[c.Parent]
	}
	return false
}

// approverReason judges the decider of approval a (protocol 4).
func (l *Ledger) approverReason(decider *Capability, a *Approval) Reason {
	if !l.authority() {
		return ReasonOK
	}
	if !decider.Operator {
		return ReasonForbidden
	}
	caller := l.st.Caps[a.CapID]
	if decider.Entity == a.Entity || (caller != nil && l.st.inChain(decider, caller)) {
		return ReasonSelfApproval
	}
	return ReasonOK
}

// haltedCap reports whether c may not act because of a halt: of the
// kernel or the federation, of its entity, and (protocol 4) of any
// entity along its delegation chain.
func (l *Ledger) haltedCap(c *Capability) bool {
	if l.halted(c.Entity) {
		return true
	}
	if !l.authority() {
		return false
	}
	for i := 0; c != nil && c.Parent != "" && i <= MaxDelegationDepth; i++ {
		c = l.st.Caps[c.Parent]
		if c == nil {
			return true // a dangling parent: fail closed
		}
		if _, ok := l.st.Halts[c.Entity]; ok {
			return true
		}
	}
	return false
}
