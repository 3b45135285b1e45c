package kernel

import (
	"errors"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/fsm"
)

func TestValidatePolicy(t *testing.T) {
	cases := []struct {
		name     string
		protocol uint16
		text     string
		err      string // "" = accepted
		warns    int
	}{
		{"attributes only", 2, `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };`, "", 0},
		{"un-namespaced under 2", 2, `@escalate("big payment") forbid(principal, action == Action::"payments.send", resource) when { context.posture == "critical" };`, "", 0},
		{"tier and trust", 2, `forbid(principal, action == Action::"custom.op", resource) unless { principal.tier == "trusted" && principal.trust > 700 };`, "", 0},
		{"a syntax error", 2, `forbid(principal, action resource);`, "policy rejected", 0},
		{"an unknown principal attribute", 2, `forbid(principal, action, resource) when { principal.clearance > 3 };`, "policy rejected", 0},
		{"a type error", 2, `forbid(principal, action, resource) when { resource.path > 3 };`, "policy rejected", 0},
		{"an unknown context attribute", 2, `forbid(principal, action, resource) when { context.mood == "bad" };`, "policy rejected", 0},
		{"contract attributes under 2", 2, `forbid(principal, action, resource) when { context.time > 0 };`, "policy rejected", 0},
		{"namespaced under 2", 2, `forbid(principal == Dominus::Entity::"a", action, resource);`, "need protocol 3", 0},

		{"namespaced under 3", 3, `forbid(principal == Dominus::Entity::"a", action == Dominus::Action::"kv.put", resource == Dominus::Resource::"x") when { context.time > 0 && context.args_digest != "" && principal.domain == "default" };`, "", 0},
		{"namespaced set under 3", 3, `forbid(principal, action in [Dominus::Action::"kv.put", Dominus::Action::"pay.send"], resource is Dominus::Resource);`, "", 0},
		{"attributes only under 3", 3, `forbid(principal, action, resource) when { context.time > 0 && context.deviation > 0 };`, "", 0},
		{"un-namespaced under 3: a warning", 3, `forbid(principal == Entity::"a", action == Action::"kv.put", resource);`, "", 1},
		{"un-namespaced with contract attributes under 3", 3, `forbid(principal, action == Action::"kv.put", resource) when { context.args_digest == "x" };`, "", 1},
		{"mixed forms", 3, `forbid(principal == Dominus::Entity::"a", action == Action::"kv.put", resource);`, "mixes", 0},
		{"history under 7", 7, `forbid(principal, action, resource) when { context.history.denials_1h > 5 || context.history.first_seen_s < 60 && context.history.op_calls_24h > 100 };`, "", 0},
		{"history under 5", 5, `forbid(principal, action, resource) when { context.history.denials_1h > 5 };`, "policy rejected", 0},
		{"an unknown history counter under 7", 7, `forbid(principal, action, resource) when { context.history.denials_1w > 5 };`, "policy rejected", 0},
		{"a namespaced unknown attribute", 3, `forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.owner == "x" };`, "policy rejected", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			warns, err := ValidatePolicy("p", c.text, c.protocol)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("valid policy rejected: %v\n%s", err, c.text)
			case c.err != "" && (!errors.Is(err, ErrPolicyInvalid) || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("got %v, want a rejection naming %q\n%s", err, c.err, c.text)
			case len(warns) != c.warns:
				t.Fatalf("warnings %q, want %d", warns, c.warns)
			}
			if err != nil {
				t.Logf("rejected: %v", err)
			}
			for _, w := range warns {
				if !strings.Contains(w, fsm.CedarNamespace+"::Entity") {
					t.Errorf("warning %q does not name the namespaced form", w)
				}
			}
		})
	}
}
