package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/sense"
)

// DefaultDomain is the domain of a kernel sealed without one.
const DefaultDomain = "default"

func init() {
	registerTyped(CmdCapGrant, typedSpec[CapGrant]{
		proposer: proposerCaller, opOf: grantOp,
		subject: func(_ *Ledger, p *CapGrant) string { return p.Entity },
		run:     applyCapGrant,
	})
	// A delegation is judged against the caller's own capability.
	registerTyped(CmdCapDelegate, typedSpec[CapDelegate]{
		proposer: proposerCaller,
		subject:  func(_ *Ledger, p *CapDelegate) string { return p.Entity },
		run:      applyCapDelegate,
	})
	registerTyped(CmdCapRevoke, typedSpec[CapRevoke]{
		proposer: proposerCaller, op: OpCapRevoke, resourceOf: revokedEntity,
		subject: func(_ *Ledger, p *CapRevoke) string { return p.ID },
		run:     applyCapRevoke,
	})
	// The gate judges a syscall; its payload was decoded with the entry.
	registerTyped(CmdSyscall, typedSpec[Syscall]{
		proposer: proposerCaller,
		decoded:  func(c *call) (*Syscall, bool) { return &c.pre.sys, c.pre.sysOK },
		run:      applySyscall,
	})
	registerTyped(CmdPolicySet, typedSpec[PolicySet]{
		proposer: proposerCaller, op: OpPolicySet,
		subject: func(_ *Ledger, p *PolicySet) string { return p.Name },
		run:     applyPolicySet,
	})
	registerTyped(CmdApprovalDecide, typedSpec[ApprovalDecide]{
		proposer: proposerCaller, op: OpApprovalDecide, resourceOf: approvalResource,
		subject: func(_ *Ledger, p *ApprovalDecide) string { return p.ID },
		run:     applyApprovalDecide,
	})
	registerTyped(CmdHalt, typedSpec[HaltCmd]{
		proposer: proposerCaller, op: OpHalt,
		subject: func(_ *Ledger, p *HaltCmd) string { return haltTarget(p.Entity) },
		run:     applyHalt,
	})
	registerTyped(CmdResume, typedSpec[HaltCmd]{
		proposer: proposerCaller, op: OpHalt,
		subject: func(_ *Ledger, p *HaltCmd) string { return haltTarget(p.Entity) },
		run:     applyResume,
	})
}

// Identifiers are derived from the seq of the event that created them.
func capID(seq uint64) string      { return "cap-" + strconv.FormatUint(seq, 10) }
func approvalID(seq uint64) string { return "apr-" + strconv.FormatUint(seq, 10) }

// SyscallDetail is the detail record of every syscall decision.
type SyscallDetail struct {
	CapID         string          `codec:"cap_id"`
	Op            string          `codec:"op"`
	Resource      string          `codec:"resource"`
	ArgsDigest    string          `codec:"args_digest"`
	ApprovalID    string          `codec:"approval_id"`
	PolicyVersion uint64          `codec:"policy_version"`
	Judged        bool            `codec:"judged"` // reached the policy stage
	Request       CedarRequest    `codec:"request"`
	Policy        PolicyOutcome   `codec:"policy"`
	Shadow        []ShadowOutcome `codec:"shadow"`
	UsesLeft      int64           `codec:"uses_left"` // after this decision; -1 unlimited
	// AsOf is the seq an as-of kv.get read at (protocol 7).
	AsOf uint64 `codec:"as_of,omitempty"`
}

// ShadowOutcome is a SHADOW set's would-be decision, recorded beside the
// real one and never enforced.
type ShadowOutcome struct {
	Set     string        `codec:"set"`
	Outcome PolicyOutcome `codec:"outcome"`
}

// GrantDetail is the detail record of grants and delegations.
type GrantDetail struct {
	CapID     string   `codec:"cap_id"`
	Entity    string   `codec:"entity"`
	Operator  bool     `codec:"operator"`
	GrantedBy string   `codec:"granted_by"`
	Parent    string   `codec:"parent"`
	Ops       []string `codec:"ops"`
	Resources []string `codec:"resources"`
	Expires   int64    `codec:"expires"`
	Uses      int64    `codec:"uses"`
}

// GovernanceDetail is the detail record of revocations, policy changes,
// approval decisions, halts and resumes.
type GovernanceDetail struct {
	Target string `codec:"target"`
	Note   string `codec:"note"`
}

func (l *Ledger) addCap(c *Capability) {
	l.st.Caps[c.ID] = c
	l.st.capByToken[c.TokenHash] = c.ID
}

