package clustertests

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/jepsen/netfault"
	"github.com/dominus-kernel/dominus/kernel"
)

// Cross-domain calls from a to a three-node domain b are applied in b
// exactly once each, with the answer a records, while b's leader is killed
// mid-stream and the bus link between a and b is cut: first b->a only
// (b applies an event whose ack never reaches a, so a resends it), then
// both ways. Every surviving b node ends with the same chain and state.
func TestFederationExactlyOnceAcrossLeaderKillAndLinkCut(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (replay with DOMINUS_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	cut := newCutter(t, "DOMINUS-FED80")
	w := newFedWorld(t, 80)
	sov := w.startSovereign("s1", 1)
	a := w.startDomain(sov, "a", 1, 2, nil)
	b := w.startDomain(sov, "b", 3, 3, nil)
	eventually(t, "a and b know each other", 15*time.Second, func() bool {
		return a.knowsPeer("a1", "b", 1) && b.knowsPeer(b.leader(5*time.Second), "a", 1)
	})
	grantForA := randomToken(t, "dmc_")
	b.grant(t, grantForA, "a/agent", []string{"kv.put"}, []string{"orders/*"})
	agent := randomToken(t, "dmc_")
	a.grant(t, agent, "agent", []string{"kv.*"}, []string{"*"})

	aIP := w.nodeIP("a1")
	var bIPs []string
	for _, n := range b.nodes {
		bIPs = append(bIPs, w.nodeIP(n))
	}
	probe := prober(t, append([]string{aIP}, bIPs...))

	// a's agent issues N calls over ~15 s (a's leader ships each as soon
	// as it commits, so the stream must outlast the faults, which begin
	// at fixed counts of deliveries: the last of them ends ~10 s in and
	// leaves ~5 s of calls for the full cut); spacing is seeded.
	const N = 60
	delays := make([]time.Duration, N)
	for i := range delays {
		delays[i] = time.Duration(150+rng.Intn(200)) * time.Millisecond
	}
	cut1 := time.Duration(2000+rng.Intn(2000)) * time.Millisecond
	cut2 := time.Duration(2000+rng.Intn(2000)) * time.Millisecond
	t.Logf("calls: %d; one-way cut %s, full cut %s", N, cut1, cut2)
	ids := make([]string, N)
	callErrs := make([]error, N)
	var callers sync.WaitGroup
	callers.Add(1)
	go func() {
		defer callers.Done()
		for i := 0; i < N; i++ {
			time.Sleep(delays[i])
			var res fsm.Result
			var err error
			for try := 0; try < 5; try++ { // one request id: a retried proposal is one call
				res, err = a.remoteCall("a1", fmt.Sprintf("order-%d", i), agent, "kv.put", fmt.Sprintf("b:orders/%d", i), orderValue(seed, i), grantForA)
				if err == nil {
					break
				}
			}
			switch {
			case err != nil:
				callErrs[i] = err
			case res.Decision != fsm.DecisionPermit:
				callErrs[i] = fmt.Errorf("a's gate: %s %s", res.Decision, res.Reason)
			default:
				ids[i] = res.ID
			}
		}
	}()
	delivered := func() int { return a.busStats("a1").Delivered }
	// receivedInB is the most permitted bus.receive events from a/agent
	// that any live b node's archive holds.
	receivedInB := func() int {
		most := 0
		for _, name := range b.live() {
			got, _ := busReceives(t, w.node(name), "a/agent")
			most = max(most, len(got))
		}
		return most
	}

	// Fault 1: kill b's leader once 10 calls are delivered.
	eventually(t, "10 delivered", 30*time.Second, func() bool { return delivered() >= 10 })
	victim := b.leader(10 * time.Second)
	w.kill(victim)
	t.Logf("b's new leader: %s", b.leader(20*time.Second))

	// Fault 2: b->a cut (a's frames arrive, b's acks do not).
	eventually(t, "20 delivered after the kill", 40*time.Second, func() bool { return delivered() >= 20 })
	var liveB []string
	for _, n := range b.live() {
		liveB = append(liveB, w.nodeIP(n))
	}
	for _, ip := range liveB {
		cut.drop(ip, aIP)
	}
	ctx := context.Background()
	if err := probe.ExpectBlocked(ctx, pairs(liveB, []string{aIP})); err != nil {
		t.Fatal(err)
	}
	for _, ip := range liveB {
		if _, udp := probe.Reach(ctx, aIP, ip); !udp {
			t.Fatalf("one-way cut b->a also blocks datagrams a->%s", ip)
		}
	}
	time.Sleep(cut1)
	ackedAtCut, appliedAtCut := delivered(), receivedInB()
	cut.heal()
	if err := probe.ExpectOpen(ctx, pairs([]string{aIP}, liveB), 3); err != nil {
		t.Fatal(err)
	}
	t.Logf("end of the b->a cut: a has %d acks, b applied %d", ackedAtCut, appliedAtCut)
	if appliedAtCut <= ackedAtCut {
		t.Fatalf("the b->a cut lost no ack (b applied %d, a acked %d): the resend path was not exercised", appliedAtCut, ackedAtCut)
	}

	// Fault 3: cut both ways; nothing is acknowledged meanwhile.
	eventually(t, "delivery resumes after the b->a cut", 30*time.Second, func() bool { return delivered() > ackedAtCut })
	if d := delivered(); d < N {
		for _, ip := range liveB {
			cut.drop(ip, aIP)
		}
		cut.drop(aIP, liveB...)
		if err := probe.ExpectBlocked(ctx, append(pairs(liveB, []string{aIP}), pairs([]string{aIP}, liveB)...)); err != nil {
			t.Fatal(err)
		}
		// Acks already past the firewall may still be landing (a applies
		// each as its own ledger entry): wait until a's count holds still
		// for a second, bounded, before measuring the cut.
		before := delivered()
		for still, deadline := time.Now(), time.Now().Add(10*time.Second); time.Since(still) < time.Second && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			if d := delivered(); d != before {
				before, still = d, time.Now()
			}
		}
		time.Sleep(cut2)
		if after := delivered(); after != before {
			t.Fatalf("a recorded %d deliveries while the link was cut both ways", after-before)
		}
		cut.heal()
		if err := probe.ExpectOpen(ctx, append(pairs(liveB, []string{aIP}), pairs([]string{aIP}, liveB)...), 3); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Fatalf("all %d calls were delivered before the full cut (delivered %d): the schedule did not cut mid-stream", N, d)
	}

	callers.Wait()
	for i, err := range callErrs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	eventually(t, "every outbox event delivered", 45*time.Second, func() bool {
		s := a.busStats("a1")
		return s.Pending == 0 && s.Delivered == N
	})

	// a: every event delivered with b's PERMIT; remember b's ledger seq.
	wroteAt := map[string]uint64{}
	subjects := map[string]int{}
	for i, id := range ids {
		e, ok := a.busEvent("a1", id)
		if !ok || e.Status != fsm.BusStateDelivered || e.Remote == nil || e.Remote.Decision != fsm.DecisionPermit.JSON() {
			t.Fatalf("a's event %s (orders/%d): %+v remote=%+v", id, i, e, e.Remote)
		}
		if dest, _, _ := strings.Cut(id, "/"); dest != "b" || e.Resource != "orders/"+strconv.Itoa(i) {
			t.Fatalf("a's event %s: dest %s resource %s", id, dest, e.Resource)
		}
		wroteAt[e.Resource] = e.Remote.Seq
		subjects[e.Resource] = i
	}

	// b: every surviving node applied each event exactly once.
	b.requireConverged(t, 20*time.Second)
	for _, name := range b.live() {
		got, all := busReceives(t, w.node(name), "a/agent")
		if len(got) != N || all != N {
			t.Fatalf("%s: %d distinct permitted bus.receive from a/agent, %d bus.receive in all; want %d and %d", name, len(got), all, N, N)
		}
		for s, c := range got {
			if _, ok := subjects[s]; !ok || c != 1 {
				t.Fatalf("%s: bus.receive %s appears %d times (known event: %v)", name, s, c, ok)
			}
		}
	}
	for i := 0; i < N; i++ {
		key := "orders/" + strconv.Itoa(i)
		res := b.kvGet(t, key)
		if !res.Found || string(res.Value) != orderValue(seed, i) {
			t.Fatalf("b's %s = %q (found %v), want %q", key, res.Value, res.Found, orderValue(seed, i))
		}
		if res.Version != wroteAt[key] {
			t.Fatalf("b's %s was last written at seq %d, but the delivered event wrote it at seq %d", key, res.Version, wroteAt[key])
		}
	}
	b.requireConverged(t, 20*time.Second)
}

