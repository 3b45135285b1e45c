package clustertests

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/internal/faultnet"
	"github.com/dominus-kernel/dominus/internal/server"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
	"github.com/dominus-kernel/dominus/jepsen/netfault"
	"github.com/dominus-kernel/dominus/kernel"
)

// fedWorld is a federation of real kernel nodes in this process: one
// certificate authority, each node on its own loopback IP of one block
// with real TCP (Raft, node RPC), HTTPS (the sovereign's API) and a QUIC
// bus on UDP bound to BindAddr's IP and port number. Faults on the bus are
// iptables rules between node IPs (cutter, below; jepsen/netfault's
// probes show they are in effect), not faultnet: the bus is UDP.
//
// Address blocks: 127.0.80.0/24 .. 127.0.83.0/24, one per test.
type fedWorld struct {
	t     *testing.T
	block byte
	caDir string
	scale float64

	mu       sync.Mutex
	nodes    map[string]*kernel.Node
	cfgs     map[string]kernel.Config
	handlers map[string]http.Handler
}

func newFedWorld(t *testing.T, block byte) *fedWorld {
	t.Helper()
	dir := t.TempDir()
	if _, _, err := tlsutil.CreateCA(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	w := &fedWorld{t: t, block: block, caDir: dir, scale: 1, nodes: map[string]*kernel.Node{}, cfgs: map[string]kernel.Config{}, handlers: map[string]http.Handler{}}
	if raceEnabled {
		w.scale = 3
	}
	t.Cleanup(w.shutdown)
	return w
}

func (w *fedWorld) ip(host int) string { return faultnet.Loopback(w.block, host) }

// config returns a node configuration on host's IP with its own
// certificate; the bus listens on BindAddr's port number over UDP.
func (w *fedWorld) config(name string, host int) kernel.Config {
	t := w.t
	t.Helper()
	ip := w.ip(host)
	port, err := faultnet.FreePort(ip)
	if err != nil {
		t.Fatal(err)
	}
	cfg := kernel.DefaultConfig()
	cfg.Name = name
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = net.JoinHostPort(ip, strconv.Itoa(port))
	cfg.HTTPAddr = ip + ":0"
	cfg.BusAddr = cfg.BindAddr
	cfg.BootstrapExpect = 1
	cfg.MinFreeDiskBytes = 0
	cfg.RaftTimeoutScale = w.scale
	cfg.ApplyTimeout = 5 * time.Second
	cfg.RenewEvery = 300 * time.Millisecond
	cfg.WitnessEvery = time.Second
	cfg.PassportLifetime = time.Minute
	cfg.RaftLogOutput = logWriter()
	level := slog.LevelWarn
	if os.Getenv("DOMINUS_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logWriter(), &slog.HandlerOptions{Level: level}))
	return cfg
}

// certify gives cfg its node's certificate, made on first use for the
// kernel its role names (the sovereign, or its domain).
func (w *fedWorld) certify(cfg *kernel.Config) {
	w.t.Helper()
	if cfg.TLS != nil {
		return
	}
	ca := filepath.Join(w.caDir, "ca.pem")
	cert, key := filepath.Join(w.caDir, cfg.Name+".pem"), filepath.Join(w.caDir, cfg.Name+"-key.pem")
	if _, err := os.Stat(cert); err != nil {
		ip, _, _ := net.SplitHostPort(cfg.BindAddr)
		kernelName := cfg.Domain
		if cfg.Role == fsm.RoleSovereign {
			kernelName = fsm.SovereignKernel
		}
		if cert, key, err = tlsutil.CreateCert(w.caDir, ca, filepath.Join(w.caDir, "ca-key.pem"), kernelName, cfg.Name, []net.IP{net.ParseIP(ip)}, nil, time.Hour); err != nil {
			w.t.Fatal(err)
		}
	}
	cfg.TLS = &tlsutil.Files{CA: ca, Cert: cert, Key: key}
}

func (w *fedWorld) start(cfg kernel.Config) *kernel.Node {
	w.t.Helper()
	w.certify(&cfg)
	n, err := server.New(cfg)
	if err != nil {
		w.t.Fatalf("start %s: %v", cfg.Name, err)
	}
	w.mu.Lock()
	w.nodes[cfg.Name] = n
	w.cfgs[cfg.Name] = cfg
	w.handlers[cfg.Name] = n.Handler()
	w.mu.Unlock()
	return n
}

// kill closes a node abruptly.
func (w *fedWorld) kill(name string) {
	w.mu.Lock()
	n := w.nodes[name]
	delete(w.nodes, name)
	w.mu.Unlock()
	if n != nil {
		n.Close()
	}
	w.t.Logf("killed %s", name)
}

func (w *fedWorld) shutdown() {
	w.mu.Lock()
	nodes := w.nodes
	w.nodes = map[string]*kernel.Node{}
	w.mu.Unlock()
	for _, n := range nodes {
		n.Close()
	}
}

func (w *fedWorld) node(name string) *kernel.Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nodes[name]
}

// cfg is the configuration a node was started with.
func (w *fedWorld) cfg(name string) kernel.Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cfgs[name]
}

