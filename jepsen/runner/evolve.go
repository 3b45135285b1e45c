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
// the nemesis start; while the ops run, each evolution that closes is
// followed by the next, so that one is in progress (shadow, canary
// steps, windows closed by evolve.tick, resumes, promotions, aborts)
// under every fault. Every text forbids kv.put only under paths no
// workload touches, and each candidate adds a forbid to all before it (a
// tightening: a relaxation would hold it in shadow), so the evolutions
// change no decision the checkers model.
const (
	evolveSet  = "jepsen-evolve"
	evolveBase = `// jepsen: nothing under jepsen-evolve/locked/ may be written (no workload writes there).
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "jepsen-evolve/locked/*" };
`
	// Short windows, so that an evolution moves through shadow and both
	// canary steps in about 15 s.
	evolveWindow    = 5 * time.Second
	evolveSteps     = "25,100"
	evolveMinShadow = 5
	// evolvePoll is how often the status is read during the run.
	evolvePoll = 2 * time.Second
	// evolveResumes bounds the resumes the runner asks for, per
	// evolution: a canary step with fewer than 5 decisions in its cohort
	// (drawn from a salt of the start entry; the workload has few
	// entities) is inconclusive and pauses; the runner resumes it, as an
	// operator would, and the step runs again. After that many it aborts
	// the evolution, so that the next can start.
	evolveResumes = 3
	// evolveMax bounds the evolutions of a run (the kernel keeps the
	// latest 32).
	evolveMax = 24
)

// evolveCandidate is the n-th candidate: the base and n forbids more.
func evolveCandidate(n int) string {
	var b strings.Builder
	b.WriteString(evolveBase)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "// candidate %d also locks jepsen-evolve/archive-%d/ (no workload writes there either).\n", i, i)
		fmt.Fprintf(&b, "forbid(principal, action == Dominus::Action::\"kv.put\", resource) when { resource.path like \"jepsen-evolve/archive-%d/*\" };\n", i)
	}
	return b.String()
}

// legalPhases are the phases an evolution may report.
var legalPhases = []string{api.PhaseShadow, api.PhaseCanary, api.PhaseAwaitingPromotion, api.PhasePromoted,
	api.PhaseRolledBack, api.PhasePaused, api.PhaseAborted}

func finished(phase string) bool {
	return phase == api.PhasePromoted || phase == api.PhaseRolledBack || phase == api.PhaseAborted
}

// evolutions is what a run did and saw of its evolutions.
type evolutions struct {
	mu      sync.Mutex
	steps   []int64
	list    []*evolution // in the order they became known
	starts  int          // evolve start requests (the candidate's number)
	seen    []phaseSeen  // each change of the newest evolution's phase a poll read, in order
	polls   int
	failed  int // polls without an answer (the node faulted)
	illegal []string
	final   map[string][]nodeEvolution // by evolution id; "" holds each node's newest
}

// evolution is one evolution and what the runner asked of it.
type evolution struct {
	id       string
	promoted bool // promotion asked (it awaited promotion); an answer lost to a fault still counts
	resumes  int  // resumes asked (each may have been refused: not paused any more)
	aborted  bool // abort asked (still paused after evolveResumes resumes)
}

