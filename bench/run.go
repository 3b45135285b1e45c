package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Modes beyond the closed-loop loads (put, read, mixed).
const (
	ModeFailover  = "failover"  // kill -9 of the leader, time to the first committed write
	ModeReplay    = "replay"    // build a ledger through a cluster, time `audit replay --data-dir`
	ModeElections = "elections" // count term increments during a no-fault run under load
)

// ModeQuick is an alias of ModePut.
const ModeQuick = "quick"

// Raft timing of the kernel at scale 1 (kernel/node.go, raftConfig). The
// agent does not report them, so they are restated here for the report.
const (
	kernelHeartbeatTimeout   = 500 * time.Millisecond
	kernelElectionTimeout    = 500 * time.Millisecond
	kernelLeaderLeaseTimeout = 250 * time.Millisecond
)

// Config configures a benchmark run. Start from DefaultConfig.
type Config struct {
	Exe          string   // the dominus binary that runs the gate's agents and `audit replay`
	ReferenceExe string   // runs the reference target's agents: dominus built with -tags benchreference (ReferenceBuildTag)
	Env          []string // extra environment of child processes
	Dir          string   // parent of the clusters' temp dirs ("" = os.TempDir)

	Nodes    int    // agents per cluster
	BindBase string // first loopback IP; the gate cluster takes Nodes IPs from here, the reference cluster the next Nodes
	HTTPPort int    // HTTP API port on every IP
	RaftPort int    // Raft/RPC port on every IP

	ValueBytes int
	Clients    []int
	Duration   time.Duration // measured phase of each load run
	Warmup     time.Duration // unrecorded load before it
	Modes      []string
	Targets    []string // gate, reference (load modes only; the others run on the gate)
	Route      string   // RouteSpread or RouteLeader

	// Addr, when set, names an existing cluster's API URLs: no cluster is
	// started, only the gate target runs, with Token (and CACert for https).
	Addr   []string
	Token  string
	CACert string

	RaftTimeoutScale float64 // --raft-timeout-scale of the agents (1 = kernel default)

	FailoverTrials    int
	ReplayEvents      int // puts written before the replay (the ledger holds one more: genesis)
	ReplayClients     int
	ElectionsDuration time.Duration
	ElectionsClients  int
	LedgerEvents      int   // gated puts of the offline snapshot and memory modes
	RevocationSizes   []int // subtree sizes of the revocation mode

	Path Path // how requests reach the kernel (default DefaultPath)

	Log io.Writer // progress lines (nil discards)

	Version string // of the binary under test, for the report
}

// DefaultConfig returns the settings of `dominus bench` without flags.
func DefaultConfig() Config {
	return Config{
		Nodes:             3,
		BindBase:          "127.0.0.51",
		HTTPPort:          8101,
		RaftPort:          8300,
		ValueBytes:        256,
		Clients:           []int{1, 16, 256},
		Duration:          10 * time.Second,
		Warmup:            time.Second,
		Modes:             []string{ModePut},
		Targets:           []string{TargetGate, TargetReference},
		Route:             RouteSpread,
		RaftTimeoutScale:  1,
		FailoverTrials:    5,
		ReplayEvents:      100_000,
		ReplayClients:     256,
		ElectionsDuration: 5 * time.Minute,
		ElectionsClients:  256,
		LedgerEvents:      1_000_000,
		RevocationSizes:   []int{10, 1_000, 100_000},
		Path:              DefaultPath,
	}
}

func isLoadMode(m string) bool { return m == ModePut || m == ModeRead || m == ModeMixed }

