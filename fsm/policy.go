package fsm

import (
	"iter"
	"sort"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/dominus-kernel/dominus/temporal"
)

// Cedar governance policy, evaluated inside the FSM.
//
// Capability scope says what a process may ask for; policy says what the
// kernel will allow now. Policies restrict: a matching `forbid` denies
// (policy_forbid), a matching forbid annotated @escalate("why") routes the
// call to human approval, and any evaluation error denies (policy_error),
// because cedar-go would otherwise skip an erroring forbid and fail open.
// `permit` policies are accepted and evaluated but cannot widen a
// capability. Sets and the policies inside them are evaluated in sorted
// order (cedar-go keeps policies in a Go map), and matches are recorded in
// that order.

// The Cedar model. From protocol 3 (ProtocolContract) the gate judges a
// call with principal Dominus::Entity::"<entity>" (attributes tier, trust,
// domain, name), action Dominus::Action::"<op>", resource
// Dominus::Resource::"<path>" (attribute path) and context posture, time
// (unix seconds, ledger time), args_digest, deviation, ledger_time, domain
// and op. Policies written with the un-namespaced types of protocols 1 and
// 2 (Entity::, Action::, Resource::) are still accepted and judged as they
// were written: each policy is classified once, when it is compiled, and
// evaluated against a request whose entity types are its own. Ledgers
// under protocols 1 and 2 are judged with the un-namespaced types and the
// context they had (posture, deviation, ledger_time, domain, op; principal
// tier, trust, name).
const (
	CedarNamespace = "Dominus"
	cedarEntity    = "Entity"
	cedarAction    = "Action"
	cedarResource  = "Resource"
)

// Defaults for every attribute a policy may read, until the sensing work
// fills them.
const (
	DefaultTier      = "standard"
	DefaultTrust     = 500
	DefaultPosture   = "normal"
	DefaultDeviation = 0
)

// CedarRequest is the complete input a syscall was judged on; it is
// recorded in the event so history can be re-judged exactly.
type CedarRequest struct {
	Principal  string `codec:"principal"`
	Tier       string `codec:"tier"`
	Trust      int64  `codec:"trust"`
	Action     string `codec:"action"`
	Resource   string `codec:"resource"`
	Posture    string `codec:"posture"`
	Deviation  int64  `codec:"deviation"`
	LedgerTime int64  `codec:"ledger_time"` // unix seconds
	Domain     string `codec:"domain"`
	// ArgsDigest is the digest of the call's arguments (context.args_digest
	// from protocol 3). It is not encoded with the request: the syscall
	// detail that records the request carries it beside it.
	ArgsDigest string `codec:"-"`
	// History is context.history (protocol 7 on; temporal.go): the
	// entity's activity before this call.
	History *HistoryContext `codec:"history,omitempty"`
	// Cohort is the evolution cohort the call was judged in while a
	// canary runs ("ev-N:canary" or "ev-N:baseline", protocol 8,
	// evolve.go); "" otherwise. It is recorded, never a Cedar attribute.
	Cohort string `codec:"cohort,omitempty"`
}

type policyEntry struct {
	id       string // "set/policyN"
	policy   *cedar.Policy
	escalate string // the @escalate reason, "" if none
	hasEsc   bool
	// legacy: the policy names un-namespaced entity types (PolicyForm),
	// so it is judged against a request with those types.
	legacy bool
}

type CompiledSet struct {
	name    string
	mode    string
	version uint64
	entries []policyEntry
	// readsHistory: the text names "history", so it may read
	// context.history; the record is built only for sets that may (a
	// policy cannot reach an attribute without naming it).
	readsHistory bool
}

// CompilePolicySet parses a named Cedar policy set into its deterministic
// evaluation order.
func CompilePolicySet(name, mode string, version uint64, text string) (*CompiledSet, error) {
	ps, err := cedar.NewPolicySetFromBytes(name, []byte(text))
	if err != nil {
		return nil, err
	}
	cs := &CompiledSet{name: name, mode: mode, version: version, readsHistory: strings.Contains(text, "history")}
	for id, p := range ps.All() {
		e := policyEntry{id: name + "/" + string(id), policy: p}
		e.legacy, _ = PolicyForm(p)
		if why, ok := p.Annotations()["escalate"]; ok {
			e.escalate, e.hasEsc = string(why), true
		}
		cs.entries = append(cs.entries, e)
	}
	sort.Slice(cs.entries, func(i, j int) bool { return cs.entries[i].id < cs.entries[j].id })
	return cs, nil
}

