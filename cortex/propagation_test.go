package cortex

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

var propagationSeed = flag.Uint64("cortex.seed", 0, "seed for the propagation test's choice of publishers (0: from the clock)")

// propagationMembers is the size of the propagation cluster: more than 30,
// one loopback IP each (127.0.71.1 ...).
const propagationMembers = 32

// testPropagationInterval is the gossip interval of TestPropagation30Members.
const testPropagationInterval = 100 * time.Millisecond

// tracker times how long each signal takes to be accepted by every member
// but its publisher. Signals are told apart by their OperationalTempo value.
type tracker struct {
	mu      sync.Mutex
	members int
	pending map[int64]*pendingSignal
}

type pendingSignal struct {
	start time.Time
	left  int
	took  time.Duration
	done  chan struct{}
}

func (tr *tracker) expect(value int64) *pendingSignal {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	p := &pendingSignal{start: time.Now(), left: tr.members - 1, done: make(chan struct{})}
	tr.pending[value] = p
	return p
}

func (tr *tracker) accepted(s Signal) {
	if s.Kind != OperationalTempo {
		return
	}
	now := time.Now()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	p := tr.pending[s.Value]
	if p == nil || p.left == 0 {
		return
	}
	p.left--
	if p.left == 0 {
		p.took = now.Sub(p.start)
		close(p.done)
	}
}

// propagationCluster starts propagationMembers pools gossiping every
// interval and waits until each sees all.
func propagationCluster(tb testing.TB, interval time.Duration) (*cluster, *tracker) {
	tb.Helper()
	c := newCluster(tb)
	tr := &tracker{members: propagationMembers, pending: make(map[int64]*pendingSignal)}
	key := gossipKey("k1")
	for i := range propagationMembers {
		cfg := c.config(fmt.Sprintf("127.0.71.%d", i+1), "acme", fmt.Sprintf("acme-%d", i), [][]byte{key})
		cfg.GossipInterval = interval
		cfg.OnAccept = tr.accepted
		c.add(cfg)
	}
	c.converge()
	return c, tr
}

// propagate publishes one signal from a member picked by rng and returns
// how long it took to reach every other member.
func propagate(tb testing.TB, c *cluster, tr *tracker, rng *rand.Rand, value int64) time.Duration {
	tb.Helper()
	origin := c.pools[rng.IntN(len(c.pools))]
	p := tr.expect(value)
	if _, err := origin.Publish(OperationalTempo, value, baseTime); err != nil {
		tb.Fatalf("publish: %v", err)
	}
	select {
	case <-p.done:
		return p.took
	case <-time.After(waitTimeout):
		tr.mu.Lock()
		left := p.left
		tr.mu.Unlock()
		tb.Fatalf("signal %d from %s reached all but %d members within %s", value, origin.Addr(), left, waitTimeout)
		return 0
	}
}

func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func seededRand(tb testing.TB) *rand.Rand {
	seed := *propagationSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	tb.Logf("seed %d (rerun with -cortex.seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// TestPropagation30Members publishes signals from random members of a
// 32-member pool on loopback and checks that each reaches every member;
// it logs the p50 and p99 time to reach all.
func TestPropagation30Members(t *testing.T) {
	if testing.Short() {
		t.Skip("32-member pool; skipped with -short")
	}
	began := time.Now()
	c, tr := propagationCluster(t, testPropagationInterval)
	t.Logf("%d members joined and converged in %s", propagationMembers, time.Since(began))
	rng := seededRand(t)
	const rounds = 20
	took := make([]time.Duration, 0, rounds)
	for i := range rounds {
		took = append(took, propagate(t, c, tr, rng, int64(i+1)))
	}
	t.Logf("%d members, gossip interval %s: time for a signal to reach all: p50 %s p99 %s (%d signals)",
		propagationMembers, testPropagationInterval, percentile(took, 0.5), percentile(took, 0.99), rounds)
	last := int64(rounds)
	for i, p := range c.pools {
		var found bool
		for _, s := range p.Latest() {
			found = found || (s.Kind == OperationalTempo && s.Value == last)
		}
		if !found {
			t.Errorf("member %d does not hold the last signal", i)
		}
	}
}

// BenchmarkPropagation30 measures the time for one signal to reach all 32
// members of a loopback pool, at a fast gossip interval and at memberlist's
// LAN default. One op is one signal; use -benchtime=Nx for a stable p99,
// e.g. go test ./cortex -run '^$' -bench Propagation30 -benchtime=100x.
func BenchmarkPropagation30(b *testing.B) {
	for _, interval := range []time.Duration{20 * time.Millisecond, DefaultConfig().GossipInterval} {
		b.Run("gossip="+interval.String(), func(b *testing.B) {
			c, tr := propagationCluster(b, interval)
			rng := seededRand(b)
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				took = append(took, propagate(b, c, tr, rng, int64(i+1)))
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(took, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(took, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(propagationMembers, "members")
		})
	}
}
