package runner

import (
	"fmt"
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
		aborted  bool
	}{
		{"just started", evo(api.PhaseShadow, 0), false, "", 0, false},
		{"in canary 100", evo(api.PhaseCanary, 1, shadowOK, c25), false, "", 0, false},
		{"awaiting", evo(api.PhaseAwaitingPromotion, 1, shadowOK, c25, c100), false, "", 0, false},
		{"promoted by the runner", evo(api.PhasePromoted, 1, shadowOK, c25, c100), true, "", 0, false},
		{"promoted by nobody", evo(api.PhasePromoted, 1, shadowOK, c25, c100), false, "lead to awaiting_promotion", 0, false},
		{"rolled back", evo(api.PhaseRolledBack, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "failed", 20)), false, "", 0, false},
		{"paused", evo(api.PhasePaused, 1, shadowOK, c25, vd(api.PhaseCanary, 1, 100, "inconclusive", 30)), false, "", 0, false},
		{"phase ahead of its verdicts", evo(api.PhaseCanary, 0), false, "lead to shadow", 0, false},
		{"step skipped", evo(api.PhaseCanary, 1, shadowOK, c100), false, "judges canary 100% step 1", 0, false},
		{"verdict after rollback", evo(api.PhaseRolledBack, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "failed", 20), c100), false, "after the evolution was rolled_back", 0, false},
		{"seqs out of order", evo(api.PhaseCanary, 1, shadowOK, vd(api.PhaseCanary, 0, 25, "successful", 5)), false, "not after", 0, false},
		{"wrong step in canary", evo(api.PhaseCanary, 0, shadowOK, c25), false, "canary step 0, but its verdicts lead to step 1", 0, false},
		{"resumed, step again", evo(api.PhaseCanary, 1, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20), vd(api.PhaseCanary, 0, 25, "successful", 25)), false, "", 1, false},
		{"resumed, no verdict yet", evo(api.PhaseCanary, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20)), false, "", 1, false},
		{"resumed by nobody", evo(api.PhaseCanary, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20)), false, "lead to paused", 0, false},
		{"more resumes than asked", evo(api.PhaseCanary, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20), vd(api.PhaseCanary, 0, 25, "inconclusive", 22)), false, "after the evolution was paused", 0, false},
		{"resumed to the wrong step", evo(api.PhaseCanary, 1, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20), c100), false, "judges canary 100% step 1", 1, false},
		{"aborted when paused", evo(api.PhaseAborted, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20)), false, "", 0, true},
		{"aborted by nobody", evo(api.PhaseAborted, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "inconclusive", 20)), false, "lead to paused", 0, false},
		{"aborted after a rollback", evo(api.PhaseAborted, 0, shadowOK, vd(api.PhaseCanary, 0, 25, "failed", 20)), false, "lead to rolled_back", 0, true},
	} {
		got := replayVerdicts(tc.e, steps, evolution{id: "ev-9", promoted: tc.promoted, resumes: tc.resumes, aborted: tc.aborted})
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
	c25 := vd(api.PhaseCanary, 0, 25, "successful", 20)
	c100 := vd(api.PhaseCanary, 1, 100, "successful", 30)
	first := evo(api.PhasePromoted, 1, shadowOK, c25, c100)
	second := evo(api.PhaseCanary, 0, shadowOK)
	second.ID = "ev-40"
	both := func(e *api.Evolution) []nodeEvolution {
		return []nodeEvolution{{Node: "n1", Evo: e}, {Node: "n2", Evo: e}}
	}
	evs := &evolutions{steps: []int64{25, 100}, starts: 2, list: []*evolution{{id: "ev-9", promoted: true}, {id: "ev-40"}},
		final: map[string][]nodeEvolution{"": both(second), "ev-9": both(first), "ev-40": both(second)}}
	if v := evs.verdict(); !v.Valid || !strings.Contains(v.Summary, "ev-9 promoted (3 verdicts), ev-40 canary 25% (1 verdicts)") {
		t.Fatalf("agreeing nodes: %+v", v)
	}
	evs.final["ev-40"] = []nodeEvolution{{Node: "n1", Evo: second}, {Node: "n2", Evo: evo(api.PhaseShadow, 0)}}
	evs.final["ev-40"][1].Evo.ID = "ev-40"
	if v := evs.verdict(); v.Valid || !strings.Contains(v.Summary, "ev-40: n1 has ev-40 canary 25%") {
		t.Fatalf("n2 behind: %+v", v)
	}
	evs.final["ev-40"] = []nodeEvolution{{Node: "n1", Evo: second}, {Node: "n2", Err: "exit 1"}}
	if v := evs.verdict(); v.Valid || !strings.Contains(v.Summary, "n2: no answer") {
		t.Fatalf("n2 silent: %+v", v)
	}
	evs.final["ev-40"] = both(second)
	evs.list[0].promoted = false
	if v := evs.verdict(); v.Valid || !strings.Contains(v.Summary, "ev-9: phase promoted, but its 3 verdicts lead to awaiting_promotion") {
		t.Fatalf("promoted by nobody: %+v", v)
	}
	evs.list[0].promoted = true
	stranger := evo(api.PhaseShadow, 0)
	stranger.ID = "ev-77"
	evs.final[""] = both(stranger)
	if v := evs.verdict(); v.Valid || !strings.Contains(v.Summary, "ev-77 is not one the runner started") {
		t.Fatalf("unknown newest: %+v", v)
	}
	evs.final[""] = both(second)
	open := evo(api.PhasePaused, 1, shadowOK, c25, vd(api.PhaseCanary, 1, 100, "inconclusive", 30))
	evs.final["ev-9"] = both(open)
	if v := evs.verdict(); v.Valid || !strings.Contains(strings.Join(v.Violations, "; "), "2 evolutions of jepsen-evolve are open at once") {
		t.Fatalf("two open: %+v", v)
	}
	evs.final["ev-9"] = both(evo("promoting", 0, shadowOK))
	if v := evs.verdict(); v.Valid || !strings.Contains(v.Summary, "not a legal one") {
		t.Fatalf("illegal phase: %+v", v)
	}
	evs.final = nil
	if v := evs.verdict(); v.Valid {
		t.Fatalf("never read: %+v", v)
	}
}

func TestCandidatesTighten(t *testing.T) {
	for n := 1; n < 4; n++ {
		prev, cand := evolveCandidate(n-1), evolveCandidate(n)
		if !strings.HasPrefix(cand, prev) || strings.Count(cand, "forbid(") != n+1 || strings.Contains(cand, "permit(") {
			t.Fatalf("candidate %d is not candidate %d and one forbid more:\n%s", n, n-1, cand)
		}
	}
}

func TestPhasesALinePerEvolution(t *testing.T) {
	evs := &evolutions{}
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("ev-%d", i)
		evs.seen = append(evs.seen, phaseSeen{ID: id, Phase: api.PhaseShadow, At: float64(10 * i)}, phaseSeen{ID: id, Phase: api.PhaseCanary, Weight: 25, At: float64(10*i + 5)})
	}
	got := evs.phases(6)
	if len(got) != 4 || got[1] != "evolution ev-1: shadow (10s) → canary 25% (15s)" {
		t.Fatalf("%q", got)
	}
	if got := evs.phases(3); len(got) != 3 || got[2] != "... and 2 more evolutions (run.json)" {
		t.Fatalf("%q", got)
	}
}
