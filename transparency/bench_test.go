package transparency

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/kernel/kerneltest"
)

// BenchmarkGateThroughput measures kv.put through the gate on one node
// (HTTP, Raft, the FSM, the archive) with the Merkle tree maintained and
// without it, in the same run, alternating: ns/op is per committed
// write, 32 writers, the node's edge rate limit off. At most 10,000
// writes a node (root's dedup share).
func BenchmarkGateThroughput(b *testing.B) {
	for round := range 3 {
		for _, withTree := range []bool{false, true} {
			name := fmt.Sprintf("without-tree/round-%d", round)
			if withTree {
				name = fmt.Sprintf("with-tree/round-%d", round)
			}
			b.Run(name, func(b *testing.B) { benchGate(b, withTree, fmt.Sprintf("127.0.162.%d", 10+round*2+btoi(withTree))) })
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func benchGate(b *testing.B, withTree bool, ip string) {
	var services []kernel.Service
	var s *Service
	if withTree {
		cfg := DefaultConfig(b.TempDir())
		cfg.Logger = kerneltest.Logger()
		cfg.CheckpointEvery = time.Second
		s = New(cfg)
		services = append(services, s)
	}
	dir := b.TempDir()
	if s != nil {
		s.cfg.DataDir = dir
	}
	n := kerneltest.SingleNode(b, ip, func(c *kernel.Config) { c.DataDir, c.RateLimitPerSec = dir, 0 }, services...)
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	c, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	const writers = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := c.KVPut(ctx, fmt.Sprintf("k/%d/%d", w, i), "v"); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	b.StopTimer()
	if s == nil {
		return
	}
	if err := s.waitSize(ctx, uint64(b.N)); err != nil {
		b.Fatal(err)
	}
	// The rebuild at start: a fresh service on the same node's archive.
	size := s.Tree().Size()
	s2 := New(s.cfg)
	t0 := time.Now()
	if err := s2.Start(n); err != nil {
		b.Fatal(err)
	}
	defer s2.Stop()
	if err := s2.waitSize(ctx, size); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(t0).Microseconds())/float64(size), "rebuild-µs/event")
}