// setsFor returns the compiled ACTIVE or SHADOW sets, rebuilt only when
// the policy version changes (not on every syscall).
func (l *Ledger) setsFor(mode string) []*CompiledSet {
	if !l.setsOK || l.setsVersion != l.st.PolicyVersion {
		l.activeSets = l.compiledSets(PolicyActive)
		l.shadowSets = l.compiledSets(PolicyShadow)
		l.setsVersion, l.setsOK = l.st.PolicyVersion, true
	}
	if mode == PolicyShadow {
		return l.shadowSets
	}
	return l.activeSets
}

// compiledSets returns the compiled sets of the given mode, sorted by name.
func (l *Ledger) compiledSets(mode string) []*CompiledSet {
	if l.policies == nil {
		l.policies = map[string]*CompiledSet{}
	}
	names := make([]string, 0, len(l.st.Policies))
	for name := range l.st.Policies { // detcheck:ordered sorted below before use
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*CompiledSet
	for _, name := range names {
		rec := l.st.Policies[name]
		if rec.Mode != mode {
			continue
		}
		cs := l.policies[name]
		if cs == nil || cs.version != rec.Version {
			var err error
			cs, err = CompilePolicySet(rec.Name, rec.Mode, rec.Version, rec.Text)
			if err != nil {
				// Only sets that parsed were ever stored; a set that no
				// longer parses is an evaluation error, never a skip.
				cs = &CompiledSet{name: name, mode: rec.Mode, version: rec.Version, entries: []policyEntry{{id: name + "/unparseable"}}}
			}
			l.policies[name] = cs
		}
		out = append(out, cs)
	}
	for name := range l.policies { // detcheck:ordered deletes only; order does not matter
		if _, ok := l.st.Policies[name]; !ok {
			delete(l.policies, name)
		}
	}
	return out
}

// PolicyOutcome is what a set of policies decided for one request.
type PolicyOutcome struct {
	Decision Decision `codec:"decision"`
	Reason   Reason   `codec:"reason"`
	Matched  []string `codec:"matched"` // forbids that matched, in evaluation order
	Errors   []string `codec:"errors"`  // policies whose evaluation failed
	Why      string   `codec:"why"`     // the escalation reason
}

type onePolicy struct {
	id cedar.PolicyID
	p  *cedar.Policy
}

func (o onePolicy) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) { yield(o.id, o.p) }
}

// EvaluatePolicies judges req against sets (in the given order) with the
// Cedar model of the given protocol version. It is pure and used both by
// the gate and by backtests.
func EvaluatePolicies(sets []*CompiledSet, req CedarRequest, protocol uint16) PolicyOutcome {
	if len(sets) == 0 {
		return PolicyOutcome{Decision: DecisionPermit, Reason: ReasonOK}
	}
	contract := protocol >= ProtocolContract
	history := false
	if req.History != nil {
		for _, cs := range sets {
			history = history || cs.readsHistory
		}
	}
	// The request under each form of entity types, built on first use.
	var forms [2]*cedarInput
	input := func(legacy bool) *cedarInput {
		i := 0
		if legacy || !contract {
			i = 1
		}
		if forms[i] == nil {
			forms[i] = buildCedarInput(req, contract, i == 1, history)
		}
		return forms[i]
	}
	var out PolicyOutcome
	allEscalate := true
	for _, cs := range sets {
		for _, e := range cs.entries {
			if e.policy == nil {
				out.Errors = append(out.Errors, e.id)
				continue
			}
			in := input(e.legacy)
			dec, diag := cedar.Authorize(onePolicy{id: cedar.PolicyID(e.id), p: e.policy}, in.entities, in.req)
			if len(diag.Errors) > 0 {
				out.Errors = append(out.Errors, e.id)
				continue
			}
			if dec == cedar.Deny && len(diag.Reasons) > 0 {
				out.Matched = append(out.Matched, e.id)
				if e.hasEsc {
					if out.Why == "" {
						out.Why = e.escalate
					}
				} else {
					allEscalate = false
				}
			}
		}
	}
	switch {
	case len(out.Errors) > 0:
		out.Decision, out.Reason = DecisionDeny, ReasonPolicyError
	case len(out.Matched) > 0 && !allEscalate:
		out.Decision, out.Reason = DecisionDeny, ReasonPolicyForbid
	case len(out.Matched) > 0:
		out.Decision, out.Reason = DecisionEscalate, ReasonApprovalRequired
	default:
		out.Decision, out.Reason = DecisionPermit, ReasonOK
	}
	return out
}

