package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/nemesis"
)

func TestSummaryPrintsReproOnFailure(t *testing.T) {
	cfg := Config{Label: "smoke", Seed: 7, Duration: 45 * time.Second, Kinds: []nemesis.Kind{nemesis.Kill}, Clients: 5, OpTimeout: 2 * time.Second}
	res := &Result{Dir: "/r", Repro: "JEPSEN_SEED=7 make jepsen-smoke", Verdicts: []checker.Verdict{
		{Checker: "linearizable", Valid: true, Summary: "fine"},
		{Checker: "request-ids", Summary: "1 violation(s)", Violations: []string{"w1 twice"}, ViolationCount: 1},
	}}
	s := Summary(res, cfg)
	for _, want := range []string{"PASS linearizable", "FAIL request-ids", "- w1 twice", "RESULT: INVALID", "JEPSEN_SEED=7 make jepsen-smoke"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	res.Verdicts = res.Verdicts[:1]
	res.Valid = true
	if s := Summary(res, cfg); !strings.Contains(s, "RESULT: VALID") || strings.Contains(s, "reproduce") {
		t.Errorf("valid summary:\n%s", s)
	}
}

func TestCoverage(t *testing.T) {
	kinds := []nemesis.Kind{nemesis.Kill, nemesis.PartitionLeader}
	v := coverage(kinds, []nemesis.Fault{{Kind: nemesis.Kill}, {Kind: nemesis.Kill}})
	if v.Valid || !strings.Contains(v.Summary, "partition-leader was never injected") {
		t.Fatalf("missing kind: %+v", v)
	}
	if v := coverage(kinds, []nemesis.Fault{{Kind: nemesis.Kill}, {Kind: nemesis.PartitionLeader}}); !v.Valid {
		t.Fatalf("all kinds injected: %+v", v)
	}
}
