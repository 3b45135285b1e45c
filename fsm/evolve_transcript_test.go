package fsm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Evolution scenarios reviewed as transcripts (testdata/evolve/*.txt,
// rewritten with -update): every evolution event, with its decision,
// phase and verdict, and a sample of the gate's decisions with their
// cohorts. A change in a cohort, a count, a p-value or a verdict shows
// up as a diff.

type transcript struct {
	w *evoWorld
	b strings.Builder
}

func (tr *transcript) line(format string, args ...any) { fmt.Fprintf(&tr.b, format+"\n", args...) }

// event records an evolution command's event.
func (tr *transcript) event(what string, a Applied) {
	if a.Event == nil {
		tr.line("%s: no event", what)
		return
	}
	tr.line("%s: seq %d %s %s %s", what, a.Event.Seq, a.Event.Type, a.Result.Decision, a.Result.Reason)
	var d EvolveDetail
	if a.Event.Type == CmdPolicyRollback || Decode(a.Event.Detail, &d) != nil || d.ID == "" {
		return
	}
	tr.line("  phase %s weight %d", d.Phase, d.Weight)
	if v := d.Verdict; v != nil {
		tr.line("  verdict %s %s (step %d, weight %d) %s", v.Phase, v.Verdict, v.Step, v.Weight, v.Note)
		if s := v.Shadow; s != nil {
			tr.line("  shadow judged %d changed %d transitions %v entities %d more %v", s.Judged, s.Changed, s.Transitions, len(s.Entities), s.EntitiesMore)
		}
		for _, m := range v.Metrics {
			tr.line("  %-17s canary %7d/%-4d baseline %7d/%-4d threshold %6d %-22s p %7d %s", m.Name, m.Canary, m.CanaryN, m.Baseline, m.BaselineN, m.Threshold, m.Test, m.P, m.Outcome)
		}
	}
}

// sample records the gate's decision for six agents, with cohorts:
// while a cohort is drawn, the first three in it and the first three
// outside it.
func (tr *transcript) sample() {
	var picks []int
	e := tr.w.State().CurrentEvolution()
	in, out := 0, 0
	for i := 0; i < evoAgents && len(picks) < 6; i++ {
		switch {
		case e == nil || e.Weight() == 0:
			picks = append(picks, i)
		case e.InCanary(evoAgent(i)) && in < 3:
			picks, in = append(picks, i), in+1
		case !e.InCanary(evoAgent(i)) && out < 3:
			picks, out = append(picks, i), out+1
		}
	}
	for _, i := range picks {
		a := tr.w.put(i, fmt.Sprintf("orders/%d", i))
		d := syscallDetail(tr.w.t, a)
		cohort := d.Request.Cohort
		if cohort == "" {
			cohort = "-"
		}
		tr.line("  %s kv.put orders/%d: %s %s cohort %s shadow %d", evoAgent(i), i, a.Result.Decision, a.Result.Reason, cohort, len(d.Shadow))
	}
}

func (tr *transcript) check(t *testing.T, name string) {
	t.Helper()
	path := filepath.Join("testdata", "evolve", name+".txt")
	got := tr.b.String()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("transcript %s differs (run with -update and review the diff):\n%s", path, got)
	}
}

func TestEvolutionTranscripts(t *testing.T) {
	t.Run("regression_rolled_back", func(t *testing.T) {
		tr := &transcript{w: newEvoWorld(t)}
		w := tr.w
		a := w.as(testRootToken[:], CmdEvolveStart, &EvolveStart{Name: "base", Text: evoRegression, Steps: []int64{25, 100}, WindowNs: evoWindow, MinShadow: 20})
		tr.event("evolve.start", a)
		id := a.Result.ID
		tr.sample()
		w.traffic(id, 0)
		tr.event("evolve.tick", w.tick(id))
		tr.sample()
		w.traffic(id, 10)
		tr.event("evolve.tick", w.tick(id))
		tr.sample()
		tr.event("evolve.resume", w.human(CmdEvolveResume, id))
		tr.check(t, "regression_rolled_back")
	})
	t.Run("promoted_and_rolled_back", func(t *testing.T) {
		tr := &transcript{w: newEvoWorld(t)}
		w := tr.w
		a := w.as(testRootToken[:], CmdEvolveStart, &EvolveStart{Name: "base", Text: evoHarmless, Steps: []int64{5, 25, 100}, WindowNs: evoWindow, MinShadow: 20})
		tr.event("evolve.start", a)
		id := a.Result.ID
		tr.event("evolve.promote (too early)", w.human(CmdEvolvePromote, id))
		for w.evo(id).Phase == PhaseShadow || w.evo(id).Phase == PhaseCanary {
			w.traffic(id, 10)
			tr.event("evolve.tick", w.tick(id))
		}
		tr.sample()
		tr.event("evolve.promote", w.human(CmdEvolvePromote, id))
		tr.event("policy.rollback", w.as(testRootToken[:], CmdPolicyRollback, &PolicyRollback{Name: "base", Version: 1}))
		for _, v := range w.State().History("base").Versions {
			tr.line("  version %d seq %d by %s via %q (%d bytes)", v.Version, v.Seq, v.By, v.Via, len(v.Text))
		}
		tr.check(t, "promoted_and_rolled_back")
	})
	t.Run("relaxation_held", func(t *testing.T) {
		tr := &transcript{w: newEvoWorld(t)}
		w := tr.w
		a := w.as(testRootToken[:], CmdEvolveStart, &EvolveStart{Name: "base", Text: evoRelaxed, Steps: []int64{50, 100}, WindowNs: evoWindow, MinShadow: 20})
		tr.event("evolve.start", a)
		id := a.Result.ID
		w.traffic(id, 0)
		w.put(0, "secret/a")
		tr.event("evolve.tick", w.tick(id))
		w.now += 5 * evoWindow
		tr.event("evolve.tick (later)", w.tick(id))
		tr.event("evolve.resume", w.human(CmdEvolveResume, id))
		tr.sample()
		tr.event("evolve.abort", w.human(CmdEvolveAbort, id))
		tr.sample()
		tr.check(t, "relaxation_held")
	})
}