// CapByToken returns the capability for a hex token hash.
func (s *State) CapByToken(hexHash string) *Capability {
	if id, ok := s.capByToken[hexHash]; ok {
		return s.Caps[id]
	}
	return nil
}

// Usable reports why cap cannot act at ledger time now (ReasonOK if it can).
func (s *State) Usable(c *Capability, now int64) Reason {
	switch {
	case c == nil:
		return ReasonUnknownToken
	case s.revokedAlongChain(c):
		return ReasonRevoked
	case s.expiredAlongChain(c, now):
		return ReasonExpired
	case c.Domain != s.Meta.Domain:
		return ReasonDomainMismatch
	}
	return ReasonOK
}

// Allows reports whether cap's scope covers op on resource.
func (c *Capability) Allows(op, resource string) bool {
	return matchAny(c.Ops, op) && matchAny(c.Resources, resource)
}

// govern authorizes a governance action: the caller's capability must be
// usable and scoped to op on resource. Halts do not apply.
func (l *Ledger) govern(c *call, op, resource string) Reason {
	if r := l.st.Usable(c.cap, c.now); r != ReasonOK {
		return r
	}
	if !l.covers(c.cap, op, resource) {
		return ReasonForbidden
	}
	return ReasonOK
}

func (l *Ledger) halted(entity string) bool {
	if l.st.Fed != nil && l.st.Fed.Halt != nil {
		return true
	}
	if _, ok := l.st.Halts[""]; ok {
		return true
	}
	_, ok := l.st.Halts[entity]
	return ok
}

func argsDigest(args []byte) string {
	s := sha256.Sum256(args)
	return hex.EncodeToString(s[:])
}

