package cli

import (
	"testing"

	"github.com/dominus-kernel/dominus/api"
)

// sense target show|set --json: the contract's flags and fields; an agent
// setting a target is denied (exit 2); a malformed value is a usage error.
func TestContractSenseTarget(t *testing.T) {
	k := startLiveKernel(t)
	agent := k.grant(t, "agent-s", "kv.put", "*")

	var st api.SenseTarget
	k.as(t, k.root, "--json", "sense", "target", "show").wantCode(t, api.ExitOK).decode(t, &st)
	if st.AlertsPerDayMilli != 100 || st.Model != 2 {
		t.Fatalf("sense target show --json: %+v", st)
	}
	m := k.as(t, agent, "--json", "sense", "target", "set", "--alerts-per-day-milli", "1000000").wantCode(t, api.ExitDenied).jsonObject(t)
	if m["reason"] != "forbidden" {
		t.Fatalf("an agent's sense target set: %v", m)
	}
	m = k.as(t, k.root, "--json", "sense", "target", "set", "--alerts-per-day-milli", "250").wantCode(t, api.ExitOK).jsonObject(t)
	if tg, _ := m["target"].(map[string]any); tg["alerts_per_day_milli"] != float64(250) {
		t.Fatalf("sense target set --json: %v", m)
	}
	k.as(t, k.root, "--json", "sense", "target", "show").wantCode(t, api.ExitOK).decode(t, &st)
	if st.AlertsPerDayMilli != 250 {
		t.Fatalf("sense target after set: %+v", st)
	}
	k.as(t, k.root, "sense", "target", "set", "--alerts-per-day-milli", "0").wantCode(t, api.ExitError)
	k.as(t, k.root, "sense", "target", "set").wantCode(t, api.ExitError)
}
