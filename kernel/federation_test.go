package kernel

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
	"github.com/dominus-kernel/dominus/transport"
)

// fedNet is a federation of one-node kernels in this process, each with
// its own certificate from one CA, a real QUIC bus and HTTPS API on
// loopback.
type fedNet struct {
	t      testing.TB
	caDir  string
	block  int
	next   int
	gossip bool     // nodes gossip on their bus port + 1 with the test gossip key
	derive bool     // with gossip: no DATA/gossip.key, the key derived from the federation's master secret
	ips    []string // fixed loopback IPs, one per node in creation order, instead of the block's
}

func newFedNet(t testing.TB, block int) *fedNet {
	dir := t.TempDir()
	if _, _, err := tlsutil.CreateCA(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	return &fedNet{t: t, caDir: dir, block: block}
}

func (fn *fedNet) node(name string, mut func(*Config)) *Node {
	t := fn.t
	fn.next++
	ip := fmt.Sprintf("127.0.%d.%d", fn.block, fn.next)
	if len(fn.ips) > 0 {
		ip = fn.ips[fn.next-1]
	}
	cfg := DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.Logger, cfg.MinFreeDiskBytes = name, t.TempDir(), testLogger(t), 0
	cfg.RaftLogOutput = testOutput()
	cfg.HTTPAddr = ip + ":0"
	if fn.gossip {
		port := freePortPair(t, ip)
		cfg.BindAddr = fmt.Sprintf("%s:%d", ip, port)
		cfg.GossipAddr = fmt.Sprintf("%s:%d", ip, port+1) // the address convention
	} else {
		cfg.BindAddr = fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	}
	cfg.BusAddr = cfg.BindAddr // UDP: the same port number as the TCP bind port
	cfg.BootstrapExpect = 1
	cfg.RenewEvery = 300 * time.Millisecond
	cfg.WitnessEvery = 300 * time.Millisecond
	cfg.PassportLifetime = time.Minute
	mut(&cfg)
	cert, key, err := tlsutil.CreateCert(fn.caDir, filepath.Join(fn.caDir, "ca.pem"), filepath.Join(fn.caDir, "ca-key.pem"), defaultKernelName(&cfg), name, []net.IP{net.ParseIP(ip)}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS = &tlsutil.Files{CA: filepath.Join(fn.caDir, "ca.pem"), Cert: cert, Key: key}
	if fn.gossip && !fn.derive {
		if err := os.WriteFile(filepath.Join(cfg.DataDir, cortexKeyFile), []byte(hex.EncodeToString(cortexTestKey())), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for n.Raft().State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no leader", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

func mustPermit(t testing.TB, what string) func(fsm.Result, error) fsm.Result {
	return func(res fsm.Result, err error) fsm.Result {
		t.Helper()
		if err != nil || res.Decision != fsm.DecisionPermit {
			t.Fatalf("%s: %v %+v (%s)", what, err, res, res.Reason)
		}
		return res
	}
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type fedFixture struct {
	sov, a, b         *Node
	opToken           string
	opKeys            map[string]ed25519.PrivateKey
	rootA, rootB      string
	agentA, grantForA string
	domains           map[string]*Node  // every domain's node, a and b included
	joinTokens        map[string]string // every domain's join token
}

// startFederation brings up a sovereign with operators alice, bob, carol
// (threshold 2) and joins domains a and b; b grants a's agent, a grants
// its own agent.
func startFederation(t *testing.T, block int) *fedFixture {
	return startFederationWith(t, block, false)
}

// startFederationWith is startFederation, with gossip on every node when
// asked and sovMut applied to the sovereign's configuration.
func startFederationWith(t testing.TB, block int, gossip bool, sovMut ...func(*Config)) *fedFixture {
	return startFederationOpts(t, fedOpts{block: block, gossip: gossip, sovMut: sovMut})
}

type fedOpts struct {
	block    int
	gossip   bool
	derive   bool     // with gossip: the gossip key derived from the master secret, not DATA/gossip.key
	extra    []string // domains joined besides a and b
	protocol uint16   // the sovereign's genesis protocol (0: the newest)
	sovMut   []func(*Config)
	ips      []string // fixed loopback IPs (sovereign, then each domain) instead of the block's
}

func startFederationOpts(t testing.TB, o fedOpts) *fedFixture {
	ctx := context.Background()
	fn := newFedNet(t, o.block)
	fn.gossip, fn.derive, fn.ips = o.gossip, o.derive, o.ips
	fx := &fedFixture{opKeys: map[string]ed25519.PrivateKey{}, domains: map[string]*Node{}}
	fx.sov = fn.node("s1", func(c *Config) {
		c.Role = fsm.RoleSovereign
		for _, m := range o.sovMut {
			m(c)
		}
	})
	var req api.OperatorInitRequest
	req.Threshold, req.Protocol = 2, o.protocol
	for i, name := range []string{"alice", "bob", "carol"} {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(i + 1)
		k := ed25519.NewKeyFromSeed(seed)
		fx.opKeys[name] = k
		req.Operators = append(req.Operators, api.OperatorInit{Name: name, PubKey: hex.EncodeToString(k.Public().(ed25519.PublicKey))})
	}
	toks, _, err := fx.sov.initSovereign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	fx.opToken = toks[0].Token
	sovURL := "https://" + fx.sov.HTTPAddr()
	join := map[string]string{}
	fx.joinTokens = join
	names := append([]string{"a", "b"}, o.extra...)
	for _, d := range names {
		jt, th, err := newToken("dmj_")
		if err != nil {
			t.Fatal(err)
		}
		mustPermit(t, "domain create "+d)(fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedDomainCreate, Auth: TokenHash(fx.opToken), Payload: fsm.Encode(&fsm.FedDomainCreate{Name: d, JoinTokenHash: th})}))
		join[d] = jt
	}
	for _, d := range names {
		fx.domains[d] = fn.node(d+"1", func(c *Config) { c.Role, c.Domain, c.SovereignURLs = fsm.RoleDomain, d, []string{sovURL} })
	}
	fx.a, fx.b = fx.domains["a"], fx.domains["b"]
	if fx.rootA, _, err = fx.a.InitDomain(ctx, join["a"]); err != nil {
		t.Fatal(err)
	}
	if fx.rootB, _, err = fx.b.InitDomain(ctx, join["b"]); err != nil {
		t.Fatal(err)
	}
	for _, d := range o.extra {
		if _, _, err = fx.domains[d].InitDomain(ctx, join[d]); err != nil {
			t.Fatal(err)
		}
	}
	// a's first view may predate b's join: wait until each knows the others.
	for _, n := range fx.domains {
		for _, other := range names {
			if other == n.cfg.Domain {
				continue
			}
			waitFor(t, n.cfg.Domain+" knows "+other, 10*time.Second, func() bool {
				ok := false
				n.fedState(func(_ *fsm.State, f *fsm.FedState) { ok = f.Peers[other] != nil })
				return ok
			})
		}
	}
	// b's authority grants a's agent; a's operator grants its own agent.
	fx.grantForA = "dmc_grant-for-a-agent"
	mustPermit(t, "grant in b")(fx.b.Apply(ctx, fsm.Envelope{Type: fsm.CmdCapGrant, Auth: TokenHash(fx.rootB), Payload: fsm.Encode(&fsm.CapGrant{
		TokenHash: TokenHash(fx.grantForA), Entity: "a/agent", Ops: []string{"kv.*"}, Resources: []string{"orders/*"}})}))
	fx.agentA = "dmc_agent-in-a"
	mustPermit(t, "grant in a")(fx.a.Apply(ctx, fsm.Envelope{Type: fsm.CmdCapGrant, Auth: TokenHash(fx.rootA), Payload: fsm.Encode(&fsm.CapGrant{
		TokenHash: TokenHash(fx.agentA), Entity: "agent", Ops: []string{"kv.*"}, Resources: []string{"*"}})}))
	return fx
}

func remoteCall(t *testing.T, n *Node, token, op, resource, value, remoteToken string) fsm.Result {
	t.Helper()
	res, err := n.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdSyscall, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.Syscall{
		Op: op, Resource: resource, Args: []byte(value), RemoteTokenHash: TokenHash(remoteToken)})})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func outEvent(n *Node, id string) (e fsm.OutEvent, ok bool) {
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		if p := f.OutEventByID(id); p != nil {
			e, ok = *p, true
		}
	})
	return
}

