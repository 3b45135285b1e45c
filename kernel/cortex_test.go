package kernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/client"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/cortex"
	"github.com/dominus-kernel/dominus/fsm"
)

// cortexWait bounds every wait for gossip in these tests.
const cortexWait = 30 * time.Second

// cortexTestKey is the gossip key every node of the test federations
// reads from DATA/gossip.key.
func cortexTestKey() []byte {
	k := sha256.Sum256([]byte("kernel cortex test gossip key"))
	return k[:]
}

// freePortPair returns a port p on ip such that TCP and UDP p and p+1 are
// all free: the bus (UDP) and Raft (TCP) take p, gossip (both) p+1.
func freePortPair(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		p := freePort(t, ip)
		if p >= 65535 {
			continue
		}
		var closers []func() error
		ok := true
		for _, port := range []int{p, p + 1} {
			tl, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, tl.Close)
			ul, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, ul.Close)
		}
		for _, c := range closers {
			_ = c()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("no free port pair on %s", ip)
	return 0
}

// startCortexFederation is startFederation with gossip on every node (the
// bus port + 1, the address convention) and the test gossip key.
func startCortexFederation(t *testing.T, block int, sovMut ...func(*Config)) *fedFixture {
	return startFederationWith(t, block, true, sovMut...)
}

// cortexPool returns n's running pool, waiting for it.
func cortexPool(t *testing.T, n *Node) *cortex.Pool {
	t.Helper()
	var p *cortex.Pool
	waitFor(t, n.cfg.Name+"'s gossip pool", cortexWait, func() bool {
		if c := n.cortexOf(); c != nil {
			p = c.current()
		}
		return p != nil
	})
	return p
}

// kindsFrom returns the kinds n's cortex holds from domain.
func kindsFrom(n *Node, domain string) map[cortex.Kind]cortex.Signal {
	out := map[cortex.Kind]cortex.Signal{}
	if c := n.cortexOf(); c != nil {
		if p := c.current(); p != nil {
			for _, s := range p.Latest() {
				if s.Domain == domain {
					out[s.Kind] = s
				}
			}
		}
	}
	return out
}

func passportIDOf(n *Node) string {
	if p := n.Status().Passport; p != nil {
		return p.ID
	}
	return ""
}

// getJSON serves one authenticated GET through n's handler.
func getJSON(t *testing.T, n *Node, path, token string, out any) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	if rec.Code == http.StatusOK && out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, rec.Body.String())
		}
	}
	return rec.Code
}

// Every kind of signal of both domains' leaders reaches the sovereign,
// signed by the domain node's key under its current passport; the
// domains hear each other and the sovereign; the HTTP view lists them.
func TestCortexSignalsReachTheSovereign(t *testing.T) {
	fx := startCortexFederation(t, 56)
	for _, n := range []*Node{fx.sov, fx.a, fx.b} {
		cortexPool(t, n)
	}
	for _, d := range []*Node{fx.a, fx.b} {
		domain := d.cfg.Domain
		waitFor(t, "every kind from "+domain+" at the sovereign", cortexWait, func() bool { return len(kindsFrom(fx.sov, domain)) == len(cortex.Kinds()) })
		for k, s := range kindsFrom(fx.sov, domain) {
			if s.Node != hex.EncodeToString(d.NodePublicKey()) {
				t.Fatalf("%s %s signed as node %s, want %s's key", domain, k, s.Node, d.cfg.Name)
			}
			issued := false
			fx.sov.fedState(func(_ *fsm.State, f *fsm.FedState) {
				for _, pr := range f.Passports {
					issued = issued || pr.ID == s.PassportID && pr.Domain == domain
				}
			})
			if !issued {
				t.Fatalf("%s %s under passport %q, which the sovereign never issued to %s", domain, k, s.PassportID, domain)
			}
		}
	}
	// A domain verifies its peer's signals (peer passports) and the
	// sovereign's (the sovereign's registered keys).
	waitFor(t, "a hears b", cortexWait, func() bool { return len(kindsFrom(fx.a, "b")) > 0 })
	waitFor(t, "a hears the sovereign", cortexWait, func() bool { return len(kindsFrom(fx.a, fsm.SovereignKernel)) > 0 })

	var got []api.CortexSignal
	if code := getJSON(t, fx.sov, "/v1/cortex/signals", fx.opToken, &got); code != http.StatusOK {
		t.Fatalf("GET /v1/cortex/signals: %d", code)
	}
	seen := map[string]bool{}
	for _, s := range got {
		seen[s.Domain] = true
		if s.ID != fmt.Sprintf("%s/%s/%s/%d", s.Domain, s.Node, s.Kind, s.Seq) {
			t.Fatalf("signal id %q does not name %+v", s.ID, s)
		}
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("GET /v1/cortex/signals lists domains %v, want a and b", seen)
	}
	if code := getJSON(t, fx.sov, "/v1/cortex/signals", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/cortex/signals without a token: %d, want 401", code)
	}
	var insights []api.CortexInsight
	if code := getJSON(t, fx.a, "/v1/cortex/insights", fx.rootA, &insights); code != http.StatusOK || insights == nil || len(insights) != 0 {
		t.Fatalf("a domain's insights: %d %v, want an empty array", code, insights)
	}
}

