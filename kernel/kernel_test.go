package kernel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/fsm"
)

func freePort(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DOMINUS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testOutput() io.Writer {
	if os.Getenv("DOMINUS_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

type testCluster struct {
	t     *testing.T
	nodes []*Node
	cfgs  []Config
}

func startCluster(t *testing.T, block int, size int, mut ...func(*Config)) *testCluster {
	t.Helper()
	var ips []string
	for i := 0; i < size; i++ {
		ips = append(ips, fmt.Sprintf("127.0.%d.%d", block, i+1))
	}
	return startClusterAt(t, ips, mut...)
}

// startClusterAt is startCluster with one node bound to each of ips.
func startClusterAt(t *testing.T, ips []string, mut ...func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t}
	size := len(ips)
	var binds []string
	for _, ip := range ips {
		binds = append(binds, fmt.Sprintf("%s:%d", ip, freePort(t, ip)))
	}
	for i := 0; i < size; i++ {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = t.TempDir()
		cfg.BindAddr = binds[i]
		cfg.BootstrapExpect = size
		cfg.Join = binds
		cfg.Logger = testLogger(t)
		cfg.RaftLogOutput = testOutput()
		cfg.MinFreeDiskBytes = 0
		for _, m := range mut {
			m(&cfg)
		}
		tc.cfgs = append(tc.cfgs, cfg)
	}
	for _, cfg := range tc.cfgs {
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tc.nodes = append(tc.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range tc.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	return tc
}

func (tc *testCluster) leader(timeout time.Duration) *Node {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range tc.nodes {
			if n != nil && n.Raft().State() == raft.Leader {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("no leader elected")
	return nil
}

func TestThreeNodeClusterWritesThroughAnyNode(t *testing.T) {
	tc := startCluster(t, 31, 3)
	tc.leader(10 * time.Second)
	ctx := context.Background()
	token, _, err := tc.nodes[1].Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.nodes[2].Init(ctx); err == nil {
		t.Fatal("second init succeeded")
	}
	for i := 0; i < 30; i++ {
		n := tc.nodes[i%3]
		res, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdKVPut, RequestID: fmt.Sprint("r", i), Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVPut{Key: fmt.Sprint("k", i%5), Value: []byte(fmt.Sprint(i))})})
		if err != nil || res.Decision != fsm.DecisionPermit {
			t.Fatalf("put %d via %s: %v %+v", i, n.Name(), err, res)
		}
	}
	res, err := tc.nodes[2].Apply(ctx, fsm.Envelope{Type: fsm.CmdKVGet, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVKey{Key: "k4"})})
	if err != nil || string(res.Value) != "29" {
		t.Fatalf("get: %v %+v", err, res)
	}
	tc.requireSameHead(10 * time.Second)
}

func (tc *testCluster) requireSameHead(timeout time.Duration) {
	tc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var heads []string
		same := true
		for _, n := range tc.nodes {
			if n == nil {
				continue
			}
			h, d := n.Head()
			heads = append(heads, fmt.Sprintf("%s=%s/%x", n.Name(), h, d[:4]))
			if len(heads) > 1 && heads[0][3:] != heads[len(heads)-1][3:] {
				same = false
			}
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("heads differ: %v", heads)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLeaveRemovesTheNodeAndTheRestCommit(t *testing.T) {
	tc := startCluster(t, 44, 3)
	leader := tc.leader(10 * time.Second)
	token, _, err := leader.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Leave(context.Background()); err != nil {
		t.Fatalf("leave: %v", err)
	}
	var rest []*Node
	for _, n := range tc.nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if peers := rest[0].Status().Peers; len(peers) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers after leave: %+v", rest[0].Status().Peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := rest[1].Apply(context.Background(), fsm.Envelope{Type: fsm.CmdKVPut, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVPut{Key: "after-leave", Value: []byte("v")})})
	if err != nil || res.Decision != fsm.DecisionPermit {
		t.Fatalf("write after leave: %v %+v", err, res)
	}
}