func waitDelivered(t *testing.T, n *Node, id string) fsm.OutEvent {
	t.Helper()
	var e fsm.OutEvent
	waitFor(t, "delivery of "+id, 15*time.Second, func() bool {
		var ok bool
		e, ok = outEvent(n, id)
		return ok && e.Status != fsm.BusStatePending
	})
	return e
}

func kvValue(n *Node, key string) (string, bool) {
	var v string
	var ok bool
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		if e := l.State().KV[key]; e != nil {
			v, ok = string(e.Value), true
		}
	})
	return v, ok
}

// A cross-domain call is gated in a, carried on the bus, gated again in b
// and ledgered in both; without b's grant it is denied in b and b's data
// is untouched.
func TestCrossDomainCallNeedsTheDestinationsGrant(t *testing.T) {
	fx := startFederation(t, 50)
	// Without a grant from b (a token b never issued).
	res := remoteCall(t, fx.a, fx.agentA, "kv.put", "b:orders/1", "forged", "dmc_not-issued-by-b")
	if res.Decision != fsm.DecisionPermit {
		t.Fatalf("a's gate should permit and ship the call (b decides): %+v", res)
	}
	e := waitDelivered(t, fx.a, res.ID)
	if e.Remote.Decision != fsm.DecisionDeny || e.Remote.Reason != fsm.ReasonUnknownToken {
		t.Fatalf("remote decision without a grant: %+v", e.Remote)
	}
	if _, ok := kvValue(fx.b, "orders/1"); ok {
		t.Fatal("b's state changed without a grant")
	}
	// With the grant.
	res = remoteCall(t, fx.a, fx.agentA, "kv.put", "b:orders/1", "paid", fx.grantForA)
	e = waitDelivered(t, fx.a, res.ID)
	if e.Remote.Decision != fsm.DecisionPermit {
		t.Fatalf("remote decision with the grant: %+v", e.Remote)
	}
	if v, ok := kvValue(fx.b, "orders/1"); !ok || v != "paid" {
		t.Fatalf("b's orders/1 = %q %v", v, ok)
	}
	// Ledgered in both: a's syscall and delivery, b's bus.receive.
	var sawReceive bool
	_ = fx.b.Events(1, func(ev api.Event) error {
		if ev.Type == "bus.receive" && ev.Actor == "a/agent" && ev.Decision == "permit" {
			sawReceive = true
		}
		return nil
	})
	if !sawReceive {
		t.Fatal("b's ledger has no permitted bus.receive from a/agent")
	}
	// b's grant names a's entity: b's own agent cannot use it locally, and
	// a's root token means nothing in b.
	if _, err := fx.b.Authenticate(fx.rootA); err == nil {
		t.Fatal("a's root token authenticated in b")
	}
	res2, err := fx.b.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdSyscall, Auth: TokenHash(fx.grantForA), Payload: fsm.Encode(&fsm.Syscall{Op: "kv.get", Resource: "orders/1"})})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Decision != fsm.DecisionDeny || res2.Reason != fsm.ReasonForbidden {
		t.Fatalf("local use of a cross-domain grant, bypassing a's gate: %s %s", res2.Decision, res2.Reason)
	}
}

