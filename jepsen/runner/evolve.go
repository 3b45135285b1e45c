package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/jepsen/checker"
)

// A run with Config.Evolve installs an ACTIVE policy set at set-up and
// starts a governed evolution of it (protocol 8) before the clients and
// the nemesis start, so that its shadow phase and canary steps are
// judged, and its windows closed by evolve.tick, while the faults run.
// Both texts forbid kv.put only under paths no workload touches, and the
// candidate only adds a forbid (a tightening: a relaxation would hold it
// in shadow), so the evolution changes no decision the checkers model.
const (
	evolveSet  = "jepsen-evolve"
	evolveBase = `// jepsen: nothing under jepsen-evolve/locked/ may be written (no workload writes there).
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "jepsen-evolve/locked/*" };
`
	evolveCandidate = evolveBase + `// the candidate also locks jepsen-evolve/archive/ (no workload writes there either).
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "jepsen-evolve/archive/*" };
`
	// Short windows, so that the evolution moves through shadow and both
	// canary steps during the ops.
	evolveWindow    = 5 * time.Second
	evolveSteps     = "25,100"
	evolveMinShadow = 5
	// evolvePoll is how often the status is read during the run.
	evolvePoll = 2 * time.Second
	// evolveResumes bounds the resumes the runner asks for during the
	// ops: a canary step with fewer than 5 decisions in its cohort (the
	// cohort is drawn from a salt of the start entry, and the workload
	// has few entities) is inconclusive and pauses; the runner resumes
	// it, as an operator would, and the step runs again.
	evolveResumes = 5
)

// legalPhases are the phases an evolution may report.
var legalPhases = []string{api.PhaseShadow, api.PhaseCanary, api.PhaseAwaitingPromotion, api.PhasePromoted,
	api.PhaseRolledBack, api.PhasePaused, api.PhaseAborted}

// evolution is what a run saw of its evolution.
type evolution struct {
	mu       sync.Mutex
	id       string
	steps    []int64
	seen     []phaseSeen // each change of the phase a poll read, in order
	polls    int
	failed   int // polls without an answer (the node faulted)
	illegal  []string
	promoted bool // the runner asked for its promotion (it awaited promotion); an answer lost to a fault still counts
	resumes  int  // resumes the runner asked for (each may have been refused: not paused any more)
	final    []nodeEvolution
}

type phaseSeen struct {
	Phase  string  `json:"phase"`
	Weight int64   `json:"weight"`
	Node   string  `json:"node"`
	At     float64 `json:"at_s"` // seconds since the run's start
}

type nodeEvolution struct {
	Node string         `json:"node"`
	Evo  *api.Evolution `json:"evolution"`
	Err  string         `json:"error,omitempty"`
}

