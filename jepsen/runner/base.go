package runner

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/cluster"
	"github.com/dominus-kernel/dominus/jepsen/history"
	"github.com/dominus-kernel/dominus/jepsen/nemesis"
	"github.com/dominus-kernel/dominus/jepsen/netfault"
	"github.com/dominus-kernel/dominus/jepsen/report"
)

// setDefault sets *v to def when it is zero or less (or empty).
func setDefault[T cmp.Ordered](v *T, def T) {
	var zero T
	if *v <= zero {
		*v = def
	}
}

// base is what every run (Run, RunFederation) shares: its report folder
// and log, the run clock and id, the harness failures, the network it
// may cut and the history it records.
type base struct {
	label string
	seed  int64
	dir   string
	logw  io.Writer
	clock *history.Clock
	runID string
	chain string // iptables chain; fw is nil when the run cuts nothing

	fw    *netfault.Firewall
	probe *netfault.Prober
	rec   *history.Recorder

	mu      sync.Mutex // guards harness, writes to logw and the state of the run embedding base
	harness []string   // harness failures: each makes the run invalid
}

// open creates the report folder REPORTS/STAMP-LABEL-seedSEED and its
// run.log (also copied to out), and starts the run clock. The caller
// closes the returned log when the run ends.
func (b *base) open(reportsDir, label string, seed int64, chain string, out io.Writer, idPrefix string) (io.Closer, error) {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	dir, err := filepath.Abs(filepath.Join(reportsDir, fmt.Sprintf("%s-%s-seed%d", stamp, label, seed)))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	runLog, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		return nil, err
	}
	b.label, b.seed, b.dir, b.chain = label, seed, dir, chain
	b.logw, b.clock = io.MultiWriter(out, runLog), history.NewClock()
	b.runID = fmt.Sprintf("%s%x", idPrefix, time.Now().UnixNano()&0xffffffffff)
	return runLog, nil
}

func (b *base) logf(format string, args ...any) {
	line := fmt.Sprintf("[%7.2fs] ", float64(b.clock.Now())/1e9) + fmt.Sprintf(format, args...) + "\n"
	b.mu.Lock()
	defer b.mu.Unlock()
	io.WriteString(b.logw, line)
}

func (b *base) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.logf("HARNESS FAILURE: %s", msg)
	b.mu.Lock()
	b.harness = append(b.harness, msg)
	b.mu.Unlock()
}

// writeSchedule writes schedule.json and prints the seed and the steps.
func writeSchedule[S fmt.Stringer](b *base, sched any, steps []S) error {
	if err := writeJSON(filepath.Join(b.dir, "schedule.json"), sched); err != nil {
		return err
	}
	b.logf("schedule (seed %d, %d steps):", b.seed, len(steps))
	for _, st := range steps {
		b.logf("  %s", st)
	}
	return nil
}

// openNetwork installs the iptables chain when need is set (what names
// the faults that need it) and listens for probes on every address.
func (b *base) openNetwork(need bool, what string, ips []string, probePort int) error {
	var err error
	if need {
		if b.fw, err = netfault.Open(b.chain); err != nil {
			return fmt.Errorf("%s were requested but cannot be injected: %w", what, err)
		}
		b.logf("iptables chain %s installed (jumped to from INPUT and OUTPUT)", b.chain)
	}
	if b.probe, err = netfault.NewProber(ips, probePort, 0); err != nil {
		return fmt.Errorf("probe listeners: %w", err)
	}
	return nil
}

// firewall is the run's firewall as the network a nemesis takes: nil
// when the run cuts nothing (a nil *Firewall must reach the nemesis as
// a nil N).
func firewall[N any](b *base) N {
	var n N
	if b.fw != nil {
		n = any(b.fw).(N)
	}
	return n
}

