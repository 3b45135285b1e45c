package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// ClusterConfig describes one local cluster of `dominus agent` processes.
type ClusterConfig struct {
	Exe      string   // the binary the agents run (dominus, or the reference build)
	Env      []string // extra environment of the child processes
	Dir      string   // parent of the cluster's temp dir ("" = os.TempDir)
	Nodes    int      // number of agents (1..9)
	FirstIP  string   // loopback IP of the first node; the others follow
	HTTPPort int      // HTTP API port on every node's IP
	RaftPort int      // Raft/RPC port on every node's IP
	// RaftTimeoutScale is passed as --raft-timeout-scale (0 = agent default).
	RaftTimeoutScale float64
	// StartTimeout bounds waiting for a leader and for init.
	StartTimeout time.Duration
}

// Agent is one child `dominus agent` process.
type Agent struct {
	Name    string
	HTTP    string // URL of the HTTP API
	Bind    string // Raft/RPC IP:PORT
	DataDir string
	LogPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	cpuDead float64       // CPU seconds of earlier (exited) processes
}

// PID returns the running process id, or 0 when none runs.
func (a *Agent) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil || a.cmd.Process == nil || a.exited() {
		return 0
	}
	return a.cmd.Process.Pid
}

func (a *Agent) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Cluster is a running local cluster. Its methods are safe for concurrent
// use except Close.
type Cluster struct {
	cfg    ClusterConfig
	Dir    string
	Token  string
	Agents []*Agent
	probes []*client.Client // status probes: short timeouts, no retries
	keep   atomic.Bool      // Close keeps Dir (its logs explain a failure)
}

// StartCluster creates certificates and data dirs in a fresh temp dir,
// starts the agents, waits for a leader and seals genesis. On error
// everything started is stopped; the dir is kept for its logs.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Nodes < 1 || cfg.Nodes > 9 {
		return nil, fmt.Errorf("bench: cluster of %d nodes, want 1..9", cfg.Nodes)
	}
	ip := net.ParseIP(cfg.FirstIP).To4()
	if ip == nil || ip[0] != 127 || int(ip[3])+cfg.Nodes-1 > 254 {
		return nil, fmt.Errorf("bench: first IP %q must be a 127.x.y.z address with room for %d nodes", cfg.FirstIP, cfg.Nodes)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	dir, err := os.MkdirTemp(cfg.Dir, "dominus-bench-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, Dir: dir}
	defer func() {
		if err != nil {
			c.KeepDir()
			c.Close()
		}
	}()
	for i := 0; i < cfg.Nodes; i++ {
		nip := net.IPv4(ip[0], ip[1], ip[2], ip[3]+byte(i)).String()
		name := fmt.Sprintf("node%d", i+1)
		c.Agents = append(c.Agents, &Agent{
			Name:    name,
			HTTP:    fmt.Sprintf("http://%s:%d", nip, cfg.HTTPPort),
			Bind:    fmt.Sprintf("%s:%d", nip, cfg.RaftPort),
			DataDir: filepath.Join(dir, name),
			LogPath: filepath.Join(dir, name+".log"),
			done:    closedChan(),
		})
		pc, perr := client.New(client.Config{Addr: c.Agents[i].HTTP, Timeout: time.Second, RetryFor: time.Nanosecond})
		if perr != nil {
			return nil, perr
		}
		c.probes = append(c.probes, pc)
	}
	if err := c.certs(); err != nil {
		return nil, err
	}
	for i := range c.Agents {
		if err := c.Start(i); err != nil {
			return nil, err
		}
	}
	if _, err := c.WaitLeader(ctx, cfg.StartTimeout); err != nil {
		return nil, err
	}
	initc, err := client.New(client.Config{Addr: c.Agents[0].HTTP, RetryFor: cfg.StartTimeout})
	if err != nil {
		return nil, err
	}
	r, err := initc.Init(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: operator init: %w (logs in %s)", err, dir)
	}
	c.Token = r.RootToken
	return c, nil
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (c *Cluster) certs() error {
	tdir := filepath.Join(c.Dir, "tls")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return err
	}
	ca, cakey, err := tlsutil.CreateCA(tdir, 24*time.Hour)
	if err != nil {
		return err
	}
	for _, a := range c.Agents {
		host, _, _ := net.SplitHostPort(a.Bind)
		if _, _, err := tlsutil.CreateCert(tdir, ca, cakey, "bench", a.Name, []net.IP{net.ParseIP(host)}, []string{"localhost"}, 24*time.Hour); err != nil {
			return err
		}
	}
	return nil
}

// AgentArgs returns the command line of agent i (without the binary).
func (c *Cluster) AgentArgs(i int) []string {
	a := c.Agents[i]
	var join []string
	for _, o := range c.Agents {
		join = append(join, o.Bind)
	}
	tdir := filepath.Join(c.Dir, "tls")
	args := []string{"agent", "--name", a.Name, "--data-dir", a.DataDir, "--bind", a.Bind,
		"--http", strings.TrimPrefix(a.HTTP, "http://"), "--bootstrap-expect", fmt.Sprint(len(c.Agents)),
		"--join", strings.Join(join, ","), "--tls-ca", filepath.Join(tdir, tlsutil.CACertFile),
		"--tls-cert", filepath.Join(tdir, a.Name+".pem"), "--tls-key", filepath.Join(tdir, a.Name+"-key.pem"),
		"--http-insecure"}
	if c.cfg.RaftTimeoutScale != 0 {
		args = append(args, "--raft-timeout-scale", fmt.Sprint(c.cfg.RaftTimeoutScale))
	}
	return args
}

// Start starts agent i (again, after Kill or Stop) on its data dir.
func (c *Cluster) Start(i int) error {
	a := c.Agents[i]
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.exited() {
		return fmt.Errorf("bench: %s is already running", a.Name)
	}
	logf, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.cfg.Exe, c.AgentArgs(i)...)
	cmd.Env = append(os.Environ(), c.cfg.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C at the terminal reaches only the
	// harness, which then stops the agents itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	killWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("bench: start %s: %w", a.Name, err)
	}
	done := make(chan struct{})
	a.cmd, a.done = cmd, done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		a.mu.Lock()
		if ps := cmd.ProcessState; ps != nil {
			a.cpuDead += (ps.UserTime() + ps.SystemTime()).Seconds()
		}
		a.mu.Unlock()
		close(done)
	}()
	return nil
}

