package runner

import (
	"bufio"
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

	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/cluster"
	"github.com/dominus-kernel/dominus/jepsen/history"
	"github.com/dominus-kernel/dominus/jepsen/nemesis"
	"github.com/dominus-kernel/dominus/jepsen/netfault"
	"github.com/dominus-kernel/dominus/jepsen/report"
	"github.com/dominus-kernel/dominus/jepsen/workload"
)

// Config describes a run.
type Config struct {
	Bin        string // the dominus binary
	ReportsDir string // a folder per run is created here; default jepsen/reports
	Label      string // names the run in reports ("jepsen", "smoke")

	Seed     int64
	Duration time.Duration // time of client ops under faults; default 3m
	Kinds    []nemesis.Kind
	// RequireAllKinds makes the run invalid unless every kind was
	// injected at least once.
	RequireAllKinds bool

	Workload  workload.Workload // default workload.KV{}
	Clients   int               // concurrent client processes; default 5
	OpTimeout time.Duration     // bound on one op; default 2s
	// RatePerClient paces each client (ops/s); 0 is unpaced.
	RatePerClient float64

	Nodes     int
	IPPrefix  string // default 127.0.90
	BindPort  int
	HTTPPort  int
	ProbePort int  // default 7990
	HTTPS     bool // the API over TLS with the cluster CA
	Chain     string
	// TrailingLogs is the agents' --trailing-logs (default 1024, about
	// two seconds of ops): small, so that a follower down for a few
	// seconds catches up by a snapshot, not by the log.
	TrailingLogs uint64

	CheckTimeout  time.Duration // per checker; default 2m
	MaxClockAhead time.Duration // ledger-clock bound; default 2s plus 250ms of measurement slack
	KeepData      bool          // keep the agents' data dirs even when the run is valid

	// Repro is the command that reproduces the run (printed on failure).
	Repro string
	Out   io.Writer // progress; default os.Stdout
}

