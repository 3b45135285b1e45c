package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/internal/faultnet"
)

// staleIPs are the fixed loopback addresses of the stale-read cluster.
var staleIPs = []string{"127.0.0.135", "127.0.0.136", "127.0.0.137"}

// faultCluster is a kernel (plaintext node connections) over a
// fault-injecting network, so a node can be cut off from the others.
type faultCluster struct {
	tb    testing.TB
	nodes []*Node
	net   *faultnet.Network
}

func startFaultCluster(tb testing.TB, ips []string, mut ...func(*Config)) *faultCluster {
	tb.Helper()
	fc := &faultCluster{tb: tb, net: faultnet.New(1, tb.Logf)} // no random faults: only Isolate and Heal
	tb.Cleanup(fc.net.Close)
	var binds []string
	for i, ip := range ips {
		fc.net.AddNode(fmt.Sprintf("n%d", i+1), ip)
		port, err := faultnet.FreePort(ip)
		if err != nil {
			tb.Fatal(err)
		}
		binds = append(binds, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
	tb.Cleanup(func() { // before fc.net.Close: cleanups run last first
		for _, n := range fc.nodes {
			n.Close()
		}
	})
	for i := range ips {
		name := fmt.Sprintf("n%d", i+1)
		cfg := DefaultConfig()
		cfg.Name, cfg.DataDir, cfg.BindAddr, cfg.Join, cfg.BootstrapExpect = name, tb.TempDir(), binds[i], binds, len(ips)
		cfg.Logger, cfg.RaftLogOutput, cfg.MinFreeDiskBytes = testLogger(tb), testOutput(), 0
		for _, m := range mut {
			m(&cfg)
		}
		ln, err := fc.net.Listen(name, cfg.BindAddr)
		if err != nil {
			tb.Fatal(err)
		}
		cfg.Listener, cfg.Dial = ln, fc.net.Dialer(name)
		n, err := New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		fc.nodes = append(fc.nodes, n)
	}
	return fc
}

func (fc *faultCluster) leader(timeout time.Duration) *Node {
	fc.tb.Helper()
	var l *Node
	waitFor(fc.tb, "a leader", timeout, func() bool {
		for _, n := range fc.nodes {
			if n.Raft().State() == raft.Leader {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// get serves one GET through n's handler and returns the status and the
// error code of a non-2xx answer.
func get(t *testing.T, n *Node, path, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	if rec.Code == http.StatusOK {
		return rec.Code, ""
	}
	var body api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s on %s: %d %q", path, n.Name(), rec.Code, rec.Body.String())
	}
	return rec.Code, body.Error.Code
}

// waitAnswer polls GET path on n until it answers status (with code, when
// non-2xx).
func waitAnswer(t *testing.T, n *Node, path, token string, status int, code string) {
	t.Helper()
	var got int
	var gotCode string
	waitFor(t, fmt.Sprintf("%s answers %d %s", n.Name(), status, code), 15*time.Second, func() bool {
		got, gotCode = get(t, n, path, token)
		return got == status && gotCode == code
	})
}

// The scoped reads of every node check the token on state confirmed
// against the leader: a follower cut off from the leader, and a deposed
// leader, answer 503 stale rather than serve a capability revoked on the
// leader; a connected follower serves the read; once the network heals,
// every node refuses the revoked token 403.
func TestScopedReadsNeedStateConfirmedByTheLeader(t *testing.T) {
	fc := startFaultCluster(t, staleIPs)
	leader := fc.leader(10 * time.Second)
	ctx := context.Background()
	srv := httptest.NewServer(leader.Handler())
	defer srv.Close()
	root, err := mustClient(t, srv.URL, "").Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rootC := mustClient(t, srv.URL, root.RootToken)
	auditor := func(name string) string {
		op, err := rootC.OperatorAdd(ctx, api.OperatorRequest{Name: name, Scopes: []string{"audit.read"}})
		if err != nil || op.Decision != "permit" {
			t.Fatalf("operator add %s: %v %+v", name, err, op)
		}
		return op.Token
	}
	revoke := func(c *client.Client, name string) {
		t.Helper()
		r, err := c.OperatorRevoke(ctx, name)
		if err != nil || r.Decision != "permit" {
			t.Fatalf("operator revoke %s: %v %+v", name, err, r)
		}
	}
	const tail = "/v1/ledger/tail?n=5"
	ann := auditor("ann")
	var followers []*Node
	for _, n := range fc.nodes {
		if n != leader {
			followers = append(followers, n)
		}
		// Connected and caught up (the grant just committed): served.
		if code, _ := get(t, n, tail, ann); code != http.StatusOK {
			t.Fatalf("%s: ledger tail with a valid audit token: %d", n.Name(), code)
		}
	}
	cut, connected := followers[0], followers[1]

	// A follower cut off while the leader revokes ann.
	fc.net.Isolate(cut.Name())
	revoke(rootC, "ann")
	if code, _ := get(t, leader, tail, ann); code != http.StatusForbidden {
		t.Fatalf("the leader served a revoked token: %d", code)
	}
	waitAnswer(t, connected, tail, ann, http.StatusForbidden, api.CodeForbidden)
	if code, _ := get(t, connected, tail, root.RootToken); code != http.StatusOK {
		t.Fatalf("the connected follower refused a valid token: %d", code)
	}
	if cut.scopeErr(ann, fsm.OpAuditRead, "*") != nil {
		t.Fatal("the cut-off follower already knows of the revocation; the test proves nothing")
	}
	for _, path := range []string{tail, "/v1/caps", "/v1/operator/raft/peers", "/v1/approvals"} {
		if code, c := get(t, cut, path, ann); code != http.StatusServiceUnavailable || c != api.CodeStale {
			t.Fatalf("the cut-off follower answered GET %s with a revoked token: %d %s, want 503 stale", path, code, c)
		}
	}

	// A deposed leader: the leader cut off, the others elect one and revoke bob.
	fc.net.Heal()
	waitAnswer(t, cut, tail, ann, http.StatusForbidden, api.CodeForbidden)
	bob := auditor("bob")
	for _, n := range fc.nodes {
		waitAnswer(t, n, tail, bob, http.StatusOK, "")
	}
	old := leader
	fc.net.Isolate(old.Name())
	var elected *Node
	waitFor(t, "a new leader among the connected nodes", 15*time.Second, func() bool {
		for _, n := range followers {
			if n.Raft().State() == raft.Leader {
				elected = n
				return true
			}
		}
		return false
	})
	srv2 := httptest.NewServer(elected.Handler())
	defer srv2.Close()
	revoke(mustClient(t, srv2.URL, root.RootToken), "bob")
	if code, c := get(t, old, tail, bob); code != http.StatusServiceUnavailable || c != api.CodeStale {
		t.Fatalf("the deposed leader answered a revoked token: %d %s, want 503 stale", code, c)
	}

	// Healed: every node refuses both revoked tokens once it confirms.
	fc.net.Heal()
	for _, n := range fc.nodes {
		for _, tok := range []string{ann, bob} {
			waitAnswer(t, n, tail, tok, http.StatusForbidden, api.CodeForbidden)
		}
		waitAnswer(t, n, tail, root.RootToken, http.StatusOK, "")
	}
	(&testCluster{t: t, nodes: fc.nodes}).requireSameHead(10 * time.Second)
}

func mustClient(t testing.TB, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addr: url, Token: token, RetryFor: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