// pathsOpen proves every pair of ips open before any fault.
func (b *base) pathsOpen(ctx context.Context, ips []string) error {
	if err := b.probe.ExpectOpen(ctx, netfault.AllPairs(ips), 3); err != nil {
		return fmt.Errorf("node addresses do not reach each other before any fault: %w", err)
	}
	return nil
}

// closeNetwork stops the probes and removes the iptables chain, proving
// nothing of it is left; it is safe to call twice.
func (b *base) closeNetwork() {
	if b.probe != nil {
		b.probe.Close()
		b.probe = nil
	}
	if b.fw == nil {
		return
	}
	if err := b.fw.Close(); err != nil {
		b.fail("removing iptables chain %s: %v", b.chain, err)
	}
	b.fw = nil
	left, err := netfault.Leftovers(b.chain)
	switch {
	case err != nil:
		b.fail("iptables -S: %v", err)
	case len(left) > 0:
		b.fail("iptables rules left behind: %s", strings.Join(left, "; "))
	default:
		b.logf("iptables chain %s removed; iptables -S shows nothing of it", b.chain)
	}
}

// openHistory creates history.jsonl and its recorder.
func (b *base) openHistory() (io.Closer, error) {
	f, err := os.Create(filepath.Join(b.dir, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	b.rec = history.NewRecorder(b.clock, f)
	return f, nil
}

// record appends inv, performs it (do, within timeout), appends its
// completion and returns it (inv itself, unrecorded, if the history
// refused it).
func (b *base) record(ctx context.Context, timeout time.Duration, inv history.Op, do func(context.Context, history.Op) history.Op) history.Op {
	out, _ := b.recordOK(ctx, timeout, inv, do)
	return out
}

// recordOK is record that also reports whether both halves were recorded.
func (b *base) recordOK(ctx context.Context, timeout time.Duration, inv history.Op, do func(context.Context, history.Op) history.Op) (history.Op, bool) {
	inv, err := b.rec.Invoke(inv)
	if err != nil {
		b.fail("history: %v", err)
		return inv, false
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	out := do(dctx, inv)
	cancel()
	if out, err = b.rec.Complete(out); err != nil {
		b.fail("history: %v", err)
		return out, false
	}
	return out, true
}

// paced calls op with n = 1, 2, ... until opsCtx is done, starting
// at most rate ops a second (0: as fast as they complete); rng is the
// process's own, drawn from the seed.
func paced(opsCtx context.Context, seed int64, process int, rate float64, op func(n int, rng *rand.Rand)) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(process)+1))
	var pace time.Duration
	if rate > 0 {
		pace = time.Duration(float64(time.Second) / rate)
	}
	for n := 1; opsCtx.Err() == nil; n++ {
		started := time.Now()
		op(n, rng)
		if d := pace - time.Since(started); d > 0 {
			select {
			case <-opsCtx.Done():
			case <-time.After(d):
			}
		}
	}
}

// underFaults runs clients processes (client) until d has passed while
// the nemesis (nem) walks its schedule; an error of the nemesis ends the
// ops early.
func (b *base) underFaults(ctx context.Context, d time.Duration, clients int, client func(ctx, opsCtx context.Context, process int),
	nem func(ctx context.Context, start time.Time) error) report.Span {
	opsStart := time.Now()
	opsStartNs := b.clock.Now()
	opsCtx, cancel := context.WithDeadline(ctx, opsStart.Add(d))
	var wg sync.WaitGroup
	for p := 0; p < clients; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client(ctx, opsCtx, p)
		}()
	}
	nemErr := make(chan error, 1)
	go func() { nemErr <- nem(opsCtx, opsStart) }()
	b.logf("%d clients running for %s", clients, d)
	if err := <-nemErr; err != nil {
		b.fail("%v", err)
		cancel()
	}
	wg.Wait()
	cancel()
	return report.Span{Label: "ops under faults", Group: "phase", Start: opsStartNs, End: b.clock.Now()}
}

