package cortex

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitTimeout bounds every wait for gossip in these tests.
const waitTimeout = 15 * time.Second

// baseTime is the ledger time of the test clocks (unix ns).
const baseTime int64 = 1_700_000_000_000_000_000

// testLogger writes through t.Log until the test's cleanups have run;
// memberlist goroutines that outlive Shutdown by a moment are silenced.
func testLogger(tb testing.TB, level slog.Level) *slog.Logger {
	l, _ := testLoggerWriter(tb, level)
	return l
}

func testLoggerWriter(tb testing.TB, level slog.Level) (*slog.Logger, *tWriter) {
	w := &tWriter{tb: tb}
	tb.Cleanup(w.silence)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), w
}

type tWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

// silence drops everything written from now on.
func (w *tWriter) silence() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(string(p))
	}
	return len(p), nil
}

// testClock is a ledger clock the test moves by hand.
type testClock struct{ now atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.now.Store(baseTime)
	return c
}

func (c *testClock) Now() int64 { return c.now.Load() }

// registry is the tests' Verifier: node keys bound to passports.
type registry struct {
	mu   sync.Mutex
	keys map[[3]string]ed25519.PublicKey
}

func newRegistry() *registry { return &registry{keys: make(map[[3]string]ed25519.PublicKey)} }

func (r *registry) add(domain, node, passport string, pub ed25519.PublicKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[[3]string{domain, node, passport}] = pub
}

func (r *registry) verify(domain, node, passport string) (ed25519.PublicKey, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[[3]string{domain, node, passport}]
	return k, ok
}

// nodeKey derives a node's signing key from its name, so every run uses
// the same keys.
func nodeKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("cortex test node key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// gossipKey derives a gossip key from a label.
func gossipKey(label string) []byte {
	k := sha256.Sum256([]byte("cortex test gossip key " + label))
	return k[:]
}

// cluster is a set of pools sharing a registry and a clock.
type cluster struct {
	tb     testing.TB
	reg    *registry
	clock  *testClock
	logger *slog.Logger
	pools  []*Pool // joined to pools[0]

	mu      sync.Mutex
	started []*Pool // every pool, to shut down
}

// newCluster returns an empty cluster whose pools all shut down at
// cleanup, at once, after the log is silenced (members still running log
// the others' departure).
func newCluster(tb testing.TB) *cluster {
	logger, w := testLoggerWriter(tb, slog.LevelWarn)
	c := &cluster{tb: tb, reg: newRegistry(), clock: newTestClock(), logger: logger}
	tb.Cleanup(func() {
		w.silence()
		c.mu.Lock()
		defer c.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range c.started {
			wg.Go(func() { _ = p.Shutdown() })
		}
		wg.Wait()
	})
	return c
}

// config returns a Config with fast gossip for loopback tests and binds
// the node's key to its passport in the registry.
func (c *cluster) config(ip, domain, node string, keys [][]byte) Config {
	signer := nodeKey(domain + "/" + node)
	passport := "pp-" + domain
	c.reg.add(domain, node, passport, signer.Public().(ed25519.PublicKey))
	return Config{
		Gossip:           net.JoinHostPort(ip, "0"),
		Domain:           domain,
		Node:             node,
		PassportID:       passport,
		Signer:           signer,
		Verifier:         c.reg.verify,
		Keys:             keys,
		Clock:            c.clock.Now,
		GossipInterval:   20 * time.Millisecond,
		GossipNodes:      3,
		PushPullInterval: 2 * time.Second,
		// Failure detection and stream timeouts keep their LAN defaults:
		// test machines are loaded (the race detector slows everything
		// tenfold) and shorter deadlines make members churn.
		Logger: c.logger,
	}
}

// start creates a pool from cfg and shuts it down at cleanup.
func (c *cluster) start(cfg Config) *Pool {
	c.tb.Helper()
	p, err := New(cfg)
	if err != nil {
		c.tb.Fatalf("New(%s): %v", cfg.Gossip, err)
	}
	c.mu.Lock()
	c.started = append(c.started, p)
	c.mu.Unlock()
	return p
}

// add starts a pool and joins it to the first pool of the cluster.
func (c *cluster) add(cfg Config) *Pool {
	c.tb.Helper()
	p := c.start(cfg)
	if len(c.pools) > 0 {
		if _, err := p.Join([]string{c.pools[0].Addr()}); err != nil {
			c.tb.Fatalf("join %s to %s: %v", p.Addr(), c.pools[0].Addr(), err)
		}
	}
	c.pools = append(c.pools, p)
	return p
}

// converge waits until every pool sees every pool.
func (c *cluster) converge() {
	c.tb.Helper()
	waitFor(c.tb, "membership converges", func() bool {
		for _, p := range c.pools {
			if p.NumMembers() != len(c.pools) {
				return false
			}
		}
		return true
	})
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting until %s", waitTimeout, what)
		}
		<-tick.C
	}
}

// has reports whether p's Latest holds s.
func has(p *Pool, s Signal) bool {
	return slices.Contains(p.Latest(), s)
}

// injectRaw queues msg on p for gossip as if it were a signal, under a
// name no signal uses: how the tests put forged and malformed messages on
// the wire.
var injectSeq atomic.Uint64

func injectRaw(p *Pool, msg []byte) {
	p.enqueue(fmt.Sprintf("test-inject-%d", injectSeq.Add(1)), msg)
}

// observed records the remote addresses a transport saw.
type observed struct {
	mu    sync.Mutex
	conns []observation
}

type observation struct {
	network string
	ip      netip.Addr
}

func (o *observed) hook(network string, remote net.Addr) {
	var ip netip.Addr
	switch a := remote.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		ip = a.AddrPort().Addr().Unmap()
	}
	o.mu.Lock()
	o.conns = append(o.conns, observation{network, ip})
	o.mu.Unlock()
}

func (o *observed) snapshot() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.conns)
}

func (o *observed) saw(network string, ip netip.Addr) bool {
	return slices.Contains(o.snapshot(), observation{network, ip})
}