func orderValue(seed int64, i int) string { return fmt.Sprintf("order-%d-%d", seed%1000, i) }

// A node added to a running three-node domain is put in the domain's
// passport, gets the domain's bus link keys from its leader, verifies and
// answers a's frames as a follower, and as the leader ships the domain's
// own outbox and renews its passport.
func TestNodeAddedToRunningDomainGetsSecretsAndServes(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (replay with DOMINUS_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	cut := newCutter(t, "DOMINUS-FED81")
	w := newFedWorld(t, 81)
	sov := w.startSovereign("s1", 1)
	a := w.startDomain(sov, "a", 1, 2, nil)
	b := w.startDomain(sov, "b", 3, 3, nil)
	eventually(t, "a and b know each other", 15*time.Second, func() bool {
		return a.knowsPeer("a1", "b", 1) && b.knowsPeer(b.leader(5*time.Second), "a", 1)
	})
	grantForA, agentA := randomToken(t, "dmc_"), randomToken(t, "dmc_")
	b.grant(t, grantForA, "a/agent", []string{"kv.put"}, []string{"orders/*"})
	a.grant(t, agentA, "agent", []string{"kv.*"}, []string{"*"})
	grantForB, agentB := randomToken(t, "dmc_"), randomToken(t, "dmc_")
	a.grant(t, grantForB, "b/agent", []string{"kv.put"}, []string{"inbox/*"})
	b.grant(t, agentB, "agent", []string{"kv.*"}, []string{"*"})

	before, ok := b.passport(b.leader(5 * time.Second))
	if !ok || len(before.NodeKeys) != 3 {
		t.Fatalf("b's first passport: %+v (%v)", before, ok)
	}

	// The fourth node joins the running cluster (no bootstrap). Host 10:
	// "127.0.81.10:port" sorts before the others' bus addresses, and a
	// sender tries a kernel's addresses in sorted order.
	cfg := w.config("b4", 10)
	cfg.Role, cfg.Domain = fsm.RoleDomain, "b"
	cfg.SovereignURLs = w.cfg("b1").SovereignURLs
	cfg.BootstrapExpect = 0
	cfg.Join = append([]string(nil), b.binds...)
	cfg.JoinSecret = b.joinSecret
	b4 := w.start(cfg)
	b.nodes = append(b.nodes, "b4")
	b.binds = append(b.binds, cfg.BindAddr)
	eventually(t, "b4 in b's Raft configuration", 20*time.Second, func() bool {
		f := w.node(b.leader(5 * time.Second)).Raft().GetConfiguration()
		if f.Error() != nil {
			return false
		}
		for _, s := range f.Configuration().Servers {
			if s.ID == "b4" {
				return true
			}
		}
		return false
	})
	eventually(t, "b4 holds b's ledger", 20*time.Second, func() bool { _, err := b4.Authenticate(b.root); return err == nil })

	// The passport is re-issued with b4's key, on b and on the sovereign.
	var after api.Passport
	eventually(t, "b's passport carries b4's key", 20*time.Second, func() bool {
		p, ok := b.passport(b.leader(5 * time.Second))
		after = p
		return ok && p.Serial > before.Serial && len(p.NodeKeys) == 4 && containsHex(p.NodeKeys, b4.NodePublicKey())
	})
	t.Logf("b's passport %s (serial %d) -> %s (serial %d)", before.ID, before.Serial, after.ID, after.Serial)
	var atSov api.Passport
	if code, body := w.do("s1", http.MethodGet, "/v1/passports/"+after.ID, sov.root, nil, &atSov); code != http.StatusOK || !containsHex(atSov.NodeKeys, b4.NodePublicKey()) {
		t.Fatalf("the sovereign's record of %s: %d %s", after.ID, code, body)
	}
	eventually(t, "a hears of b's new passport", 15*time.Second, func() bool { return a.knowsPeer("a1", "b", after.Serial) })

	// b4, a follower, is a's only way into b: it must hold the a->b key to
	// verify a's frame and the b->a key for a to accept its ack.
	if b4.Raft().State() == raft.Leader {
		if err := b4.TransferLeadership(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "b4 hands leadership over", 15*time.Second, func() bool { return b4.Raft().State() != raft.Leader })
	}
	aIP, b4IP := w.nodeIP("a1"), w.nodeIP("b4")
	var others []string
	for _, n := range []string{"b1", "b2", "b3"} {
		ip := w.nodeIP(n)
		others = append(others, ip)
		cut.drop(aIP, ip)
		cut.drop(ip, aIP)
	}
	probe := prober(t, []string{aIP, b4IP, others[0], others[1], others[2]})
	ctx := context.Background()
	if err := probe.ExpectBlocked(ctx, append(pairs([]string{aIP}, others), pairs(others, []string{aIP})...)); err != nil {
		t.Fatal(err)
	}
	if err := probe.ExpectOpen(ctx, []netfault.Pair{{Src: aIP, Dst: b4IP}, {Src: b4IP, Dst: aIP}}, 3); err != nil {
		t.Fatal(err)
	}
	s0 := b.busStats("b4")
	val := fmt.Sprintf("via-b4-%d", rng.Int63())
	res := permit(t, "a's call to b")(a.remoteCall("a1", "via-b4", agentA, "kv.put", "b:orders/via-b4", val, grantForA))
	var e api.BusEvent
	eventually(t, "a's call delivered through b4", 20*time.Second, func() bool {
		e, _ = a.busEvent("a1", res.ID)
		return e.Status != "" && e.Status != fsm.BusStatePending
	})
	if e.Status != fsm.BusStateDelivered || e.Remote == nil || e.Remote.Decision != fsm.DecisionPermit.JSON() {
		t.Fatalf("a's call through b4: %+v remote=%+v", e, e.Remote)
	}
	s1 := b.busStats("b4")
	if s1.Accepted <= s0.Accepted {
		t.Fatalf("b4 handled no frame (%d before, %d after) although a reaches no other b node", s0.Accepted, s1.Accepted)
	}
	for reason, n := range s1.Rejected {
		if n != s0.Rejected[reason] {
			t.Fatalf("b4 rejected frames meanwhile: %s %d -> %d", reason, s0.Rejected[reason], n)
		}
	}
	if got := b.kvGet(t, "orders/via-b4"); !got.Found || string(got.Value) != val {
		t.Fatalf("b's orders/via-b4 = %q (found %v)", got.Value, got.Found)
	}
	cut.heal()

	// b4 leads: it ships b's outbox to a (only the leader ships).
	if err := b4.TransferLeadership(ctx, "b4"); err != nil {
		t.Fatalf("transfer leadership to b4: %v", err)
	}
	eventually(t, "b4 leads b", 15*time.Second, func() bool { return b4.Raft().State() == raft.Leader })
	term := b4.Raft().CurrentTerm()
	val = fmt.Sprintf("from-b-%d", rng.Int63())
	res = permit(t, "b's call to a")(b.remoteCall("b4", "to-a", agentB, "kv.put", "a:inbox/1", val, grantForB))
	eventually(t, "b's call delivered by b4", 20*time.Second, func() bool {
		e, _ = b.busEvent("b4", res.ID)
		return e.Status != "" && e.Status != fsm.BusStatePending
	})
	if e.Status != fsm.BusStateDelivered || e.Remote == nil || e.Remote.Decision != fsm.DecisionPermit.JSON() {
		t.Fatalf("b's call to a: %+v remote=%+v", e, e.Remote)
	}
	if b4.Raft().State() != raft.Leader || b4.Raft().CurrentTerm() != term {
		t.Fatalf("b4 lost leadership while b's event was shipped (state %s, term %d -> %d)", b4.Raft().State(), term, b4.Raft().CurrentTerm())
	}
	if got := a.kvGet(t, "inbox/1"); !got.Found || string(got.Value) != val {
		t.Fatalf("a's inbox/1 = %q (found %v), want %q", got.Value, got.Found, val)
	}

	// b4 renews b's passport with its own key: a member leaves the
	// configuration's reachable set and the passport follows.
	b1Key := w.node("b1").NodePublicKey()
	w.kill("b1")
	eventually(t, "b4 renews the passport without b1", 20*time.Second, func() bool {
		p, ok := b.passport("b4")
		return ok && p.Serial > after.Serial && len(p.NodeKeys) == 3 && containsHex(p.NodeKeys, b4.NodePublicKey()) && !containsHex(p.NodeKeys, b1Key)
	})
	if b4.Raft().State() != raft.Leader {
		t.Fatalf("b4 is no longer b's leader")
	}
	b.requireConverged(t, 20*time.Second)
}

// A domain is reachable on the bus as long as any of its members is: the
// sender must not spend its whole attempt on members it cannot reach. The
// same two of b's three members are made unreachable from a twice, first
// the two whose bus addresses sort last, then the two that sort first;
// either way b's third member is reachable and b's quorum is intact.
func TestFederationBusReachesADomainThroughAnyReachableMember(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (replay with DOMINUS_SEED=%d)", seed, seed)
	cut := newCutter(t, "DOMINUS-FED82")
	w := newFedWorld(t, 82)
	sov := w.startSovereign("s1", 1)
	a := w.startDomain(sov, "a", 1, 2, nil)
	b := w.startDomain(sov, "b", 3, 3, nil)
	eventually(t, "a and b know each other", 15*time.Second, func() bool {
		return a.knowsPeer("a1", "b", 1) && b.knowsPeer(b.leader(5*time.Second), "a", 1)
	})
	grantForA, agentA := randomToken(t, "dmc_"), randomToken(t, "dmc_")
	b.grant(t, grantForA, "a/agent", []string{"kv.put"}, []string{"orders/*"})
	a.grant(t, agentA, "agent", []string{"kv.*"}, []string{"*"})
	aIP := w.nodeIP("a1")
	ips := map[string]string{}
	for _, n := range b.nodes {
		ips[n] = w.nodeIP(n)
	}
	probe := prober(t, []string{aIP, ips["b1"], ips["b2"], ips["b3"]})
	ctx := context.Background()
	call := func(name string, unreachable []string, reachable string) {
		t.Helper()
		for _, ip := range unreachable {
			cut.drop(aIP, ip)
			cut.drop(ip, aIP)
		}
		if err := probe.ExpectBlocked(ctx, append(pairs([]string{aIP}, unreachable), pairs(unreachable, []string{aIP})...)); err != nil {
			t.Fatal(err)
		}
		if err := probe.ExpectOpen(ctx, []netfault.Pair{{Src: aIP, Dst: reachable}, {Src: reachable, Dst: aIP}}, 3); err != nil {
			t.Fatal(err)
		}
		res := permit(t, "a's call "+name)(a.remoteCall("a1", name, agentA, "kv.put", "b:orders/"+name, name, grantForA))
		start := time.Now()
		var e api.BusEvent
		deadline := start.Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if e, _ = a.busEvent("a1", res.ID); e.Status != "" && e.Status != fsm.BusStatePending {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cut.heal()
		if e.Status != fsm.BusStateDelivered {
			t.Fatalf("%s: a's event %s is %q after %s although b's member at %s is reachable from a and b has a quorum "+
				"(a tries b's bus addresses in sorted order, 3s each, within 5s per attempt: kernel/federation.go:781-782, :839)",
				name, res.ID, e.Status, time.Since(start).Round(time.Millisecond), reachable)
		}
		t.Logf("%s: delivered in %s", name, time.Since(start).Round(time.Millisecond))
	}
	// Warm the connections, then cut.
	call("warm", nil, ips["b1"])
	call("last-two-cut", []string{ips["b2"], ips["b3"]}, ips["b1"])
	call("first-two-cut", []string{ips["b1"], ips["b2"]}, ips["b3"])
}

// A domain leader whose node key is not yet in the domain's passport (a
// member that joined after the last renewal and then took the lead) must
// still get the passport renewed with its key; otherwise the domain can
// never renew while that node leads, and loses its standing when the
// passport expires.
func TestFederationNewMemberThatLeadsBeforeARenewalRenews(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (replay with DOMINUS_SEED=%d)", seed, seed)
	w := newFedWorld(t, 83)
	sov := w.startSovereign("s1", 1)
	// b's first members renew rarely (the production default is 5s), so b4
	// can take the lead before one of them renews with b4's key.
	b := w.startDomain(sov, "b", 3, 3, func(c *kernel.Config) { c.RenewEvery = 25 * time.Second })
	before, ok := b.passport(b.leader(5 * time.Second))
	if !ok || len(before.NodeKeys) != 3 {
		t.Fatalf("b's first passport: %+v (%v)", before, ok)
	}
	// The leader renews once right after init, then every 25s: let that
	// first renewal pass before b4 joins.
	time.Sleep(2 * time.Second)
	cfg := w.config("b4", 10)
	cfg.Role, cfg.Domain = fsm.RoleDomain, "b"
	cfg.SovereignURLs = w.cfg("b1").SovereignURLs
	cfg.BootstrapExpect = 0
	cfg.Join = append([]string(nil), b.binds...)
	cfg.JoinSecret = b.joinSecret
	b4 := w.start(cfg)
	b.nodes = append(b.nodes, "b4")
	eventually(t, "b4 holds b's ledger", 20*time.Second, func() bool { _, err := b4.Authenticate(b.root); return err == nil })
	if p, _ := b.passport("b4"); containsHex(p.NodeKeys, b4.NodePublicKey()) {
		t.Fatalf("b's passport took b4's key before b4 led (serial %d): this run does not reach the case", p.Serial)
	}
	if err := b4.TransferLeadership(context.Background(), "b4"); err != nil {
		t.Fatalf("transfer leadership to b4: %v", err)
	}
	eventually(t, "b4 leads b", 15*time.Second, func() bool { return b4.Raft().State() == raft.Leader })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p, ok := b.passport("b4"); ok && containsHex(p.NodeKeys, b4.NodePublicKey()) {
			t.Logf("b's passport %s carries b4's key", p.ID)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p, _ := b.passport("b4")
	t.Fatalf("b4 has led b for 10s (renewing every %s) and b's passport %s (serial %d, expires %s) still lacks its key: "+
		"the leader signs renewals with its own node key (kernel/federation.go:725) and the sovereign refuses a key outside the "+
		"current passport (kernel/fedhttp.go:269), so b cannot renew while b4 leads", cfg.RenewEvery, p.ID, p.Serial, p.Expires.Format(time.RFC3339))
}