type phaseSeen struct {
	ID     string  `json:"id"`
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

// known returns the evolution id, adding it when add (nil otherwise).
func (evs *evolutions) known(id string, add bool) *evolution {
	for _, e := range evs.list {
		if e.id == id {
			return e
		}
	}
	if !add {
		return nil
	}
	e := &evolution{id: id}
	evs.list = append(evs.list, e)
	return e
}

// evolveCLI runs the dominus CLI against node (its --addr) with a
// bounded attempt; a non-zero exit is an error carrying its output.
func (r *run) evolveCLI(ctx context.Context, node string, args ...string) (string, error) {
	args = append(args, "--json", "--timeout", "3s")
	if n := r.cl.Node(node); n != nil {
		args = append(args, "--addr", n.URL)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, errOut, code := r.cl.CLI(cctx, node, args...)
	if code != 0 {
		return out, fmt.Errorf("dominus %s: exit %d: %s", strings.Join(args[:2], " "), code, strings.Join(strings.Fields(errOut+" "+out), " "))
	}
	return out, nil
}

// startEvolution installs the base set and starts the first evolution,
// through the CLI with the root token (policy.set).
func (r *run) startEvolution(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(r.dir, "evolve"), 0o755); err != nil {
		return err
	}
	base := filepath.Join(r.dir, "evolve", "base.cedar")
	if err := os.WriteFile(base, []byte(evolveBase), 0o644); err != nil {
		return err
	}
	node := r.cl.Nodes()[0].Name
	if _, err := r.evolveCLI(ctx, node, "policy", "set", "--name", evolveSet, "--file", base); err != nil {
		return err
	}
	steps, _ := parseStepList(evolveSteps)
	r.evo = &evolutions{steps: steps}
	return r.startNext(ctx, node)
}

// startNext starts the next candidate's evolution through node.
func (r *run) startNext(ctx context.Context, node string) error {
	evs := r.evo
	evs.mu.Lock()
	evs.starts++
	n := evs.starts
	evs.mu.Unlock()
	cand := filepath.Join(r.dir, "evolve", fmt.Sprintf("candidate-%d.cedar", n))
	if err := os.WriteFile(cand, []byte(evolveCandidate(n)), 0o644); err != nil {
		return err
	}
	out, err := r.evolveCLI(ctx, node, "evolve", "start", "--name", evolveSet, "--file", cand, "--steps", evolveSteps,
		"--window", evolveWindow.String(), "--min-shadow", strconv.Itoa(evolveMinShadow))
	if err != nil {
		return fmt.Errorf("candidate %d: %w", n, err)
	}
	var st api.EvolveStartResponse
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.ID == "" {
		return fmt.Errorf("evolve start: no evolution id in %q (%v)", out, err)
	}
	evs.mu.Lock()
	evs.known(st.ID, true)
	evs.mu.Unlock()
	r.logf("evolution %s of policy set %s (candidate %d) started through %s (seq %d): steps %s%%, window %s, min shadow %d; backtest of seq %d..%d: %d evaluated, %d changed, %d relaxations",
		st.ID, evolveSet, n, node, st.Seq, evolveSteps, evolveWindow, evolveMinShadow, st.Backtest.From, st.Backtest.To, st.Backtest.Evaluated, st.Backtest.Changed, st.Backtest.Relaxations)
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

// evolveStatus reads evolution id from node ("": its newest).
func (r *run) evolveStatus(ctx context.Context, node, id string) (*api.Evolution, error) {
	args := []string{"evolve", "status"}
	if id != "" {
		args = append(args, id)
	}
	out, err := r.evolveCLI(ctx, node, args...)
	if err != nil {
		return nil, err
	}
	var e api.Evolution
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		return nil, fmt.Errorf("evolve status: %v", err)
	}
	return &e, nil
}

// watchEvolution reads the newest evolution from the nodes in turn
// every evolvePoll until ctx (the ops) is done, and acts on it as an
// operator would (pollEvolution). A node that does not answer (faulted)
// is skipped.
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
		r.pollEvolution(ctx, nodes[i%len(nodes)], true)
	}
}