// Every event is applied exactly once however often it is sent: the
// receiver's inbox answers a resent frame with the stored result.
func TestBusDeliveryIsExactlyOnceUnderResends(t *testing.T) {
	fx := startFederation(t, 51)
	var ids []string
	for i := 0; i < 5; i++ {
		res := remoteCall(t, fx.a, fx.agentA, "kv.put", fmt.Sprintf("b:orders/%d", i), fmt.Sprint(i), fx.grantForA)
		ids = append(ids, res.ID)
	}
	for _, id := range ids {
		waitDelivered(t, fx.a, id)
	}
	// Resend the first event's frame by hand: the ledger records nothing new.
	var seqBefore uint64
	fx.b.fsm.read(func(l *fsm.Ledger, _ uint64) { seqBefore = l.State().Seq })
	e, _ := outEvent(fx.a, ids[0])
	var addrs []string
	var ppID string
	fx.a.fedState(func(_ *fsm.State, f *fsm.FedState) {
		addrs = f.Peers["b"].BusAddrs
		ppID = fx.a.Status().Passport.ID
	})
	payload := fsm.Encode(&fsm.BusReceive{Origin: "a", Seq: e.Seq, PassportID: ppID, Entity: e.Entity, Op: e.Op, Resource: e.Resource, Args: e.Args, TokenHash: e.TokenHash})
	ack, _, err := fx.a.fed.send(context.Background(), "b", addrs, transportFrame(e.Seq, ppID, payload))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Status.String() != "duplicate" {
		t.Fatalf("resent event acked %s, want duplicate", ack.Status)
	}
	var seqAfter uint64
	fx.b.fsm.read(func(l *fsm.Ledger, _ uint64) { seqAfter = l.State().Seq })
	// Witness and renewal traffic may add events; none may be a bus.receive.
	_ = fx.b.Events(seqBefore+1, func(ev api.Event) error {
		if ev.Type == "bus.receive" {
			t.Errorf("resend produced a new bus.receive at seq %d", ev.Seq)
		}
		return nil
	})
	_ = seqAfter
	var applied int
	_ = fx.b.Events(1, func(ev api.Event) error {
		if ev.Type == "bus.receive" {
			applied++
		}
		return nil
	})
	if applied != 5 {
		t.Fatalf("b applied %d bus events, want 5", applied)
	}
}

