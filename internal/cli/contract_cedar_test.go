package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/api"
)

// TestContractCedarModel: the contract's Cedar model is enforced
// (Dominus::Entity, Dominus::Action, Dominus::Resource; context time,
// args_digest, posture, deviation; principal tier, trust, domain); the
// un-namespaced form is still enforced, with a deprecation warning on
// stderr; one policy may not mix them.
func TestContractCedarModel(t *testing.T) {
	k := startLiveKernel(t)
	agent := k.grant(t, "agent-a", "kv.put,payments.send", "*")
	digest := sha256.Sum256([]byte("locked-value"))
	ns := fmt.Sprintf(`forbid (principal == Dominus::Entity::"agent-a", action == Dominus::Action::"kv.put", resource == Dominus::Resource::"orders/locked")
  when { context.time > 0 && context.args_digest == "%s" && context.posture == "normal" && context.deviation >= 0 &&
         principal.domain == "default" && principal.tier == "standard" && principal.trust >= 0 };
@escalate("big payments need a human")
forbid (principal, action == Dominus::Action::"payments.send", resource is Dominus::Resource);`, hex.EncodeToString(digest[:]))
	r := k.policy(t, "ns", ns).wantCode(t, api.ExitOK)
	if strings.Contains(r.stderr, "warning:") {
		t.Fatalf("a namespaced policy drew a warning: %q", r.stderr)
	}
	m := k.as(t, agent, "--json", "syscall", "kv.put", "orders/locked", "--arg", "value=locked-value").wantCode(t, api.ExitDenied).jsonObject(t)
	wantDecision(t, m, api.DecisionDeny, "policy_forbid")
	m = k.as(t, agent, "--json", "syscall", "kv.put", "orders/locked", "--arg", "value=other").wantCode(t, api.ExitOK).jsonObject(t)
	wantDecision(t, m, api.DecisionPermit, "ok")
	m = k.as(t, agent, "--json", "syscall", "payments.send", "acct/1", "--arg", "amount=900").wantCode(t, api.ExitEscalated).jsonObject(t)
	wantDecision(t, m, api.DecisionEscalate, "approval_required")
	if m["escalation_id"] == nil || m["escalation_id"] != m["approval_id"] {
		t.Fatalf("escalation without escalation_id = approval_id: %v", m)
	}

	// The un-namespaced form of protocols 1 and 2: accepted with a
	// deprecation warning on stderr, and enforced.
	r = k.policy(t, "legacy", `forbid (principal == Entity::"agent-a", action == Action::"kv.put", resource == Resource::"orders/old");`).wantCode(t, api.ExitOK)
	if !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, "deprecated") || !strings.Contains(r.stderr, "Dominus::Entity") {
		t.Fatalf("an un-namespaced policy without a deprecation warning on stderr: %q", r.stderr)
	}
	r = k.policy(t, "legacy2", `forbid (principal, action == Action::"kv.put", resource) when { resource.path == "orders/old2" };`, "--json").wantCode(t, api.ExitOK)
	if !strings.Contains(r.stderr, "warning: ") || len(r.jsonObject(t)["warnings"].([]any)) != 1 {
		t.Fatalf("--json: want the warning on stderr and in warnings, got stderr %q stdout %s", r.stderr, r.stdout)
	}
	m = k.as(t, agent, "--json", "syscall", "kv.put", "orders/old", "--arg", "value=v").wantCode(t, api.ExitDenied).jsonObject(t)
	wantDecision(t, m, api.DecisionDeny, "policy_forbid")

	// A policy mixing the two forms, or naming an attribute the model
	// lacks, is refused and changes nothing.
	k.policy(t, "mixed", `forbid (principal == Dominus::Entity::"agent-a", action == Action::"kv.put", resource);`).wantCode(t, api.ExitError).wantStderr(t, "mixes")
	k.policy(t, "unknown", `forbid (principal, action == Dominus::Action::"kv.put", resource) when { context.mood == "bad" };`).wantCode(t, api.ExitError).wantStderr(t, "policy rejected")
	var ps []map[string]any
	k.as(t, k.root, "--json", "policy", "list").wantCode(t, api.ExitOK).decode(t, &ps)
	for _, p := range ps {
		if p["name"] == "mixed" || p["name"] == "unknown" {
			t.Fatalf("a refused policy was installed: %v", p)
		}
	}
}

// TestContractProtocolUpgrade: a kernel sealed under protocol 2 refuses
// the namespaced model, naming the upgrade; operator protocol status and
// upgrade answer as contracted; after the upgrade the model is enforced.
func TestContractProtocolUpgrade(t *testing.T) {
	k := startLiveKernelWith(t, "--protocol", "2")
	agent := k.grant(t, "agent-a", "kv.put", "*")
	ns := `forbid (principal, action == Dominus::Action::"kv.put", resource == Dominus::Resource::"orders/locked");`
	k.policy(t, "ns", ns).wantCode(t, api.ExitError).wantStderr(t, "dominus operator protocol upgrade 3")

	var st struct {
		InForce uint16 `json:"in_force"`
		Members []struct {
			Node     string `json:"node"`
			Supports uint16 `json:"supports"`
		} `json:"members"`
		History []struct {
			Version uint16 `json:"version"`
			Seq     uint64 `json:"seq"`
			By      string `json:"by"`
		} `json:"history"`
	}
	k.as(t, k.root, "--json", "operator", "protocol", "status").wantCode(t, api.ExitOK).decode(t, &st)
	if st.InForce != 2 || len(st.Members) != 1 || st.Members[0].Node != "cli" || st.Members[0].Supports < 3 ||
		len(st.History) != 1 || st.History[0].Version != 2 || st.History[0].Seq != 1 || st.History[0].By != "genesis" {
		t.Fatalf("protocol status under 2: %+v", st)
	}

	// An agent token cannot upgrade; an operator token can.
	k.as(t, agent, "operator", "protocol", "upgrade", "3").wantCode(t, api.ExitDenied).wantStderr(t, "operator.manage")
	k.as(t, k.root, "operator", "protocol", "upgrade", "0").wantCode(t, api.ExitError)
	m := k.as(t, k.root, "--json", "operator", "protocol", "upgrade", "3").wantCode(t, api.ExitOK).jsonObject(t)
	wantDecision(t, m, api.DecisionPermit, "ok")
	if m["in_force"] != float64(3) {
		t.Fatalf("upgrade answer %v", m)
	}
	seq := m["seq"].(float64)
	k.as(t, k.root, "operator", "protocol", "upgrade", "3").wantCode(t, api.ExitError).wantStderr(t, "already in force")

	k.as(t, k.root, "--json", "operator", "protocol", "status").wantCode(t, api.ExitOK).decode(t, &st)
	if st.InForce != 3 || len(st.History) != 2 || st.History[1].Version != 3 || float64(st.History[1].Seq) != seq || st.History[1].By != "root" {
		t.Fatalf("protocol status after the upgrade: %+v", st)
	}
	k.policy(t, "ns", ns).wantCode(t, api.ExitOK)
	m = k.as(t, agent, "--json", "syscall", "kv.put", "orders/locked", "--arg", "value=v").wantCode(t, api.ExitDenied).jsonObject(t)
	wantDecision(t, m, api.DecisionDeny, "policy_forbid")
}