// Validate names every offending value.
func (c *Config) Validate() error {
	var errs []string
	for i, m := range c.Modes {
		if m == ModeQuick {
			c.Modes[i] = ModePut
			continue
		}
		if !isLoadMode(m) && !isLedgerMode(m) && m != ModeFailover && m != ModeReplay && m != ModeElections {
			errs = append(errs, fmt.Sprintf("mode %q is not put, read, mixed, failover, replay, elections, snapshot, memory or revocation", m))
		}
	}
	if len(c.Modes) == 0 {
		errs = append(errs, "no mode")
	}
	for _, t := range c.Targets {
		if t != TargetGate && t != TargetReference {
			errs = append(errs, fmt.Sprintf("target %q is not gate or reference", t))
		}
	}
	for _, n := range c.Clients {
		if n < 1 || n > 4096 {
			errs = append(errs, fmt.Sprintf("client count %d is outside 1..4096", n))
		}
	}
	if c.Duration < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("duration %s is below 100ms", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Sprintf("warm-up %s is negative", c.Warmup))
	}
	if c.ValueBytes < 0 || c.ValueBytes > 1<<20 {
		errs = append(errs, fmt.Sprintf("value size %d is outside 0..1MiB", c.ValueBytes))
	}
	if c.Route != RouteSpread && c.Route != RouteLeader {
		errs = append(errs, fmt.Sprintf("route %q is not spread or leader", c.Route))
	}
	if len(c.Addr) > 0 {
		if c.Token == "" {
			errs = append(errs, "an existing cluster (--addr) needs --token")
		}
		for _, m := range c.Modes {
			if !isLoadMode(m) && !isLedgerMode(m) {
				errs = append(errs, fmt.Sprintf("mode %s needs a cluster of its own (it kills or stops nodes); not with --addr", m))
			}
		}
	} else {
		if c.Exe == "" && slices.ContainsFunc(c.Modes, func(m string) bool { return !isLedgerMode(m) }) {
			errs = append(errs, "no dominus binary to start agents with")
		}
		if c.ReferenceExe == "" && c.runsReference() {
			errs = append(errs, "no reference binary to start the reference target's agents with")
		}
		if c.Nodes < 1 || c.Nodes > 9 {
			errs = append(errs, fmt.Sprintf("nodes %d is outside 1..9", c.Nodes))
		}
		ip := net.ParseIP(c.BindBase).To4()
		if ip == nil || ip[0] != 127 || int(ip[3])+2*c.Nodes-1 > 254 || ip[3] == 0 {
			errs = append(errs, fmt.Sprintf("bind base %q must be a 127.x.y.z address with room for %d addresses", c.BindBase, 2*c.Nodes))
		}
	}
	if slices.Contains(c.Modes, ModeFailover) && (c.FailoverTrials < 1 || c.FailoverTrials > 100) {
		errs = append(errs, fmt.Sprintf("failover trials %d is outside 1..100", c.FailoverTrials))
	}
	if slices.Contains(c.Modes, ModeReplay) && (c.ReplayEvents < 1 || c.ReplayClients < 1) {
		errs = append(errs, fmt.Sprintf("replay needs events >= 1 (got %d) and clients >= 1 (got %d)", c.ReplayEvents, c.ReplayClients))
	}
	if (slices.Contains(c.Modes, ModeSnapshot) || slices.Contains(c.Modes, ModeMemory)) && c.LedgerEvents < 1 {
		errs = append(errs, fmt.Sprintf("snapshot and memory need ledger events >= 1 (got %d)", c.LedgerEvents))
	}
	for _, n := range c.RevocationSizes {
		if slices.Contains(c.Modes, ModeRevocation) && (n < 1 || n > 1_000_000) {
			errs = append(errs, fmt.Sprintf("revocation subtree size %d is outside 1..1000000", n))
		}
	}
	if slices.Contains(c.Modes, ModeElections) && (c.ElectionsDuration < time.Second || c.ElectionsClients < 1) {
		errs = append(errs, fmt.Sprintf("elections needs a duration >= 1s (got %s) and clients >= 1 (got %d)", c.ElectionsDuration, c.ElectionsClients))
	}
	if c.Path.Write == nil || c.Path.Read == nil || c.Path.Describe == nil {
		errs = append(errs, "no request path")
	}
	if len(errs) > 0 {
		return errors.New("bench: " + strings.Join(errs, "; "))
	}
	return nil
}

// firstIP returns the first loopback IP of a target's cluster.
func (c *Config) firstIP(target string) string {
	ip := net.ParseIP(c.BindBase).To4()
	off := 0
	if target == TargetReference {
		off = c.Nodes
	}
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+byte(off)).String()
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
	}
}

// exe returns the binary that runs a target's agents.
func (c *Config) exe(target string) string {
	if target == TargetReference {
		return c.ReferenceExe
	}
	return c.Exe
}

func (c *Config) clusterConfig(target string) ClusterConfig {
	return ClusterConfig{
		Exe: c.exe(target), Env: c.Env, Dir: c.Dir, Nodes: c.Nodes, FirstIP: c.firstIP(target),
		HTTPPort: c.HTTPPort, RaftPort: c.RaftPort, RaftTimeoutScale: c.RaftTimeoutScale,
	}
}

