package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
)

// Config describes a cluster.
type Config struct {
	Bin      string // the dominus binary
	Dir      string // run folder: tls/, data/, logs/
	IPPrefix string // first three octets; nodes are PREFIX.1 ... PREFIX.N
	Nodes    int    // default 3
	BindPort int    // Raft/RPC port on every node IP; default 8300
	HTTPPort int    // HTTP API port on every node IP; default 8101
	// HTTPS serves the API over TLS with the cluster CA; false adds
	// --http-insecure.
	HTTPS bool
	// RaftTimeoutScale is passed as --raft-timeout-scale when non-zero.
	RaftTimeoutScale float64
	// Now reads the run clock (ns) for exit records; nil reads zero.
	Now func() int64
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// TLSDir holds the CA and the node certificates; default Dir/tls.
	// The kernels of one federation share one CA, so one folder.
	TLSDir string
	// NamePrefix names the nodes PREFIX1 ... PREFIXN; default "n".
	NamePrefix string
	// ExtraArgs are appended to every agent's command line (a
	// federation role and its flags).
	ExtraArgs []string
	// TrailingLogs is passed as --trailing-logs when non-zero: how many
	// Raft entries a snapshot leaves behind for slow followers.
	TrailingLogs uint64
	// Kernel names the kernel in its nodes' certificates (sovereign, a
	// domain's name); default "jepsen".
	Kernel string
}

func (c *Config) defaults() error {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.BindPort == 0 {
		c.BindPort = 8300
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 8101
	}
	if c.IPPrefix == "" {
		c.IPPrefix = "127.0.90"
	}
	if c.NamePrefix == "" {
		c.NamePrefix = "n"
	}
	if c.Now == nil {
		c.Now = func() int64 { return 0 }
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		return fmt.Errorf("cluster: %d nodes: want 1..9", c.Nodes)
	}
	ip := net.ParseIP(c.IPPrefix + ".1").To4()
	if ip == nil || ip[0] != 127 {
		return fmt.Errorf("cluster: IP prefix %q: want three octets of 127.0.0.0/8", c.IPPrefix)
	}
	if ip[1] == 0 && ip[2] == 0 {
		return fmt.Errorf("cluster: IP prefix %q would put a node on 127.0.0.1, the clients' source address", c.IPPrefix)
	}
	if c.Bin == "" || c.Dir == "" {
		return errors.New("cluster: Bin and Dir are required")
	}
	if _, err := os.Stat(c.Bin); err != nil {
		return fmt.Errorf("cluster: binary: %w", err)
	}
	return nil
}

// Node is one agent.
type Node struct {
	Name     string
	IP       string
	Bind     string // IP:port for Raft and node RPC
	HTTPAddr string // IP:port of the API
	URL      string // http(s)://HTTPAddr
	DataDir  string
	LogPath  string

	mu     sync.Mutex
	proc   *process
	offset time.Duration // clock offset of the running process
}

type process struct {
	cmd      *exec.Cmd
	done     chan struct{}
	expected bool // the harness caused (or expects) the exit
	paused   bool
	status   string
}

// Cluster is a running kernel.
type Cluster struct {
	cfg   Config
	nodes []*Node
	tls   string // folder with ca.pem, NAME.pem, NAME-key.pem
	token string
	// joinSecret, from init, lets a node rejoin the initialized kernel.
	joinSecret string

	mu    sync.Mutex
	exits []checker.Exit
	wg    sync.WaitGroup
}