// syscall is the gate: it decides PERMIT, DENY or ESCALATE for op on
// resource by the caller's capability, in a fixed order, records the
// decision's full detail, and on PERMIT consumes one use and runs the
// in-ledger effect. A DENY changes nothing but its own event.
func (l *Ledger) syscall(c *call, op, resource string, args []byte, approval string) outcome {
	st := l.st
	cp := c.cap
	c.subject = resource
	digest := c.argsDigest
	if digest == "" {
		digest = argsDigest(args)
	}
	d := SyscallDetail{CapID: cp.ID, Op: op, Resource: resource, ArgsDigest: digest, ApprovalID: approval, PolicyVersion: st.PolicyVersion, UsesLeft: cp.Remaining(), AsOf: c.asOf}
	var redeemed *Approval // marked used only if the call is permitted
	sensing := l.sensing()
	finish := func(out outcome) outcome {
		if redeemed != nil && out.decision == DecisionPermit {
			redeemed.State = ApprovalUsed
		}
		if sensing {
			l.observeCall(cp, op, resource, out.decision, args, c.now)
		}
		l.recordCall(cp.Entity, op, resource, out.decision, c.now)
		c.detail = Encode(&d)
		out.usesLeft = d.UsesLeft
		return out
	}
	if strings.HasPrefix(op, "kv.") {
		if r := kvPrecheck(op, resource, args); r != ReasonOK {
			return finish(deny(r))
		}
	} else if !validOp(op) || governanceOp(op, st.Meta.Protocol) {
		return finish(deny(ReasonUnknownOp))
	} else if len(resource) > MaxKeyBytes || len(args) > MaxArgsBytes {
		return finish(deny(ReasonTooLarge))
	}
	if l.haltedCap(cp) {
		return finish(deny(ReasonHalted))
	}
	if r := st.Usable(cp, c.now); r != ReasonOK {
		return finish(deny(r))
	}
	if !l.standing(c.now) {
		return finish(deny(ReasonPassportInvalid))
	}
	if !c.viaBus && st.Meta.Role == RoleDomain && strings.Contains(cp.Entity, "/") {
		// A grant to another domain's entity ("origin/entity") acts only
		// through the bus, after the origin's own gate.
		return finish(deny(ReasonForbidden))
	}
	if !cp.Allows(op, resource) {
		return finish(deny(ReasonOutOfScope))
	}
	if cp.Remaining() == 0 {
		return finish(deny(ReasonUsesExhausted))
	}
	d.Judged = true
	d.Request = CedarRequest{
		Principal: cp.Entity, Tier: DefaultTier, Trust: DefaultTrust, Action: op, Resource: resource,
		Posture: DefaultPosture, Deviation: DefaultDeviation, LedgerTime: c.now / 1e9, Domain: st.Meta.Domain,
		ArgsDigest: d.ArgsDigest,
	}
	escalateDeviation := false
	if sensing {
		var dev sense.Report
		d.Request.Tier, d.Request.Trust, d.Request.Posture, dev = l.gateSensing(cp, op, resource, args, c.now)
		d.Request.Deviation = dev.Score
		// At critical posture any deviation goes to a human.
		escalateDeviation = dev.Escalate
	}
	if l.temporal() {
		d.Request.History = l.historyContext(cp.Entity, op, c.now)
	}
	evolving := l.evolving() // protocol 8: a candidate in shadow or canary (evolve.go)
	sets, canary := l.gateSets(evolving, cp.Entity, &d.Request)
	d.Policy = EvaluatePolicies(sets, d.Request, st.Meta.Protocol)
	decided := d.Policy.Decision
	if escalateDeviation && d.Policy.Decision == DecisionPermit {
		d.Policy = PolicyOutcome{Decision: DecisionEscalate, Reason: ReasonApprovalRequired, Why: "deviation at critical posture (sensing)"}
	}
	for _, cs := range l.setsFor(PolicyShadow) {
		d.Shadow = append(d.Shadow, ShadowOutcome{Set: cs.name, Outcome: EvaluatePolicies([]*CompiledSet{cs}, d.Request, st.Meta.Protocol)})
	}
	if evolving != nil {
		l.evolveObserve(evolving, &d, cp.Entity, canary, decided, c.now)
	}
	switch d.Policy.Decision {
	case DecisionDeny:
		return finish(deny(d.Policy.Reason))
	case DecisionEscalate:
		if approval == "" {
			id := l.escalate(c, d)
			return finish(outcome{decision: DecisionEscalate, reason: ReasonApprovalRequired, id: id})
		}
		a := st.Approvals[approval]
		if a == nil || a.State != ApprovalApproved || c.now >= a.Expires || a.CapID != cp.ID || a.Op != op ||
			a.Resource != resource || a.ArgsDigest != d.ArgsDigest || a.PolicyVersion != st.PolicyVersion {
			return finish(deny(ReasonApprovalInvalid))
		}
		redeemed = a
	}
	if c.remoteToken != nil {
		dest, rest, ok := SplitRemote(resource)
		if !ok || dest == st.Meta.Domain {
			return finish(deny(ReasonInvalidArgument))
		}
		out := l.remoteCall(c, cp, dest, rest, op, args, c.remoteToken)
		if out.decision == DecisionPermit && cp.Uses > 0 {
			cp.Used++
		}
		d.UsesLeft = cp.Remaining()
		return finish(out)
	}
	external := !strings.HasPrefix(op, "kv.")
	if external && !l.effectRoom() {
		return finish(deny(ReasonEffectBacklog))
	}
	if !external && !l.kvWriteRoom(op, resource, args) {
		return finish(deny(ReasonQuotaExceeded))
	}
	if cp.Uses > 0 {
		cp.Used++
	}
	d.UsesLeft = cp.Remaining()
	if external {
		e := &Effect{Seq: st.Seq + 1, Index: c.index, CapID: cp.ID, Entity: cp.Entity, Op: op, Resource: resource, Args: append([]byte(nil), args...), Status: EffectPending}
		l.markCallerExecuted(c, e)
		l.addEffect(e)
		return finish(outcome{decision: DecisionPermit})
	}
	if c.asOf != 0 {
		// The value at that seq is read from history, off the ledger.
		return finish(outcome{decision: DecisionPermit, version: c.asOf})
	}
	return finish(l.kvEffect(op, resource, args))
}

// escalate records a pending approval bound to the exact call.
func (l *Ledger) escalate(c *call, d SyscallDetail) string {
	st := l.st
	id := approvalID(st.Seq + 1)
	st.Approvals[id] = &Approval{
		ID: id, CapID: d.CapID, Entity: c.cap.Entity, Op: d.Op, Resource: d.Resource, ArgsDigest: d.ArgsDigest,
		PolicyVersion: d.PolicyVersion, Why: d.Policy.Why, Requested: st.Seq + 1, Expires: c.now + DefaultApprovalTTL, State: ApprovalPending,
	}
	st.approvalQ = append(st.approvalQ, id)
	if len(st.approvalQ) > MaxApprovals {
		delete(st.Approvals, st.approvalQ[0])
		st.approvalQ = append([]string(nil), st.approvalQ[1:]...)
	}
	return id
}

func applySyscall(l *Ledger, c *call, p *Syscall) outcome {
	if len(p.ApprovalID) > 64 {
		return deny(ReasonInvalidArgument)
	}
	c.remoteToken = p.RemoteTokenHash
	c.argsDigest = c.pre.argsDigest // of p.Args
	return l.syscall(c, p.Op, p.Resource, p.Args, p.ApprovalID)
}