// pollEvolution reads node's newest evolution once, records a change of
// its phase, and promotes it when it awaits promotion; during the ops
// it also resumes it when a step paused it (up to evolveResumes times,
// then aborts it) and starts the next evolution when it is closed (up
// to evolveMax). It returns the view (nil when node did not answer).
func (r *run) pollEvolution(ctx context.Context, node string, ops bool) *api.Evolution {
	evs := r.evo
	e, err := r.evolveStatus(ctx, node, "")
	evs.mu.Lock()
	evs.polls++
	if err != nil {
		evs.failed++
		evs.mu.Unlock()
		return nil
	}
	if !slices.Contains(legalPhases, e.Phase) {
		evs.illegal = append(evs.illegal, fmt.Sprintf("%s reported %s in phase %q", node, e.ID, e.Phase))
	}
	ev := evs.known(e.ID, false)
	if ev == nil {
		if len(evs.list) < evs.starts {
			// a start whose answer a fault lost
			ev = evs.known(e.ID, true)
		} else {
			evs.illegal = append(evs.illegal, fmt.Sprintf("%s reported %s, which the runner did not start", node, e.ID))
			evs.mu.Unlock()
			return e
		}
	}
	if n := len(evs.seen); n == 0 || evs.seen[n-1].ID != e.ID || evs.seen[n-1].Phase != e.Phase || evs.seen[n-1].Weight != e.Weight {
		evs.seen = append(evs.seen, phaseSeen{ID: e.ID, Phase: e.Phase, Weight: e.Weight, Node: node, At: float64(r.clock.Now()) / 1e9})
		r.logf("evolution %s: %s reports %s", e.ID, node, describePhase(e.Phase, e.Weight))
	}
	var act string
	switch {
	case e.Phase == api.PhaseAwaitingPromotion:
		act, ev.promoted = "promote", true
	case ops && e.Phase == api.PhasePaused && ev.resumes < evolveResumes:
		act = "resume"
		ev.resumes++
	case ops && e.Phase == api.PhasePaused:
		act, ev.aborted = "abort", true
	case ops && finished(e.Phase) && e.ID == evs.list[len(evs.list)-1].id && evs.starts < evolveMax:
		act = "start" // the newest known is closed (a lagging node shows an older one: no start)
	}
	evs.mu.Unlock()
	switch act {
	case "":
	case "start":
		if err := r.startNext(ctx, node); err != nil {
			r.logf("evolution: start of the next through %s: %v", node, err)
		}
	default:
		out, err := r.evolveCLI(ctx, node, "evolve", act, e.ID)
		if err != nil {
			r.logf("evolution %s: %s through %s: %v", e.ID, act, node, err)
			break
		}
		var resp api.EvolveResponse
		_ = json.Unmarshal([]byte(out), &resp)
		r.logf("evolution %s: %s through %s: phase %s", e.ID, act, node, resp.Phase)
	}
	return e
}

func describePhase(phase string, weight int64) string {
	if phase == api.PhaseCanary {
		return fmt.Sprintf("canary %d%%", weight)
	}
	return phase
}

// settleEvolution waits (within limit) for the newest evolution to
// leave shadow and canary, whose windows the leader keeps closing (with
// the clients stopped a canary step ends inconclusive: paused), and
// promotes it if it awaits promotion, so that the ledgers are read
// quiescent.
func (r *run) settleEvolution(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	nodes := nodeNames(r.cl)
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if e := r.pollEvolution(ctx, nodes[i%len(nodes)], false); e != nil {
			switch e.Phase {
			case api.PhaseShadow, api.PhaseCanary, api.PhaseAwaitingPromotion:
			default:
				return
			}
		}
		if sleepCtx(ctx, time.Second) != nil {
			return
		}
	}
	r.logf("evolution: the newest did not settle within %s", limit)
}