// New prepares the run folder, the TLS material (with the dominus CLI)
// and the node descriptions. It starts nothing.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if cfg.Bin, err = filepath.Abs(cfg.Bin); err != nil {
		return nil, err
	}
	cfg.Dir = dir
	c := &Cluster{cfg: cfg, tls: filepath.Join(dir, "tls")}
	if cfg.TLSDir != "" {
		if c.tls, err = filepath.Abs(cfg.TLSDir); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{c.tls, filepath.Join(dir, "data"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	scheme := "http"
	if cfg.HTTPS {
		scheme = "https"
	}
	for i := 1; i <= cfg.Nodes; i++ {
		ip := fmt.Sprintf("%s.%d", cfg.IPPrefix, i)
		name := fmt.Sprintf("%s%d", cfg.NamePrefix, i)
		n := &Node{
			Name: name, IP: ip,
			Bind:     net.JoinHostPort(ip, strconv.Itoa(cfg.BindPort)),
			HTTPAddr: net.JoinHostPort(ip, strconv.Itoa(cfg.HTTPPort)),
			DataDir:  filepath.Join(dir, "data", name),
			LogPath:  filepath.Join(dir, "logs", name+".log"),
		}
		n.URL = scheme + "://" + n.HTTPAddr
		c.nodes = append(c.nodes, n)
	}
	if _, err := os.Stat(filepath.Join(c.tls, "ca.pem")); errors.Is(err, os.ErrNotExist) {
		if _, errOut, code := c.CLI(ctx, "", "tls", "ca", "create", "--dir", c.tls); code != 0 {
			return nil, fmt.Errorf("cluster: tls ca create: exit %d: %s", code, errOut)
		}
	}
	for _, n := range c.nodes {
		if _, err := os.Stat(filepath.Join(c.tls, n.Name+".pem")); err == nil {
			continue
		}
		_, errOut, code := c.CLI(ctx, "", "tls", "cert", "create", "--dir", c.tls, "--ca", filepath.Join(c.tls, "ca.pem"),
			"--ca-key", filepath.Join(c.tls, "ca-key.pem"), "--node", n.Name, "--ip", n.IP, "--kernel", c.kernel())
		if code != 0 {
			return nil, fmt.Errorf("cluster: tls cert create %s: exit %d: %s", n.Name, code, errOut)
		}
	}
	return c, nil
}

func (c *Cluster) kernel() string {
	if c.cfg.Kernel != "" {
		return c.cfg.Kernel
	}
	return "jepsen"
}

// Nodes returns the nodes in order.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// IPs returns the node IPs in order.
func (c *Cluster) IPs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.IP
	}
	return out
}

// Token is the root token (after Init).
func (c *Cluster) Token() string { return c.token }

// CACert is the CA certificate file.
func (c *Cluster) CACert() string { return filepath.Join(c.tls, "ca.pem") }

// Config returns the cluster's configuration (with defaults filled in).
func (c *Cluster) Config() Config { return c.cfg }

// args is n's agent command line. joinOnly leaves out --bootstrap-expect
// and lists only the other nodes in --join: the node can only join a
// cluster that exists.
func (c *Cluster) args(n *Node, offset time.Duration, joinOnly bool) []string {
	var join []string
	for _, o := range c.nodes {
		if joinOnly && o == n {
			continue
		}
		join = append(join, o.Bind)
	}
	a := []string{"agent", "--name", n.Name, "--data-dir", n.DataDir, "--bind", n.Bind, "--http", n.HTTPAddr}
	if !joinOnly {
		a = append(a, "--bootstrap-expect", strconv.Itoa(len(c.nodes)))
	}
	a = append(a, "--join", strings.Join(join, ","),
		"--tls-ca", c.CACert(), "--tls-cert", filepath.Join(c.tls, n.Name+".pem"),
		"--tls-key", filepath.Join(c.tls, n.Name+"-key.pem"), "--min-free-disk", "0")
	if !c.cfg.HTTPS {
		a = append(a, "--http-insecure")
	}
	if c.cfg.RaftTimeoutScale != 0 {
		a = append(a, "--raft-timeout-scale", strconv.FormatFloat(c.cfg.RaftTimeoutScale, 'f', -1, 64))
	}
	if c.cfg.TrailingLogs != 0 {
		a = append(a, "--trailing-logs", strconv.FormatUint(c.cfg.TrailingLogs, 10))
	}
	if offset != 0 {
		a = append(a, "--test-clock-offset", offset.String())
	}
	if joinOnly && c.joinSecret != "" {
		a = append(a, "--join-secret", c.joinSecret)
	}
	return append(a, c.cfg.ExtraArgs...)
}

// ErrRunning is returned when starting a node whose process runs.
var ErrRunning = errors.New("cluster: node is already running")