// Kill sends SIGKILL to agent i and waits for it to exit.
func (c *Cluster) Kill(i int) error {
	return c.signal(i, syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM to agent i and waits up to 10 s for a clean exit,
// then kills it.
func (c *Cluster) Stop(i int) error {
	if err := c.signal(i, syscall.SIGTERM, 10*time.Second); err != nil {
		return c.Kill(i)
	}
	return nil
}

func (c *Cluster) signal(i int, sig syscall.Signal, wait time.Duration) error {
	a := c.Agents[i]
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("bench: %s did not exit within %s of %s", a.Name, wait, sig)
	}
}

// KeepDir makes Close leave the cluster's dir (data and agent logs) in
// place: call it when a failure message points at the logs.
func (c *Cluster) KeepDir() { c.keep.Store(true) }

// Close stops every agent and removes the cluster's dir unless KeepDir
// was called.
func (c *Cluster) Close() error {
	var wg sync.WaitGroup
	for i := range c.Agents {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Stop(i) }()
	}
	wg.Wait()
	if c.keep.Load() {
		return nil
	}
	return os.RemoveAll(c.Dir)
}

// CPUSeconds returns each agent's CPU seconds so far (running process from
// /proc/PID/stat plus the processes that already exited), by name.
func (c *Cluster) CPUSeconds() map[string]float64 {
	out := map[string]float64{}
	for _, a := range c.Agents {
		a.mu.Lock()
		total := a.cpuDead
		var pid int
		if a.cmd != nil && a.cmd.Process != nil && !a.exited() {
			pid = a.cmd.Process.Pid
		}
		a.mu.Unlock()
		if pid != 0 {
			if s, err := CPUSeconds(pid); err == nil {
				total += s
			}
		}
		out[a.Name] = total
	}
	return out
}

// Status returns agent i's status (one attempt, 1 s).
func (c *Cluster) Status(ctx context.Context, i int) (*api.Status, error) {
	return c.probes[i].Status(ctx)
}

// Leader returns the index of the agent that is leader according to
// itself, with its status, or -1 when no running agent is leader now.
func (c *Cluster) Leader(ctx context.Context) (int, *api.Status) {
	for i, a := range c.Agents {
		if a.PID() == 0 {
			continue
		}
		if s, err := c.Status(ctx, i); err == nil && s.RaftState == "Leader" {
			return i, s
		}
	}
	return -1, nil
}

// ErrNoLeader is returned by WaitLeader when no leader appears in time.
var ErrNoLeader = errors.New("bench: no leader")

// WaitLeader polls until a running agent reports itself leader.
func (c *Cluster) WaitLeader(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if i, _ := c.Leader(ctx); i >= 0 {
			return i, nil
		}
		if time.Now().After(deadline) {
			c.KeepDir()
			return -1, fmt.Errorf("%w within %s (logs in %s)", ErrNoLeader, timeout, c.Dir)
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URLs returns the agents' HTTP API URLs.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Agents))
	for i, a := range c.Agents {
		out[i] = a.HTTP
	}
	return out
}

// LogLines returns up to max lines of the agents' logs that contain any
// of patterns (case-insensitive), each prefixed with the agent's name.
func (c *Cluster) LogLines(patterns []string, max int) []string {
	var out []string
	for _, a := range c.Agents {
		b, err := os.ReadFile(a.LogPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			low := strings.ToLower(line)
			for _, p := range patterns {
				if strings.Contains(low, p) {
					if len(out) >= max {
						return out
					}
					out = append(out, a.Name+": "+strings.TrimSpace(line))
					break
				}
			}
		}
	}
	return out
}
