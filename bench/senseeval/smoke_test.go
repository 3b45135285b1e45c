package senseeval

import (
	"os"
	"strings"
	"testing"
)

// TestHeldOutSmoke runs the CI-sized evaluation on the held-out seeds
// (48 entities, 2 days, seeds 9001-9003) and holds the done-criteria the
// model meets on them; the measured values are logged. The full run is
// `make sense-eval` (sense/EVALUATION.md). SENSE_EVAL_SKIP=1 skips it.
func TestHeldOutSmoke(t *testing.T) {
	if testing.Short() || os.Getenv("SENSE_EVAL_SKIP") != "" {
		t.Skip("sense-eval smoke skipped")
	}
	p := HeldOut().Smoke()
	r := Result{Name: p.Name}
	for _, seed := range p.Seeds {
		t.Logf("seed %d", seed)
		r.Merge(Run(p, seed))
	}
	var b strings.Builder
	r.Print(&b)
	t.Log("\n" + b.String())

	// 33 normal entity-days hold only a handful of alerts: the bound here
	// allows for that sampling noise (0.1 is the criterion of the full
	// run, sense/EVALUATION.md).
	if fa := r.NormalFA(); fa > 0.25 {
		t.Errorf("normal entities: %.3f alerting minutes per entity-day, want ≤ 0.25 in this smoke run", fa)
	}
	if br := r.BatchRate(); br >= 0.05 {
		t.Errorf("batch runs flagged after day 1: %.1f %%, want < 5 %%", 100*br)
	}
	if er := r.EscalateRate(); er >= 0.01 {
		t.Errorf("normal calls escalating at critical posture: %.2f %%, want < 1 %%", 100*er)
	}
	if r.FirstCallNonZero != r.FirstCallEpisodes {
		t.Errorf("new-op misuse: %d of %d first calls judged with a non-zero deviation", r.FirstCallNonZero, r.FirstCallEpisodes)
	}
	if r.DriftFA() > r.NormalFA()+0.2 {
		t.Errorf("drifting entities %.3f alerting minutes per entity-day against %.3f for normal ones", r.DriftFA(), r.NormalFA())
	}
	for _, c := range []int{ClassNewOps, ClassNewResources, ClassExfilKV, ClassExfilOther} {
		if rc := r.Recall(c, 2); rc >= 0 && rc < 0.6 {
			t.Errorf("%s recall %.2f, want ≥ 0.6 in this smoke run", ClassNames[c], rc)
		}
	}
}