// readEvolutionFinal reads every evolution the run knows, and the
// newest, from every node, again (up to ten times, a second apart)
// while their views differ.
func (r *run) readEvolutionFinal(ctx context.Context) {
	evs := r.evo
	evs.mu.Lock()
	ids := []string{""}
	for _, e := range evs.list {
		ids = append(ids, e.id)
	}
	evs.mu.Unlock()
	var final map[string][]nodeEvolution
	for attempt := 1; attempt <= 10; attempt++ {
		final = map[string][]nodeEvolution{}
		agree := true
		for _, id := range ids {
			for _, n := range nodeNames(r.cl) {
				e, err := r.evolveStatus(ctx, n, id)
				v := nodeEvolution{Node: n, Evo: e}
				if err != nil {
					v.Err = err.Error()
				}
				final[id] = append(final[id], v)
			}
			agree = agree && len(disagreements(final[id])) == 0
		}
		if agree || attempt == 10 || sleepCtx(ctx, time.Second) != nil {
			break
		}
	}
	evs.mu.Lock()
	evs.final = final
	evs.mu.Unlock()
	if err := writeJSON(filepath.Join(r.dir, "evolve", "final.json"), final); err != nil {
		r.logf("evolve/final.json: %v", err)
	}
}

// disagreements lists where the nodes' final views of an evolution
// differ: id, phase, weight, step, closing seq and every verdict.
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
		if a.ID != b.ID || a.Phase != b.Phase || a.Weight != b.Weight || a.Step != b.Step || a.ClosedSeq != b.ClosedSeq {
			out = append(out, fmt.Sprintf("%s has %s %s (step %d, closed at seq %d) but %s has %s %s (step %d, closed at seq %d)",
				ref.Node, a.ID, describePhase(a.Phase, a.Weight), a.Step, a.ClosedSeq, v.Node, b.ID, describePhase(b.Phase, b.Weight), b.Step, b.ClosedSeq))
		}
		if len(a.Verdicts) != len(b.Verdicts) {
			out = append(out, fmt.Sprintf("%s holds %d verdicts of %s but %s holds %d", ref.Node, len(a.Verdicts), a.ID, v.Node, len(b.Verdicts)))
			continue
		}
		for j := range a.Verdicts {
			x, y := a.Verdicts[j], b.Verdicts[j]
			if x.Phase != y.Phase || x.Step != y.Step || x.Weight != y.Weight || x.Verdict != y.Verdict || x.Seq != y.Seq {
				out = append(out, fmt.Sprintf("%s verdict %d: %s has %s %s at seq %d but %s has %s %s at seq %d",
					a.ID, j+1, ref.Node, describePhase(x.Phase, x.Weight), x.Verdict, x.Seq, v.Node, describePhase(y.Phase, y.Weight), y.Verdict, y.Seq))
			}
		}
	}
	return out
}