// A revoked passport: the sovereign stops renewing it and every peer that
// hears of the revocation refuses the domain's bus events.
func TestRevokedPassportIsRefusedOnTheBus(t *testing.T) {
	fx := startFederation(t, 52)
	ctx := context.Background()
	ppB := fx.b.Status().Passport.ID
	mustPermit(t, "revoke")(fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedPassportRevoke, Auth: TokenHash(fx.opToken), Payload: fsm.Encode(&fsm.FedPassportRevoke{ID: ppB})}))
	waitFor(t, "a hears of the revocation", 10*time.Second, func() bool {
		r := false
		fx.a.fedState(func(_ *fsm.State, f *fsm.FedState) { r = f.IsRevoked(ppB) })
		return r
	})
	// b's agent calls into a: a refuses the frame.
	agentB := "dmc_agent-in-b"
	mustPermit(t, "grant in b")(fx.b.Apply(ctx, fsm.Envelope{Type: fsm.CmdCapGrant, Auth: TokenHash(fx.rootB), Payload: fsm.Encode(&fsm.CapGrant{
		TokenHash: TokenHash(agentB), Entity: "agent", Ops: []string{"kv.*"}, Resources: []string{"*"}})}))
	before := fx.a.fed.bus.Stats()
	res := remoteCall(t, fx.b, agentB, "kv.put", "a:orders/1", "x", "dmc_whatever")
	if res.Decision == fsm.DecisionPermit {
		waitFor(t, "a refuses b's event", 10*time.Second, func() bool {
			after := fx.a.fed.bus.Stats()
			var nb, na uint64
			for _, v := range before.Rejected {
				nb += v
			}
			for _, v := range after.Rejected {
				na += v
			}
			return na > nb
		})
		if e, _ := outEvent(fx.b, res.ID); e.Status != fsm.BusStatePending {
			t.Fatalf("b's event to a was answered after revocation: %+v", e)
		}
	}
	if _, ok := kvValue(fx.a, "orders/1"); ok {
		t.Fatal("a applied an event from a revoked domain")
	}
	// The sovereign refuses b's witness reports as well.
	waitFor(t, "sovereign refuses b", 10*time.Second, func() bool {
		var n uint64
		for _, v := range fx.sov.fed.bus.Stats().Rejected {
			n += v
		}
		return n > 0
	})
}

// M-1 signatures never ratify; M distinct operators do, and the domains
// take the new canon version.
func TestAmendmentRatifiesWithMSignaturesAndReachesDomains(t *testing.T) {
	fx := startFederation(t, 53)
	ctx := context.Background()
	res := mustPermit(t, "propose")(fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedAmendPropose, Auth: TokenHash(fx.opToken), Payload: fsm.Encode(&fsm.FedAmendPropose{Text: "Article 1. Agents act only through the gate.\n"})}))
	id := res.ID
	var hash []byte
	fx.sov.fedState(func(_ *fsm.State, f *fsm.FedState) { hash = f.Amendments[0].Hash })
	sign := func(op string) fsm.Result {
		sig := ed25519.Sign(fx.opKeys[op], fsm.AmendmentMessage(id, hash))
		r, err := fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedAmendSign, Payload: fsm.Encode(&fsm.FedAmendSign{ID: id, Operator: op, Signature: sig})})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mustPermit(t, "alice signs")(sign("alice"), nil)
	if r := sign("alice"); r.Reason != fsm.ReasonDuplicateSignature {
		t.Fatalf("repeated signature: %s", r.Reason)
	}
	if v := fx.sov.Status().CanonVersion; v != 0 {
		t.Fatalf("ratified with one signature: version %d", v)
	}
	mustPermit(t, "bob signs")(sign("bob"), nil)
	if v := fx.sov.Status().CanonVersion; v != 1 {
		t.Fatalf("canon version after 2 of 3: %d", v)
	}
	for _, n := range []*Node{fx.a, fx.b} {
		waitFor(t, n.cfg.Domain+" takes canon v1", 10*time.Second, func() bool { return n.Status().CanonVersion == 1 })
	}
	waitFor(t, "sovereign records acknowledgements", 10*time.Second, func() bool {
		ok := true
		fx.sov.fedState(func(_ *fsm.State, f *fsm.FedState) {
			for _, d := range f.Domains {
				ok = ok && d.CanonAck == 1
			}
		})
		return ok
	})
}

