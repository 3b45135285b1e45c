package runner

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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
	// Evolve starts a governed evolution of a policy set at set-up
	// (evolve.go) that runs through shadow and canary under the faults,
	// and adds the evolution checker: every node agrees on it at the end.
	Evolve bool

	// Repro is the command that reproduces the run (printed on failure).
	Repro string
	Out   io.Writer // progress; default os.Stdout
}

func (c *Config) defaults() {
	setDefault(&c.ReportsDir, filepath.Join("jepsen", "reports"))
	setDefault(&c.Label, "jepsen")
	setDefault(&c.Duration, 3*time.Minute)
	if c.Workload == nil {
		c.Workload = workload.KV{}
	}
	setDefault(&c.Clients, 5)
	setDefault(&c.OpTimeout, 2*time.Second)
	setDefault(&c.Nodes, 3)
	if c.ProbePort == 0 {
		c.ProbePort = 7990
	}
	setDefault(&c.TrailingLogs, 1024)
	setDefault(&c.Chain, netfault.DefaultChain)
	setDefault(&c.CheckTimeout, 2*time.Minute)
	setDefault(&c.MaxClockAhead, 2*time.Second+250*time.Millisecond)
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
	base
	cfg Config
	cl  *cluster.Cluster
	gen workload.Generator
	evo *evolutions // with Config.Evolve, once started
}

