package kernel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
)

// benchIPs are the fixed loopback addresses of the read benchmarks'
// cluster.
var benchIPs = []string{"127.0.0.137", "127.0.0.138", "127.0.0.139"}

// BenchmarkScopeCheck measures what checking a read's scope on
// leader-confirmed state costs over the local check it replaced, on a
// 3-node in-process cluster (real Raft and node RPC over loopback TCP,
// fsync on): "local" is the FSM lookup alone; "leader" and "follower"
// add the coalesced read-index round (on a follower, one RPC to the
// leader) and waiting to apply its index; "parallel" runs 64 callers at
// once and reports the rounds per check. "http" is a whole GET
// /v1/ledger/tail?n=1 through a follower's handler.
func BenchmarkScopeCheck(b *testing.B) {
	// Raft's timeouts scaled up: 64 busy callers on 2 cores must not
	// starve heartbeats into an election in the middle of a run.
	fc := startFaultCluster(b, benchIPs, func(c *Config) { c.RateLimitPerSec, c.RaftTimeoutScale = 0, 5 })
	ctx := context.Background()
	srv := httptest.NewServer(fc.leader(10 * time.Second).Handler())
	defer srv.Close()
	root, err := mustClient(b, srv.URL, "").Init(ctx)
	if err != nil {
		b.Fatal(err)
	}
	op, err := mustClient(b, srv.URL, root.RootToken).OperatorAdd(ctx, api.OperatorRequest{Name: "ann", Scopes: []string{"audit.read"}})
	if err != nil || op.Decision != "permit" {
		b.Fatalf("operator add: %v %+v", err, op)
	}
	// roles names the current leader and a follower that knows the token.
	roles := func() (leader, follower *Node) {
		leader = fc.leader(10 * time.Second)
		for _, n := range fc.nodes {
			if n != leader {
				follower = n
			}
		}
		waitFor(b, "the follower knows the token", 10*time.Second, func() bool { return follower.scopeErr(op.Token, fsm.OpAuditRead, "*") == nil })
		return leader, follower
	}
	rounds := func() (sum uint64) {
		for _, n := range fc.nodes {
			sum += n.reads.rounds.Load()
		}
		return sum
	}
	run := func(name string, node func(leader, follower *Node) *Node, fn func(n *Node) error) {
		b.Run(name, func(b *testing.B) {
			n := node(roles())
			before := rounds()
			for b.Loop() {
				if err := fn(n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rounds()-before)/float64(b.N), "rounds/op")
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			n := node(roles())
			before := rounds()
			b.SetParallelism(32) // 64 callers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := fn(n); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(rounds()-before)/float64(b.N), "rounds/op")
		})
	}
	onLeader := func(l, _ *Node) *Node { return l }
	onFollower := func(_, f *Node) *Node { return f }
	local := func(n *Node) error { return n.scopeErr(op.Token, fsm.OpAuditRead, "*") }
	confirmed := func(n *Node) error { return n.requireScope(ctx, op.Token, fsm.OpAuditRead) }
	run("local", onFollower, local)
	run("leader", onLeader, confirmed)
	run("follower", onFollower, confirmed)
	handlers := map[*Node]http.Handler{}
	for _, n := range fc.nodes {
		handlers[n] = n.Handler()
	}
	run("http", onFollower, func(n *Node) error {
		req := httptest.NewRequest("GET", "/v1/ledger/tail?n=1", nil)
		req.Header.Set("Authorization", "Bearer "+op.Token)
		rec := httptest.NewRecorder()
		handlers[n].ServeHTTP(rec, req)
		if rec.Code != 200 {
			return errors.New(rec.Body.String())
		}
		return nil
	})
}