// replayVerdicts checks that e's verdicts, in order, are the judgements
// of the phases the evolution went through, and that its phase is where
// they lead: shadow, then each step of steps; a failed verdict rolls
// back, an inconclusive one pauses, a successful one moves on (after the
// last step: awaiting promotion). ev says what the runner asked: a
// promotion, resumes (each takes a paused evolution back to canary, at
// step 0 after a pause in shadow), an abort (which closes it wherever it
// is).
func replayVerdicts(e *api.Evolution, steps []int64, ev evolution) []string {
	var out []string
	if !slices.Equal(e.Steps, steps) {
		out = append(out, fmt.Sprintf("steps %v, started with %v", e.Steps, steps))
		return out
	}
	phase, step := api.PhaseShadow, int64(0)
	resumes := ev.resumes
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
	case ev.promoted && phase == api.PhaseAwaitingPromotion && e.Phase == api.PhasePromoted:
		want = api.PhasePromoted
	case ev.aborted && !finished(phase) && e.Phase == api.PhaseAborted:
		want = api.PhaseAborted
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

// verdict judges the evolutions: every phase read was a legal one and of
// an evolution the runner started; at the end every node answers for
// each and agrees on it (and on the newest), each is in a legal phase
// its verdicts lead to, and at most one is still open.
func (evs *evolutions) verdict() checker.Verdict {
	evs.mu.Lock()
	defer evs.mu.Unlock()
	v := checker.Verdict{Checker: "evolution", Stats: map[string]int{"evolutions": len(evs.list), "polls": evs.polls, "polls_unanswered": evs.failed}}
	bad := append([]string(nil), evs.illegal...)
	if evs.final == nil {
		bad = append(bad, "the evolutions were not read at the end")
	}
	for _, d := range disagreements(evs.final[""]) {
		bad = append(bad, "newest: "+d)
	}
	if views := evs.final[""]; len(views) > 0 && views[0].Evo != nil && evs.known(views[0].Evo.ID, false) == nil {
		bad = append(bad, fmt.Sprintf("the newest evolution %s is not one the runner started", views[0].Evo.ID))
	}
	open := 0
	var ends []string
	for _, ev := range evs.list {
		views := evs.final[ev.id]
		if evs.final != nil && len(views) == 0 {
			bad = append(bad, fmt.Sprintf("%s was not read at the end", ev.id))
		}
		for _, d := range disagreements(views) {
			bad = append(bad, ev.id+": "+d)
		}
		if len(views) == 0 || views[0].Evo == nil {
			continue
		}
		e := views[0].Evo
		if !slices.Contains(legalPhases, e.Phase) {
			bad = append(bad, fmt.Sprintf("%s: final phase %q is not a legal one", ev.id, e.Phase))
		}
		if e.ID != ev.id || e.Name != evolveSet {
			bad = append(bad, fmt.Sprintf("read evolution %s of %s for %s of %s", e.ID, e.Name, ev.id, evolveSet))
		}
		for _, d := range replayVerdicts(e, evs.steps, *ev) {
			bad = append(bad, ev.id+": "+d)
		}
		if !finished(e.Phase) {
			open++
		}
		ends = append(ends, fmt.Sprintf("%s %s (%d verdicts)", ev.id, describePhase(e.Phase, e.Weight), len(e.Verdicts)))
		v.Stats["verdicts"] += len(e.Verdicts)
		v.Stats[e.Phase]++
	}
	if open > 1 {
		bad = append(bad, fmt.Sprintf("%d evolutions of %s are open at once", open, evolveSet))
	}
	v.Violations, v.ViolationCount, v.Valid = bad, len(bad), len(bad) == 0
	if !v.Valid {
		v.Summary = fmt.Sprintf("%d violation(s); first: %s", len(bad), bad[0])
		return v
	}
	v.Summary = fmt.Sprintf("%d evolutions, every node agrees on each and its verdicts lead to its phase: %s", len(evs.list), strings.Join(ends, ", "))
	return v
}

// phases renders the phases the polls saw, a line per evolution (at
// most max lines; the rest are counted), each phase with the second of
// the run it was first read.
func (evs *evolutions) phases(max int) []string {
	evs.mu.Lock()
	defer evs.mu.Unlock()
	var lines []string
	last := ""
	for _, s := range evs.seen {
		p := fmt.Sprintf("%s (%.0fs)", describePhase(s.Phase, s.Weight), s.At)
		if s.ID != last {
			lines = append(lines, "evolution "+s.ID+": "+p)
			last = s.ID
			continue
		}
		lines[len(lines)-1] += " → " + p
	}
	if len(lines) > max {
		more := len(lines) - max + 1
		lines = append(lines[:max-1], fmt.Sprintf("... and %d more evolutions (run.json)", more))
	}
	return lines
}

// record is the evolutions' part of run.json.
func (evs *evolutions) record() map[string]any {
	evs.mu.Lock()
	defer evs.mu.Unlock()
	asked := []map[string]any{}
	for _, e := range evs.list {
		asked = append(asked, map[string]any{"id": e.id, "promotion_asked": e.promoted, "resumes_asked": e.resumes, "abort_asked": e.aborted})
	}
	return map[string]any{"set": evolveSet, "steps": evs.steps, "window": evolveWindow.String(), "min_shadow": evolveMinShadow,
		"starts": evs.starts, "evolutions": asked, "phases_seen": evs.seen, "polls": evs.polls, "polls_unanswered": evs.failed}
}