// A federation halt stops every domain's gate; resume needs M operators.
func TestFederationHaltAndResume(t *testing.T) {
	fx := startFederation(t, 54)
	ctx := context.Background()
	h := mustPermit(t, "halt")(fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedHalt, Auth: TokenHash(fx.opToken), Payload: fsm.Encode(&fsm.FedHaltCmd{Reason: "drill"})}))
	put := func() fsm.Result {
		r, err := fx.a.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, Auth: TokenHash(fx.agentA), Payload: fsm.Encode(&fsm.Syscall{Op: "kv.put", Resource: "local/1", Args: []byte("v")})})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	waitFor(t, "a halted", 10*time.Second, func() bool { return put().Reason == fsm.ReasonHalted })
	resume := func(op string) fsm.Result {
		sig := ed25519.Sign(fx.opKeys[op], fsm.ResumeMessage(h.ID))
		r, err := fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedResume, Payload: fsm.Encode(&fsm.FedResume{HaltID: h.ID, Operator: op, Signature: sig})})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mustPermit(t, "carol")(resume("carol"), nil)
	time.Sleep(time.Second) // two renewals
	if r := put(); r.Reason != fsm.ReasonHalted {
		t.Fatalf("one signature resumed the federation: %s", r.Reason)
	}
	mustPermit(t, "alice")(resume("alice"), nil)
	waitFor(t, "a resumes", 10*time.Second, func() bool { return put().Decision == fsm.DecisionPermit })
}

// Killing domain b leaves a working, and the sovereign witnessed a's head.
func TestKillingOneDomainLeavesTheOthers(t *testing.T) {
	fx := startFederation(t, 55)
	fx.b.Close()
	ctx := context.Background()
	r, err := fx.a.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, Auth: TokenHash(fx.agentA), Payload: fsm.Encode(&fsm.Syscall{Op: "kv.put", Resource: "local/1", Args: []byte("v")})})
	if err != nil || r.Decision != fsm.DecisionPermit {
		t.Fatalf("a after b died: %v %+v", err, r)
	}
	waitFor(t, "a's head witnessed", 10*time.Second, func() bool {
		n := 0
		fx.sov.fedState(func(_ *fsm.State, f *fsm.FedState) { n = len(f.Witness["a"]) })
		return n > 0
	})
}

func transportFrame(seq uint64, ppID string, payload []byte) transport.Frame {
	return transport.Frame{Seq: seq, PassportID: ppID, Type: "syscall", Payload: payload}
}

