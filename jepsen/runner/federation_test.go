package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
	"github.com/dominus-kernel/dominus/jepsen/nemesis"
)

func TestFedConfigDefaultsAndBound(t *testing.T) {
	var c FedConfig
	c.defaults()
	if c.PassportLifetime != 20*time.Second || c.RenewEvery != time.Second || c.StandingSlack != 30*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	if c.Bound() != 50*time.Second {
		t.Fatalf("bound %s, want lifetime + slack = 50s", c.Bound())
	}
	if c.SovereignPrefix == c.APrefix || c.APrefix == c.BPrefix || c.APrefix == "127.0.90" || c.BPrefix == "127.0.90" {
		t.Fatalf("kernel addresses overlap each other or the single-kernel run's 127.0.90: %s %s %s", c.SovereignPrefix, c.APrefix, c.BPrefix)
	}
}

func TestFedSummaryAndCoverage(t *testing.T) {
	cfg := FedConfig{Label: "federation", Seed: 9, Duration: 45 * time.Second, Kinds: nemesis.FedKinds, ClientsA: 3, ClientsB: 2}
	cfg.defaults()
	res := &Result{Dir: "/r", Repro: "go run ./jepsen/cmd/jepsen -federation -seed 9", Verdicts: []checker.Verdict{
		{Checker: "convergence[a]", Valid: true, Summary: "fine"},
		{Checker: "fed-revocation", Summary: "1 violation(s)", Violations: []string{"applied after"}, ViolationCount: 1},
	}, Stats: Stats{Ops: 3, OK: 2, Fail: 1, ByF: map[string]history.Counts{checker.FFedCall: {OK: 2, Fail: 1}}}}
	s := FedSummary(res, cfg)
	for _, want := range []string{"PASS convergence[a]", "FAIL fed-revocation", "- applied after", "RESULT: INVALID", "-federation -seed 9", "bound 50s", "fed-call   ok 2, fail 1"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	v := coverage(nemesis.FedKinds, []nemesis.Fault{{Kind: nemesis.BusCut}, {Kind: nemesis.RevokePassport}}, nemesis.FedSummary)
	if v.Valid || !strings.Contains(v.Summary, "kill-domain-leader was never injected") {
		t.Fatalf("missing kind: %+v", v)
	}
}