// cedarInput is one Cedar request with its entities.
type cedarInput struct {
	entities cedar.EntityMap
	req      cedar.Request
}

// buildCedarInput builds the Cedar form of req: with the contract's
// attributes (protocol 3 on) or the earlier ones, with context.history
// when a set may read it, and with namespaced or
// un-namespaced entity types.
func buildCedarInput(req CedarRequest, contract, legacy, history bool) *cedarInput {
	typ := func(name string) types.EntityType {
		if legacy {
			return types.EntityType(name)
		}
		return types.EntityType(CedarNamespace + "::" + name)
	}
	principal := cedar.NewEntityUID(typ(cedarEntity), cedar.String(req.Principal))
	resource := cedar.NewEntityUID(typ(cedarResource), cedar.String(req.Resource))
	pattrs := cedar.RecordMap{
		"tier":  cedar.String(req.Tier),
		"trust": cedar.Long(req.Trust),
		"name":  cedar.String(req.Principal),
	}
	ctx := cedar.RecordMap{
		"posture":     cedar.String(req.Posture),
		"deviation":   cedar.Long(req.Deviation),
		"ledger_time": cedar.Long(req.LedgerTime),
		"domain":      cedar.String(req.Domain),
		"op":          cedar.String(req.Action),
	}
	if contract {
		pattrs["domain"] = cedar.String(req.Domain)
		ctx["time"] = cedar.Long(req.LedgerTime)
		ctx["args_digest"] = cedar.String(req.ArgsDigest)
	}
	if history {
		h := make(cedar.RecordMap, len(temporal.Names))
		for i, v := range req.History.Values() {
			h[types.String(temporal.Names[i])] = cedar.Long(v)
		}
		ctx["history"] = cedar.NewRecord(h)
	}
	return &cedarInput{
		entities: cedar.EntityMap{
			principal: cedar.Entity{UID: principal, Attributes: cedar.NewRecord(pattrs)},
			resource: cedar.Entity{UID: resource, Attributes: cedar.NewRecord(cedar.RecordMap{
				"path": cedar.String(req.Resource),
			})},
		},
		req: cedar.Request{
			Principal: principal,
			Action:    cedar.NewEntityUID(typ(cedarAction), cedar.String(req.Action)),
			Resource:  resource,
			Context:   cedar.NewRecord(ctx),
		},
	}
}

// PolicyForm reports which forms of the gate's entity types a policy
// names: legacy for Entity, Action or Resource without a namespace,
// namespaced for Dominus::Entity, Dominus::Action or Dominus::Resource.
// A policy that names neither reads only attributes and is judged the
// same under both. Other types are neither.
func PolicyForm(p *cedar.Policy) (legacy, namespaced bool) {
	see := func(t types.EntityType) {
		switch string(t) {
		case cedarEntity, cedarAction, cedarResource:
			legacy = true
		case CedarNamespace + "::" + cedarEntity, CedarNamespace + "::" + cedarAction, CedarNamespace + "::" + cedarResource:
			namespaced = true
		}
	}
	var value func(v types.Value)
	value = func(v types.Value) {
		switch v := v.(type) {
		case types.EntityUID:
			see(v.Type)
		case types.Set:
			for e := range v.All() {
				value(e)
			}
		case types.Record:
			for _, e := range v.All() {
				value(e)
			}
		}
	}
	scope := func(s any) {
		switch s := s.(type) {
		case xast.ScopeTypeEq:
			see(s.Entity.Type)
		case xast.ScopeTypeIn:
			see(s.Entity.Type)
		case xast.ScopeTypeInSet:
			for _, e := range s.Entities {
				see(e.Type)
			}
		case xast.ScopeTypeIs:
			see(s.Type)
		case xast.ScopeTypeIsIn:
			see(s.Type)
			see(s.Entity.Type)
		}
	}
	a := p.AST()
	scope(a.Principal)
	scope(a.Action)
	scope(a.Resource)
	for _, c := range a.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeValue:
				value(n.Value)
			case xast.NodeTypeIs:
				see(n.EntityType)
			case xast.NodeTypeIsIn:
				see(n.EntityType)
			}
			return true
		})
	}
	return legacy, namespaced
}
