package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/client"
)

// leaderOf returns the URL among urls whose node reports itself leader.
func leaderOf(ctx context.Context, urls []string, token, caCert string) (string, error) {
	for _, u := range urls {
		c, err := client.New(client.Config{Addr: u, Token: token, CACert: caCert, Timeout: 2 * time.Second, RetryFor: time.Nanosecond})
		if err != nil {
			return "", err
		}
		if s, err := c.Status(ctx); err == nil && s.RaftState == "Leader" {
			return u, nil
		}
	}
	return "", fmt.Errorf("bench: none of %v reports itself leader", urls)
}

func (c *Config) electionSettings() ElectionSettings {
	s := c.RaftTimeoutScale
	if s == 0 {
		s = 1
	}
	scaled := func(d time.Duration) float64 { return float64(d) * s / 1e6 }
	return ElectionSettings{
		HeartbeatTimeoutMs: scaled(kernelHeartbeatTimeout), ElectionTimeoutMs: scaled(kernelElectionTimeout),
		LeaderLeaseTimeoutMs: scaled(kernelLeaderLeaseTimeout), RaftTimeoutScale: s,
	}
}

// Probe cadence of the failover measurement.
const (
	probeEvery   = 20 * time.Millisecond
	probeTimeout = 2 * time.Second
	failoverMax  = 30 * time.Second
)

// failover kills the leader of a gate cluster with SIGKILL FailoverTrials
// times and measures, each time, from the signal to the first kv.put that
// a surviving node answers PERMIT. Each survivor gets a new probe every
// probeEvery (probes overlap), so the figure is the cluster's, not one
// request's retry backoff. The killed node is restarted and caught up
// before the next trial.
func (c *Config) failover(ctx context.Context) (*FailoverReport, error) {
	c.logf("failover: starting gate cluster (%d nodes from %s)", c.Nodes, c.firstIP(TargetGate))
	cl, err := StartCluster(ctx, c.clusterConfig(TargetGate))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	hc, err := newHTTPClient(64, c.Nodes, "", probeTimeout)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	wcs, err := workerClients(ctx, c.Path, TargetGate, cl.URLs(), cl.Token, hc, 1)
	if err != nil {
		return nil, err
	}
	clients := wcs[0] // worker 0's credentials, one client per node
	val := value(c.ValueBytes)
	rep := &FailoverReport{
		Target:    TargetGate,
		Elections: c.electionSettings(),
		Measure: fmt.Sprintf("SIGKILL of the leader -> first write answered PERMIT by a survivor (a new probe to every survivor every %s, each limited to %s); write: %s",
			probeEvery, probeTimeout, c.Path.Describe(TargetGate, ModePut)),
	}
	for trial := 0; trial < c.FailoverTrials; trial++ {
		if err := c.settle(ctx, cl, clients, val); err != nil {
			cl.KeepDir()
			return nil, fmt.Errorf("bench: failover trial %d: %w", trial+1, err)
		}
		li, _ := cl.Leader(ctx)
		if li < 0 {
			return nil, fmt.Errorf("bench: failover trial %d: no leader before the kill", trial+1)
		}
		pid := cl.Agents[li].PID()
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("bench: kill -9 %d: %w", pid, err)
		}
		d, err := firstWrite(ctx, c.Path, clients, li, val, t0)
		if err != nil {
			cl.KeepDir()
			return nil, fmt.Errorf("bench: failover trial %d: %w (logs in %s)", trial+1, err, cl.Dir)
		}
		msv := round3(float64(d) / 1e6)
		rep.TrialsMs = append(rep.TrialsMs, msv)
		c.logf("failover trial %d: leader %s killed, first committed write after %.1f ms", trial+1, cl.Agents[li].Name, msv)
		_ = cl.Kill(li) // reap the process
		if err := cl.Start(li); err != nil {
			return nil, err
		}
	}
	rep.MedianMs = median(rep.TrialsMs)
	for _, v := range rep.TrialsMs {
		rep.MaxMs = max(rep.MaxMs, v)
	}
	return rep, nil
}