func (c *Config) defaults() {
	if c.ReportsDir == "" {
		c.ReportsDir = filepath.Join("jepsen", "reports")
	}
	if c.Label == "" {
		c.Label = "jepsen"
	}
	if c.Duration <= 0 {
		c.Duration = 3 * time.Minute
	}
	if c.Workload == nil {
		c.Workload = workload.KV{}
	}
	if c.Clients <= 0 {
		c.Clients = 5
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 2 * time.Second
	}
	if c.Nodes <= 0 {
		c.Nodes = 3
	}
	if c.ProbePort == 0 {
		c.ProbePort = 7990
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 1024
	}
	if c.Chain == "" {
		c.Chain = netfault.DefaultChain
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = 2 * time.Minute
	}
	if c.MaxClockAhead <= 0 {
		c.MaxClockAhead = 2*time.Second + 250*time.Millisecond
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

// Stats are a run's figures.
type Stats struct {
	Ops       int                       `json:"ops"`
	OK        int                       `json:"ok"`
	Fail      int                       `json:"fail"`
	Info      int                       `json:"info"`
	OpsPerSec float64                   `json:"ops_per_sec"`
	ByF       map[string]history.Counts `json:"by_f"`
	// ByWorkload tallies ops by the workload (of a mix) that made them.
	ByWorkload map[string]history.Counts `json:"by_workload"`
	Faults     string                    `json:"faults"`
	Events     uint64                    `json:"ledger_events"`
}

// Result is a run's outcome.
type Result struct {
	Dir      string            `json:"dir"`
	Valid    bool              `json:"valid"`
	Verdicts []checker.Verdict `json:"verdicts"`
	Stats    Stats             `json:"stats"`
	Repro    string            `json:"repro"`
}

type run struct {
	cfg   Config
	dir   string
	logw  io.Writer
	clock *history.Clock
	runID string

	cl    *cluster.Cluster
	fw    *netfault.Firewall
	probe *netfault.Prober
	rec   *history.Recorder
	gen   workload.Generator

	mu      sync.Mutex
	harness []string // harness failures: each makes the run invalid
}

func (r *run) logf(format string, args ...any) {
	line := fmt.Sprintf("[%7.2fs] ", float64(r.clock.Now())/1e9) + fmt.Sprintf(format, args...) + "\n"
	r.mu.Lock()
	defer r.mu.Unlock()
	io.WriteString(r.logw, line)
}

func (r *run) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logf("HARNESS FAILURE: %s", msg)
	r.mu.Lock()
	r.harness = append(r.harness, msg)
	r.mu.Unlock()
}

// Run performs one run and writes its report. The error is non-nil only
// when no report could be produced; an invalid run returns a Result with
// Valid false.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	stamp := time.Now().UTC().Format("20060102T150405Z")
	dir, err := filepath.Abs(filepath.Join(cfg.ReportsDir, fmt.Sprintf("%s-%s-seed%d", stamp, cfg.Label, cfg.Seed)))
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
	defer runLog.Close()
	r := &run{cfg: cfg, dir: dir, logw: io.MultiWriter(cfg.Out, runLog), clock: history.NewClock(),
		runID: fmt.Sprintf("j%x", time.Now().UnixNano()&0xffffffffff)}
	res := &Result{Dir: dir, Repro: cfg.Repro}
	r.logf("%s run: seed %d, %s of ops, nemesis %s, %d clients, report in %s", cfg.Label, cfg.Seed, cfg.Duration,
		kindsOrNone(cfg.Kinds), cfg.Clients, dir)

	sched := nemesis.Plan(nemesis.PlanConfig{Seed: cfg.Seed, Kinds: cfg.Kinds, Duration: cfg.Duration, Nodes: cfg.Nodes})
	if err := writeJSON(filepath.Join(dir, "schedule.json"), sched); err != nil {
		return nil, err
	}
	r.logf("schedule (seed %d, %d steps):", cfg.Seed, len(sched.Steps))
	for _, st := range sched.Steps {
		r.logf("  %s", st)
	}

	input, faults, phases := r.execute(ctx, sched)
	r.cleanup()
	input.Dir = dir
	res.Stats = r.stats(input, faults)
	if res.Stats.OK == 0 {
		r.fail("no client op succeeded: nothing was tested")
	}

	r.logf("checking %d history lines", len(input.History))
	checkers := []checker.Checker{
		checker.LedgerChain{}, checker.Convergence{}, checker.LeaderPerTerm{}, checker.ProcessExits{},
		checker.LedgerClock{MaxAhead: cfg.MaxClockAhead},
	}
	checkers = append(checkers, cfg.Workload.Checkers(workload.CheckOptions{Timeout: cfg.CheckTimeout})...)
	verdicts := checker.Run(context.WithoutCancel(ctx), checkers, input, cfg.CheckTimeout)
	if cfg.RequireAllKinds {
		verdicts = append(verdicts, coverage(cfg.Kinds, faults))
	}
	r.mu.Lock()
	harness := append([]string(nil), r.harness...)
	r.mu.Unlock()
	hv := checker.Verdict{Checker: "harness", Valid: len(harness) == 0, Summary: "faults applied, probed and healed; cluster operated as planned"}
	if !hv.Valid {
		hv.Violations, hv.ViolationCount = harness, len(harness)
		hv.Summary = fmt.Sprintf("%d harness failure(s); first: %s", len(harness), harness[0])
	}
	verdicts = append([]checker.Verdict{hv}, verdicts...)
	res.Verdicts, res.Valid = verdicts, checker.AllValid(verdicts)

	r.writeReport(res, input, sched, faults, phases)
	if res.Valid && !cfg.KeepData {
		os.RemoveAll(filepath.Join(dir, "data"))
	}
	return res, nil
}

func kindsOrNone(ks []nemesis.Kind) string {
	if len(ks) == 0 {
		return "none"
	}
	return nemesis.KindNames(ks)
}

