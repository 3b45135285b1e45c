package kernel

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/hashicorp/raft"
)

// probe is a service that records its lifecycle.
type probe struct {
	BaseService
	name     string
	log      *[]string
	mu       *sync.Mutex
	failWith error
	rpc      string
	duty     atomic.Int64
	k        *Node
}

func (p *probe) Name() string { return p.name }
func (p *probe) Start(k *Node) error {
	p.record("start " + p.name)
	p.k = k
	return p.failWith
}
func (p *probe) Stop() { p.record("stop " + p.name) }
func (p *probe) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.log = append(*p.log, s)
}
func (p *probe) RPCs() map[string]RPCHandler {
	if p.rpc == "" {
		return nil
	}
	return map[string]RPCHandler{p.rpc: func(context.Context, string, []byte) ([]byte, error) { return nil, nil }}
}
func (p *probe) LeaderDuties() []Duty {
	return []Duty{{Name: "count", Every: 10 * time.Millisecond, Run: func(context.Context) { p.duty.Add(1) }}}
}
func (p *probe) Routes() []httpedge.Route {
	return []httpedge.Route{
		{Pattern: "GET /v1/probe/" + p.name, Scopes: []string{fsm.OpAuditRead}, Handler: func(w http.ResponseWriter, _ *http.Request, c *httpedge.Caller) {
			httpedge.WriteJSON(w, http.StatusOK, map[string]string{"entity": c.Entity()})
		}},
	}
}

// A node starts its services in order once Raft exists, serves their
// routes behind the edge's authentication and declared scopes, runs
// their leader duties while it leads, and stops them in reverse order.
func TestServicesPlugIntoTheNode(t *testing.T) {
	var log []string
	var mu sync.Mutex
	a := &probe{name: "a", log: &log, mu: &mu, rpc: "probe_a"}
	b := &probe{name: "b", log: &log, mu: &mu}
	n, _ := singleNode(t, 141, nil)
	n.Close() // the plain node only provides a free address block; start one with services
	cfg := n.cfg
	cfg.DataDir = t.TempDir()
	n, err := New(cfg, a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	(&testCluster{t: t, nodes: []*Node{n}}).leader(10 * time.Second)
	if a.k != n || b.k != n {
		t.Fatal("services were not handed their node")
	}
	if _, ok := n.rpcHandlers["probe_a"]; !ok {
		t.Fatal("service RPC method not served")
	}
	token, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/probe/b", token); code != http.StatusOK || !strings.Contains(body, `"entity":"root"`) {
		t.Fatalf("service route as root: %d %s", code, body)
	}
	gr, err := root.Grant(context.Background(), api.GrantRequest{Entity: "agent", Ops: []string{"kv.get"}, Resources: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get("/v1/probe/a", gr.Token); code != http.StatusForbidden || !strings.Contains(body, api.CodeForbidden) {
		t.Fatalf("service route without its scope: %d %s", code, body)
	}
	if code, _ := get("/v1/probe/a", "forged"); code != http.StatusUnauthorized {
		t.Fatalf("service route with a forged token: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.duty.Load() < 2 || b.duty.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("leader duties ran %d and %d times", a.duty.Load(), b.duty.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.Close()
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(log, ", "); got != "start a, start b, stop b, stop a" {
		t.Fatalf("lifecycle: %s", got)
	}
}

// A service that fails to start fails New, and the services started
// before it are stopped; two services may not serve one RPC method.
func TestServiceStartFailures(t *testing.T) {
	var log []string
	var mu sync.Mutex
	n, cfg := singleNode(t, 141, nil)
	n.Close()
	cfg.DataDir = t.TempDir()
	a := &probe{name: "a", log: &log, mu: &mu}
	bad := &probe{name: "bad", log: &log, mu: &mu, failWith: errors.New("no disk for me")}
	if _, err := New(cfg, a, bad); err == nil || !strings.Contains(err.Error(), "service bad: no disk for me") {
		t.Fatalf("failing service: %v", err)
	}
	if got := strings.Join(log, ", "); got != "start a, start bad, stop a" {
		t.Fatalf("lifecycle after a failed start: %s", got)
	}
	cfg.DataDir = t.TempDir()
	dup := &probe{name: "dup", log: &log, mu: &mu, rpc: rpcIdentify}
	if _, err := New(cfg, dup); err == nil || !strings.Contains(err.Error(), "already served") {
		t.Fatalf("service claiming a kernel RPC method: %v", err)
	}
}

// Reconciling the member table leaves raft's configuration as it was: the
// server list raft hands out is shared with every reader (the skew check
// reads it concurrently), so reconcile sorts a copy.
func TestReconcileMembersDoesNotReorderTheConfiguration(t *testing.T) {
	tc := startCluster(t, 142, 3)
	leader := tc.leader(10 * time.Second)
	ctx := context.Background()
	if _, _, err := leader.Init(ctx); err != nil {
		t.Fatal(err)
	}
	names := func() string {
		var out []string
		for _, s := range leader.raft.GetConfiguration().Configuration().Servers {
			out = append(out, string(s.ID))
		}
		return strings.Join(out, ",")
	}
	before := names()
	if strings.HasPrefix(before, leader.Name()+",") {
		// Only a leader that is not listed first would move.
		var other string
		for _, n := range tc.nodes {
			if n != leader && !strings.HasPrefix(before, n.Name()+",") {
				other = n.Name()
			}
		}
		if err := leader.TransferLeadership(ctx, other); err != nil {
			t.Fatal(err)
		}
		leader = tc.leader(10 * time.Second)
		before = names()
	}
	if strings.HasPrefix(before, leader.Name()+",") {
		t.Fatalf("leader %s is still listed first in %s", leader.Name(), before)
	}
	leader.reconcileMembers(ctx)
	if after := names(); after != before {
		t.Fatalf("reconcile reordered raft's configuration: %s -> %s", before, after)
	}
}

// The node's Raft transport never pipelines (raftpipeline.go).
func TestRaftReplicationIsNotPipelined(t *testing.T) {
	tr := unpipelined{}
	if p, err := tr.AppendEntriesPipeline("n2", "127.0.0.1:1"); p != nil || !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("pipeline %v, err %v", p, err)
	}
	var _ raft.WithClose = unpipelined{}
	var _ raft.WithPreVote = unpipelined{}
}