// Start starts n's agent with the given clock offset (0: none), its
// output appended to n.LogPath.
func (c *Cluster) Start(n *Node, offset time.Duration) error { return c.start(n, offset, false, false) }

// StartExpectingExit starts n's agent on purpose to see it refuse to run:
// its exit is recorded as expected.
func (c *Cluster) StartExpectingExit(n *Node) error { return c.start(n, 0, true, false) }

func (c *Cluster) start(n *Node, offset time.Duration, expectExit, joinOnly bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		select {
		case <-n.proc.done:
		default:
			return fmt.Errorf("%w: %s", ErrRunning, n.Name)
		}
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	how := ""
	if joinOnly {
		how = ", joining without bootstrap"
	}
	fmt.Fprintf(logf, "# jepsen: starting %s at run time %.3fs (clock offset %s%s)\n", n.Name, float64(c.cfg.Now())/1e9, offset, how)
	cmd := exec.Command(c.cfg.Bin, c.args(n, offset, joinOnly)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C at the terminal reaches the harness,
	// which stops the agents itself. Pdeathsig: a harness that dies
	// takes its agents along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("cluster: start %s: %w", n.Name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), expected: expectExit}
	n.proc, n.offset = p, offset
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := cmd.Wait()
		logf.Close()
		status := "exit 0"
		if err != nil {
			status = err.Error()
		}
		n.mu.Lock()
		p.status = status
		expected := p.expected
		n.mu.Unlock()
		c.mu.Lock()
		c.exits = append(c.exits, checker.Exit{Node: n.Name, Time: c.cfg.Now(), Status: status, Expected: expected})
		c.mu.Unlock()
		if !expected {
			c.cfg.Logf("%s exited unexpectedly: %s", n.Name, status)
		}
		close(p.done)
	}()
	return nil
}

// StartAll starts every node without a clock offset.
func (c *Cluster) StartAll() error {
	for _, n := range c.nodes {
		if err := c.Start(n, 0); err != nil {
			return err
		}
	}
	return nil
}

// Running reports whether n's process runs (paused counts as running).
func (c *Cluster) Running(n *Node) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return false
	}
	select {
	case <-n.proc.done:
		return false
	default:
		return true
	}
}

// Paused reports whether n's process is stopped with SIGSTOP.
func (c *Cluster) Paused(n *Node) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && n.proc.paused
}

// ClockOffset is the clock offset n's process was started with.
func (c *Cluster) ClockOffset(n *Node) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.offset
}

func (c *Cluster) signal(n *Node, sig syscall.Signal, expectExit bool) (*process, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.proc
	if p == nil {
		return nil, fmt.Errorf("cluster: %s was never started", n.Name)
	}
	select {
	case <-p.done:
		return p, fmt.Errorf("cluster: %s is not running (%s)", n.Name, p.status)
	default:
	}
	if expectExit {
		p.expected = true
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return p, fmt.Errorf("cluster: signal %s to %s: %w", sig, n.Name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	return p, nil
}

// waitExit waits up to limit for p to exit.
func waitExit(p *process, limit time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// Kill sends SIGKILL to n and waits for it to exit.
func (c *Cluster) Kill(n *Node) error {
	p, err := c.signal(n, syscall.SIGKILL, true)
	if err != nil {
		return err
	}
	if !waitExit(p, 10*time.Second) {
		return fmt.Errorf("cluster: %s did not exit within 10s of SIGKILL", n.Name)
	}
	return nil
}

// Stop resumes n if paused, sends SIGTERM and waits up to limit for it
// to exit, then kills it.
func (c *Cluster) Stop(n *Node, limit time.Duration) error {
	if c.Paused(n) {
		if _, err := c.signal(n, syscall.SIGCONT, true); err != nil {
			return err
		}
	}
	p, err := c.signal(n, syscall.SIGTERM, true)
	if err != nil {
		return err
	}
	if waitExit(p, limit) {
		return nil
	}
	c.cfg.Logf("%s did not stop within %s of SIGTERM; killing it", n.Name, limit)
	return c.Kill(n)
}

// Pause sends SIGSTOP to n.
func (c *Cluster) Pause(n *Node) error {
	_, err := c.signal(n, syscall.SIGSTOP, false)
	return err
}

// Resume sends SIGCONT to n.
func (c *Cluster) Resume(n *Node) error {
	_, err := c.signal(n, syscall.SIGCONT, false)
	return err
}

// WaitExit waits up to limit for n's process to exit and returns its
// status.
func (c *Cluster) WaitExit(n *Node, limit time.Duration) (string, bool) {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return "", false
	}
	if !waitExit(p, limit) {
		return "", false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return p.status, true
}

// Exits returns every process exit so far.
func (c *Cluster) Exits() []checker.Exit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]checker.Exit(nil), c.exits...)
}

