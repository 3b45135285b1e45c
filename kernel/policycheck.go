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
)

// The Cedar schema policies are validated against before they are
// proposed: the entities and attributes the gate provides (every one has a
// default), and one action per op. Validation runs at the edge, not in the
// FSM: the FSM only parses, so a change in the validator can never change
// how an old ledger replays.
const schemaPrelude = `entity Entity { tier: String, trust: Long, name: String };
entity Resource { path: String };
`

const schemaContext = `{ posture: String, deviation: Long, ledger_time: Long, domain: String, op: String }`

// knownOps are always declared, so policies may name them before any
// capability uses them.
var knownOps = []string{"kv.put", "kv.get", "kv.delete", "kv.cas", "email.send", "webhook.call", "exec.run", "payments.send"}

var actionRef = regexp.MustCompile(`Action::"((?:[^"\\]|\\.)*)"`)

// ErrPolicyInvalid wraps the parser's or validator's message.
var ErrPolicyInvalid = errors.New("policy rejected")

// ValidatePolicy parses text as a Cedar policy set and validates every
// policy against the gate's schema.
func ValidatePolicy(name, text string) error {
	ps, err := cedar.NewPolicySetFromBytes(name, []byte(text))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPolicyInvalid, err)
	}
	ops := map[string]bool{}
	for _, op := range knownOps {
		ops[op] = true
	}
	for _, m := range actionRef.FindAllStringSubmatch(text, -1) {
		if op, err := strconv.Unquote(`"` + m[1] + `"`); err == nil {
			ops[op] = true
		}
	}
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(schemaPrelude)
	for _, op := range names {
		fmt.Fprintf(&b, "action %s appliesTo { principal: Entity, resource: Resource, context: %s };\n", strconv.Quote(op), schemaContext)
	}
	var s schema.Schema
	if err := s.UnmarshalCedar([]byte(b.String())); err != nil {
		return fmt.Errorf("policy schema: %w", err)
	}
	rs, err := s.Resolve()
	if err != nil {
		return fmt.Errorf("policy schema: %w", err)
	}
	v := validate.New(rs)
	var problems []string
	for id, p := range ps.All() {
		if err := v.Policy(string(id), (*xast.Policy)(p.AST())); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrPolicyInvalid, strings.Join(problems, "; "))
	}
	return nil
}