// Run performs one run and writes its report. The error is non-nil only
// when no report could be produced; an invalid run returns a Result with
// Valid false.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	r := &run{cfg: cfg}
	runLog, err := r.open(cfg.ReportsDir, cfg.Label, cfg.Seed, cfg.Chain, cfg.Out, "j")
	if err != nil {
		return nil, err
	}
	defer runLog.Close()
	res := &Result{Dir: r.dir, Repro: cfg.Repro}
	r.logf("%s run: seed %d, %s of ops, nemesis %s, %d clients, report in %s", cfg.Label, cfg.Seed, cfg.Duration,
		kindsOrNone(cfg.Kinds), cfg.Clients, r.dir)

	sched := nemesis.Plan(nemesis.PlanConfig{Seed: cfg.Seed, Kinds: cfg.Kinds, Duration: cfg.Duration, Nodes: cfg.Nodes})
	if err := writeSchedule(&r.base, sched, sched.Steps); err != nil {
		return nil, err
	}

	in, faults, phases := r.execute(ctx, sched)
	r.cleanup()
	owner := func(f string) string { return workload.OwnerOf(cfg.Workload, f) }
	r.judge(res, in, tally(in, cfg.Clients, owner, nemesis.Summary(faults)), func() []checker.Verdict {
		checkers := []checker.Checker{
			checker.LedgerChain{}, checker.Convergence{}, checker.LeaderPerTerm{}, checker.ProcessExits{},
			checker.LedgerClock{MaxAhead: cfg.MaxClockAhead},
		}
		checkers = append(checkers, cfg.Workload.Checkers(workload.CheckOptions{Timeout: cfg.CheckTimeout})...)
		verdicts := checker.Run(context.WithoutCancel(ctx), checkers, in, cfg.CheckTimeout)
		if cfg.RequireAllKinds {
			verdicts = append(verdicts, coverage(cfg.Kinds, faults, nemesis.Summary))
		}
		if r.evo != nil {
			verdicts = append(verdicts, r.evo.verdict())
		}
		return verdicts
	}, "faults applied, probed and healed; cluster operated as planned")

	r.report(res, in, faults, phases)
	if res.Valid && !cfg.KeepData {
		os.RemoveAll(filepath.Join(r.dir, "data"))
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
// dedupPerCaller is the dedup quota the run sets: the ledger's bound on
// the whole dedup table (fsm.MaxDedupEntries).
const dedupPerCaller = 100_000

func (r *run) execute(ctx context.Context, sched nemesis.Schedule) (*checker.Input, []nemesis.Fault, []report.Span) {
	cfg := r.cfg
	in := &checker.Input{StartWall: r.clock.Start()}
	if err := r.up(ctx); err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	hist, err := r.openHistory()
	if err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	defer hist.Close()
	clients, err := r.prepare(ctx)
	if err != nil {
		r.fail("%v", err)
		return in, nil, nil
	}
	if cfg.Evolve {
		if err := r.startEvolution(ctx); err != nil {
			r.fail("evolution: %v", err)
			return in, nil, nil
		}
	}
	nem := nemesis.New(procs{r.cl}, firewall[nemesis.Network](&r.base), r.probe, r.clock.Now, r.logf)

	work := func(ctx, opsCtx context.Context, p int) { r.client(ctx, opsCtx, p, clients) }
	inject := func(ctx context.Context, start time.Time) error { return nem.Run(ctx, sched, start) }
	var watched sync.WaitGroup
	wctx, wcancel := context.WithCancel(ctx)
	if r.evo != nil {
		watched.Add(1)
		go func() { defer watched.Done(); r.watchEvolution(wctx) }()
	}
	phases := []report.Span{r.underFaults(ctx, cfg.Duration, cfg.Clients, work, inject)}
	wcancel()
	watched.Wait()
	phases = append(phases, r.healPhase(ctx, nem.Heal, func(hctx context.Context) {
		if _, err := r.cl.WaitConverged(hctx, 60*time.Second); err != nil {
			r.fail("after heal: %v", err)
		}
	}, "healed; every fault undone and every path open"))

	// final ops: reads of every key, retries of revoked capabilities (bounded by their own op timeouts)
	after := context.WithoutCancel(ctx)
	if ctx.Err() == nil {
		finalStart := r.clock.Now()
		r.final(after, clients)
		phases = append(phases, report.Span{Label: "final ops", Group: "phase", Start: finalStart, End: r.clock.Now()})
	}
	if r.evo != nil {
		r.settleEvolution(after, 30*time.Second)
	}
	if err := r.rec.Flush(); err != nil {
		r.fail("history file: %v", err)
	}
	r.readFinal(after, in)
	if r.evo != nil {
		r.readEvolutionFinal(after)
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

// up starts the kernel: the network and its probes, the processes, the
// init, and checks that every node dials its peers from its own address.
func (r *run) up(ctx context.Context) error {
	cfg := r.cfg
	ips := make([]string, cfg.Nodes)
	prefix := cfg.IPPrefix
	if prefix == "" {
		prefix = "127.0.90"
	}
	for i := range ips {
		ips[i] = fmt.Sprintf("%s.%d", prefix, i+1)
	}
	if err := r.openNetwork(nemesis.NeedsNetwork(cfg.Kinds), "network faults", ips, cfg.ProbePort); err != nil {
		return err
	}
	var err error
	r.cl, err = cluster.New(ctx, cluster.Config{Bin: cfg.Bin, Dir: r.dir, IPPrefix: prefix, Nodes: cfg.Nodes,
		BindPort: cfg.BindPort, HTTPPort: cfg.HTTPPort, HTTPS: cfg.HTTPS, Now: r.clock.Now, Logf: r.logf,
		TrailingLogs: cfg.TrailingLogs})
	if err != nil {
		return err
	}
	if err := r.pathsOpen(ctx, ips); err != nil {
		return err
	}
	if err := r.cl.StartAll(); err != nil {
		return err
	}
	if err := r.cl.Init(ctx, 60*time.Second); err != nil {
		return err
	}
	// The workload's few tokens write hundreds of times a second; the
	// default dedup quota (10,000 per caller per window) would refuse them
	// quota_exceeded after about 30 s. Governance raises it, as an
	// operator of such a kernel would.
	if out, errOut, code := r.cl.CLI(ctx, r.cl.Nodes()[0].Name, "operator", "limits", "set", "--dedup-per-caller", strconv.Itoa(dedupPerCaller), "--json"); code != 0 {
		return fmt.Errorf("operator limits set: exit %d: %s%s", code, errOut, out)
	}
	if _, err := r.cl.WaitConverged(ctx, 30*time.Second); err != nil {
		return err
	}
	conns, err := r.cl.VerifySourceIPs()
	if err != nil {
		return err
	}
	r.logf("kernel up; %d node-to-node connections all dialed from node IPs", conns)
	return nil
}

// prepare makes a client of every node and sets the workload up.
func (r *run) prepare(ctx context.Context) ([]*client.Client, error) {
	r.gen = r.cfg.Workload.NewGenerator()
	clients := make([]*client.Client, len(r.cl.Nodes()))
	for i, n := range r.cl.Nodes() {
		var err error
		if clients[i], err = r.cl.Client(n, r.cfg.OpTimeout); err != nil {
			return nil, err
		}
	}
	if s, ok := r.cfg.Workload.(workload.Setup); ok {
		sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
		err := s.Setup(sctx, r.setupEnv(clients))
		scancel()
		if err != nil {
			return nil, fmt.Errorf("workload setup: %w", err)
		}
		r.logf("workload %s set up", r.cfg.Workload.Name())
	}
	return clients, nil
}

// readFinal reads the final state of every replica into in: bounded by
// the ledger's size. The leader keeps recording member changes after a
// membership fault heals, so a read that straddles one is read again
// (sameHeads).
func (r *run) readFinal(after context.Context, in *checker.Input) {
	fctx, fcancel := context.WithTimeout(after, 10*time.Minute)
	defer fcancel()
	in.Ledgers = r.readLedgers(after, fctx, r.cl, "", func(attempt int, err error) {
		if attempt == 1 {
			r.fail("before reading the ledgers: %v", err)
		}
	})
	in.LedgerFinal = r.quiescent(fctx, in.Ledgers)
	var err error
	if in.Leaders, err = leaderClaims(r.cl); err != nil {
		r.fail("agent logs: %v", err)
	}
}

// quiescent reports whether the ledgers were read whole and no node's
// head moved since: nothing the clients sent can still be applied, so a
// request id absent from the ledger was never applied.
func (r *run) quiescent(ctx context.Context, ls []checker.NodeLedger) bool {
	ok, moved := settled(ctx, r.cl, ls, time.Second)
	switch {
	case ok:
		r.logf("ledgers are final: no head moved in the second after they were read")
	case moved != "":
		r.logf("ledgers are not final (%s moved or was not read whole): unknown outcomes stay open", moved)
	}
	return ok
}

// client runs one process's ops until opsCtx is done.
func (r *run) client(ctx, opsCtx context.Context, process int, clients []*client.Client) {
	paced(opsCtx, r.cfg.Seed, process, r.cfg.RatePerClient, func(n int, rng *rand.Rand) {
		inv := r.gen.Next(process, rng)
		node := rng.IntN(len(clients))
		inv.Process, inv.Node = process, r.cl.Nodes()[node].Name
		inv.RequestID = fmt.Sprintf("%s-p%d-%d", r.runID, process, n)
		r.perform(ctx, clients[node], inv, r.cfg.OpTimeout)
	})
}

// perform records inv, performs it through c and records and returns its
// completion (inv itself, unrecorded, if the history refused it).
func (r *run) perform(ctx context.Context, c *client.Client, inv history.Op, timeout time.Duration) history.Op {
	out, ok := r.recordOK(ctx, timeout, inv, func(octx context.Context, inv history.Op) history.Op {
		return r.cfg.Workload.Invoke(octx, c, inv)
	})
	if ok {
		r.gen.Observe(out)
	}
	return out
}

// setupEnv is what the workload's setup may use: its ops are recorded as
// ops of process 2*Clients (after the final ops' processes), sent to the
// nodes in turn, each within 10s.
func (r *run) setupEnv(clients []*client.Client) workload.Env {
	names := nodeNames(r.cl)
	var mu sync.Mutex
	count := 0
	return workload.Env{
		Nodes:  names,
		Client: r.cl.TokenClients(r.cfg.OpTimeout),
		Perform: func(ctx context.Context, inv history.Op) history.Op {
			mu.Lock()
			defer mu.Unlock()
			node := count % len(names)
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
	r.closeNetwork()
}

// report writes the report folder.
func (r *run) report(res *Result, in *checker.Input, faults []nemesis.Fault, phases []report.Span) {
	cfg := r.cfg
	nodes := []map[string]string{}
	if r.cl != nil {
		for _, n := range r.cl.Nodes() {
			nodes = append(nodes, map[string]string{"name": n.Name, "ip": n.IP, "bind": n.Bind, "http": n.URL, "log": n.LogPath})
		}
	}
	// Converged replicas serve the same events: keep one copy.
	converged := false
	for _, v := range res.Verdicts {
		if v.Checker == (checker.Convergence{}).Name() {
			converged = v.Valid
		}
	}
	var spans []report.Span
	for _, f := range faults {
		spans = append(spans, report.Span{Label: f.Desc, Group: group(f.Kind), Start: f.Start, End: f.End})
	}
	runInfo := map[string]any{
		"duration": cfg.Duration.String(), "nemesis": nemesis.KindNames(cfg.Kinds), "clients": cfg.Clients,
		"op_timeout": cfg.OpTimeout.String(), "workload": cfg.Workload.Name(), "bin": cfg.Bin, "https": cfg.HTTPS,
		"nodes": nodes, "repro": cfg.Repro,
	}
	lines := []string{
		fmt.Sprintf("%d ops (%.0f/s) from %d clients: ok %d, fail %d, info %d", res.Stats.Ops, res.Stats.OpsPerSec, cfg.Clients, res.Stats.OK, res.Stats.Fail, res.Stats.Info),
		"faults: " + res.Stats.Faults,
	}
	if r.evo != nil {
		runInfo["evolution"] = r.evo.record()
		lines = append(lines, r.evo.phases(6)...)
	}
	r.writeReport(runReport{
		res: res, in: in, faults: faults, leaders: in.Leaders, phases: phases, spans: spans,
		run: runInfo, ledgers: []ledgerGroup{{ledgers: in.Ledgers, oneCopy: converged}},
		lines: lines, summary: Summary(res, cfg),
	})
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
	if len(s.ByWorkload) > 1 {
		writeCounts(&b, "workload ", s.ByWorkload, 5)
	}
	writeCounts(&b, "", s.ByF, 7)
	writeVerdicts(&b, res, 17)
	return b.String()
}
