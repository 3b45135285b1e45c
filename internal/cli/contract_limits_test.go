package cli

import (
	"testing"

	"github.com/dominus-kernel/dominus/api"
)

// operator limits show|set --json: the contract's flags and fields; an
// agent is denied (exit 2); a write past the kv bound and a reused request
// id answer their reasons.
func TestContractLimits(t *testing.T) {
	k := startLiveKernel(t)
	agent := k.grant(t, "agent-l", "kv.put", "*")

	var l api.Limits
	k.as(t, k.root, "--json", "operator", "limits", "show").wantCode(t, api.ExitOK).decode(t, &l)
	if l.DedupPerCaller <= 0 || l.KVBytes <= 0 || l.Rates == nil {
		t.Fatalf("limits show --json: %+v", l)
	}

	m := k.as(t, agent, "--json", "operator", "limits", "set", "--kv-bytes", "1").wantCode(t, api.ExitDenied).jsonObject(t)
	if m["decision"] != api.DecisionDeny {
		t.Fatalf("an agent's limits set: %v", m)
	}

	m = k.as(t, k.root, "--json", "operator", "limits", "set", "--dedup-per-caller", "500", "--kv-bytes", "64", "--rate", "agent-l=50/s").wantCode(t, api.ExitOK).jsonObject(t)
	wantDecision(t, m, api.DecisionPermit, "ok")
	lim, _ := m["limits"].(map[string]any)
	rates, _ := lim["rates"].([]any)
	if lim["dedup_per_caller"] != float64(500) || lim["kv_bytes"] != float64(64) || len(rates) != 1 {
		t.Fatalf("limits set --json: %v", m)
	}
	if r0, _ := rates[0].(map[string]any); r0["entity"] != "agent-l" || r0["per_second"] != float64(50) {
		t.Fatalf("rate: %v", rates[0])
	}
	k.as(t, k.root, "--json", "operator", "limits", "show").wantCode(t, api.ExitOK).decode(t, &l)
	if l.DedupPerCaller != 500 || l.KVBytes != 64 || len(l.Rates) != 1 {
		t.Fatalf("limits show after set: %+v", l)
	}
	k.as(t, k.root, "operator", "limits", "set").wantCode(t, api.ExitError)
	k.as(t, k.root, "operator", "limits", "set", "--rate", "agent-l").wantCode(t, api.ExitError)

	wantDecision(t, k.as(t, agent, "--json", "syscall", "kv.put", "big", "--arg", "value=0123456789012345678901234567890123456789012345678901234567890123456789").
		wantCode(t, api.ExitDenied).jsonObject(t), api.DecisionDeny, "quota_exceeded")

	// A request id reused with another payload.
	wantDecision(t, k.as(t, k.root, "--json", "kv", "put", "--request-id", "rid-l", "a", "1").wantCode(t, api.ExitOK).jsonObject(t), api.DecisionPermit, "ok")
	wantDecision(t, k.as(t, k.root, "--json", "kv", "put", "--request-id", "rid-l", "a", "2").wantCode(t, api.ExitDenied).jsonObject(t), api.DecisionDeny, "request_id_reused")
}

// operator limits set --evolve-auto-promote: "never" by default, set to
// tightening and back; a value outside the two is a usage error.
func TestContractEvolveAutoPromote(t *testing.T) {
	k := startLiveKernel(t)
	var l api.Limits
	k.as(t, k.root, "--json", "operator", "limits", "show").wantCode(t, api.ExitOK).decode(t, &l)
	if l.EvolveAutoPromote != "never" {
		t.Fatalf("default evolve_auto_promote %q", l.EvolveAutoPromote)
	}
	k.as(t, k.root, "operator", "limits", "set", "--evolve-auto-promote", "always").wantCode(t, api.ExitError)
	k.as(t, k.root, "--json", "operator", "limits", "set", "--evolve-auto-promote", "tightening").wantCode(t, api.ExitOK)
	k.as(t, k.root, "--json", "operator", "limits", "show").wantCode(t, api.ExitOK).decode(t, &l)
	if l.EvolveAutoPromote != "tightening" {
		t.Fatalf("after set: %q", l.EvolveAutoPromote)
	}
	k.as(t, k.root, "operator", "limits", "set", "--evolve-auto-promote", "never").wantCode(t, api.ExitOK)
	k.as(t, k.root, "--json", "operator", "limits", "show").wantCode(t, api.ExitOK).decode(t, &l)
	if l.EvolveAutoPromote != "never" {
		t.Fatalf("after never: %q", l.EvolveAutoPromote)
	}
}