// cli runs the dominus CLI against node (its --addr) with a bounded
// attempt; a non-zero exit is an error carrying its output.
func (r *run) evolveCLI(ctx context.Context, node string, args ...string) (string, error) {
	args = append(args, "--json", "--timeout", "3s")
	if n := r.cl.Node(node); n != nil {
		args = append(args, "--addr", n.URL)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, errOut, code := r.cl.CLI(cctx, node, args...)
	if code != 0 {
		return out, fmt.Errorf("dominus %s: exit %d: %s", strings.Join(args[:2], " "), code, strings.TrimSpace(errOut+" "+out))
	}
	return out, nil
}

// startEvolution installs the base set and starts the candidate's
// evolution, through the CLI with the root token (policy.set).
func (r *run) startEvolution(ctx context.Context) error {
	dir := filepath.Join(r.dir, "evolve")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base, cand := filepath.Join(dir, "base.cedar"), filepath.Join(dir, "candidate.cedar")
	if err := os.WriteFile(base, []byte(evolveBase), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cand, []byte(evolveCandidate), 0o644); err != nil {
		return err
	}
	node := r.cl.Nodes()[0].Name
	if _, err := r.evolveCLI(ctx, node, "policy", "set", "--name", evolveSet, "--file", base); err != nil {
		return err
	}
	out, err := r.evolveCLI(ctx, node, "evolve", "start", "--name", evolveSet, "--file", cand, "--steps", evolveSteps,
		"--window", evolveWindow.String(), "--min-shadow", strconv.Itoa(evolveMinShadow))
	if err != nil {
		return err
	}
	var st api.EvolveStartResponse
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.ID == "" {
		return fmt.Errorf("evolve start: no evolution id in %q (%v)", out, err)
	}
	steps, _ := parseStepList(evolveSteps)
	r.evo = &evolution{id: st.ID, steps: steps}
	r.logf("evolution %s of policy set %s started (seq %d): steps %s%%, window %s, min shadow %d; backtest of seq %d..%d: %d evaluated, %d changed, %d relaxations",
		st.ID, evolveSet, st.Seq, evolveSteps, evolveWindow, evolveMinShadow, st.Backtest.From, st.Backtest.To, st.Backtest.Evaluated, st.Backtest.Changed, st.Backtest.Relaxations)
	return nil
}

func parseStepList(s string) ([]int64, error) {
	var out []int64
	for _, p := range strings.Split(s, ",") {
		w, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// status reads the evolution from node.
func (r *run) evolveStatus(ctx context.Context, node string) (*api.Evolution, error) {
	out, err := r.evolveCLI(ctx, node, "evolve", "status", r.evo.id)
	if err != nil {
		return nil, err
	}
	var e api.Evolution
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		return nil, fmt.Errorf("evolve status: %v", err)
	}
	return &e, nil
}

// watchEvolution reads the status from the nodes in turn every
// evolvePoll until ctx is done, records each change of phase, promotes
// the candidate (as an operator would) once it awaits promotion, and
// resumes it (up to evolveResumes times) when a step paused it. A node
// that does not answer (faulted) is skipped.
func (r *run) watchEvolution(ctx context.Context) {
	nodes := nodeNames(r.cl)
	t := time.NewTicker(evolvePoll)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.pollEvolution(ctx, nodes[i%len(nodes)], true, true)
	}
}

// pollEvolution reads node's view once and returns it (nil when it did
// not answer); promote lets it promote a candidate awaiting promotion,
// resume resume a paused one (within evolveResumes).
func (r *run) pollEvolution(ctx context.Context, node string, promote, resume bool) *api.Evolution {
	ev := r.evo
	e, err := r.evolveStatus(ctx, node)
	ev.mu.Lock()
	ev.polls++
	if err != nil {
		ev.failed++
		ev.mu.Unlock()
		return nil
	}
	if !slices.Contains(legalPhases, e.Phase) {
		ev.illegal = append(ev.illegal, fmt.Sprintf("%s reported phase %q", node, e.Phase))
	}
	if n := len(ev.seen); n == 0 || ev.seen[n-1].Phase != e.Phase || ev.seen[n-1].Weight != e.Weight {
		ev.seen = append(ev.seen, phaseSeen{Phase: e.Phase, Weight: e.Weight, Node: node, At: float64(r.clock.Now()) / 1e9})
		r.logf("evolution %s: %s reports %s", ev.id, node, describePhase(e.Phase, e.Weight))
	}
	doPromote := promote && e.Phase == api.PhaseAwaitingPromotion
	if doPromote {
		ev.promoted = true
	}
	doResume := resume && e.Phase == api.PhasePaused && ev.resumes < evolveResumes
	if doResume {
		ev.resumes++
	}
	ev.mu.Unlock()
	if doResume {
		if out, err := r.evolveCLI(ctx, node, "evolve", "resume", ev.id); err != nil {
			r.logf("evolution %s: resume through %s: %v", ev.id, node, err)
		} else {
			var resp api.EvolveResponse
			_ = json.Unmarshal([]byte(out), &resp)
			r.logf("evolution %s resumed through %s (paused after %s): phase %s", ev.id, node, e.PausedFrom, resp.Phase)
		}
	}
	if doPromote {
		if out, err := r.evolveCLI(ctx, node, "evolve", "promote", ev.id); err != nil {
			r.logf("evolution %s: promote through %s: %v (asked again while it awaits promotion)", ev.id, node, err)
		} else {
			var resp api.EvolveResponse
			_ = json.Unmarshal([]byte(out), &resp)
			r.logf("evolution %s promoted through %s: phase %s, policy version %d", ev.id, node, resp.Phase, resp.Version)
		}
	}
	return e
}

func describePhase(phase string, weight int64) string {
	if phase == api.PhaseCanary {
		return fmt.Sprintf("canary %d%%", weight)
	}
	return phase
}

// settleEvolution waits (within limit) for the evolution to leave shadow
// and canary, whose windows the leader keeps closing, so that the
// ledgers are read quiescent; with the clients stopped a canary step
// ends inconclusive (paused).
func (r *run) settleEvolution(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	nodes := nodeNames(r.cl)
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if e := r.pollEvolution(ctx, nodes[i%len(nodes)], true, false); e != nil {
			switch e.Phase {
			case api.PhaseShadow, api.PhaseCanary:
			case api.PhaseAwaitingPromotion:
				// promoted at this poll unless the promotion failed
			default:
				return
			}
		}
		if sleepCtx(ctx, time.Second) != nil {
			return
		}
	}
	r.logf("evolution %s did not settle within %s", r.evo.id, limit)
}

