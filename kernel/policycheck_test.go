package kernel

import (
	"errors"
	"testing"
)

func TestValidatePolicy(t *testing.T) {
	good := []string{
		`forbid(principal, action, resource) when { resource.path like "orders/vip/*" };`,
		`@escalate("big payment") forbid(principal, action == Action::"payments.send", resource) when { context.posture == "critical" };`,
		`forbid(principal, action == Action::"custom.op", resource) unless { principal.tier == "trusted" && principal.trust > 700 };`,
	}
	for _, p := range good {
		if err := ValidatePolicy("p", p); err != nil {
			t.Errorf("valid policy rejected: %v\n%s", err, p)
		}
	}
	bad := []string{
		`forbid(principal, action resource);`,
		`forbid(principal, action, resource) when { principal.clearance > 3 };`,
		`forbid(principal, action, resource) when { resource.path > 3 };`,
		`forbid(principal, action, resource) when { context.mood == "bad" };`,
	}
	for _, p := range bad {
		err := ValidatePolicy("p", p)
		if !errors.Is(err, ErrPolicyInvalid) {
			t.Errorf("invalid policy accepted (%v):\n%s", err, p)
		} else {
			t.Logf("rejected: %v", err)
		}
	}
}