// Close resumes and kills every process and waits for them (bounded).
func (c *Cluster) Close() {
	for _, n := range c.nodes {
		if c.Running(n) {
			if c.Paused(n) {
				_, _ = c.signal(n, syscall.SIGCONT, true)
			}
			_, _ = c.signal(n, syscall.SIGKILL, true)
		}
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.cfg.Logf("cluster: some agent processes did not exit within 15s of SIGKILL")
	}
}

// CLI runs the dominus binary with args against node n's API (n may be
// "" for commands that need no node) and returns stdout, stderr and the
// exit status (-1 if it could not run).
func (c *Cluster) CLI(ctx context.Context, node string, args ...string) (string, string, int) {
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, c.cfg.Bin, args...)
	cmd.Dir = c.cfg.Dir
	cmd.Env = append(os.Environ(), "DOMINUS_CACERT="+c.CACert())
	if c.token != "" {
		cmd.Env = append(cmd.Env, "DOMINUS_TOKEN="+c.token)
	}
	if n := c.Node(node); n != nil {
		cmd.Env = append(cmd.Env, "DOMINUS_HTTP_ADDR="+n.URL)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = -1
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

// Client returns a client of n that makes exactly one attempt per call,
// each bounded by timeout: the harness decides what a failure means.
func (c *Cluster) Client(n *Node, timeout time.Duration) (*client.Client, error) {
	cfg := client.Config{Addr: n.URL, Token: c.token, Timeout: timeout, RetryFor: time.Nanosecond}
	if c.cfg.HTTPS {
		cfg.CACert = c.CACert()
	}
	return client.New(cfg)
}

// TokenClients returns a function that makes clients of a node (by
// name) that send a given token and make exactly one attempt per call,
// each bounded by timeout. Clients of one node share one HTTP transport,
// so a new token costs no new connection.
func (c *Cluster) TokenClients(timeout time.Duration) func(node, token string) (*client.Client, error) {
	var mu sync.Mutex
	shared := map[string]*http.Client{}
	return func(node, token string) (*client.Client, error) {
		n := c.Node(node)
		if n == nil {
			return nil, fmt.Errorf("cluster: no node %q", node)
		}
		mu.Lock()
		defer mu.Unlock()
		hc := shared[node]
		if hc == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 256
			if c.cfg.HTTPS {
				pem, err := os.ReadFile(c.CACert())
				if err != nil {
					return nil, fmt.Errorf("cluster: CA certificate: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("cluster: %s holds no PEM certificate", c.CACert())
				}
				tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			}
			hc = &http.Client{Transport: tr, Timeout: timeout}
			shared[node] = hc
		}
		return client.New(client.Config{Addr: n.URL, Token: token, Timeout: timeout, RetryFor: time.Nanosecond, HTTP: hc})
	}
}

// RaftSnapshot makes n take a Raft snapshot now, the way an operator
// does (`dominus operator raft snapshot --json` with the root token).
func (c *Cluster) RaftSnapshot(ctx context.Context, n *Node) (api.RaftSnapshotResponse, error) {
	var r api.RaftSnapshotResponse
	out, errOut, code := c.CLI(ctx, n.Name, "operator", "raft", "snapshot", "--json", "--timeout", "10s")
	if code != 0 {
		return r, fmt.Errorf("cluster: operator raft snapshot on %s: exit %d: %s", n.Name, code, strings.TrimSpace(errOut+out))
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, fmt.Errorf("cluster: operator raft snapshot on %s printed %q: %w", n.Name, out, err)
	}
	return r, nil
}

// Status asks n for its status (one attempt, within 2s).
func (c *Cluster) Status(ctx context.Context, n *Node) (*api.Status, error) {
	cl, err := c.Client(n, 2*time.Second)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cl.Status(cctx)
}

// Statuses asks every running, unpaused node for its status in parallel;
// a node that did not answer has a nil entry.
func (c *Cluster) Statuses(ctx context.Context) []*api.Status {
	out := make([]*api.Status, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		if !c.Running(n) || c.Paused(n) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := c.Status(ctx, n); err == nil {
				out[i] = s
			}
		}()
	}
	wg.Wait()
	return out
}

