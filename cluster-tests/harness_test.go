package clustertests

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/internal/faultnet"
	"github.com/dominus-kernel/dominus/internal/server"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
	"github.com/dominus-kernel/dominus/kernel"
)

func testSeed(t *testing.T) int64 {
	if s := os.Getenv("DOMINUS_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("DOMINUS_SEED: %v", err)
		}
		return v
	}
	return time.Now().UnixNano()
}

type cluster struct {
	t     *testing.T
	net   *faultnet.Network
	names []string
	cfgs  map[string]kernel.Config
	mu    sync.Mutex
	nodes map[string]*kernel.Node
	token string
}

type clusterOpts struct {
	block             byte
	size              int
	snapshotThreshold uint64
	trailingLogs      uint64
}

func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	seed := testSeed(t)
	t.Logf("seed %d (replay with DOMINUS_SEED=%d)", seed, seed)
	c := &cluster{t: t, net: faultnet.New(seed, t.Logf), cfgs: map[string]kernel.Config{}, nodes: map[string]*kernel.Node{}}
	t.Cleanup(c.shutdown)
	tlsDir := t.TempDir()
	if _, _, err := tlsutil.CreateCA(tlsDir, time.Hour); err != nil {
		t.Fatal(err)
	}
	var binds []string
	for i := 1; i <= o.size; i++ {
		ip := faultnet.Loopback(o.block, i)
		port, err := faultnet.FreePort(ip)
		if err != nil {
			t.Fatal(err)
		}
		binds = append(binds, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
	scale := 1.0
	if raceEnabled {
		scale = 3
	}
	for i := 1; i <= o.size; i++ {
		name := fmt.Sprintf("n%d", i)
		ip := faultnet.Loopback(o.block, i)
		certPath, keyPath, err := tlsutil.CreateCert(tlsDir, filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "ca-key.pem"), "default", name, []net.IP{net.ParseIP(ip)}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c.net.AddNode(name, ip)
		cfg := kernel.DefaultConfig()
		cfg.Name = name
		cfg.DataDir = t.TempDir()
		cfg.BindAddr = binds[i-1]
		cfg.BootstrapExpect = o.size
		cfg.Join = binds
		cfg.TLS = &tlsutil.Files{CA: filepath.Join(tlsDir, "ca.pem"), Cert: certPath, Key: keyPath}
		cfg.MinFreeDiskBytes = 0
		cfg.RaftTimeoutScale = scale
		cfg.ApplyTimeout = 5 * time.Second
		if o.snapshotThreshold != 0 {
			cfg.SnapshotThreshold = o.snapshotThreshold
		}
		if o.trailingLogs != 0 {
			cfg.TrailingLogs = o.trailingLogs
		}
		cfg.RaftLogOutput = logWriter()
		cfg.Logger = slog.New(slog.NewTextHandler(logWriter(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		c.names = append(c.names, name)
		c.cfgs[name] = cfg
	}
	for _, name := range c.names {
		c.start(name)
	}
	c.waitLeader(20 * time.Second)
	// A new leader answers unavailable until it has checked its clock
	// against a quorum (or while leadership settles): retry those, as
	// the client does.
	var tok string
	for deadline := time.Now().Add(20 * time.Second); ; {
		var err error
		tok, _, err = c.anyNode().Init(context.Background())
		if err == nil {
			break
		}
		code := httpedge.CodeOf(err)
		if (code != api.CodeUnavailable && code != api.CodeNoLeader) || time.Now().After(deadline) {
			t.Fatalf("init: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.token = tok
	return c
}

func logWriter() io.Writer {
	if os.Getenv("DOMINUS_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

func (c *cluster) start(name string) {
	c.t.Helper()
	cfg := c.cfgs[name]
	ln, err := c.net.Listen(name, cfg.BindAddr)
	if err != nil {
		c.t.Fatalf("listen %s: %v", name, err)
	}
	cfg.Listener = ln
	cfg.Dial = c.net.Dialer(name)
	n, err := server.New(cfg)
	if err != nil {
		ln.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.mu.Lock()
	c.nodes[name] = n
	c.mu.Unlock()
}

// kill stops a node abruptly (its data stays for a restart).
func (c *cluster) kill(name string) {
	c.mu.Lock()
	n := c.nodes[name]
	delete(c.nodes, name)
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
	c.t.Logf("killed %s", name)
}

func (c *cluster) shutdown() {
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = map[string]*kernel.Node{}
	c.mu.Unlock()
	for _, n := range nodes {
		n.Close()
	}
	c.net.Close()
}

func (c *cluster) node(name string) *kernel.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[name]
}

func (c *cluster) anyNode() *kernel.Node {
	for _, name := range c.names {
		if n := c.node(name); n != nil {
			return n
		}
	}
	return nil
}

func (c *cluster) live() []*kernel.Node {
	var out []*kernel.Node
	for _, name := range c.names {
		if n := c.node(name); n != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitLeader returns the name of a leader that a live node reports.
func (c *cluster) waitLeader(timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range c.live() {
			if n.Raft().State() == raft.Leader {
				return n.Name()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %s", timeout)
	return ""
}

func (c *cluster) waitLeaderAmong(names []string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, name := range names {
			if n := c.node(name); n != nil && n.Raft().State() == raft.Leader {
				return name
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader among %v within %s", names, timeout)
	return ""
}

func (c *cluster) put(ctx context.Context, via, key, value, rid string) (fsm.Result, error) {
	n := c.node(via)
	if n == nil {
		return fsm.Result{}, fmt.Errorf("%s is down", via)
	}
	return n.Apply(ctx, fsm.Envelope{Type: fsm.CmdKVPut, RequestID: rid, Auth: kernel.TokenHash(c.token), Payload: fsm.Encode(&fsm.KVPut{Key: key, Value: []byte(value)})})
}

func (c *cluster) get(ctx context.Context, via, key string) (fsm.Result, error) {
	n := c.node(via)
	if n == nil {
		return fsm.Result{}, fmt.Errorf("%s is down", via)
	}
	return n.Apply(ctx, fsm.Envelope{Type: fsm.CmdKVGet, Auth: kernel.TokenHash(c.token), Payload: fsm.Encode(&fsm.KVKey{Key: key})})
}

// workload writes unique keys through random live nodes until stopped and
// remembers every acknowledged write.
type workload struct {
	c     *cluster
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	acked map[string]string
	tried atomic.Int64
	fails atomic.Int64
}

func (c *cluster) startWorkload(writers int) *workload {
	w := &workload{c: c, stop: make(chan struct{}), acked: map[string]string{}}
	for i := 0; i < writers; i++ {
		w.wg.Add(1)
		go func(id int) {
			defer w.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-w.stop:
					return
				default:
				}
				via := c.names[c.net.Intn(len(c.names))]
				key := fmt.Sprintf("w%d/%d", id, j)
				val := fmt.Sprintf("v-%d-%d", id, j)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				w.tried.Add(1)
				res, err := c.put(ctx, via, key, val, "rid-"+key)
				cancel()
				if err != nil || res.Decision != fsm.DecisionPermit {
					w.fails.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				w.mu.Lock()
				w.acked[key] = val
				w.mu.Unlock()
			}
		}(i)
	}
	return w
}

func (w *workload) halt() {
	close(w.stop)
	w.wg.Wait()
	w.c.t.Logf("workload: %d writes tried, %d acknowledged, %d failed", w.tried.Load(), len(w.acked), w.fails.Load())
}

// verify requires every acknowledged write to be readable (through the
// ledger) with its value.
func (w *workload) verify() {
	c := w.c
	c.t.Helper()
	if len(w.acked) == 0 {
		c.t.Fatal("workload acknowledged no writes")
	}
	via := c.waitLeader(20 * time.Second)
	for k, v := range w.acked {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.get(ctx, via, k)
		cancel()
		if err != nil || !res.Found || string(res.Value) != v {
			c.t.Fatalf("acknowledged write %s=%s lost: found=%v value=%q err=%v", k, v, res.Found, res.Value, err)
		}
	}
}

// requireConverged waits until all live nodes share head, digest and a
// verified archive.
func (c *cluster) requireConverged(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ref string
		same := true
		var seen []string
		for _, n := range c.live() {
			h, d := n.Head()
			s := fmt.Sprintf("%d:%s/%s", h.Seq, hex.EncodeToString(h.Hash), hex.EncodeToString(d[:]))
			seen = append(seen, n.Name()+"="+s[:24])
			if ref == "" {
				ref = s
			} else if s != ref {
				same = false
			}
		}
		if same && len(seen) > 0 {
			for _, n := range c.live() {
				if v := n.VerifyArchive(); !v.OK {
					c.t.Fatalf("%s archive does not verify: %+v", n.Name(), v)
				}
			}
			c.t.Logf("converged: %v", seen)
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("heads did not converge within %s: %v", timeout, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