// A lost operator key is replaced over the API with two other operators'
// signatures; the canon listing shows the new key.
func TestOperatorKeyReplacedOverHTTP(t *testing.T) {
	fx := startFederation(t, 61)
	ctx := context.Background()
	srv := httptest.NewServer(fx.sov.Handler())
	defer srv.Close()
	c, _ := client.New(client.Config{Addr: srv.URL})
	cn, err := c.Canon(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var old []byte
	for _, o := range cn.Operators {
		if o.Name == "carol" {
			old, _ = hex.DecodeString(o.PubKey)
		}
	}
	newKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	req := api.RekeyRequest{NewPubKey: hex.EncodeToString(newKey)}
	sign := func(op string) {
		req.Signatures = append(req.Signatures, api.RekeySignature{Operator: op, Signature: hex.EncodeToString(ed25519.Sign(fx.opKeys[op], fsm.RekeyMessage("carol", old, newKey)))})
	}
	sign("alice")
	if r, err := c.OperatorRekey(ctx, "carol", req); err == nil && r.Decision == "permit" {
		t.Fatalf("one signature replaced a key: %+v", r)
	}
	sign("bob")
	if r, err := c.OperatorRekey(ctx, "carol", req); err != nil || r.Decision != "permit" {
		t.Fatalf("two signatures: %v %+v", err, r)
	}
	cn, _ = c.Canon(ctx, false)
	for _, o := range cn.Operators {
		if o.Name == "carol" && o.PubKey != hex.EncodeToString(newKey) {
			t.Fatalf("carol's key is still %s", o.PubKey)
		}
	}
}

// A federation moves from protocol 2 to 3 on the sovereign with M of N
// operator signatures; every domain takes the version from its next
// renewal, after checking the signatures against the operators it
// trusts, and acknowledges it; a domain cannot upgrade alone.
func TestFederationProtocolUpgrade(t *testing.T) {
	ctx := context.Background()
	fx := startFederationOpts(t, fedOpts{block: 68, protocol: 2})
	protocolOf := func(n *Node) (p uint16, hist []fsm.ProtocolChange) {
		n.fsm.read(func(l *fsm.Ledger, _ uint64) { p, hist = l.State().Meta.Protocol, l.State().Meta.ProtocolHistory })
		return p, hist
	}
	for _, n := range []*Node{fx.sov, fx.a, fx.b} {
		if p, _ := protocolOf(n); p != 2 {
			t.Fatalf("%s sealed at protocol %d, want the sovereign's 2", n.cfg.Name, p)
		}
	}
	cl := func(n *Node, token string) *client.Client {
		c, err := client.New(client.Config{Addr: "https://" + n.HTTPAddr(), Token: token, CACert: n.cfg.TLS.CA, RetryFor: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sov := cl(fx.sov, fx.opToken)
	var kid string
	fx.sov.fsm.read(func(l *fsm.Ledger, _ uint64) { kid = l.State().Meta.KernelID })
	sig := func(op string) string {
		return op + ":" + hex.EncodeToString(ed25519.Sign(fx.opKeys[op], fsm.ProtocolMessage(kid, 3)))
	}
	if _, err := sov.ProtocolUpgrade(ctx, api.ProtocolUpgradeRequest{Version: 3}); !client.IsCode(err, api.CodeBadRequest) {
		t.Fatalf("an upgrade without signatures: %v, want bad_request", err)
	}
	// Both domains must have reported what their voters implement.
	waitFor(t, "domains report their protocol support", 10*time.Second, func() bool {
		return fx.sov.fed.domainSupport("a") >= 3 && fx.sov.fed.domainSupport("b") >= 3
	})
	one, err := sov.ProtocolUpgrade(ctx, api.ProtocolUpgradeRequest{Version: 3, Signatures: []string{sig("alice")}})
	if err != nil || !strings.EqualFold(one.Decision, "deny") || one.Reason != "forbidden" || one.InForce != 2 {
		t.Fatalf("an upgrade with one signature of two: %+v %v, want DENY forbidden", one, err)
	}
	if p, _ := protocolOf(fx.sov); p != 2 {
		t.Fatal("a denied upgrade moved the sovereign")
	}
	up, err := sov.ProtocolUpgrade(ctx, api.ProtocolUpgradeRequest{Version: 3, Signatures: []string{sig("alice"), sig("bob")}})
	if err != nil || up.InForce != 3 {
		t.Fatalf("the signed upgrade: %+v %v", up, err)
	}
	for _, n := range []*Node{fx.a, fx.b} {
		waitFor(t, n.cfg.Domain+" takes protocol 3", 10*time.Second, func() bool { p, _ := protocolOf(n); return p == 3 })
		if _, h := protocolOf(n); len(h) != 1 || h[0].By != "federation:alice,bob" {
			t.Fatalf("%s history %+v", n.cfg.Domain, h)
		}
	}
	waitFor(t, "the sovereign records both acknowledgements", 10*time.Second, func() bool {
		ok := true
		fx.sov.fedState(func(_ *fsm.State, f *fsm.FedState) {
			for _, d := range []string{"a", "b"} {
				ok = ok && f.Domains[d].ProtocolAck == 3
			}
		})
		return ok
	})
	ps := fx.sov.ProtocolStatus(ctx)
	if ps.InForce != 3 || len(ps.Domains) != 2 || ps.Domains[0].Acknowledged != 3 || len(ps.History) != 2 || ps.History[1].By != "alice,bob" {
		t.Fatalf("sovereign protocol status %+v", ps)
	}
	if _, err := cl(fx.a, fx.rootA).ProtocolUpgrade(ctx, api.ProtocolUpgradeRequest{Version: 4}); !client.IsCode(err, api.CodeBadRequest) {
		t.Fatalf("a direct upgrade on a domain: %v, want bad_request", err)
	}
}