// A member holding the gossip key but signing with a key no passport
// lists is heard, dropped and counted by every receiver, and never
// appears among the latest signals.
func TestCortexForgedSignalIsDroppedAndCounted(t *testing.T) {
	fx := startCortexFederation(t, 57)
	sovPool := cortexPool(t, fx.sov)
	aPool := cortexPool(t, fx.a)
	waitFor(t, "a's signals at the sovereign", cortexWait, func() bool { return len(kindsFrom(fx.sov, "a")) > 0 })

	seed := sha256.Sum256([]byte("rogue node key"))
	rogue := ed25519.NewKeyFromSeed(seed[:])
	rogueID := hex.EncodeToString(rogue.Public().(ed25519.PublicKey))
	cfg := cortex.DefaultConfig()
	cfg.Gossip = fmt.Sprintf("127.0.%d.200:0", 57)
	cfg.Domain, cfg.Node, cfg.PassportID = "a", rogueID, passportIDOf(fx.a)
	cfg.Signer = rogue
	cfg.Verifier = func(string, string, string) (ed25519.PublicKey, bool) { return nil, false }
	cfg.Keys = [][]byte{cortexTestKey()}
	cfg.GossipInterval = 50 * time.Millisecond
	cfg.TCPTimeout = time.Second
	cfg.Logger = testLogger(t)
	rp, err := cortex.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Shutdown()
	if _, err := rp.Join([]string{sovPool.Addr()}); err != nil {
		t.Fatal(err)
	}
	beforeSov, beforeA := sovPool.Dropped(cortex.DropUnknownKey), aPool.Dropped(cortex.DropUnknownKey)
	deadline := time.Now().Add(cortexWait)
	for sovPool.Dropped(cortex.DropUnknownKey) == beforeSov || aPool.Dropped(cortex.DropUnknownKey) == beforeA {
		if time.Now().After(deadline) {
			t.Fatalf("forged signals not dropped as unknown_key: sovereign %d->%d, a %d->%d",
				beforeSov, sovPool.Dropped(cortex.DropUnknownKey), beforeA, aPool.Dropped(cortex.DropUnknownKey))
		}
		if _, err := rp.Publish(cortex.AnomalyIndicator, 10000, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []*cortex.Pool{sovPool, aPool} {
		for _, s := range p.Latest() {
			if s.Node == rogueID {
				t.Fatalf("forged signal accepted: %+v", s)
			}
		}
	}
	// The verifier's rule, directly: the real key binds, the rogue does not.
	c := fx.sov.cortexOf()
	if _, ok := c.verify("a", hex.EncodeToString(fx.a.NodePublicKey()), passportIDOf(fx.a)); !ok {
		t.Fatal("a's own node key under its passport does not verify at the sovereign")
	}
	if _, ok := c.verify("a", rogueID, passportIDOf(fx.a)); ok {
		t.Fatal("a key not in a's passport verifies")
	}
	if _, ok := c.verify("a", hex.EncodeToString(fx.a.NodePublicKey()), "pp-a-999"); ok {
		t.Fatal("a passport id a never had verifies")
	}
	if _, ok := c.verify("b", hex.EncodeToString(fx.a.NodePublicKey()), passportIDOf(fx.b)); ok {
		t.Fatal("a's node key verifies for domain b")
	}
}

// The master cortex on the sovereign leader records one knowledge finding,
// with the signals it rests on, when both domains' anomaly indicators rise
// together, and none for one domain's rise alone.
func TestCortexMasterRecordsCrossDomainFinding(t *testing.T) {
	fx := startCortexFederation(t, 58)
	cortexPool(t, fx.sov)
	c := fx.sov.cortexOf()
	seq := uint64(0)
	send := func(domain string, v int64) cortex.Signal {
		seq++
		s := cortex.Signal{Domain: domain, Node: "test-" + domain, Kind: cortex.AnomalyIndicator, Value: v,
			Window: time.Now().UnixNano() + int64(time.Second), Seq: seq, PassportID: "test"}
		c.accept(s)
		return s
	}
	knowledge := func() []fsm.KnowledgeRecord {
		var out []fsm.KnowledgeRecord
		fx.sov.fedState(func(_ *fsm.State, f *fsm.FedState) { out = slices.Clone(f.Knowledge) })
		return out
	}
	drained := func() {
		waitFor(t, "the master to read its inbox", cortexWait, func() bool { return len(c.inbox) == 0 })
		time.Sleep(3 * cortexTick) // the tick that drained it records its findings
	}
	for range 2 * cortex.DefaultMasterConfig().MinSamples {
		send("a", 0)
		send("b", 0)
	}
	spikeA := send("a", 8000)
	drained()
	if k := knowledge(); len(k) != 0 {
		t.Fatalf("one domain's rise was recorded: %+v", k)
	}
	spikeB := send("b", 7000)
	waitFor(t, "a knowledge record", cortexWait, func() bool { return len(knowledge()) > 0 })
	k := knowledge()
	if len(k) != 1 {
		t.Fatalf("%d knowledge records, want 1: %+v", len(k), k)
	}
	r := k[0]
	wantEvidence := []string{cortex.SignalID(spikeA), cortex.SignalID(spikeB)}
	if r.Kind != "cross_domain.anomaly_indicator" || !slices.Equal(r.Domains, []string{"a", "b"}) || !slices.Equal(r.Evidence, wantEvidence) ||
		r.Confidence < 1 || r.Confidence > 1000 || r.Window != spikeB.Window || r.Summary == "" {
		t.Fatalf("knowledge %+v, want anomaly_indicator over a,b resting on %v", r, wantEvidence)
	}
	// The condition continues: no second record.
	for range 3 {
		send("a", 9000)
		send("b", 9000)
	}
	drained()
	if k := knowledge(); len(k) != 1 {
		t.Fatalf("continuing condition recorded %d times", len(k))
	}
	var insights []api.CortexInsight
	if code := getJSON(t, fx.sov, "/v1/cortex/insights", fx.opToken, &insights); code != http.StatusOK || len(insights) != 1 {
		t.Fatalf("GET /v1/cortex/insights: %d %+v", code, insights)
	}
	if in := insights[0]; in.Kind != r.Kind || in.Seq != r.Seq || !slices.Equal(in.Evidence, wantEvidence) || in.Confidence != r.Confidence || in.Time.UnixNano() != r.Time {
		t.Fatalf("insight %+v does not show record %+v", in, r)
	}
	// Ledgered like every command: an event of type knowledge.
	found := false
	_ = fx.sov.Events(r.Seq, func(ev api.Event) error {
		found = found || ev.Seq == r.Seq && ev.Type == "knowledge" && ev.Decision == "permit"
		return nil
	})
	if !found {
		t.Fatalf("no permitted knowledge event at seq %d", r.Seq)
	}
}

// A renewed passport restarts the domain's pool under the new passport id,
// and its signals keep reaching the sovereign.
func TestCortexPoolFollowsPassportRenewal(t *testing.T) {
	fx := startCortexFederation(t, 60, func(c *Config) { c.PassportLifetime = 10 * time.Second })
	cortexPool(t, fx.a)
	first := passportIDOf(fx.a)
	waitFor(t, "a's signals under "+first, cortexWait, func() bool { return kindsFrom(fx.sov, "a")[cortex.ResourcePressure].PassportID == first })
	waitFor(t, "a renewed passport", cortexWait, func() bool { return passportIDOf(fx.a) != first })
	renewed := passportIDOf(fx.a)
	waitFor(t, "a's pool under "+renewed, cortexWait, func() bool {
		c := fx.a.cortexOf()
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.pool != nil && c.ppID != first
	})
	waitFor(t, "a's signals at the sovereign after the renewal", cortexWait, func() bool {
		return kindsFrom(fx.sov, "a")[cortex.ResourcePressure].PassportID != first
	})
	t.Logf("passport %s -> %s", first, renewed)
}

// Stopping gossip on a domain changes no gate decision: the same calls,
// local and cross-domain, are decided the same before and after.
func TestCortexGossipPartitionChangesNoGateDecision(t *testing.T) {
	fx := startCortexFederation(t, 59)
	cortexPool(t, fx.a)
	waitFor(t, "a's signals at the sovereign", cortexWait, func() bool { return len(kindsFrom(fx.sov, "a")) > 0 })
	ctx := context.Background()
	type verdict struct {
		decision fsm.Decision
		reason   fsm.Reason
	}
	round := func(i int) []verdict {
		var out []verdict
		for _, call := range []fsm.Syscall{
			{Op: "kv.put", Resource: fmt.Sprintf("local/%d", i), Args: []byte("v")},
			{Op: "kv.get", Resource: fmt.Sprintf("local/%d", i)},
			{Op: "email.send", Resource: "someone"}, // outside the capability's scope
		} {
			res, err := fx.a.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, Auth: TokenHash(fx.agentA), Payload: fsm.Encode(&call)})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, verdict{res.Decision, res.Reason})
		}
		res := remoteCall(t, fx.a, fx.agentA, "kv.put", fmt.Sprintf("b:orders/%d", i), "paid", fx.grantForA)
		e := waitDelivered(t, fx.a, res.ID)
		out = append(out, verdict{res.Decision, res.Reason}, verdict{e.Remote.Decision, e.Remote.Reason})
		return out
	}
	before := round(1)
	fx.a.cortexOf().halt()
	if fx.a.cortexOf().current() != nil {
		t.Fatal("a's pool still runs after halt")
	}
	time.Sleep(2 * cortexPublishEvery) // a leader tick without gossip
	after := round(2)
	if !slices.Equal(before, after) {
		t.Fatalf("decisions with gossip %v, without %v", before, after)
	}
	want := []verdict{{fsm.DecisionPermit, fsm.ReasonOK}, {fsm.DecisionPermit, fsm.ReasonOK}, {fsm.DecisionDeny, before[2].reason},
		{fsm.DecisionPermit, fsm.ReasonOK}, {fsm.DecisionPermit, fsm.ReasonOK}}
	if !slices.Equal(after, want) || before[2].reason == fsm.ReasonOK {
		t.Fatalf("decisions %v, want %v", after, want)
	}
	if v, ok := kvValue(fx.b, "orders/2"); !ok || v != "paid" {
		t.Fatalf("b's orders/2 = %q %v after the partition", v, ok)
	}
}

