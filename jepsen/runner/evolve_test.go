package runner

import (
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/api"
)

func evo(phase string, step int64, vs ...api.EvolveVerdict) *api.Evolution {
	e := &api.Evolution{ID: "ev-9", Name: evolveSet, Phase: phase, Steps: []int64{25, 100}, Step: step, Verdicts: vs}
	if phase == api.PhaseCanary || phase == api.PhasePaused || phase == api.PhaseAwaitingPromotion {
		e.Weight = e.Steps[step]
	}
	return e
}

func vd(phase string, step, weight int64, verdict string, seq uint64) api.EvolveVerdict {
	return api.EvolveVerdict{Phase: phase, Step: step, Weight: weight, Verdict: verdict, Seq: seq}
}

func TestReplayVerdicts(t *testing.T) {
	steps := []int64{25, 100}
	shadowOK := vd(api.PhaseShadow, 0, 0, "successful", 10)
	c25 := vd(api.PhaseCanary, 0, 25, "successful", 20)
	c100 := vd(api.PhaseCanary, 1, 100, "successful", 30)
	for _, tc := range []struct {
		name     string
		e        *api.Evolution
		promoted bool
		want     string // "" valid, else a substring of the first violation
		resumes  int
	}{
		{"just started", evo(api.PhaseShadow, 0), false, "", 0},
		{"in canary 100", evo(api.PhaseCanary, 1, shadowOK, c25), false, "", 0},
		{"awaiting", evo(api.PhaseAwaitingPromotion, 1, shadowOK, c25, c100), false, "", 0},
		{"promoted by the runner", evo(api.PhasePromoted, 1, shadowOK, c25, c100), true, "", 0},
		{"promoted by nobody", evo(api.PhasePromoted, 1, shadowOK, c25, c100), false, "lead to awaiting_promotion", 0},
		{"rolled back", evo(api.PhaseRolledBack, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "failed", 20)), false, "", 0},
		{"paused", evo(api.PhasePaused, 1, shadowOK, c25, vd(api.PhaseCanary, 1, 100, "inconclusive", 30)), false, "", 0},
		{"phase ahead of its verdicts", evo(api.PhaseCanary, 0), false, "lead to shadow", 0},
		{"step skipped", evo(api.PhaseCanary, 1, shadowOK, c100), false, "judges canary 100% step 1", 0},
		{"verdict after rollback", evo(api.PhaseRolledBack, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "failed", 20), c100), false, "after the evolution was rolled_back", 0},
		{"seqs out of order", evo(api.PhaseCanary, 1, shadowOK, vd(api.PhaseCanary, 0, 25, "successful", 5)), false, "not after", 0},
		{"wrong step in canary", evo(api.PhaseCanary, 0, shadowOK, c25), false, "canary step 0, but its verdicts lead to step 1", 0},
		{"resumed, step again", evo(api.PhaseCanary, 1, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20), vd(api.PhaseCanary, 0, 25, "successful", 25)), false, "", 1},
		{"resumed, no verdict yet", evo(api.PhaseCanary, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20)), false, "", 1},
		{"resumed by nobody", evo(api.PhaseCanary, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20)), false, "lead to paused", 0},
		{"more resumes than asked", evo(api.PhaseCanary, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20), vd(api.PhaseCanary, 0, 25, "inconclusive", 22)), false, "after the evolution was paused", 0},
		{"resumed to the wrong step", evo(api.PhaseCanary, 1, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20), c100), false, "judges canary 100% step 1", 1},
	} {
		got := replayVerdicts(tc.e, steps, tc.promoted, tc.resumes)
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%s: %v", tc.name, got)
		case tc.want != "" && (len(got) == 0 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEvolutionVerdictNeedsAgreement(t *testing.T) {
	shadowOK := vd(api.PhaseShadow, 0, 0, "successful", 10)
	ev := &evolution{id: "ev-9", steps: []int64{25, 100}, seen: []phaseSeen{{Phase: api.PhaseShadow}, {Phase: api.PhaseCanary, Weight: 25, At: 7}}}
	ev.final = []nodeEvolution{{Node: "n1", Evo: evo(api.PhaseCanary, 0, shadowOK)}, {Node: "n2", Evo: evo(api.PhaseCanary, 0, shadowOK)}}
	if v := ev.verdict(); !v.Valid || !strings.Contains(v.Summary, "canary 25%") || !strings.Contains(v.Summary, "shadow (0s) → canary 25% (7s)") {
		t.Fatalf("agreeing nodes: %+v", v)
	}
	ev.final[1].Evo = evo(api.PhaseShadow, 0)
	if v := ev.verdict(); v.Valid || !strings.Contains(v.Summary, "n1 is canary 25%") {
		t.Fatalf("n2 behind: %+v", v)
	}
	ev.final[1] = nodeEvolution{Node: "n2", Err: "exit 1"}
	if v := ev.verdict(); v.Valid || !strings.Contains(v.Summary, "n2: no answer") {
		t.Fatalf("n2 silent: %+v", v)
	}
	ev.final = nil
	if v := ev.verdict(); v.Valid {
		t.Fatalf("never read: %+v", v)
	}
	ev.final = []nodeEvolution{{Node: "n1", Evo: evo("promoting", 0, shadowOK)}}
	if v := ev.verdict(); v.Valid || !strings.Contains(v.Summary, "not a legal one") {
		t.Fatalf("illegal phase: %+v", v)
	}
}