// execute runs the cluster, clients and nemesis and gathers the checkers'
// input. Failures of the harness are recorded with r.fail.
func (r *run) execute(ctx context.Context, sched nemesis.Schedule) (*checker.Input, []nemesis.Fault, []report.Span) {
	cfg := r.cfg
	in := &checker.Input{StartWall: r.clock.Start()}
	var phases []report.Span
	var err error
	if nemesis.NeedsNetwork(cfg.Kinds) {
		if r.fw, err = netfault.Open(cfg.Chain); err != nil {
			r.fail("network faults were requested but cannot be injected: %v", err)
			return in, nil, nil
		}
		r.logf("iptables chain %s installed (jumped to from INPUT and OUTPUT)", cfg.Chain)
	}
	ips := make([]string, cfg.Nodes)
	prefix := cfg.IPPrefix
	if prefix == "" {
		prefix = "127.0.90"
	}
	for i := range ips {
		ips[i] = fmt.Sprintf("%s.%d", prefix, i+1)
	}
	if r.probe, err = netfault.NewProber(ips, cfg.ProbePort, 0); err != nil {
		r.fail("probe listeners: %v", err)
		return in, nil, nil
	}
	r.cl, err = cluster.New(ctx, cluster.Config{Bin: cfg.Bin, Dir: r.dir, IPPrefix: prefix, Nodes: cfg.Nodes,
		BindPort: cfg.BindPort, HTTPPort: cfg.HTTPPort, HTTPS: cfg.HTTPS, Now: r.clock.Now, Logf: r.logf,
		TrailingLogs: cfg.TrailingLogs})
	if err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	if err := r.probe.ExpectOpen(ctx, netfault.AllPairs(ips), 3); err != nil {
		r.fail("node addresses do not reach each other before any fault: %v", err)
		return in, nil, nil
	}
	if err := r.cl.StartAll(); err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	if err := r.cl.Init(ctx, 60*time.Second); err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	if _, err := r.cl.WaitConverged(ctx, 30*time.Second); err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	conns, err := r.cl.VerifySourceIPs()
	if err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	r.logf("kernel up; %d node-to-node connections all dialed from node IPs", conns)

	f, err := os.Create(filepath.Join(r.dir, "history.jsonl"))
	if err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	defer f.Close()
	r.rec = history.NewRecorder(r.clock, f)
	r.gen = cfg.Workload.NewGenerator()
	clients := make([]*client.Client, len(r.cl.Nodes()))
	for i, n := range r.cl.Nodes() {
		if clients[i], err = r.cl.Client(n, cfg.OpTimeout); err != nil {
			r.fail("%v", err)
			return in, nil, nil
		}
	}
	if s, ok := cfg.Workload.(workload.Setup); ok {
		sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
		err := s.Setup(sctx, r.setupEnv(clients))
		scancel()
		if err != nil {
			r.fail("workload setup: %v", err)
			return in, nil, nil
		}
		r.logf("workload %s set up", cfg.Workload.Name())
	}
	// A nil *Firewall must reach the nemesis as a nil Network.
	var nem *nemesis.Nemesis
	if r.fw != nil {
		nem = nemesis.New(procs{r.cl}, r.fw, r.probe, r.clock.Now, r.logf)
	} else {
		nem = nemesis.New(procs{r.cl}, nil, r.probe, r.clock.Now, r.logf)
	}

	// ops under faults
	opsStart := time.Now()
	opsStartNs := r.clock.Now()
	opsCtx, cancel := context.WithDeadline(ctx, opsStart.Add(cfg.Duration))
	var wg sync.WaitGroup
	for p := 0; p < cfg.Clients; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(ctx, opsCtx, p, clients)
		}()
	}
	nemErr := make(chan error, 1)
	go func() { nemErr <- nem.Run(opsCtx, sched, opsStart) }()
	r.logf("%d clients running for %s", cfg.Clients, cfg.Duration)
	if err := <-nemErr; err != nil {
		r.fail("%v", err)
		cancel()
	}
	wg.Wait()
	cancel()
	phases = append(phases, report.Span{Label: "ops under faults", Group: "phase", Start: opsStartNs, End: r.clock.Now()})

	// heal
	healStart := r.clock.Now()
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer hcancel()
	if err := nem.Heal(hctx); err != nil {
		r.fail("heal: %v", err)
	}
	if _, err := r.cl.WaitConverged(hctx, 60*time.Second); err != nil {
		r.fail("after heal: %v", err)
	}
	phases = append(phases, report.Span{Label: "heal", Group: "phase", Start: healStart, End: r.clock.Now()})
	r.logf("healed; every fault undone and every path open")

	// final ops: reads of every key, retries of revoked capabilities (bounded by their own op timeouts)
	after := context.WithoutCancel(ctx)
	if ctx.Err() == nil {
		finalStart := r.clock.Now()
		r.final(after, clients)
		phases = append(phases, report.Span{Label: "final ops", Group: "phase", Start: finalStart, End: r.clock.Now()})
	}
	if err := r.rec.Flush(); err != nil {
		r.fail("history file: %v", err)
	}
	// final state of every replica: bounded by the ledger's size. The
	// leader keeps recording member changes after a membership fault
	// heals, so a read that straddles one is read again (sameHeads).
	fctx, fcancel := context.WithTimeout(after, 10*time.Minute)
	defer fcancel()
	for attempt := 1; attempt <= 5; attempt++ {
		converged := true
		if _, err := r.cl.WaitConverged(after, 30*time.Second); err != nil {
			if attempt == 1 {
				r.fail("before reading the ledgers: %v", err)
			}
			converged = false
		}
		in.Ledgers = make([]checker.NodeLedger, len(r.cl.Nodes()))
		var lwg sync.WaitGroup
		for i, n := range r.cl.Nodes() {
			lwg.Add(1)
			go func() {
				defer lwg.Done()
				in.Ledgers[i] = r.cl.FetchLedger(fctx, n, 8)
			}()
		}
		lwg.Wait()
		if sameHeads(in.Ledgers) || !converged {
			break
		}
		r.logf("replicas were read at different heads (attempt %d); reading again", attempt)
	}
	for _, l := range in.Ledgers {
		r.logf("%s: %d events read, head %s", l.Node, len(l.Events), headOf(l))
	}
	in.LedgerFinal = r.quiescent(fctx, in.Ledgers)
	var logs []string
	for _, n := range r.cl.Nodes() {
		logs = append(logs, n.LogPath)
	}
	if in.Leaders, err = checker.ReadLeaderLogs(logs); err != nil {
		r.fail("agent logs: %v", err)
	}
	in.History = r.rec.Ops()
	faults := nem.Faults()
	for _, fl := range faults {
		in.Faults = append(in.Faults, checker.Interval{Name: fl.Desc, Start: fl.Start, End: fl.End})
	}
	r.cl.Close() // its kills are recorded as expected exits
	in.Exits = r.cl.Exits()
	return in, faults, phases
}

