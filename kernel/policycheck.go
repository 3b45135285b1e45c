package kernel

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/temporal"
)

// The Cedar schema policies are validated against before they are
// proposed: the entities and attributes the gate provides under the
// protocol in force (every one has a default), and one action per op.
// Validation runs at the edge, not in the FSM: the FSM only parses, so a
// change in the validator can never change how an old ledger replays.
//
// From protocol 3 the schema is the contract's, in namespace Dominus;
// policies written with the un-namespaced types of protocols 1 and 2 are
// validated against the same entities without the namespace and accepted
// with a deprecation warning (the gate judges each policy against the
// types it names, fsm.PolicyForm).

// schemaEntities are the gate's entities; contract adds the attributes of
// protocol 3.
func schemaEntities(contract bool) string {
	if contract {
		return "entity Entity { tier: String, trust: Long, name: String, domain: String };\nentity Resource { path: String };\n"
	}
	return "entity Entity { tier: String, trust: Long, name: String };\nentity Resource { path: String };\n"
}

func schemaContext(contract, history bool) string {
	if history {
		return `{ posture: String, time: Long, args_digest: String, deviation: Long, ledger_time: Long, domain: String, op: String, history: ` + schemaHistory() + ` }`
	}
	if contract {
		return `{ posture: String, time: Long, args_digest: String, deviation: Long, ledger_time: Long, domain: String, op: String }`
	}
	return `{ posture: String, deviation: Long, ledger_time: Long, domain: String, op: String }`
}

// schemaHistory is the record type of context.history (protocol 7).
func schemaHistory() string {
	fields := make([]string, len(temporal.Names))
	for i, n := range temporal.Names {
		fields[i] = n + ": Long"
	}
	return "{ " + strings.Join(fields, ", ") + " }"
}

// knownOps are always declared, so policies may name them before any
// capability uses them.
var knownOps = []string{"kv.put", "kv.get", "kv.delete", "kv.cas", "email.send", "webhook.call", "exec.run", "payments.send"}

var actionRef = regexp.MustCompile(`Action::"((?:[^"\\]|\\.)*)"`)

// ErrPolicyInvalid wraps the parser's or validator's message.
var ErrPolicyInvalid = errors.New("policy rejected")

// schemaText is the gate's Cedar schema for ops, namespaced or not.
func schemaText(ops []string, contract, history, namespaced bool) string {
	var b strings.Builder
	if namespaced {
		b.WriteString("namespace " + fsm.CedarNamespace + " {\n")
	}
	b.WriteString(schemaEntities(contract))
	for _, op := range ops {
		fmt.Fprintf(&b, "action %s appliesTo { principal: Entity, resource: Resource, context: %s };\n", strconv.Quote(op), schemaContext(contract, history))
	}
	if namespaced {
		b.WriteString("}\n")
	}
	return b.String()
}

func newValidator(text string) (*validate.Validator, error) {
	var s schema.Schema
	if err := s.UnmarshalCedar([]byte(text)); err != nil {
		return nil, fmt.Errorf("policy schema: %w", err)
	}
	rs, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("policy schema: %w", err)
	}
	return validate.New(rs), nil
}

// ValidatePolicy parses text as a Cedar policy set and validates every
// policy against the gate's schema under protocol. It returns warnings
// for accepted policies written in a deprecated form.
func ValidatePolicy(name, text string, protocol uint16) ([]string, error) {
	ps, err := cedar.NewPolicySetFromBytes(name, []byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicyInvalid, err)
	}
	opSet := map[string]bool{}
	for _, op := range knownOps {
		opSet[op] = true
	}
	for _, m := range actionRef.FindAllStringSubmatch(text, -1) {
		if op, err := strconv.Unquote(`"` + m[1] + `"`); err == nil {
			opSet[op] = true
		}
	}
	ops := make([]string, 0, len(opSet))
	for op := range opSet {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	contract := protocol >= fsm.ProtocolContract
	history := protocol >= fsm.ProtocolTemporal
	plain, err := newValidator(schemaText(ops, contract, history, false))
	if err != nil {
		return nil, err
	}
	spaced, err := newValidator(schemaText(ops, contract, history, true))
	if err != nil {
		return nil, err
	}
	var problems, warnings []string
	for id, p := range ps.All() {
		legacy, namespaced := fsm.PolicyForm(p)
		v := spaced
		switch {
		case legacy && namespaced:
			problems = append(problems, fmt.Sprintf("%s: mixes %s:: types with un-namespaced Entity, Action or Resource; write every one as %s::Entity, %s::Action, %s::Resource",
				id, fsm.CedarNamespace, fsm.CedarNamespace, fsm.CedarNamespace, fsm.CedarNamespace))
			continue
		case namespaced && !contract:
			problems = append(problems, fmt.Sprintf("%s: the namespaced types %s::Entity, %s::Action and %s::Resource need protocol %d, and this kernel runs protocol %d (dominus operator protocol upgrade %d)",
				id, fsm.CedarNamespace, fsm.CedarNamespace, fsm.CedarNamespace, fsm.ProtocolContract, protocol, fsm.ProtocolContract))
			continue
		case legacy || !contract:
			v = plain
			if legacy && contract {
				warnings = append(warnings, fmt.Sprintf("%s: the un-namespaced types Entity, Action and Resource are deprecated; write %s::Entity, %s::Action and %s::Resource",
					id, fsm.CedarNamespace, fsm.CedarNamespace, fsm.CedarNamespace))
			}
		}
		if err := v.Policy(string(id), (*xast.Policy)(p.AST())); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
		}
	}
	sort.Strings(problems)
	sort.Strings(warnings)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrPolicyInvalid, strings.Join(problems, "; "))
	}
	return warnings, nil
}