// healPhase undoes every fault (heal) and waits for the kernels to
// converge (converge records its own failures), within 90s, also when
// ctx is cancelled; done is logged at the end.
func (b *base) healPhase(ctx context.Context, heal func(context.Context) error, converge func(context.Context), done string) report.Span {
	start := b.clock.Now()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	if err := heal(hctx); err != nil {
		b.fail("heal: %v", err)
	}
	converge(hctx)
	span := report.Span{Label: "heal", Group: "phase", Start: start, End: b.clock.Now()}
	b.logf("%s", done)
	return span
}

// readLedgers reads every replica of c, again (up to five times) while
// they were read at different heads; notConverged hears of each attempt
// that began without the replicas converged, prefix starts the log
// lines. waitCtx bounds the waits, fetchCtx the reads.
func (b *base) readLedgers(waitCtx, fetchCtx context.Context, c *cluster.Cluster, prefix string, notConverged func(attempt int, err error)) []checker.NodeLedger {
	var ls []checker.NodeLedger
	for attempt := 1; attempt <= 5; attempt++ {
		converged := true
		if _, err := c.WaitConverged(waitCtx, 30*time.Second); err != nil {
			notConverged(attempt, err)
			converged = false
		}
		ls = make([]checker.NodeLedger, len(c.Nodes()))
		var wg sync.WaitGroup
		for i, n := range c.Nodes() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ls[i] = c.FetchLedger(fetchCtx, n, 8)
			}()
		}
		wg.Wait()
		if sameHeads(ls) || !converged {
			break
		}
		b.logf("%sreplicas were read at different heads (attempt %d); reading again", prefix, attempt)
	}
	for _, l := range ls {
		b.logf("%s: %d events read, head %s", l.Node, len(l.Events), headOf(l))
	}
	return ls
}

// sameHeads reports whether the replicas were read at one head, each
// consistently: its verification covers exactly the head its status
// showed. Kernels keep recording (member changes, renewals) after the
// workload stops, so a read that straddles a record is read again
// rather than judged.
func sameHeads(ls []checker.NodeLedger) bool {
	for _, l := range ls {
		if l.Status == nil || l.FetchErr != "" || ls[0].Status == nil || l.Status.Head != ls[0].Status.Head {
			return false
		}
		if l.Verify != nil && l.Verify.OK && l.Verify.Head != l.Status.Head {
			return false
		}
	}
	return true
}

// settled waits pause and reports whether the ledgers ls of c were read
// whole and no node's head moved since; when one did, moved names it
// ("" when ctx ended the wait).
func settled(ctx context.Context, c *cluster.Cluster, ls []checker.NodeLedger, pause time.Duration) (ok bool, moved string) {
	if err := sleepCtx(ctx, pause); err != nil {
		return false, ""
	}
	for i, s := range c.Statuses(ctx) {
		l := ls[i]
		if s == nil || l.Status == nil || l.FetchErr != "" || s.Head != l.Status.Head || uint64(len(l.Events)) != l.Status.Head.Seq {
			return false, l.Node
		}
	}
	return true, ""
}