// quiescent reports whether the ledgers were read whole and no node's
// head moved since: nothing the clients sent can still be applied, so a
// request id absent from the ledger was never applied.
func (r *run) quiescent(ctx context.Context, ls []checker.NodeLedger) bool {
	if err := sleepCtx(ctx, time.Second); err != nil {
		return false
	}
	for i, s := range r.cl.Statuses(ctx) {
		l := ls[i]
		if s == nil || l.Status == nil || l.FetchErr != "" || s.Head != l.Status.Head || uint64(len(l.Events)) != l.Status.Head.Seq {
			r.logf("ledgers are not final (%s moved or was not read whole): unknown outcomes stay open", l.Node)
			return false
		}
	}
	r.logf("ledgers are final: no head moved in the second after they were read")
	return true
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

// client runs one process's ops until opsCtx is done.
func (r *run) client(ctx, opsCtx context.Context, process int, clients []*client.Client) {
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), uint64(process)+1))
	var pace time.Duration
	if r.cfg.RatePerClient > 0 {
		pace = time.Duration(float64(time.Second) / r.cfg.RatePerClient)
	}
	for n := 1; opsCtx.Err() == nil; n++ {
		inv := r.gen.Next(process, rng)
		node := rng.IntN(len(clients))
		inv.Process, inv.Node = process, r.cl.Nodes()[node].Name
		inv.RequestID = fmt.Sprintf("%s-p%d-%d", r.runID, process, n)
		started := time.Now()
		r.perform(ctx, clients[node], inv, r.cfg.OpTimeout)
		if pace > 0 {
			if d := pace - time.Since(started); d > 0 {
				select {
				case <-opsCtx.Done():
				case <-time.After(d):
				}
			}
		}
	}
}