func validTokenHash(h []byte) bool { return len(h) == sha256.Size }

// validOp: lower-case dotted words, e.g. email.send, payments.refund.
func validOp(op string) bool {
	if op == "" || len(op) > MaxPatternBytes || !strings.Contains(op, ".") || op[0] == '.' || op[len(op)-1] == '.' {
		return false
	}
	for _, r := range op {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// grantOp is the governance op a grant needs: an operator capability
// only from operator.manage.
func grantOp(p *CapGrant) string {
	if p.Operator {
		return OpOperatorManage
	}
	return OpCapGrant
}

func applyCapGrant(l *Ledger, c *call, p *CapGrant) outcome {
	st := l.st
	if p.Domain == "" {
		p.Domain = st.Meta.Domain
	}
	if !validTokenHash(p.TokenHash) || !validName(p.Entity) || !validName(p.Domain) || !validPatterns(p.Ops) || !validPatterns(p.Resources) || p.TTLNs < 0 || p.Uses < 0 {
		return deny(ReasonInvalidArgument)
	}
	var expires int64
	if p.TTLNs > 0 {
		expires = c.now + p.TTLNs
	}
	if r := l.grantWithin(c.cap, p, expires); r != ReasonOK {
		return deny(r)
	}
	th := hex.EncodeToString(p.TokenHash)
	if st.CapByToken(th) != nil {
		return deny(ReasonDuplicateToken)
	}
	nc := &Capability{
		ID: capID(st.Seq + 1), TokenHash: th, Entity: p.Entity, Operator: p.Operator, Domain: p.Domain,
		Ops: append([]string(nil), p.Ops...), Resources: append([]string(nil), p.Resources...),
		Uses: p.Uses, GrantedBy: c.actor, Created: st.Seq + 1, Expires: expires,
	}
	return l.issue(c, nc)
}

func applyCapDelegate(l *Ledger, c *call, p *CapDelegate) outcome {
	st := l.st
	parent := c.cap
	if l.haltedCap(parent) {
		return deny(ReasonHalted)
	}
	if r := st.Usable(parent, c.now); r != ReasonOK {
		return deny(r)
	}
	if !validTokenHash(p.TokenHash) || !validName(p.Entity) || !validPatterns(p.Ops) || !validPatterns(p.Resources) || p.TTLNs < 0 || p.Uses < 0 {
		return deny(ReasonInvalidArgument)
	}
	if int(parent.Depth)+1 > MaxDelegationDepth {
		return deny(ReasonDepthExceeded)
	}
	if !scopeWithin(p.Ops, parent.Ops) || !scopeWithin(p.Resources, parent.Resources) || (l.authority() && !l.namedGovernance(p.Ops, parent)) {
		return deny(ReasonWiderThanParent)
	}
	expires := parent.Expires
	if p.TTLNs > 0 {
		expires = c.now + p.TTLNs
	}
	if parent.Expires != 0 && (expires == 0 || expires > parent.Expires) {
		return deny(ReasonWiderThanParent)
	}
	if parent.Uses > 0 {
		left := parent.Remaining()
		if left <= 0 {
			return deny(ReasonUsesExhausted)
		}
		if p.Uses == 0 || p.Uses > left {
			return deny(ReasonWiderThanParent)
		}
	}
	th := hex.EncodeToString(p.TokenHash)
	if st.CapByToken(th) != nil {
		return deny(ReasonDuplicateToken)
	}
	if parent.Uses > 0 {
		parent.Reserved += p.Uses
	}
	nc := &Capability{
		ID: capID(st.Seq + 1), TokenHash: th, Entity: p.Entity, Domain: parent.Domain,
		Ops: append([]string(nil), p.Ops...), Resources: append([]string(nil), p.Resources...),
		Expires: expires, Uses: p.Uses, Parent: parent.ID, Depth: parent.Depth + 1, GrantedBy: parent.Entity, Created: st.Seq + 1,
	}
	return l.issue(c, nc)
}

// issue adds a granted or delegated capability and records its detail.
func (l *Ledger) issue(c *call, nc *Capability) outcome {
	l.addCap(nc)
	c.detail = Encode(&GrantDetail{CapID: nc.ID, Entity: nc.Entity, Operator: nc.Operator, GrantedBy: nc.GrantedBy, Parent: nc.Parent,
		Ops: nc.Ops, Resources: nc.Resources, Expires: nc.Expires, Uses: nc.Uses})
	return outcome{decision: DecisionPermit, id: nc.ID}
}

// revokedEntity is the resource a revocation governs: the entity of the
// capability it names ("*" for none, which is not_found once governed).
func revokedEntity(l *Ledger, p *CapRevoke) string {
	if target := l.st.Caps[p.ID]; target != nil {
		return target.Entity
	}
	return "*"
}

func applyCapRevoke(l *Ledger, c *call, p *CapRevoke) outcome {
	target := l.st.Caps[p.ID]
	if target == nil {
		return deny(ReasonNotFound)
	}
	if target.Entity == RootOperatorName && target.Parent == "" {
		return deny(ReasonForbidden) // the break-glass root cannot be revoked
	}
	c.detail = Encode(&GovernanceDetail{Target: target.ID, Note: target.Entity})
	target.Revoked = true
	if f := l.st.Fed; f != nil && target.Operator {
		// A revoked operator's key signs nothing any more.
		if k := f.Operators[target.Entity]; k != nil {
			k.Revoked = true
		}
	}
	return outcome{decision: DecisionPermit, id: target.ID}
}

func applyPolicySet(l *Ledger, c *call, p *PolicySet) outcome {
	st := l.st
	if !validName(p.Name) || len(p.Text) > MaxPolicyBytes || (p.Mode != PolicyActive && p.Mode != PolicyShadow) {
		return deny(ReasonInvalidArgument)
	}
	if p.Text == "" {
		if _, ok := st.Policies[p.Name]; !ok {
			return deny(ReasonNotFound)
		}
		delete(st.Policies, p.Name)
	} else {
		if _, err := CompilePolicySet(p.Name, p.Mode, 0, p.Text); err != nil {
			return deny(ReasonInvalidArgument)
		}
		if _, exists := st.Policies[p.Name]; !exists && len(st.Policies) >= MaxPolicySets {
			return deny(ReasonTooLarge)
		}
		if p.Mode == PolicyActive && l.evolution() {
			l.recordVersion(c, p.Name, p.Text, "") // before the record changes: it seeds a new history
		}
		st.Policies[p.Name] = &PolicyRecord{Name: p.Name, Text: p.Text, Mode: p.Mode, Version: st.Seq + 1, SetBy: c.actor}
	}
	st.PolicyVersion = st.Seq + 1
	c.detail = Encode(&GovernanceDetail{Target: p.Name, Note: p.Mode})
	return outcome{decision: DecisionPermit, version: st.PolicyVersion}
}

// approvalResource is the resource a decision governs: the escalated
// call's ("*" for no such approval).
func approvalResource(l *Ledger, p *ApprovalDecide) string {
	if a := l.st.Approvals[p.ID]; a != nil {
		return a.Resource
	}
	return "*"
}

func applyApprovalDecide(l *Ledger, c *call, p *ApprovalDecide) outcome {
	a := l.st.Approvals[p.ID]
	if a == nil || a.State != ApprovalPending || c.now >= a.Expires {
		return deny(ReasonApprovalInvalid)
	}
	if r := l.approverReason(c.cap, a); r != ReasonOK {
		return deny(r)
	}
	a.DecidedBy = c.actor
	reason := ReasonApprovalDenied
	if p.Approve {
		a.State, reason = ApprovalApproved, ReasonApprovalApproved
	} else {
		a.State = ApprovalDenied
	}
	c.detail = Encode(&GovernanceDetail{Target: a.ID, Note: a.Op + " " + a.Resource})
	return outcome{decision: DecisionPermit, reason: reason, id: a.ID}
}

func haltTarget(entity string) string {
	if entity == "" {
		return "*"
	}
	return entity
}

func applyHalt(l *Ledger, c *call, p *HaltCmd) outcome {
	if (p.Entity != "" && !validName(p.Entity)) || len(p.Reason) > 1024 {
		return deny(ReasonInvalidArgument)
	}
	l.st.Halts[p.Entity] = &Halt{Entity: p.Entity, Reason: p.Reason, By: c.actor, Seq: l.st.Seq + 1}
	c.detail = Encode(&GovernanceDetail{Target: c.subject, Note: p.Reason})
	return outcome{decision: DecisionPermit}
}

func applyResume(l *Ledger, c *call, p *HaltCmd) outcome {
	if _, ok := l.st.Halts[p.Entity]; !ok {
		return deny(ReasonNotHalted)
	}
	delete(l.st.Halts, p.Entity)
	c.detail = Encode(&GovernanceDetail{Target: c.subject, Note: p.Reason})
	return outcome{decision: DecisionPermit}
}