// readEvolutionFinal reads the evolution from every node, again (up to
// ten times, a second apart) while their views differ: a window the
// leader closed between two reads.
func (r *run) readEvolutionFinal(ctx context.Context) {
	ev := r.evo
	var views []nodeEvolution
	for attempt := 1; attempt <= 10; attempt++ {
		views = views[:0]
		for _, n := range nodeNames(r.cl) {
			e, err := r.evolveStatus(ctx, n)
			v := nodeEvolution{Node: n, Evo: e}
			if err != nil {
				v.Err = err.Error()
			}
			views = append(views, v)
		}
		if len(disagreements(views)) == 0 || attempt == 10 || sleepCtx(ctx, time.Second) != nil {
			break
		}
	}
	ev.mu.Lock()
	ev.final = views
	ev.mu.Unlock()
	if err := writeJSON(filepath.Join(r.dir, "evolve", "final.json"), views); err != nil {
		r.logf("evolve/final.json: %v", err)
	}
}

// disagreements lists where the nodes' final views of the evolution
// differ: phase, weight, step, closing seq and every verdict.
func disagreements(views []nodeEvolution) []string {
	var out []string
	var ref *nodeEvolution
	for i := range views {
		v := &views[i]
		if v.Evo == nil {
			out = append(out, fmt.Sprintf("%s: no answer: %s", v.Node, v.Err))
			continue
		}
		if ref == nil {
			ref = v
			continue
		}
		a, b := ref.Evo, v.Evo
		if a.Phase != b.Phase || a.Weight != b.Weight || a.Step != b.Step || a.ClosedSeq != b.ClosedSeq {
			out = append(out, fmt.Sprintf("%s is %s (step %d, closed at seq %d) but %s is %s (step %d, closed at seq %d)",
				ref.Node, describePhase(a.Phase, a.Weight), a.Step, a.ClosedSeq, v.Node, describePhase(b.Phase, b.Weight), b.Step, b.ClosedSeq))
		}
		if len(a.Verdicts) != len(b.Verdicts) {
			out = append(out, fmt.Sprintf("%s holds %d verdicts but %s holds %d", ref.Node, len(a.Verdicts), v.Node, len(b.Verdicts)))
			continue
		}
		for j := range a.Verdicts {
			x, y := a.Verdicts[j], b.Verdicts[j]
			if x.Phase != y.Phase || x.Step != y.Step || x.Weight != y.Weight || x.Verdict != y.Verdict || x.Seq != y.Seq {
				out = append(out, fmt.Sprintf("verdict %d: %s has %s %s at seq %d but %s has %s %s at seq %d",
					j+1, ref.Node, describePhase(x.Phase, x.Weight), x.Verdict, x.Seq, v.Node, describePhase(y.Phase, y.Weight), y.Verdict, y.Seq))
			}
		}
	}
	return out
}