// perform records inv, performs it through c and records and returns its
// completion (inv itself, unrecorded, if the history refused it).
func (r *run) perform(ctx context.Context, c *client.Client, inv history.Op, timeout time.Duration) history.Op {
	inv, err := r.rec.Invoke(inv)
	if err != nil {
		r.fail("history: %v", err)
		return inv
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	out := r.cfg.Workload.Invoke(octx, c, inv)
	cancel()
	out, err = r.rec.Complete(out)
	if err != nil {
		r.fail("history: %v", err)
		return out
	}
	r.gen.Observe(out)
	return out
}

// setupEnv is what the workload's setup may use: its ops are recorded as
// ops of process 2*Clients (after the final ops' processes), sent to the
// nodes in turn, each within 10s.
func (r *run) setupEnv(clients []*client.Client) workload.Env {
	nodes := r.cl.Nodes()
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	var mu sync.Mutex
	count := 0
	return workload.Env{
		Nodes:  names,
		Client: r.cl.TokenClients(r.cfg.OpTimeout),
		Perform: func(ctx context.Context, inv history.Op) history.Op {
			mu.Lock()
			defer mu.Unlock()
			node := count % len(nodes)
			count++
			inv.Process, inv.Node = 2*r.cfg.Clients, names[node]
			inv.RequestID = fmt.Sprintf("%s-setup-%d", r.runID, count)
			return r.perform(ctx, clients[node], inv, 10*time.Second)
		},
	}
}

// final performs the generator's final ops after the heal, spread over
// processes numbered after the clients, each op with a generous timeout.
func (r *run) final(ctx context.Context, clients []*client.Client) {
	ops := r.gen.Final()
	if len(ops) == 0 {
		return
	}
	r.logf("final ops after the heal: %d", len(ops))
	var wg sync.WaitGroup
	for w := 0; w < r.cfg.Clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			process := r.cfg.Clients + w
			for i := w; i < len(ops); i += r.cfg.Clients {
				inv := ops[i]
				node := i % len(clients)
				inv.Process, inv.Node = process, r.cl.Nodes()[node].Name
				inv.RequestID = fmt.Sprintf("%s-final-%d", r.runID, i)
				r.perform(ctx, clients[node], inv, 10*time.Second)
			}
		}()
	}
	wg.Wait()
}

// cleanup stops everything the run started; it is safe to call twice.
func (r *run) cleanup() {
	if r.cl != nil {
		r.cl.Close()
	}
	if r.probe != nil {
		r.probe.Close()
		r.probe = nil
	}
	if r.fw != nil {
		if err := r.fw.Close(); err != nil {
			r.fail("removing iptables chain %s: %v", r.cfg.Chain, err)
		}
		r.fw = nil
		left, err := netfault.Leftovers(r.cfg.Chain)
		switch {
		case err != nil:
			r.fail("iptables -S: %v", err)
		case len(left) > 0:
			r.fail("iptables rules left behind: %s", strings.Join(left, "; "))
		default:
			r.logf("iptables chain %s removed; iptables -S shows nothing of it", r.cfg.Chain)
		}
	}
}

