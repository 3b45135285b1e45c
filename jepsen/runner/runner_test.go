package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
	"github.com/dominus-kernel/dominus/jepsen/nemesis"
	"github.com/dominus-kernel/dominus/jepsen/workload"
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
	v := coverage(kinds, []nemesis.Fault{{Kind: nemesis.Kill}, {Kind: nemesis.Kill}}, nemesis.Summary)
	if v.Valid || !strings.Contains(v.Summary, "partition-leader was never injected") {
		t.Fatalf("missing kind: %+v", v)
	}
	if v := coverage(kinds, []nemesis.Fault{{Kind: nemesis.Kill}, {Kind: nemesis.PartitionLeader}}, nemesis.Summary); !v.Valid {
		t.Fatalf("all kinds injected: %+v", v)
	}
}

func TestSummaryTalliesEachWorkloadOfAMix(t *testing.T) {
	wl, err := workload.Parse("kv:3,caps:1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Label: "smoke", Seed: 7, Duration: time.Second, Clients: 5, Workload: wl}
	res := &Result{Dir: "/r", Valid: true, Verdicts: []checker.Verdict{{Checker: "cap-limit", Valid: true, Summary: "fine"}},
		Stats: Stats{Ops: 10, OK: 6, Fail: 3, Info: 1,
			ByF:        map[string]history.Counts{"write": {OK: 4}, "syscall": {OK: 2, Fail: 3, Info: 1}},
			ByWorkload: map[string]history.Counts{"kv": {OK: 4}, "caps": {OK: 2, Fail: 3, Info: 1}}}}
	s := Summary(res, cfg)
	for _, want := range []string{"workload kv+caps", "workload caps  ok 2, fail 3, info 1", "workload kv    ok 4, fail 0, info 0", "syscall ok 2, fail 3, info 1"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