// leaderClaims reads the leadership claims in the agents' logs of c.
func leaderClaims(c *cluster.Cluster) ([]checker.LeaderClaim, error) {
	var logs []string
	for _, n := range c.Nodes() {
		logs = append(logs, n.LogPath)
	}
	return checker.ReadLeaderLogs(logs)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func headOf(l checker.NodeLedger) string {
	if l.Status == nil {
		return "unknown (" + l.FetchErr + ")"
	}
	return fmt.Sprintf("%d:%.12s", l.Status.Head.Seq, l.Status.Head.Hash)
}

// judge sets res's figures and verdicts: stats, then verdicts (the
// checkers'), behind the harness verdict (okSummary when the harness
// did not fail).
func (b *base) judge(res *Result, in *checker.Input, stats Stats, verdicts func() []checker.Verdict, okSummary string) {
	in.Dir = b.dir
	res.Stats = stats
	if stats.OK == 0 {
		b.fail("no client op succeeded: nothing was tested")
	}
	b.logf("checking %d history lines", len(in.History))
	vs := verdicts()
	b.mu.Lock()
	harness := append([]string(nil), b.harness...)
	b.mu.Unlock()
	hv := checker.Verdict{Checker: "harness", Valid: len(harness) == 0, Summary: okSummary}
	if !hv.Valid {
		hv.Violations, hv.ViolationCount = harness, len(harness)
		hv.Summary = fmt.Sprintf("%d harness failure(s); first: %s", len(harness), harness[0])
	}
	vs = append([]checker.Verdict{hv}, vs...)
	res.Verdicts, res.Valid = vs, checker.AllValid(vs)
}

// coverage judges whether every requested kind was injected; summarize
// counts the faults (nemesis.Summary, nemesis.FedSummary).
func coverage(kinds []nemesis.Kind, faults []nemesis.Fault, summarize func([]nemesis.Fault) string) checker.Verdict {
	seen := map[nemesis.Kind]int{}
	for _, f := range faults {
		seen[f.Kind]++
	}
	v := checker.Verdict{Checker: "nemesis-coverage", Valid: true, Summary: "every requested fault kind was injected: " + summarize(faults)}
	for _, k := range kinds {
		if seen[k] == 0 {
			v.Valid = false
			v.ViolationCount++
			v.Violations = append(v.Violations, fmt.Sprintf("%s was never injected", k))
		}
	}
	if !v.Valid {
		v.Summary = strings.Join(v.Violations, "; ")
	}
	return v
}

// tally counts the ops of the client processes (below clients) by type,
// by function and, when owner is set, by the workload that made them.
func tally(in *checker.Input, clients int, owner func(f string) string, faults string) Stats {
	s := Stats{ByF: map[string]history.Counts{}, ByWorkload: map[string]history.Counts{}, Faults: faults}
	ps, err := history.Pairs(in.History)
	if err != nil {
		return s
	}
	var total history.Counts
	var first, last int64 = -1, 0
	for _, p := range ps {
		if p.Invoke.Process >= clients { // the harness's own ops
			continue
		}
		if first < 0 || p.Start() < first {
			first = p.Start()
		}
		last = max(last, p.End())
		add := func(c history.Counts) history.Counts {
			switch p.Type() {
			case history.OK:
				c.OK++
			case history.Fail:
				c.Fail++
			default:
				c.Info++
			}
			return c
		}
		total = add(total)
		s.ByF[p.Invoke.F] = add(s.ByF[p.Invoke.F])
		if owner != nil {
			w := owner(p.Invoke.F)
			s.ByWorkload[w] = add(s.ByWorkload[w])
		}
		s.Ops++
	}
	s.OK, s.Fail, s.Info = total.OK, total.Fail, total.Info
	if last > first && first >= 0 {
		s.OpsPerSec = float64(s.Ops) / (float64(last-first) / 1e9)
	}
	for _, l := range in.Ledgers {
		if l.Status != nil {
			s.Events = max(s.Events, l.Status.Head.Seq)
		}
	}
	return s
}

// runReport is what a run's report folder holds besides run.log,
// schedule.json, history.jsonl and the agents' own files.
type runReport struct {
	res     *Result
	in      *checker.Input
	run     map[string]any // run.json; label, seed, start_wall and run_id are added
	faults  []nemesis.Fault
	leaders []checker.LeaderClaim
	// ledgers are written a file a replica, one group after the other;
	// of a group whose replicas agree (oneCopy) only the first replica
	// that holds events.
	ledgers []ledgerGroup
	spans   []report.Span // faults on the timeline
	phases  []report.Span
	lines   []string // the timeline's header lines
	summary string
}

type ledgerGroup struct {
	ledgers []checker.NodeLedger
	oneCopy bool
}

// writeReport writes run.json, faults.json, verdicts.json, leaders.json,
// exits.json, nodes.json, ledger-NODE.jsonl, timeline.svg and
// summary.txt, and prints the summary. A file that cannot be written is
// logged and skipped.
func (b *base) writeReport(rep runReport) {
	try := func(what string, err error) {
		if err != nil {
			b.logf("report: %s: %v", what, err)
		}
	}
	path := func(name string) string { return filepath.Join(b.dir, name) }
	rep.run["label"], rep.run["seed"], rep.run["start_wall"], rep.run["run_id"] = b.label, b.seed, b.clock.Start().UTC(), b.runID
	try("run.json", writeJSON(path("run.json"), rep.run))
	try("faults.json", writeJSON(path("faults.json"), rep.faults))
	try("verdicts.json", writeJSON(path("verdicts.json"), rep.res))
	try("leaders.json", writeJSON(path("leaders.json"), rep.leaders))
	try("exits.json", writeJSON(path("exits.json"), rep.in.Exits))
	try("nodes.json", writeJSON(path("nodes.json"), rep.in.Ledgers))
	for _, g := range rep.ledgers {
		for _, l := range g.ledgers {
			try("ledger", writeLedger(path("ledger-"+l.Node+".jsonl"), l))
			if g.oneCopy && len(l.Events) > 0 {
				break
			}
		}
	}
	ps, _ := history.Pairs(rep.in.History)
	tl := report.Timeline{
		Title: fmt.Sprintf("dominus %s run, seed %d: %s", b.label, b.seed, validity(rep.res.Valid)),
		Lines: rep.lines, Pairs: ps, Faults: rep.spans, Phases: rep.phases,
	}
	if f, err := os.Create(path("timeline.svg")); err == nil {
		try("timeline.svg", tl.WriteSVG(f))
		f.Close()
	} else {
		try("timeline.svg", err)
	}
	try("summary.txt", os.WriteFile(path("summary.txt"), []byte(rep.summary), 0o644))
	b.mu.Lock()
	io.WriteString(b.logw, rep.summary)
	b.mu.Unlock()
}

func validity(ok bool) string {
	if ok {
		return "VALID"
	}
	return "INVALID"
}

// writeCounts prints a line of counts for each name (a function, a
// workload) in name order: the prefix, then the name padded to width.
func writeCounts(b *strings.Builder, prefix string, counts map[string]history.Counts, width int) {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := counts[n]
		fmt.Fprintf(b, "  %s%-*s ok %d, fail %d, info %d\n", prefix, width, n, c.OK, c.Fail, c.Info)
	}
}