func coverage(kinds []nemesis.Kind, faults []nemesis.Fault) checker.Verdict {
	seen := map[nemesis.Kind]int{}
	for _, f := range faults {
		seen[f.Kind]++
	}
	v := checker.Verdict{Checker: "nemesis-coverage", Valid: true, Summary: "every requested fault kind was injected: " + nemesis.Summary(faults)}
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

func (r *run) stats(in *checker.Input, faults []nemesis.Fault) Stats {
	s := Stats{ByF: map[string]history.Counts{}, ByWorkload: map[string]history.Counts{}, Faults: nemesis.Summary(faults)}
	ps, err := history.Pairs(in.History)
	if err != nil {
		return s
	}
	var first, last int64 = -1, 0
	for _, p := range ps {
		if p.Invoke.Process >= r.cfg.Clients { // final and setup ops
			continue
		}
		if first < 0 || p.Start() < first {
			first = p.Start()
		}
		last = max(last, p.End())
		c := s.ByF[p.Invoke.F]
		wname := workload.OwnerOf(r.cfg.Workload, p.Invoke.F)
		wc := s.ByWorkload[wname]
		switch p.Type() {
		case history.OK:
			s.OK++
			c.OK++
			wc.OK++
		case history.Fail:
			s.Fail++
			c.Fail++
			wc.Fail++
		default:
			s.Info++
			c.Info++
			wc.Info++
		}
		s.ByF[p.Invoke.F] = c
		s.ByWorkload[wname] = wc
		s.Ops++
	}
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

func (r *run) writeReport(res *Result, in *checker.Input, sched nemesis.Schedule, faults []nemesis.Fault, phases []report.Span) {
	dir := r.dir
	try := func(what string, err error) {
		if err != nil {
			r.logf("report: %s: %v", what, err)
		}
	}
	nodes := []map[string]string{}
	if r.cl != nil {
		for _, n := range r.cl.Nodes() {
			nodes = append(nodes, map[string]string{"name": n.Name, "ip": n.IP, "bind": n.Bind, "http": n.URL, "log": n.LogPath})
		}
	}
	try("run.json", writeJSON(filepath.Join(dir, "run.json"), map[string]any{
		"label": r.cfg.Label, "seed": r.cfg.Seed, "duration": r.cfg.Duration.String(), "nemesis": nemesis.KindNames(r.cfg.Kinds),
		"clients": r.cfg.Clients, "op_timeout": r.cfg.OpTimeout.String(), "workload": r.cfg.Workload.Name(), "bin": r.cfg.Bin,
		"https": r.cfg.HTTPS, "start_wall": r.clock.Start().UTC(), "nodes": nodes, "repro": r.cfg.Repro, "run_id": r.runID,
	}))
	try("faults.json", writeJSON(filepath.Join(dir, "faults.json"), faults))
	try("verdicts.json", writeJSON(filepath.Join(dir, "verdicts.json"), res))
	try("leaders.json", writeJSON(filepath.Join(dir, "leaders.json"), in.Leaders))
	try("exits.json", writeJSON(filepath.Join(dir, "exits.json"), in.Exits))
	try("nodes.json", writeJSON(filepath.Join(dir, "nodes.json"), in.Ledgers))
	// Converged replicas serve the same events: keep one copy.
	converged := false
	for _, v := range res.Verdicts {
		if v.Checker == (checker.Convergence{}).Name() {
			converged = v.Valid
		}
	}
	for _, l := range in.Ledgers {
		try("ledger", writeLedger(filepath.Join(dir, "ledger-"+l.Node+".jsonl"), l))
		if converged && len(l.Events) > 0 {
			break
		}
	}
	var spans []report.Span
	for _, f := range faults {
		spans = append(spans, report.Span{Label: f.Desc, Group: group(f.Kind), Start: f.Start, End: f.End})
	}
	ps, _ := history.Pairs(in.History)
	tl := report.Timeline{
		Title: fmt.Sprintf("dominus %s run, seed %d: %s", r.cfg.Label, r.cfg.Seed, validity(res.Valid)),
		Lines: []string{
			fmt.Sprintf("%d ops (%.0f/s) from %d clients: ok %d, fail %d, info %d", res.Stats.Ops, res.Stats.OpsPerSec, r.cfg.Clients, res.Stats.OK, res.Stats.Fail, res.Stats.Info),
			"faults: " + res.Stats.Faults,
		},
		Pairs: ps, Faults: spans, Phases: phases,
	}
	if f, err := os.Create(filepath.Join(dir, "timeline.svg")); err == nil {
		try("timeline.svg", tl.WriteSVG(f))
		f.Close()
	} else {
		try("timeline.svg", err)
	}
	summary := Summary(res, r.cfg)
	try("summary.txt", os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(summary), 0o644))
	r.mu.Lock()
	io.WriteString(r.logw, summary)
	r.mu.Unlock()
}

func validity(ok bool) string {
	if ok {
		return "VALID"
	}
	return "INVALID"
}

func group(k nemesis.Kind) string {
	switch {
	case k == nemesis.Loss:
		return "loss"
	case k == nemesis.Latency:
		return "latency"
	case k.Network():
		return "partition"
	case k == nemesis.SnapshotLag:
		return "snapshot"
	case k == nemesis.Kill:
		return "kill"
	case k == nemesis.PauseShort || k == nemesis.PauseLong:
		return "pause"
	case k == nemesis.Clock:
		return "clock"
	case k == nemesis.Membership:
		return "membership"
	}
	return "phase"
}

// Summary renders a result for people.
func Summary(res *Result, cfg Config) string {
	var b strings.Builder
	s := res.Stats
	fmt.Fprintf(&b, "\n== dominus %s run: %s\n", cfg.Label, res.Dir)
	wname := "kv"
	if cfg.Workload != nil {
		wname = cfg.Workload.Name()
	}
	fmt.Fprintf(&b, "seed %d, %s of ops, workload %s, nemesis %s, %d clients, op timeout %s\n", cfg.Seed, cfg.Duration, wname, kindsOrNone(cfg.Kinds), cfg.Clients, cfg.OpTimeout)
	fmt.Fprintf(&b, "ops %d (%.1f/s): ok %d, fail %d, info %d; ledger events %d\n", s.Ops, s.OpsPerSec, s.OK, s.Fail, s.Info, s.Events)
	fs := make([]string, 0, len(s.ByF))
	for f := range s.ByF {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	if len(s.ByWorkload) > 1 {
		ws := make([]string, 0, len(s.ByWorkload))
		for w := range s.ByWorkload {
			ws = append(ws, w)
		}
		sort.Strings(ws)
		for _, w := range ws {
			c := s.ByWorkload[w]
			fmt.Fprintf(&b, "  workload %-5s ok %d, fail %d, info %d\n", w, c.OK, c.Fail, c.Info)
		}
	}
	for _, f := range fs {
		c := s.ByF[f]
		fmt.Fprintf(&b, "  %-7s ok %d, fail %d, info %d\n", f, c.OK, c.Fail, c.Info)
	}
	fmt.Fprintf(&b, "faults injected: %s\n", s.Faults)
	for _, v := range res.Verdicts {
		mark := "PASS"
		if !v.Valid {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-17s %s\n", mark, v.Checker, v.Summary)
		if !v.Valid {
			for _, x := range v.Violations {
				fmt.Fprintf(&b, "       - %s\n", x)
			}
		}
		for _, a := range v.Artifacts {
			fmt.Fprintf(&b, "       see %s\n", a)
		}
	}
	if res.Valid {
		fmt.Fprintf(&b, "RESULT: VALID (timeline: %s)\n", filepath.Join(res.Dir, "timeline.svg"))
	} else {
		fmt.Fprintf(&b, "RESULT: INVALID (timeline: %s)\nreproduce with:\n  %s\n", filepath.Join(res.Dir, "timeline.svg"), res.Repro)
	}
	return b.String()
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