// An operator rotates the gossip key across the federation over the API
// (install everywhere, use everywhere, remove the old one everywhere);
// signals keep flowing under the new key alone, and the rotated keyring
// survives a pool restart.
func TestCortexKeyRotationOverTheAPI(t *testing.T) {
	fx := startCortexFederation(t, 62)
	nodes := []*Node{fx.sov, fx.a, fx.b}
	tokens := map[*Node]string{fx.sov: fx.opToken, fx.a: fx.rootA, fx.b: fx.rootB}
	for _, n := range nodes {
		cortexPool(t, n)
	}
	waitFor(t, "a's signals at the sovereign", cortexWait, func() bool { return len(kindsFrom(fx.sov, "a")) > 0 })
	old := hex.EncodeToString(cortexTestKey())
	fresh := hex.EncodeToString(bytes.Repeat([]byte{0x5a}, cortex.KeyBytes))
	step := func(action, key string) {
		for _, n := range nodes {
			srv := httptest.NewServer(n.Handler())
			c, _ := client.New(client.Config{Addr: srv.URL, Token: tokens[n]})
			if _, err := c.CortexKeyring(context.Background(), action, key); err != nil {
				srv.Close()
				t.Fatalf("%s %s on %s: %v", action, key[:8], n.cfg.Name, err)
			}
			srv.Close()
		}
	}
	step("install", fresh)
	step("use", fresh)
	step("remove", old)
	for _, n := range nodes {
		if keys := cortexOfKeys(n); len(keys) != 1 || hex.EncodeToString(keys[0]) != fresh {
			t.Fatalf("%s keyring after rotation: %d keys", n.cfg.Name, len(keys))
		}
	}
	// Fresh signals from a arrive under the new key alone.
	before := kindsFrom(fx.sov, "a")[cortex.OperationalTempo].Seq
	waitFor(t, "a's signals after the rotation", cortexWait, func() bool { return kindsFrom(fx.sov, "a")[cortex.OperationalTempo].Seq > before })
	// The keyring is persisted for the next pool of the node.
	if ring := fx.a.cortexOf().keyring(); len(ring) != 1 || hex.EncodeToString(ring[0]) != fresh {
		t.Fatalf("persisted keyring: %d keys", len(ring))
	}
}

func cortexOfKeys(n *Node) [][]byte {
	if c := n.cortexOf(); c != nil {
		if p := c.current(); p != nil {
			return p.Keys()
		}
	}
	return nil
}
