package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/cluster"
	"github.com/dominus-kernel/dominus/jepsen/history"
	"github.com/dominus-kernel/dominus/jepsen/nemesis"
	"github.com/dominus-kernel/dominus/jepsen/netfault"
	"github.com/dominus-kernel/dominus/jepsen/report"
	"github.com/dominus-kernel/dominus/jepsen/workload"
)

// The kernels of a federation run: the sovereign and two domains. B is
// the target of leader kills and of the passport revocation.
const (
	fedSovereign = "sovereign"
	fedA         = "a"
	fedB         = "b"
)

// DefaultStandingSlack is the renewal slack every kernel applies to a
// passport (fsm.StandingSlack, documented in README.md): a domain's own
// gate and its peers stop honouring it this long after its expiry.
const DefaultStandingSlack = 30 * time.Second

// FedConfig describes a federation run.
type FedConfig struct {
	Bin        string // the dominus binary
	ReportsDir string // default jepsen/reports
	Label      string // default "federation"

	Seed     int64
	Duration time.Duration  // time of client ops under faults; default 45s
	Kinds    []nemesis.Kind // federation kinds (nemesis.FedKinds)
	// RequireAllKinds makes the run invalid unless every kind was
	// injected at least once.
	RequireAllKinds bool

	ClientsA      int           // client processes in domain a; default 3
	ClientsB      int           // client processes in domain b; default 2
	RatePerClient float64       // ops/s per client; default 2 (the bus ships one event per link per 100ms)
	OpTimeout     time.Duration // bound on one op; default 3s

	SovereignNodes  int    // default 1
	DomainNodes     int    // per domain; default 3
	SovereignPrefix string // default 127.0.91
	APrefix         string // default 127.0.92
	BPrefix         string // default 127.0.93
	BindPort        int    // Raft/RPC and bus (UDP) port; default 8300
	HTTPPort        int    // default 8101
	ProbePort       int    // default 7990
	HTTPS           bool
	Chain           string

	// PassportLifetime is the sovereign's --passport-lifetime (default
	// 20s) and RenewEvery the domains' --renew-every (default 1s).
	PassportLifetime time.Duration
	RenewEvery       time.Duration
	// StandingSlack is the kernels' renewal slack (default 30s); the
	// revocation bound is PassportLifetime + StandingSlack.
	StandingSlack time.Duration
	// RevokeAt is the fraction of Duration at which the revocation is
	// planned (default 0.55).
	RevokeAt float64
	// MaxExpiryWait bounds how long, after the heal, the run waits for
	// the revoked domain's standing to end so that its own gate can be
	// judged (default 2m); a longer wait is skipped and the verdict says
	// so.
	MaxExpiryWait time.Duration
	// DrainTimeout bounds the wait for the bus to deliver every pending
	// event after the heal (default 60s).
	DrainTimeout time.Duration

	CheckTimeout  time.Duration // per checker; default 2m
	MaxClockAhead time.Duration // ledger-clock bound; default 2.25s
	KeepData      bool
	Repro         string
	Out           io.Writer
}