// replayVerdicts checks that e's verdicts, in order, are the judgements
// of the phases the evolution went through, and that its phase is where
// they lead: shadow, then each step of steps; a failed verdict rolls
// back, an inconclusive one pauses, a successful one moves on (after the
// last step: awaiting promotion). promoted says the runner asked for
// its promotion, resumes how many resumes it asked for (each takes a
// paused evolution back to canary, at step 0 after a pause in shadow);
// nobody aborts it.
func replayVerdicts(e *api.Evolution, steps []int64, promoted bool, resumes int) []string {
	var out []string
	if !slices.Equal(e.Steps, steps) {
		out = append(out, fmt.Sprintf("steps %v, started with %v", e.Steps, steps))
		return out
	}
	phase, step := api.PhaseShadow, int64(0)
	resume := func() bool {
		if phase != api.PhasePaused || resumes == 0 {
			return false
		}
		resumes--
		phase = api.PhaseCanary
		return true
	}
	var lastSeq uint64
	for i, v := range e.Verdicts {
		where := fmt.Sprintf("verdict %d (seq %d)", i+1, v.Seq)
		resume()
		if phase != api.PhaseShadow && phase != api.PhaseCanary {
			out = append(out, fmt.Sprintf("%s after the evolution was %s", where, phase))
			break
		}
		if v.Seq <= lastSeq {
			out = append(out, fmt.Sprintf("%s not after the previous verdict's seq %d", where, lastSeq))
		}
		lastSeq = v.Seq
		if v.Phase != phase || (phase == api.PhaseCanary && (v.Step != step || v.Weight != steps[step])) {
			out = append(out, fmt.Sprintf("%s judges %s step %d, but the evolution was %s step %d", where, describePhase(v.Phase, v.Weight), v.Step, describePhase(phase, weightAt(phase, steps, step)), step))
			break
		}
		switch v.Verdict {
		case "failed":
			phase = api.PhaseRolledBack
		case "inconclusive":
			if phase == api.PhaseShadow {
				step = 0 // a resume starts the canary's first step
			}
			phase = api.PhasePaused
		case "successful":
			switch {
			case phase == api.PhaseShadow:
				phase, step = api.PhaseCanary, 0
			case step+1 < int64(len(steps)):
				step++
			default:
				phase = api.PhaseAwaitingPromotion
			}
		default:
			out = append(out, fmt.Sprintf("%s: verdict %q", where, v.Verdict))
		}
	}
	if len(out) > 0 {
		return out
	}
	want := phase
	switch {
	case promoted && phase == api.PhaseAwaitingPromotion:
		want = api.PhasePromoted
	case e.Phase == api.PhaseCanary && phase == api.PhasePaused && resume():
		want = phase // resumed since its last verdict
	}
	if e.Phase != want {
		out = append(out, fmt.Sprintf("phase %s, but its %d verdicts lead to %s", e.Phase, len(e.Verdicts), want))
	} else if want == api.PhaseCanary && e.Step != step {
		out = append(out, fmt.Sprintf("canary step %d, but its verdicts lead to step %d", e.Step, step))
	}
	return out
}

func weightAt(phase string, steps []int64, step int64) int64 {
	if phase == api.PhaseCanary && step < int64(len(steps)) {
		return steps[step]
	}
	return 0
}

// verdict judges the evolution: every phase read was a legal one, every
// node answered at the end and agrees, and the verdicts lead to the
// phase reported.
func (ev *evolution) verdict() checker.Verdict {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	v := checker.Verdict{Checker: "evolution", Stats: map[string]int{"polls": ev.polls, "polls_unanswered": ev.failed, "resumes_asked": ev.resumes}}
	bad := append([]string(nil), ev.illegal...)
	if len(ev.final) == 0 {
		bad = append(bad, "the evolution was not read at the end")
	}
	bad = append(bad, disagreements(ev.final)...)
	var final *api.Evolution
	if len(ev.final) > 0 {
		final = ev.final[0].Evo
	}
	if final != nil {
		if !slices.Contains(legalPhases, final.Phase) {
			bad = append(bad, fmt.Sprintf("final phase %q is not a legal one", final.Phase))
		}
		if final.ID != ev.id || final.Name != evolveSet {
			bad = append(bad, fmt.Sprintf("read evolution %s of %s, started %s of %s", final.ID, final.Name, ev.id, evolveSet))
		}
		bad = append(bad, replayVerdicts(final, ev.steps, ev.promoted, ev.resumes)...)
		v.Stats["verdicts"] = len(final.Verdicts)
	}
	v.Violations, v.ViolationCount, v.Valid = bad, len(bad), len(bad) == 0
	switch {
	case !v.Valid:
		v.Summary = fmt.Sprintf("evolution %s: %d violation(s); first: %s", ev.id, len(bad), bad[0])
	default:
		v.Summary = fmt.Sprintf("evolution %s: every node %s with the same %d verdicts, which lead there (%d resumes, promotion asked: %t); phases seen: %s",
			ev.id, describePhase(final.Phase, final.Weight), len(final.Verdicts), ev.resumes, ev.promoted, ev.phasesLocked())
	}
	return v
}

// phases renders the phases the polls saw, in order.
func (ev *evolution) phases() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.phasesLocked()
}

func (ev *evolution) phasesLocked() string {
	parts := make([]string, 0, len(ev.seen))
	for _, s := range ev.seen {
		parts = append(parts, fmt.Sprintf("%s (%.0fs)", describePhase(s.Phase, s.Weight), s.At))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " → ")
}

// record is the evolution's part of run.json.
func (ev *evolution) record() map[string]any {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return map[string]any{"id": ev.id, "set": evolveSet, "steps": ev.steps, "window": evolveWindow.String(), "min_shadow": evolveMinShadow,
		"phases_seen": ev.seen, "polls": ev.polls, "polls_unanswered": ev.failed, "promotion_asked": ev.promoted, "resumes_asked": ev.resumes}
}