// firstWrite probes the survivors until one answers a put, and returns
// the time from t0 to that answer.
func firstWrite(ctx context.Context, path Path, clients []*client.Client, dead int, val string, t0 time.Time) (time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, failoverMax)
	defer cancel()
	var (
		once sync.Once
		won  = make(chan time.Duration, 1)
		wg   sync.WaitGroup
		seq  atomic.Uint64
	)
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	defer wg.Wait()
	defer cancel()
	launch := func() {
		for i, c := range clients {
			if i == dead {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				actx, acancel := context.WithTimeout(pctx, probeTimeout)
				defer acancel()
				if path.Write(actx, c, benchKey(0, seq.Add(1)), val) == nil {
					d := time.Since(t0)
					once.Do(func() { won <- d })
				}
			}()
		}
	}
	launch()
	for {
		select {
		case d := <-won:
			return d, nil
		case <-pctx.Done():
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("no write committed within %s of the kill", failoverMax)
		case <-tick.C:
			launch()
		}
	}
}

// settle waits until every node runs, agrees on one leader, has applied
// what that leader had committed, and a write through every node
// succeeds.
func (c *Config) settle(ctx context.Context, cl *Cluster, clients []*client.Client, val string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster did not settle within 60s (logs in %s)", cl.Dir)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.settled(ctx, cl, clients, val) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Config) settled(ctx context.Context, cl *Cluster, clients []*client.Client, val string) bool {
	li, ls := cl.Leader(ctx)
	if li < 0 {
		return false
	}
	for i := range cl.Agents {
		s, err := cl.Status(ctx, i)
		if err != nil || s.Leader != ls.Node || s.AppliedIndex < ls.CommitIndex {
			return false
		}
	}
	for i, cc := range clients {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Path.Write(wctx, cc, benchKey(0, uint64(i)), val)
		cancel()
		if err != nil {
			return false
		}
	}
	return true
}