// writeVerdicts prints the faults, each verdict (the checker's name
// padded to width) and the result, with the command that reproduces an
// invalid run.
func writeVerdicts(b *strings.Builder, res *Result, width int) {
	fmt.Fprintf(b, "faults injected: %s\n", res.Stats.Faults)
	for _, v := range res.Verdicts {
		mark := "PASS"
		if !v.Valid {
			mark = "FAIL"
		}
		fmt.Fprintf(b, "  %s %-*s %s\n", mark, width, v.Checker, v.Summary)
		if !v.Valid {
			for _, x := range v.Violations {
				fmt.Fprintf(b, "       - %s\n", x)
			}
		}
		for _, a := range v.Artifacts {
			fmt.Fprintf(b, "       see %s\n", a)
		}
	}
	if res.Valid {
		fmt.Fprintf(b, "RESULT: VALID (timeline: %s)\n", filepath.Join(res.Dir, "timeline.svg"))
	} else {
		fmt.Fprintf(b, "RESULT: INVALID (timeline: %s)\nreproduce with:\n  %s\n", filepath.Join(res.Dir, "timeline.svg"), res.Repro)
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeLedger(path string, l checker.NodeLedger) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range l.Events {
		if err := enc.Encode(&l.Events[i]); err != nil {
			f.Close()
			return err
		}
	}
	return errors.Join(w.Flush(), f.Close())
}