// Run runs every configured mode and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Addr) > 0 {
		cfg.Targets = []string{TargetGate}
	}
	if err := cfg.checkBinaries(); err != nil {
		return nil, err
	}
	rep := &Report{Results: []Result{}, StartedAt: time.Now().UTC(), Machine: machineInfo(cfg.Dir), Settings: cfg.settings(), Version: cfg.Version}
	for _, mode := range cfg.Modes {
		if !isLoadMode(mode) {
			continue
		}
		for _, n := range cfg.Clients {
			for _, target := range cfg.Targets {
				r, err := cfg.loadRun(ctx, target, mode, n)
				if err != nil {
					return rep, err
				}
				cfg.logf("%s %s C=%d: %.0f ops/s, p50 %.3f ms, p99 %.3f ms, %d errors", mode, target, n, r.OpsPerS, r.P50Ms, r.P99Ms, r.Errors)
				rep.Results = append(rep.Results, r)
			}
		}
	}
	rep.Ratios = ComputeRatios(rep.Results)
	for _, mode := range cfg.Modes {
		var err error
		switch mode {
		case ModeFailover:
			var f *FailoverReport
			if f, err = cfg.failover(ctx); err == nil {
				rep.Failover, rep.FailoverMs = f, &f.MedianMs
			}
		case ModeReplay:
			var p *ReplayReport
			if p, err = cfg.replay(ctx); err == nil {
				rep.Replay, rep.ReplayEventsPerS = p, &p.EventsPerS
			}
		case ModeSnapshot:
			rep.Snapshot, err = cfg.snapshotFigures()
		case ModeMemory:
			rep.Memory, err = cfg.memoryFigures()
		case ModeRevocation:
			rep.Revocation, err = cfg.revocationFigures()
		case ModeElections:
			var e *ElectionsReport
			var r *Result
			if e, r, err = cfg.elections(ctx); err == nil {
				rep.Elections, rep.ElectionsNoFault = e, &e.TermIncrease
				rep.Results = append(rep.Results, *r)
			}
		}
		if err != nil {
			return rep, err
		}
	}
	rep.Seconds = round3(time.Since(rep.StartedAt).Seconds())
	return rep, nil
}

func (c *Config) settings() Settings {
	s := Settings{
		Nodes: c.Nodes, ValueBytes: c.ValueBytes, Clients: c.Clients,
		DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(),
		Modes: c.Modes, Targets: c.Targets, Route: c.Route, Op: c.Path.Name, RaftTimeoutScale: c.RaftTimeoutScale,
		ClientNote: "C goroutines, each issuing its requests one after the other (closed loop), through one shared keep-alive HTTP client; no client-side retries",
		HTTP:       "plaintext HTTP/1.1 on loopback",
		NodeTLS:    true,
	}
	switch {
	case len(c.Addr) > 0:
		s.Addr, s.Nodes, s.NodeTLS = c.Addr, len(c.Addr), false
		s.RouteNote = "requests round-robin over the given URLs"
		if c.Route == RouteLeader {
			s.RouteNote = "every request to the given URL that is leader"
		}
		if strings.HasPrefix(c.Addr[0], "https") {
			s.HTTP = "HTTPS"
		}
	case c.Route == RouteLeader:
		s.BindBase = c.BindBase
		s.RouteNote = "every request to the leader"
	default:
		s.BindBase = c.BindBase
		s.RouteNote = "requests round-robin over all nodes (followers forward to the leader)"
	}
	return s
}

// loadRun measures one target at n clients: on a fresh cluster unless
// the config names an existing one.
func (c *Config) loadRun(ctx context.Context, target, mode string, n int) (Result, error) {
	lc := LoadConfig{
		Clients: n, Duration: c.Duration, Warmup: c.Warmup, ValueBytes: c.ValueBytes,
		Mode: mode, Route: c.Route, Path: c.Path, Target: target, Token: c.Token, CACert: c.CACert,
	}
	load := LoadAvg1m()
	if len(c.Addr) > 0 {
		lc.URLs = c.Addr
		if c.Route == RouteLeader {
			u, err := leaderOf(ctx, c.Addr, c.Token, c.CACert)
			if err != nil {
				return Result{}, err
			}
			lc.LeaderURL = u
		}
		lr, err := RunLoad(ctx, lc)
		if err != nil {
			return Result{}, err
		}
		r := NewResult(target, n, mode, lr)
		r.LoadAvg1m = load
		return r, nil
	}
	c.logf("starting %s cluster (%d nodes from %s, %s) for %s at C=%d", target, c.Nodes, c.firstIP(target), c.exe(target), mode, n)
	cl, err := StartCluster(ctx, c.clusterConfig(target))
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	lc.URLs, lc.Token, lc.ServerCPU = cl.URLs(), cl.Token, cl.CPUSeconds
	if c.Route == RouteLeader {
		li, err := cl.WaitLeader(ctx, 10*time.Second)
		if err != nil {
			return Result{}, err
		}
		lc.LeaderURL = cl.Agents[li].HTTP
	}
	lr, err := RunLoad(ctx, lc)
	if err != nil {
		return Result{}, err
	}
	r := NewResult(target, n, mode, lr)
	r.LoadAvg1m = load
	return r, nil
}

func machineInfo(dir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb uint64
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryMiB = kb >> 10
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if dir == "" {
		dir = os.TempDir()
	}
	m.DataFS = fsType(dir)
	m.LoadAvg1m = LoadAvg1m()
	return m
}