func (c *FedConfig) defaults() {
	setDefault(&c.ReportsDir, filepath.Join("jepsen", "reports"))
	setDefault(&c.Label, "federation")
	setDefault(&c.Duration, 45*time.Second)
	setDefault(&c.ClientsA, 3)
	setDefault(&c.ClientsB, 2)
	setDefault(&c.RatePerClient, 2)
	setDefault(&c.OpTimeout, 3*time.Second)
	setDefault(&c.SovereignNodes, 1)
	setDefault(&c.DomainNodes, 3)
	setDefault(&c.SovereignPrefix, "127.0.91")
	setDefault(&c.APrefix, "127.0.92")
	setDefault(&c.BPrefix, "127.0.93")
	if c.ProbePort == 0 {
		c.ProbePort = 7990
	}
	setDefault(&c.Chain, netfault.DefaultChain)
	setDefault(&c.PassportLifetime, 20*time.Second)
	setDefault(&c.RenewEvery, time.Second)
	setDefault(&c.StandingSlack, DefaultStandingSlack)
	setDefault(&c.MaxExpiryWait, 2*time.Minute)
	setDefault(&c.DrainTimeout, 60*time.Second)
	setDefault(&c.CheckTimeout, 2*time.Minute)
	setDefault(&c.MaxClockAhead, 2*time.Second+250*time.Millisecond)
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

// Bound is the revocation bound: a revoked domain's events are refused
// by its peers, and its own gate stops, within this of the revocation.
func (c FedConfig) Bound() time.Duration { return c.PassportLifetime + c.StandingSlack }

// Process numbers of the ops the harness performs itself (clients are
// 0 .. ClientsA+ClientsB-1).
const (
	fedSetupProc  = 100
	fedRevokeProc = 101
	fedFinalProc  = 110 // .. +9
	fedStatusProc = 120
)

type fedRun struct {
	base
	cfg FedConfig

	kernels map[string]*cluster.Cluster
	order   []string // sovereign, a, b
	wl      *workload.Fed
	opToken string // the sovereign operator alice's token

	agents map[string]func(node, token string) (*client.Client, error)

	// guarded by mu
	revoked string // the domain whose passport was revoked
	calls   map[string]int
}

// RunFederation performs one federation run and writes its report: a
// sovereign and domains a and b of real processes, clients in both
// domains calling each other across the bus, a seeded schedule of bus
// cuts, kills of b's leader and (last) the revocation of b's passport,
// then the heal, the bus drain, the wait for b's standing to end, the
// final reads and the checkers. The error is non-nil only when no report
// could be produced.
func RunFederation(ctx context.Context, cfg FedConfig) (*Result, error) {
	cfg.defaults()
	r := &fedRun{cfg: cfg, kernels: map[string]*cluster.Cluster{}, wl: &workload.Fed{},
		agents: map[string]func(string, string) (*client.Client, error){}, calls: map[string]int{}}
	runLog, err := r.open(cfg.ReportsDir, cfg.Label, cfg.Seed, cfg.Chain, cfg.Out, "f")
	if err != nil {
		return nil, err
	}
	defer runLog.Close()
	res := &Result{Dir: r.dir, Repro: cfg.Repro}
	r.logf("%s run: seed %d, %s of ops, nemesis %s, clients %d in a and %d in b, passports live %s (bound %s), report in %s",
		cfg.Label, cfg.Seed, cfg.Duration, kindsOrNone(cfg.Kinds), cfg.ClientsA, cfg.ClientsB, cfg.PassportLifetime, cfg.Bound(), r.dir)

	sched := nemesis.FedPlan(nemesis.FedPlanConfig{Seed: cfg.Seed, Kinds: cfg.Kinds, Duration: cfg.Duration, A: fedA, B: fedB, RevokeAt: cfg.RevokeAt})
	if err := writeSchedule(&r.base, sched, sched.Steps); err != nil {
		return nil, err
	}

	in, faults, phases, perKernel := r.execute(ctx, sched)
	r.cleanup()
	r.judge(res, in, tally(in, cfg.ClientsA+cfg.ClientsB, nil, nemesis.FedSummary(faults)), func() []checker.Verdict {
		return r.check(ctx, in, perKernel, faults)
	}, "federation up, faults applied, probed and healed; kernels operated as planned")
	r.report(res, in, faults, phases, perKernel)
	if res.Valid && !cfg.KeepData {
		for _, k := range r.order {
			os.RemoveAll(filepath.Join(r.dir, k, "data"))
		}
	}
	return res, nil
}

// kernelInput is what one kernel contributes to the checks.
type kernelInput struct {
	name    string
	nodes   []string
	ledgers []checker.NodeLedger
	leaders []checker.LeaderClaim
	exits   []checker.Exit
	final   bool
}

func (r *fedRun) domainNodes() map[string][]string {
	out := map[string][]string{}
	for _, d := range []string{fedA, fedB} {
		if ns := (fedProcs{r}).DomainNodes(d); len(ns) > 0 {
			out[d] = ns
		}
	}
	return out
}

func (r *fedRun) allIPs() []string {
	var out []string
	for _, k := range []string{fedSovereign, fedA, fedB} {
		prefix, n := r.prefixOf(k)
		for i := 1; i <= n; i++ {
			out = append(out, fmt.Sprintf("%s.%d", prefix, i))
		}
	}
	return out
}

func (r *fedRun) prefixOf(kernel string) (string, int) {
	switch kernel {
	case fedSovereign:
		return r.cfg.SovereignPrefix, r.cfg.SovereignNodes
	case fedA:
		return r.cfg.APrefix, r.cfg.DomainNodes
	}
	return r.cfg.BPrefix, r.cfg.DomainNodes
}

// startKernel prepares and starts one kernel's processes.
func (r *fedRun) startKernel(ctx context.Context, name, namePrefix string, extra []string) (*cluster.Cluster, error) {
	prefix, n := r.prefixOf(name)
	c, err := cluster.New(ctx, cluster.Config{Bin: r.cfg.Bin, Dir: filepath.Join(r.dir, name), TLSDir: filepath.Join(r.dir, "tls"),
		IPPrefix: prefix, Nodes: n, NamePrefix: namePrefix, BindPort: r.cfg.BindPort, HTTPPort: r.cfg.HTTPPort, HTTPS: r.cfg.HTTPS,
		ExtraArgs: extra, Now: r.clock.Now, Logf: r.logf, Kernel: name})
	if err != nil {
		return nil, err
	}
	r.kernels[name] = c
	r.order = append(r.order, name)
	if err := c.StartAll(); err != nil {
		return c, err
	}
	return c, nil
}

// up starts the sovereign, its operators, both domains and their joins.
func (r *fedRun) up(ctx context.Context) error {
	sov, err := r.startKernel(ctx, fedSovereign, "s", []string{"--role", "sovereign", "--passport-lifetime", r.cfg.PassportLifetime.String()})
	if err != nil {
		return fmt.Errorf("sovereign: %w", err)
	}
	out, err := sov.InitWith(ctx, 60*time.Second, "--operators", "alice,bob,carol", "--threshold", "2", "--key-dir", filepath.Join(r.dir, "keys"))
	if err != nil {
		return fmt.Errorf("sovereign operator init: %w", err)
	}
	var init api.OperatorInitResponse
	if err := json.Unmarshal([]byte(out), &init); err != nil || len(init.Operators) == 0 {
		return fmt.Errorf("sovereign operator init printed no operators (%v): %s", err, out)
	}
	r.opToken = init.Operators[0].Token
	r.logf("sovereign up: %d node(s), operators %d of threshold 2", len(sov.Nodes()), len(init.Operators))
	var sovURLs []string
	for _, n := range sov.Nodes() {
		sovURLs = append(sovURLs, n.URL)
	}
	opc, err := sov.TokenClients(10*time.Second)(sov.Nodes()[0].Name, r.opToken)
	if err != nil {
		return err
	}
	for _, d := range []string{fedA, fedB} {
		var join string
		for attempt := 0; attempt < 10 && join == ""; attempt++ {
			cr, err := opc.DomainCreate(ctx, api.DomainCreateRequest{Name: d})
			switch {
			case err != nil:
				r.logf("domain create %s: %v (retrying)", d, err)
				if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
					return err
				}
			case cr.JoinToken == "":
				return fmt.Errorf("domain create %s: %s %s", d, cr.Decision, cr.Reason)
			default:
				join = cr.JoinToken
			}
		}
		if join == "" {
			return fmt.Errorf("domain create %s did not succeed", d)
		}
		c, err := r.startKernel(ctx, d, d, []string{"--role", "domain", "--domain", d, "--join-token", join,
			"--sovereign", strings.Join(sovURLs, ","), "--renew-every", r.cfg.RenewEvery.String(), "--witness-every", "5s"})
		if err != nil {
			return fmt.Errorf("domain %s: %w", d, err)
		}
		if _, err := c.InitWith(ctx, 90*time.Second, "--join-token", join); err != nil {
			return fmt.Errorf("domain %s operator init: %w", d, err)
		}
		r.agents[d] = c.TokenClients(r.cfg.OpTimeout)
		r.logf("domain %s joined", d)
	}
	// Ready: every domain knows the other (its first renewal after the
	// last join carries the peers).
	for _, d := range []string{fedA, fedB} {
		c := r.kernels[d]
		cl, err := c.Client(c.Nodes()[0], 5*time.Second)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			ps, err := cl.Passports(ctx)
			if err == nil && len(ps) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("domain %s did not learn its peer within 30s: %v (%d passports)", d, err, len(ps))
			}
			if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	for _, k := range r.order {
		if _, err := r.kernels[k].WaitConverged(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	for _, d := range []string{fedA, fedB} {
		conns, err := r.kernels[d].VerifySourceIPs()
		if err != nil {
			return fmt.Errorf("domain %s: %w", d, err)
		}
		r.logf("domain %s: %d node-to-node connections all dialed from node IPs", d, conns)
	}
	return nil
}

// nodeClient returns a client of node (of kernel k) sending token.
func (r *fedRun) nodeClient(k, node, token string) (*client.Client, error) {
	mk := r.agents[k]
	if mk == nil {
		return nil, fmt.Errorf("no clients for kernel %s", k)
	}
	return mk(node, token)
}

func (r *fedRun) execute(ctx context.Context, sched nemesis.FedSchedule) (*checker.Input, []nemesis.Fault, []report.Span, []kernelInput) {
	cfg := r.cfg
	in := &checker.Input{StartWall: r.clock.Start()}
	needNet := false
	for _, k := range cfg.Kinds {
		needNet = needNet || k == nemesis.BusCut
	}
	ips := r.allIPs()
	if err := r.openNetwork(needNet, "bus cuts", ips, cfg.ProbePort); err != nil {
		r.fail("%v", err)
		return in, nil, nil, nil
	}
	if err := r.pathsOpen(ctx, ips); err != nil {
		r.fail("%v", err)
		return in, nil, nil, nil
	}
	upStart := r.clock.Now()
	if err := r.up(ctx); err != nil {
		r.fail("%v", err)
		return in, nil, nil, r.collect(ctx, in)
	}
	phases := []report.Span{{Label: "federation up", Group: "phase", Start: upStart, End: r.clock.Now()}}
	hist, err := r.openHistory()
	if err != nil {
		r.fail("%v", err)
		return in, nil, nil, r.collect(ctx, in)
	}
	defer hist.Close()
	if err := r.setup(ctx); err != nil {
		r.fail("%v", err)
		return in, nil, nil, r.collect(ctx, in)
	}

	nem := nemesis.NewFed(fedProcs{r}, firewall[nemesis.UDPNetwork](&r.base), r.probe, r.revoke, fedA, fedB, r.clock.Now, r.logf)
	inject := func(ctx context.Context, start time.Time) error { return nem.Run(ctx, sched, start) }
	phases = append(phases, r.underFaults(ctx, cfg.Duration, cfg.ClientsA+cfg.ClientsB, r.client, inject))
	phases = append(phases, r.healPhase(ctx, nem.Heal, func(hctx context.Context) {
		for _, k := range r.order {
			if _, err := r.kernels[k].WaitConverged(hctx, 60*time.Second); err != nil {
				r.fail("%s after heal: %v", k, err)
			}
		}
	}, "healed; every rule removed, the bus open both ways, every node running"))

	after := context.WithoutCancel(ctx)
	if ctx.Err() == nil {
		finalStart := r.clock.Now()
		r.drain(after)
		r.afterStanding(after)
		r.readStatuses(after)
		phases = append(phases, report.Span{Label: "final ops", Group: "phase", Start: finalStart, End: r.clock.Now()})
	}
	if err := r.rec.Flush(); err != nil {
		r.fail("history file: %v", err)
	}
	perKernel := r.collect(after, in)
	in.History = r.rec.Ops()
	return in, nem.Faults(), phases, perKernel
}

// setup sets the fed workload up through the first node of each domain.
func (r *fedRun) setup(ctx context.Context) error {
	roots := map[string]*client.Client{}
	for _, d := range []string{fedA, fedB} {
		c := r.kernels[d]
		var err error
		if roots[d], err = c.Client(c.Nodes()[0], 10*time.Second); err != nil {
			return err
		}
	}
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	err := r.wl.Setup(sctx, roots)
	scancel()
	if err != nil {
		return fmt.Errorf("workload setup: %w", err)
	}
	r.logf("workload fed set up: agents in a and b, each granted kv.put on the other's fed/*")
	return nil
}

// collect reads every kernel's ledgers (read again while replicas
// disagree: the sovereign and the domains keep recording renewals), the
// agents' leadership claims, and stops the processes (recording exits).
func (r *fedRun) collect(ctx context.Context, in *checker.Input) []kernelInput {
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Minute)
	defer fcancel()
	var out []kernelInput
	for _, k := range r.order {
		c := r.kernels[k]
		ki := kernelInput{name: k, nodes: nodeNames(c)}
		ki.ledgers = r.readLedgers(fctx, fctx, c, k+": ", func(_ int, err error) {
			r.logf("%s before reading the ledgers: %v", k, err)
		})
		ki.final, _ = settled(fctx, c, ki.ledgers, 500*time.Millisecond)
		var err error
		if ki.leaders, err = leaderClaims(c); err != nil {
			r.fail("%s agent logs: %v", k, err)
		}
		out = append(out, ki)
		in.Ledgers = append(in.Ledgers, ki.ledgers...)
	}
	for i, k := range r.order {
		r.kernels[k].Close()
		out[i].exits = r.kernels[k].Exits()
		in.Exits = append(in.Exits, out[i].exits...)
	}
	return out
}

// client runs one process's ops until opsCtx is done: processes below
// ClientsA are agents of a calling b, the others agents of b calling a;
// one op in six is a local call in the agent's own domain.
func (r *fedRun) client(ctx, opsCtx context.Context, process int) {
	origin, dest := fedA, fedB
	if process >= r.cfg.ClientsA {
		origin, dest = fedB, fedA
	}
	nodes := r.kernels[origin].Nodes()
	token := r.wl.AgentToken(origin)
	paced(opsCtx, r.cfg.Seed, process, r.cfg.RatePerClient, func(n int, rng *rand.Rand) {
		node := nodes[rng.IntN(len(nodes))].Name
		unique := fmt.Sprintf("%s-p%d-%d", r.runID, process, n)
		var inv history.Op
		if rng.IntN(6) == 0 {
			inv = r.wl.LocalOp(origin + "-" + unique)
		} else {
			inv = r.wl.CallOp(dest, origin, unique)
		}
		inv.Process, inv.Node, inv.RequestID = process, node, fmt.Sprintf("%s-p%d-%d", r.runID, process, n)
		r.performCall(ctx, origin, token, inv, r.cfg.OpTimeout)
	})
}

// performCall records and performs a fed-call or fed-local op of an
// agent of origin.
func (r *fedRun) performCall(ctx context.Context, origin, token string, inv history.Op, timeout time.Duration) history.Op {
	c, err := r.nodeClient(origin, inv.Node, token)
	if err != nil {
		r.fail("%v", err)
		return inv
	}
	return r.record(ctx, timeout, inv, func(octx context.Context, inv history.Op) history.Op {
		if inv.F == checker.FFedLocal {
			return r.wl.Local(octx, c, inv)
		}
		r.mu.Lock()
		r.calls[origin]++
		r.mu.Unlock()
		return r.wl.Call(octx, c, origin, inv)
	})
}

// check applies every checker: per kernel the ledger checkers; per
// domain the request-id and ledger-clock checkers on that domain's ops;
// and the federation checkers over everything.
func (r *fedRun) check(ctx context.Context, in *checker.Input, perKernel []kernelInput, faults []nemesis.Fault) []checker.Verdict {
	cctx := context.WithoutCancel(ctx)
	var out []checker.Verdict
	suffix := func(vs []checker.Verdict, k string) []checker.Verdict {
		for i := range vs {
			vs[i].Checker += "[" + k + "]"
		}
		return vs
	}
	for _, ki := range perKernel {
		kin := &checker.Input{Ledgers: ki.ledgers, Leaders: ki.leaders, Exits: ki.exits, StartWall: in.StartWall, LedgerFinal: ki.final}
		cs := []checker.Checker{checker.LedgerChain{}, checker.Convergence{}, checker.LeaderPerTerm{}, checker.ProcessExits{}}
		if len(ki.nodes) < 2 {
			cs = []checker.Checker{checker.LedgerChain{}, checker.LeaderPerTerm{}, checker.ProcessExits{}}
		}
		out = append(out, suffix(checker.Run(cctx, cs, kin, r.cfg.CheckTimeout), ki.name)...)
		if ki.name == fedSovereign {
			continue
		}
		nodes := map[string]bool{}
		for _, n := range ki.nodes {
			nodes[n] = true
		}
		var ops []history.Op
		for _, op := range in.History {
			if nodes[op.Node] && (op.F == checker.FFedCall || op.F == checker.FFedLocal) {
				ops = append(ops, op)
			}
		}
		din := &checker.Input{History: ops, Ledgers: ki.ledgers, StartWall: in.StartWall, LedgerFinal: ki.final}
		cs = []checker.Checker{checker.RequestIDs{EventType: workload.FedEventTypes, SubjectIsKey: true}, checker.LedgerClock{MaxAhead: r.cfg.MaxClockAhead}}
		out = append(out, suffix(checker.Run(cctx, cs, din, r.cfg.CheckTimeout), ki.name)...)
	}
	r.mu.Lock()
	revoked := r.revoked
	r.mu.Unlock()
	fcs := r.wl.Checkers(r.domainNodes(), revoked, r.cfg.Bound(), r.cfg.StandingSlack)
	for _, k := range r.cfg.Kinds {
		if k == nemesis.RevokePassport && revoked == "" {
			// Planned but not in effect: the checker says whether a
			// revoke was tried and left unknown, or never reached.
			fcs = append(fcs, checker.FedRevocation{Domains: r.domainNodes(), Domain: fedB, Bound: r.cfg.Bound(), Slack: r.cfg.StandingSlack})
		}
	}
	out = append(out, checker.Run(cctx, fcs, in, r.cfg.CheckTimeout)...)
	if r.cfg.RequireAllKinds {
		out = append(out, coverage(r.cfg.Kinds, faults, nemesis.FedSummary))
	}
	return out
}

// cleanup stops everything the run started; it is safe to call twice.
func (r *fedRun) cleanup() {
	for _, k := range r.order {
		r.kernels[k].Close()
	}
	r.closeNetwork()
}

// report writes the report folder: one copy of the ledger per kernel
// unless its replicas differ.
func (r *fedRun) report(res *Result, in *checker.Input, faults []nemesis.Fault, phases []report.Span, perKernel []kernelInput) {
	cfg := r.cfg
	nodes := []map[string]string{}
	for _, k := range r.order {
		for _, n := range r.kernels[k].Nodes() {
			nodes = append(nodes, map[string]string{"kernel": k, "name": n.Name, "ip": n.IP, "bind": n.Bind, "http": n.URL, "log": n.LogPath})
		}
	}
	var leaders []checker.LeaderClaim
	var ledgers []ledgerGroup
	for _, ki := range perKernel {
		leaders = append(leaders, ki.leaders...)
		ledgers = append(ledgers, ledgerGroup{ledgers: ki.ledgers, oneCopy: sameHeads(ki.ledgers)})
	}
	var spans []report.Span
	for _, f := range faults {
		g := "partition"
		switch f.Kind {
		case nemesis.KillDomainLeader:
			g = "kill"
		case nemesis.RevokePassport:
			g = "clock"
			f.End = f.Start + int64(time.Second) // a marker: the revocation is permanent
		}
		spans = append(spans, report.Span{Label: f.Desc, Group: g, Start: f.Start, End: f.End})
	}
	r.writeReport(runReport{
		res: res, in: in, faults: faults, leaders: leaders, ledgers: ledgers, spans: spans, phases: phases,
		run: map[string]any{
			"duration": cfg.Duration.String(), "nemesis": nemesis.KindNames(cfg.Kinds), "clients_a": cfg.ClientsA, "clients_b": cfg.ClientsB,
			"op_timeout": cfg.OpTimeout.String(), "workload": "fed", "bin": cfg.Bin, "https": cfg.HTTPS, "nodes": nodes, "repro": cfg.Repro,
			"passport_lifetime": cfg.PassportLifetime.String(), "renew_every": cfg.RenewEvery.String(), "bound": cfg.Bound().String(),
		},
		lines: []string{
			fmt.Sprintf("%d ops (%.0f/s) from %d clients in a and %d in b: ok %d, fail %d, info %d", res.Stats.Ops, res.Stats.OpsPerSec,
				cfg.ClientsA, cfg.ClientsB, res.Stats.OK, res.Stats.Fail, res.Stats.Info),
			"faults: " + res.Stats.Faults,
		},
		summary: FedSummary(res, cfg),
	})
}

// FedSummary renders a federation run's result for people.
func FedSummary(res *Result, cfg FedConfig) string {
	var b strings.Builder
	s := res.Stats
	fmt.Fprintf(&b, "\n== dominus %s run: %s\n", cfg.Label, res.Dir)
	fmt.Fprintf(&b, "seed %d, %s of ops, workload fed, nemesis %s, clients %d in a and %d in b, op timeout %s, passports %s (bound %s)\n",
		cfg.Seed, cfg.Duration, kindsOrNone(cfg.Kinds), cfg.ClientsA, cfg.ClientsB, cfg.OpTimeout, cfg.PassportLifetime, cfg.Bound())
	fmt.Fprintf(&b, "ops %d (%.1f/s): ok %d, fail %d, info %d; most ledger events in one kernel %d\n", s.Ops, s.OpsPerSec, s.OK, s.Fail, s.Info, s.Events)
	writeCounts(&b, "", s.ByF, 10)
	writeVerdicts(&b, res, 26)
	return b.String()
}