// Leader returns the node that reports itself leader in the highest
// term, or nil if none does.
func (c *Cluster) Leader(ctx context.Context) *Node {
	var best *Node
	var term uint64
	for i, s := range c.Statuses(ctx) {
		if s != nil && s.RaftState == "Leader" && (best == nil || s.Term > term) {
			best, term = c.nodes[i], s.Term
		}
	}
	return best
}

// WaitLeader polls until some node reports itself leader, up to limit.
func (c *Cluster) WaitLeader(ctx context.Context, limit time.Duration) (*Node, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if n := c.Leader(ctx); n != nil {
			return n, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("cluster: no leader within %s; see the logs in %s", limit, filepath.Join(c.cfg.Dir, "logs"))
}

// Init waits for a leader and runs `dominus operator init --json`,
// keeping the root token.
func (c *Cluster) Init(ctx context.Context, limit time.Duration) error {
	_, err := c.InitWith(ctx, limit)
	return err
}

// InitWith waits for a leader and runs `dominus operator init --json`
// with extra arguments (a sovereign's operators, a domain's join token),
// trying the nodes in turn until one answers, up to limit. It keeps the
// root token and returns the command's JSON answer.
func (c *Cluster) InitWith(ctx context.Context, limit time.Duration, extra ...string) (string, error) {
	deadline := time.Now().Add(limit)
	if _, err := c.WaitLeader(ctx, limit); err != nil {
		return "", err
	}
	args := append([]string{"operator", "init", "--json", "--timeout", "3s"}, extra...)
	var last string
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			out, errOut, code := c.CLI(ctx, n.Name, args...)
			if code == 0 {
				var r api.InitResponse
				if err := json.Unmarshal([]byte(out), &r); err != nil || r.RootToken == "" {
					return out, fmt.Errorf("cluster: operator init printed %q: %v", out, err)
				}
				c.token, c.joinSecret = r.RootToken, r.JoinSecret
				return out, nil
			}
			last = strings.TrimSpace(errOut + out)
			if strings.Contains(last, api.CodeAlreadyInit) {
				return "", fmt.Errorf("cluster: kernel already initialized (stale data in %s?)", c.cfg.Dir)
			}
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("cluster: operator init did not succeed within %s: %s", limit, last)
}

// WaitConverged polls until every node answers with the same head and
// state digest and has applied what it committed, up to limit. It
// returns the last statuses seen.
func (c *Cluster) WaitConverged(ctx context.Context, limit time.Duration) ([]*api.Status, error) {
	deadline := time.Now().Add(limit)
	var ss []*api.Status
	for {
		ss = c.Statuses(ctx)
		if converged(ss) {
			return ss, nil
		}
		if time.Now().After(deadline) {
			return ss, fmt.Errorf("cluster: replicas did not converge within %s: %s", limit, describe(c.nodes, ss))
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return ss, err
		}
	}
}

func converged(ss []*api.Status) bool {
	for _, s := range ss {
		if s == nil || s.Head != ss[0].Head || s.StateDigest != ss[0].StateDigest || s.AppliedIndex < s.CommitIndex || s.Leader == "" {
			return false
		}
	}
	return len(ss) > 0
}

func describe(nodes []*Node, ss []*api.Status) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteString("; ")
		}
		if s == nil {
			fmt.Fprintf(&b, "%s: no answer", nodes[i].Name)
			continue
		}
		fmt.Fprintf(&b, "%s: %s term %d head %d leader %q", nodes[i].Name, s.RaftState, s.Term, s.Head.Seq, s.Leader)
	}
	return b.String()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