// replay writes ReplayEvents puts through a gate cluster with
// ReplayClients concurrent writers, stops the cluster (a follower first),
// and times `dominus audit replay --data-dir` of the follower's data dir
// with the agents no longer running.
func (c *Config) replay(ctx context.Context) (*ReplayReport, error) {
	c.logf("replay: starting gate cluster (%d nodes from %s) to write %d events through the leader with %d clients", c.Nodes, c.firstIP(TargetGate), c.ReplayEvents, c.ReplayClients)
	cl, err := StartCluster(ctx, c.clusterConfig(TargetGate))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	t0 := time.Now()
	if err := c.writeN(ctx, cl, c.ReplayEvents, c.ReplayClients); err != nil {
		return nil, err
	}
	build := time.Since(t0)
	li, _ := cl.Leader(ctx)
	follower := 0
	if li == 0 && len(cl.Agents) > 1 {
		follower = 1
	}
	// Let the follower apply everything the leader committed.
	if li >= 0 {
		ls, err := cl.Status(ctx, li)
		if err == nil {
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if s, err := cl.Status(ctx, follower); err == nil && s.AppliedIndex >= ls.CommitIndex {
					break
				}
				// Rarely: every status digests the whole state.
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
	if err := cl.Stop(follower); err != nil {
		return nil, err
	}
	for i := range cl.Agents {
		if err := cl.Stop(i); err != nil {
			return nil, err
		}
	}
	dataDir := cl.Agents[follower].DataDir
	rep := &ReplayReport{BuildSeconds: round3(build.Seconds()), BuildClients: c.ReplayClients,
		Command: c.Exe + " audit replay --json --data-dir " + dataDir, ArchiveBytes: dirBytes(filepath.Join(dataDir, "archive"))}
	c.logf("replay: %d events written in %.1f s; replaying %s (%d MiB archive)", c.ReplayEvents, build.Seconds(), dataDir, rep.ArchiveBytes>>20)
	cmd := exec.CommandContext(ctx, c.Exe, "audit", "replay", "--json", "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), c.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("bench: audit replay: %w: %s %s", err, strings.TrimSpace(out.String()), lastLine(errb.String()))
	}
	var res struct {
		OK     bool   `json:"ok"`
		Events uint64 `json:"events"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("bench: audit replay output: %w", err)
	}
	rep.OK, rep.Events, rep.Seconds = res.OK, res.Events, round3(wall.Seconds())
	if ps := cmd.ProcessState; ps != nil {
		rep.CPUs = round3((ps.UserTime() + ps.SystemTime()).Seconds())
	}
	if wall > 0 {
		rep.EventsPerS = float64(int64(float64(res.Events) / wall.Seconds()))
	}
	if !res.OK || res.Events < uint64(c.ReplayEvents) {
		return rep, fmt.Errorf("bench: audit replay verified %d events (ok=%v), want at least %d", res.Events, res.OK, c.ReplayEvents)
	}
	return rep, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// writeN writes n puts through the cluster with the given number of
// concurrent writers, to the leader (the fastest way in: no forwarding),
// retrying a failed put on the next node (same key, new request id) up to
// 5 times.
func (c *Config) writeN(ctx context.Context, cl *Cluster, n, writers int) error {
	leader, err := cl.WaitLeader(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	hc, err := newHTTPClient(writers, len(cl.Agents), "", 30*time.Second)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	wcs, err := workerClients(ctx, c.Path, TargetGate, cl.URLs(), cl.Token, hc, writers)
	if err != nil {
		return err
	}
	val := value(c.ValueBytes)
	var (
		next     atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	report := max(int64(n)/10, 1)
	var mu sync.Mutex
	lastReport := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || wctx.Err() != nil {
					return
				}
				clients := wcs[w]
				var err error
				for try := 0; try < 5; try++ {
					cc := clients[(leader+try)%len(clients)]
					if err = c.Path.Write(wctx, cc, benchKey(w, uint64(i)), val); err == nil {
						break
					}
				}
				if err != nil {
					e := fmt.Errorf("bench: write %d of %d: %w", i+1, n, err)
					firstErr.CompareAndSwap(nil, &e)
					cancel()
					return
				}
				if (i+1)%report == 0 {
					now := time.Now()
					mu.Lock()
					c.logf("replay: %d of %d written (last %d at %.0f/s)", i+1, n, report, float64(report)/now.Sub(lastReport).Seconds())
					lastReport = now
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

func dirBytes(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// elections runs the put load on a gate cluster for ElectionsDuration with
// ElectionsClients clients and counts term increments: every election,
// successful or not, raises the term, and terms never go back, so the
// highest term before and after the run tells how many there were. The
// nodes are not polled during the run: GET /v1/status digests the whole
// state under the FSM's lock (see BENCHMARKS.md), which would itself
// disturb the run.
func (c *Config) elections(ctx context.Context) (*ElectionsReport, *Result, error) {
	c.logf("elections: starting gate cluster (%d nodes from %s) for %s under load with %d clients", c.Nodes, c.firstIP(TargetGate), c.ElectionsDuration, c.ElectionsClients)
	cl, err := StartCluster(ctx, c.clusterConfig(TargetGate))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	li, err := cl.WaitLeader(ctx, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	termStart, err := maxTerm(ctx, cl)
	if err != nil {
		return nil, nil, err
	}
	load := LoadAvg1m()
	start := time.Now()
	lr, err := RunLoad(ctx, LoadConfig{
		URLs: cl.URLs(), Token: cl.Token, Clients: c.ElectionsClients, Duration: c.ElectionsDuration, Warmup: c.Warmup,
		ValueBytes: c.ValueBytes, Mode: ModePut, Route: RouteSpread, Path: c.Path, Target: TargetGate, ServerCPU: cl.CPUSeconds,
	})
	if err != nil {
		return nil, nil, err
	}
	termEnd, err := maxTerm(ctx, cl)
	if err != nil {
		return nil, nil, err
	}
	lj, _ := cl.Leader(ctx)
	var excerpt []string
	if termEnd > termStart {
		excerpt = cl.LogLines([]string{"heartbeat timeout", "candidate", "election", "leadership", "lost"}, 20)
	}
	rep := &ElectionsReport{
		LogExcerpt: excerpt,
		Seconds:    round3(time.Since(start).Seconds()), Clients: c.ElectionsClients,
		TermStart: termStart, TermEnd: termEnd, TermIncrease: termEnd - termStart,
		LeaderStart: cl.Agents[li].Name,
	}
	if lj >= 0 {
		rep.LeaderEnd = cl.Agents[lj].Name
	}
	r := NewResult(TargetGate, c.ElectionsClients, ModeElections, lr)
	r.LoadAvg1m = load
	return rep, &r, nil
}

// maxTerm returns the highest Raft term any running node reports.
func maxTerm(ctx context.Context, cl *Cluster) (uint64, error) {
	var term uint64
	var ok bool
	for i := range cl.Agents {
		if s, err := cl.Status(ctx, i); err == nil {
			term, ok = max(term, s.Term), true
		}
	}
	if !ok {
		return 0, errors.New("bench: no node answers status")
	}
	return term, nil
}

// fsType names the file system holding dir (Linux magic numbers).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ""
	}
	switch uint64(st.Type) {
	case 0xEF53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x2FC12FC1:
		return "zfs"
	}
	return fmt.Sprintf("0x%x", uint64(st.Type))
}