// nodeIP is the IP a started node is bound to.
func (w *fedWorld) nodeIP(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	host, _, _ := net.SplitHostPort(w.cfgs[name].BindAddr)
	return host
}

// do serves one API request on node name in process (the handler of
// kernel.Node.Handler, no socket) and decodes a 200 answer into out.
func (w *fedWorld) do(name, method, path, token string, body, out any) (int, string) {
	w.mu.Lock()
	h := w.handlers[name]
	w.mu.Unlock()
	if h == nil {
		return 0, name + " is not running"
	}
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			w.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK && out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			w.t.Fatalf("%s %s on %s: decoding %q: %v", method, path, name, rec.Body.String(), err)
		}
	}
	return rec.Code, rec.Body.String()
}

func waitLeaderOf(t *testing.T, w *fedWorld, names []string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, name := range names {
			if n := w.node(name); n != nil && n.Raft().State() == raft.Leader {
				return name
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leader among %v within %s", names, timeout)
	return ""
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func permit(t *testing.T, what string) func(fsm.Result, error) fsm.Result {
	return func(res fsm.Result, err error) fsm.Result {
		t.Helper()
		if err != nil || res.Decision != fsm.DecisionPermit {
			t.Fatalf("%s: err=%v decision=%s reason=%s", what, err, res.Decision, res.Reason)
		}
		return res
	}
}

func randomToken(t *testing.T, prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// fedCluster is one kernel (sovereign or domain) of a fedWorld.
type fedCluster struct {
	w     *fedWorld
	name  string   // domain name, or "sovereign"
	nodes []string // node names, in start order
	binds []string
	root  string // root token (domain) or operator token (sovereign)
	// joinSecret lets a node join the initialized kernel (domains).
	joinSecret string
}

func (c *fedCluster) live() []string {
	var out []string
	for _, n := range c.nodes {
		if c.w.node(n) != nil {
			out = append(out, n)
		}
	}
	return out
}

func (c *fedCluster) leader(timeout time.Duration) string {
	c.w.t.Helper()
	return waitLeaderOf(c.w.t, c.w, c.live(), timeout)
}

// apply proposes env through the current leader (any live node forwards).
func (c *fedCluster) apply(env fsm.Envelope) (fsm.Result, error) {
	live := c.live()
	if len(live) == 0 {
		return fsm.Result{}, fmt.Errorf("%s has no live node", c.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.w.node(live[0]).Apply(ctx, env)
}

// startSovereign starts a one-node sovereign kernel with one operator
// (threshold 1) initialized through POST /v1/operator/init.
func (w *fedWorld) startSovereign(name string, host int) *fedCluster {
	t := w.t
	t.Helper()
	cfg := w.config(name, host)
	cfg.Role = fsm.RoleSovereign
	w.start(cfg)
	c := &fedCluster{w: w, name: fsm.SovereignKernel, nodes: []string{name}, binds: []string{cfg.BindAddr}}
	c.leader(20 * time.Second)
	op := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	req := api.OperatorInitRequest{Threshold: 1, Operators: []api.OperatorInit{{Name: "alice", PubKey: hex.EncodeToString(op.Public().(ed25519.PublicKey))}}}
	var resp api.OperatorInitResponse
	if code, body := w.do(name, http.MethodPost, "/v1/operator/init", "", req, &resp); code != http.StatusOK || len(resp.Operators) != 1 {
		t.Fatalf("sovereign init: %d %s", code, body)
	}
	c.root = resp.Operators[0].Token
	return c
}

// startDomain creates domain name on the sovereign, starts size nodes on
// hosts firstHost.. that bootstrap one Raft cluster (BootstrapExpect =
// size, each joining the others' bind addresses), and joins it to the
// federation from its leader.
func (w *fedWorld) startDomain(sov *fedCluster, name string, size, firstHost int, mut func(*kernel.Config)) *fedCluster {
	t := w.t
	t.Helper()
	jt := randomToken(t, "dmj_")
	permit(t, "domain create "+name)(sov.apply(fsm.Envelope{Type: fsm.CmdFedDomainCreate, Auth: kernel.TokenHash(sov.root),
		Payload: fsm.Encode(&fsm.FedDomainCreate{Name: name, JoinTokenHash: kernel.TokenHash(jt)})}))
	c := &fedCluster{w: w, name: name}
	var cfgs []kernel.Config
	for i := 0; i < size; i++ {
		cfg := w.config(fmt.Sprintf("%s%d", name, i+1), firstHost+i)
		cfg.Role, cfg.Domain = fsm.RoleDomain, name
		cfg.SovereignURLs = []string{"https://" + w.node(sov.nodes[0]).HTTPAddr()}
		cfg.BootstrapExpect = size
		if mut != nil {
			mut(&cfg)
		}
		cfgs = append(cfgs, cfg)
		c.nodes = append(c.nodes, cfg.Name)
		c.binds = append(c.binds, cfg.BindAddr)
	}
	for i := range cfgs {
		if size > 1 {
			cfgs[i].Join = c.binds
		}
		w.start(cfgs[i])
	}
	leader := c.leader(30 * time.Second)
	// Every member must be in the configuration before the join, so the
	// first passport carries every node key.
	eventually(t, name+": all members in the Raft configuration", 20*time.Second, func() bool {
		f := w.node(leader).Raft().GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == size
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ir, err := w.node(leader).InitializeDomain(ctx, jt)
	if err != nil {
		t.Fatalf("%s: init domain: %v", name, err)
	}
	c.root, c.joinSecret = ir.RootToken, ir.JoinSecret
	return c
}

// passport returns the kernel's own current passport as node via shows it.
func (c *fedCluster) passport(via string) (api.Passport, bool) {
	n := c.w.node(via)
	if n == nil {
		return api.Passport{}, false
	}
	ref := n.Status().Passport
	if ref == nil {
		return api.Passport{}, false
	}
	var p api.Passport
	code, _ := c.w.do(via, http.MethodGet, "/v1/passports/"+ref.ID, c.root, nil, &p)
	return p, code == http.StatusOK
}

// knowsPeer reports whether node via of c records a passport of kernel
// peer with serial at least minSerial.
func (c *fedCluster) knowsPeer(via, peer string, minSerial uint64) bool {
	var ps []api.Passport
	if code, _ := c.w.do(via, http.MethodGet, "/v1/passports", c.root, nil, &ps); code != http.StatusOK {
		return false
	}
	for _, p := range ps {
		if p.Domain == peer && p.Serial >= minSerial && !p.Revoked {
			return true
		}
	}
	return false
}

func (c *fedCluster) grant(t *testing.T, token, entity string, ops, resources []string) {
	t.Helper()
	permit(t, c.name+" grants "+entity)(c.apply(fsm.Envelope{Type: fsm.CmdCapGrant, Auth: kernel.TokenHash(c.root), Payload: fsm.Encode(&fsm.CapGrant{
		TokenHash: kernel.TokenHash(token), Entity: entity, Ops: ops, Resources: resources})}))
}

// remoteCall has c's agent (token) call op on dest:resource with the grant
// token dest issued. The request id makes a retried proposal one call.
func (c *fedCluster) remoteCall(via, rid, token, op, resource, value, remoteToken string) (fsm.Result, error) {
	n := c.w.node(via)
	if n == nil {
		return fsm.Result{}, fmt.Errorf("%s is down", via)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, RequestID: rid, Auth: kernel.TokenHash(token), Payload: fsm.Encode(&fsm.Syscall{
		Op: op, Resource: resource, Args: []byte(value), RemoteTokenHash: kernel.TokenHash(remoteToken)})})
}

// busEvent reads one outbox event ("dest/seq") on node via, after a
// linearizable read.
func (c *fedCluster) busEvent(via, id string) (api.BusEvent, bool) {
	var e api.BusEvent
	code, _ := c.w.do(via, http.MethodGet, "/v1/bus/"+id+"?consistent", c.root, nil, &e)
	return e, code == http.StatusOK
}

func (c *fedCluster) busStats(via string) api.BusStats {
	var s api.BusStats
	if code, body := c.w.do(via, http.MethodGet, "/v1/bus", c.root, nil, &s); code != http.StatusOK {
		c.w.t.Fatalf("GET /v1/bus on %s: %d %s", via, code, body)
	}
	return s
}

// kvGet reads key through c's ledger (root token): value, found and the
// ledger seq of the key's last write.
func (c *fedCluster) kvGet(t *testing.T, key string) fsm.Result {
	t.Helper()
	res, err := c.apply(fsm.Envelope{Type: fsm.CmdKVGet, Auth: kernel.TokenHash(c.root), Payload: fsm.Encode(&fsm.KVKey{Key: key})})
	if err != nil {
		t.Fatalf("%s: kv get %s: %v", c.name, key, err)
	}
	return res
}

// requireConverged waits until every live node of c shares head and state
// digest, and requires every archive to verify.
func (c *fedCluster) requireConverged(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ref string
		same := true
		var seen []string
		for _, name := range c.live() {
			h, d := c.w.node(name).Head()
			s := fmt.Sprintf("%d:%s/%s", h.Seq, hex.EncodeToString(h.Hash), hex.EncodeToString(d[:]))
			seen = append(seen, name+"="+s[:28])
			if ref == "" {
				ref = s
			} else if s != ref {
				same = false
			}
		}
		if same && len(seen) > 0 {
			for _, name := range c.live() {
				if v := c.w.node(name).VerifyArchive(); !v.OK {
					t.Fatalf("%s archive does not verify: %+v", name, v)
				}
			}
			t.Logf("%s converged: %v", c.name, seen)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: heads did not converge within %s: %v", c.name, timeout, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// busReceives returns, from node's own archive, the permitted bus.receive
// events of actor by subject (the resource the gate judged) and how many there are of
// any decision.
func busReceives(t *testing.T, n *kernel.Node, actor string) (permitted map[string]int, all int) {
	t.Helper()
	permitted = map[string]int{}
	err := n.Events(1, func(ev api.Event) error {
		if ev.Type != "bus.receive" {
			return nil
		}
		all++
		if ev.Actor == actor && ev.Decision == fsm.DecisionPermit.JSON() {
			permitted[ev.Subject]++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: events: %v", n.Name(), err)
	}
	return permitted, all
}

// cutter drops packets between loopback IPs with iptables rules in a
// chain of its own that only INPUT jumps to: a dropped packet leaves its
// sender normally and is lost on the way in, as on a real network. (A
// DROP met in OUTPUT, as with jepsen/netfault's chain, fails the sender's
// sendmsg with EPERM instead, which quic-go answers by closing the whole
// connection: a one-way cut would not be a silent loss.) The chain and
// its jump are removed when the test ends; without root or iptables the
// test fails.
type cutter struct {
	t     *testing.T
	bin   string
	chain string
}

func newCutter(t *testing.T, chain string) *cutter {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		t.Fatalf("the federation link cut needs iptables as root (CI runs these tests as root); running as uid %d", uid)
	}
	bin, err := exec.LookPath("iptables")
	if err != nil {
		t.Fatalf("the federation link cut needs iptables (apt-get install -y iptables): %v", err)
	}
	c := &cutter{t: t, bin: bin, chain: chain}
	c.remove() // left over from a crashed run
	if err := c.ipt("-N", chain); err != nil {
		t.Fatalf("the federation link cut needs a usable iptables: %v", err)
	}
	t.Cleanup(func() {
		c.remove()
		if left, err := netfault.Leftovers(chain); err != nil || len(left) > 0 {
			t.Errorf("iptables chain %s left behind: %v %v", chain, left, err)
		}
	})
	if err := c.ipt("-I", "INPUT", "1", "-j", chain); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cutter) ipt(args ...string) error {
	out, err := exec.Command(c.bin, append([]string{"-w", "5"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *cutter) remove() {
	for i := 0; i < 16 && c.ipt("-C", "INPUT", "-j", c.chain) == nil; i++ {
		if err := c.ipt("-D", "INPUT", "-j", c.chain); err != nil {
			c.t.Errorf("removing the jump to %s: %v", c.chain, err)
			break
		}
	}
	if c.ipt("-S", c.chain) == nil {
		if err := c.ipt("-F", c.chain); err != nil {
			c.t.Errorf("flushing %s: %v", c.chain, err)
		}
		if err := c.ipt("-X", c.chain); err != nil {
			c.t.Errorf("deleting %s: %v", c.chain, err)
		}
	}
}

// drop loses every packet from src to each of dsts.
func (c *cutter) drop(src string, dsts ...string) {
	c.t.Helper()
	for _, d := range dsts {
		if err := c.ipt("-A", c.chain, "-s", src, "-d", d, "-j", "DROP"); err != nil {
			c.t.Fatal(err)
		}
	}
}

// heal removes every rule.
func (c *cutter) heal() {
	c.t.Helper()
	if err := c.ipt("-F", c.chain); err != nil {
		c.t.Fatal(err)
	}
}

// prober listens on one port of every ip (TCP and UDP) to show that the
// rules are in effect.
func prober(t *testing.T, ips []string) *netfault.Prober {
	t.Helper()
	var lastErr error
	for try := 0; try < 20; try++ {
		port, err := faultnet.FreePort(ips[0])
		if err != nil {
			t.Fatal(err)
		}
		p, err := netfault.NewProber(ips, port, 0)
		if err != nil {
			lastErr = err // the port is taken on another IP
			continue
		}
		t.Cleanup(p.Close)
		return p
	}
	t.Fatalf("no probe port free on all of %v: %v", ips, lastErr)
	return nil
}

func pairs(from, to []string) []netfault.Pair {
	var out []netfault.Pair
	for _, f := range from {
		for _, d := range to {
			out = append(out, netfault.Pair{Src: f, Dst: d})
		}
	}
	return out
}

func containsHex(keys []string, k []byte) bool { return slices.Contains(keys, hex.EncodeToString(k)) }
