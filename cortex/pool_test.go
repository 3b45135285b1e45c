package cortex

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestSignalReachesAllMembers starts five members, has each publish two
// kinds, and waits until every member holds all ten signals.
func TestSignalReachesAllMembers(t *testing.T) {
	c := newCluster(t)
	key := gossipKey("k1")
	for i := range 5 {
		c.add(c.config(fmt.Sprintf("127.0.70.%d", 10+i), "acme", fmt.Sprintf("acme-%d", i), [][]byte{key}))
	}
	c.converge()
	var want []Signal
	for i, p := range c.pools {
		for _, k := range []Kind{OperationalTempo, DenyRate} {
			s, err := p.Publish(k, int64(100*i+int(k)), baseTime)
			if err != nil {
				t.Fatalf("member %d publish %s: %v", i, k, err)
			}
			want = append(want, s)
		}
	}
	slices.SortFunc(want, compareSignals)
	waitFor(t, "every member holds every signal", func() bool {
		for _, p := range c.pools {
			if !slices.Equal(p.Latest(), want) {
				return false
			}
		}
		return true
	})
	for i, p := range c.pools {
		st := p.Stats()
		if st.Published != 2 || st.Accepted != uint64(len(want)) {
			t.Errorf("member %d: published %d accepted %d, want 2 and %d", i, st.Published, st.Accepted, len(want))
		}
		for _, r := range DropReasons() {
			if r != DropDuplicate && st.Dropped[r] != 0 {
				t.Errorf("member %d dropped %d honest messages as %s", i, st.Dropped[r], r)
			}
		}
	}
}

// TestBadSignalsDroppedOverGossip puts one bad message per reason on the
// wire from a member and checks that both other members drop and count
// each, and hold only the honest signals.
func TestBadSignalsDroppedOverGossip(t *testing.T) {
	c := newCluster(t)
	key := gossipKey("k1")
	for i := range 3 {
		c.add(c.config(fmt.Sprintf("127.0.70.%d", 20+i), "acme", fmt.Sprintf("acme-%d", i), [][]byte{key}))
	}
	c.converge()
	src, receivers := c.pools[0], c.pools[1:]
	srcKey := nodeKey("acme/acme-0")

	// Two honest signals of one kind; the first is replayed below.
	first, err := src.Publish(DenyRate, 10, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	firstWire, _ := Seal(first, srcKey)
	waitFor(t, "the first honest signal arrives", func() bool {
		for _, p := range receivers {
			if !has(p, first) {
				return false
			}
		}
		return true
	})
	second, err := src.Publish(DenyRate, 20, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second honest signal arrives", func() bool {
		for _, p := range receivers {
			if !has(p, second) {
				return false
			}
		}
		return true
	})

	base := Signal{Domain: "acme", Node: "acme-0", Kind: ResourcePressure, Value: 5000, Window: baseTime, Seq: second.Seq + 100, PassportID: "pp-acme"}
	with := func(f func(*Signal)) Signal { s := base; f(&s); return s }
	unsigned, _ := Encode(base, make([]byte, SignatureBytes))
	bad := []struct {
		msg  []byte
		want DropReason
	}{
		{mustSeal(t, base, nodeKey("mallory")), DropBadSignature},                                        // forged: right names, wrong key
		{unsigned, DropBadSignature},                                                                     // unsigned
		{mustSeal(t, with(func(s *Signal) { s.Node = "ghost" }), nodeKey("acme/ghost")), DropUnknownKey}, // no passport binds its key
		{mustSeal(t, with(func(s *Signal) { s.Window = baseTime - int64(2*DefaultConfig().MaxAge) }), srcKey), DropStale},
		{firstWire, DropReplay},
		{append(mustSeal(t, base, srcKey), make([]byte, MaxMessageBytes)...)[:MaxMessageBytes+88], DropOversized},
		{signUnchecked(t, with(func(s *Signal) { s.Value = 10001 }), srcKey), DropOutOfRange},
		{[]byte("free-form text is not a signal"), DropMalformed},
	}
	for _, b := range bad {
		injectRaw(src, b.msg)
	}
	for i, p := range receivers {
		waitFor(t, fmt.Sprintf("receiver %d counts every bad message", i), func() bool {
			for _, b := range bad {
				if p.Dropped(b.want) == 0 {
					return false
				}
			}
			return true
		})
		want := []Signal{second}
		if got := p.Latest(); !slices.Equal(got, want) {
			t.Errorf("receiver %d Latest = %+v, want %+v", i, got, want)
		}
		if st := p.Stats(); st.Accepted != 2 {
			t.Errorf("receiver %d accepted %d signals, want 2", i, st.Accepted)
		}
	}
	// memberlist never delivers a member's own broadcasts to it. (Replay
	// is not checked here: relays of the first signal may reach the source
	// after it published the second, and are rightly counted as replays.)
	st := src.Stats()
	for _, r := range []DropReason{DropBadSignature, DropUnknownKey, DropStale, DropOversized, DropOutOfRange, DropMalformed} {
		if st.Dropped[r] != 0 {
			t.Errorf("the injecting member received its own bad messages: %v", st.Dropped)
		}
	}
}

// TestWrongKeyMemberExcluded checks that a node whose only gossip key is
// not the pool's reaches a member's socket but cannot join, is never
// listed, and is never heard.
func TestWrongKeyMemberExcluded(t *testing.T) {
	c := newCluster(t)
	key := gossipKey("k1")
	var obs observed
	cfg := c.config("127.0.70.30", "acme", "acme-0", [][]byte{key})
	cfg.observe = obs.hook
	a := c.add(cfg)
	b := c.add(c.config("127.0.70.31", "acme", "acme-1", [][]byte{key}))
	c.converge()

	wrongIP := netip.MustParseAddr("127.0.70.32")
	w := c.start(c.config(wrongIP.String(), "acme", "acme-intruder", [][]byte{gossipKey("wrong")}))
	n, err := w.Join([]string{a.Addr()})
	if err == nil || n != 0 {
		t.Fatalf("join with the wrong key: %d members answered, err %v; want 0 and an error", n, err)
	}
	if !obs.saw("tcp", wrongIP) {
		t.Fatal("the wrong-key node never reached the member; the test shows nothing")
	}
	// The intruder sends a signal its passport would vouch for straight to
	// a member's socket; the member cannot decrypt it. A signal sent the
	// same way by a member holding the key is the positive control and the
	// barrier: the member's packets are handled in arrival order.
	intruderSignal, err := w.Publish(DenyRate, 1, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	intruderWire, _ := Seal(intruderSignal, nodeKey("acme/acme-intruder"))
	if err := w.ml.Load().SendToAddress(memberlist.Address{Addr: a.Addr()}, intruderWire); err != nil {
		t.Fatalf("intruder send: %v", err)
	}
	waitFor(t, "the intruder's packet reaches the member's socket", func() bool { return obs.saw("udp", wrongIP) })
	control := Signal{Domain: "acme", Node: "acme-1", Kind: DenyRate, Value: 2, Window: baseTime, Seq: 1, PassportID: "pp-acme"}
	if err := b.ml.Load().SendToAddress(memberlist.Address{Addr: a.Addr()}, mustSeal(t, control, nodeKey("acme/acme-1"))); err != nil {
		t.Fatalf("member send: %v", err)
	}
	waitFor(t, "the member's direct signal arrives", func() bool { return has(a, control) })
	if has(a, intruderSignal) {
		t.Error("the member accepted the intruder's signal")
	}
	for _, p := range []*Pool{a, b} {
		if p.NumMembers() != 2 {
			t.Errorf("%s lists %d members, want 2: %+v", p.Addr(), p.NumMembers(), p.Members())
		}
		for _, m := range p.Members() {
			if m.Node == "acme-intruder" {
				t.Errorf("%s lists the intruder", p.Addr())
			}
		}
		for _, sig := range p.Latest() {
			if sig.Node == "acme-intruder" {
				t.Errorf("%s holds the intruder's signal", p.Addr())
			}
		}
	}
	if w.NumMembers() != 1 {
		t.Errorf("the intruder lists %d members, want 1", w.NumMembers())
	}
}

// TestKeyRotation rotates every member from k1 to k2 (install, use,
// remove) and checks that signals flow after each round, that the old key
// no longer admits anyone, and the new one does.
func TestKeyRotation(t *testing.T) {
	c := newCluster(t)
	k1, k2 := gossipKey("k1"), gossipKey("k2")
	for i := range 3 {
		c.add(c.config(fmt.Sprintf("127.0.70.%d", 40+i), "acme", fmt.Sprintf("acme-%d", i), [][]byte{k1}))
	}
	c.converge()
	value := int64(0)
	exchange := func(round string) {
		t.Helper()
		var sent []Signal
		for i, p := range c.pools {
			value++
			s, err := p.Publish(OperationalTempo, value, baseTime)
			if err != nil {
				t.Fatalf("%s: member %d publish: %v", round, i, err)
			}
			sent = append(sent, s)
		}
		waitFor(t, round+": every member holds every signal", func() bool {
			for _, p := range c.pools {
				for _, s := range sent {
					if !has(p, s) {
						return false
					}
				}
			}
			return true
		})
	}
	exchange("before rotation")
	rounds := []struct {
		name string
		op   func(*Pool) error
		want [][]byte
	}{
		{"install k2", func(p *Pool) error { return p.InstallKey(k2) }, [][]byte{k1, k2}},
		{"use k2", func(p *Pool) error { return p.UseKey(k2) }, [][]byte{k2, k1}},
		{"remove k1", func(p *Pool) error { return p.RemoveKey(k1) }, [][]byte{k2}},
	}
	for _, r := range rounds {
		for i, p := range c.pools {
			if err := r.op(p); err != nil {
				t.Fatalf("%s on member %d: %v", r.name, i, err)
			}
			if got := p.Keys(); !slices.EqualFunc(got, r.want, bytes.Equal) {
				t.Fatalf("%s on member %d: keys %x, want %x", r.name, i, got, r.want)
			}
		}
		exchange("after " + r.name)
	}

	late := c.start(c.config("127.0.70.43", "acme", "acme-old", [][]byte{k1}))
	if n, err := late.Join([]string{c.pools[0].Addr()}); err == nil || n != 0 {
		t.Fatalf("join with the removed key: %d answered, err %v; want refusal", n, err)
	}
	c.add(c.config("127.0.70.44", "acme", "acme-new", [][]byte{k2}))
	c.converge()
	exchange("after a member joins with k2")
}

func TestKeyringLimits(t *testing.T) {
	c := newCluster(t)
	k1, k2, k3 := gossipKey("k1"), gossipKey("k2"), gossipKey("k3")
	p := c.start(c.config("127.0.70.50", "acme", "acme-0", [][]byte{k1}))
	if err := p.InstallKey(k2[:16]); err == nil {
		t.Error("installed a 16-byte key; want only 32-byte keys")
	}
	if err := p.InstallKey(k2); err != nil {
		t.Fatal(err)
	}
	if err := p.InstallKey(k2); err != nil {
		t.Errorf("installing an installed key: %v, want nil", err)
	}
	if err := p.InstallKey(k3); err == nil {
		t.Errorf("installed a third key; the ring holds at most %d", MaxKeys)
	}
	if err := p.UseKey(k3); err == nil {
		t.Error("used a key that is not installed")
	}
	if err := p.RemoveKey(k1); err == nil {
		t.Error("removed the primary key")
	}
	if got := p.Keys(); !slices.EqualFunc(got, [][]byte{k1, k2}, bytes.Equal) {
		t.Fatalf("keys %x, want k1 k2", got)
	}
	got := p.Keys()
	got[0][0] ^= 0xff
	if !bytes.Equal(p.Keys()[0], k1) {
		t.Error("Keys returned the ring's own slices")
	}
}

// TestGossipLeavesFromOwnIP checks, on a real pool, that every stream and
// packet a member receives comes from the other member's gossip IP, in
// both directions.
func TestGossipLeavesFromOwnIP(t *testing.T) {
	c := newCluster(t)
	key := gossipKey("k1")
	ips := []netip.Addr{netip.MustParseAddr("127.0.70.1"), netip.MustParseAddr("127.0.70.2")}
	obs := make([]*observed, len(ips))
	for i, ip := range ips {
		obs[i] = &observed{}
		cfg := c.config(ip.String(), "acme", fmt.Sprintf("acme-%d", i), [][]byte{key})
		cfg.observe = obs[i].hook
		cfg.PushPullInterval = 100 * time.Millisecond // both sides open streams soon
		c.add(cfg)
	}
	c.converge()
	s, err := c.pools[1].Publish(AnomalyIndicator, 9, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the signal arrives", func() bool { return has(c.pools[0], s) })
	for i := range ips {
		peer := ips[1-i]
		waitFor(t, fmt.Sprintf("member %d receives a stream and a packet", i), func() bool {
			var tcp, udp bool
			for _, o := range obs[i].snapshot() {
				tcp = tcp || o.network == "tcp"
				udp = udp || o.network == "udp"
			}
			return tcp && udp
		})
		for _, o := range obs[i].snapshot() {
			if o.ip != peer {
				t.Errorf("member %d (%s) received %s from %s, want only %s", i, ips[i], o.network, o.ip, peer)
			}
		}
	}
}

func TestPublishRefuses(t *testing.T) {
	c := newCluster(t)
	p := c.start(c.config("127.0.70.51", "acme", "acme-0", [][]byte{gossipKey("k1")}))
	cases := []struct {
		name   string
		kind   Kind
		value  int64
		window int64
	}{
		{"value above bound", DenyRate, 10001, baseTime},
		{"value below bound", TrustVelocity, -1001, baseTime},
		{"unknown kind", Kind(9), 0, baseTime},
		{"stale window", DenyRate, 1, baseTime - int64(DefaultConfig().MaxAge) - 1},
		{"future window", DenyRate, 1, baseTime + int64(DefaultConfig().MaxFutureSkew) + 1},
	}
	for _, tc := range cases {
		if _, err := p.Publish(tc.kind, tc.value, tc.window); !errors.Is(err, ErrPublish) {
			t.Errorf("%s: Publish = %v, want ErrPublish", tc.name, err)
		}
	}
	if got := p.Latest(); len(got) != 0 {
		t.Errorf("refused signals reached Latest: %+v", got)
	}
	// Seq is floored by the clock and strictly increasing.
	s1, err := p.Publish(DenyRate, 1, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := p.Publish(AnomalyIndicator, 1, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Seq != uint64(baseTime) || s2.Seq != s1.Seq+1 {
		t.Errorf("seqs %d, %d; want %d and the next", s1.Seq, s2.Seq, baseTime)
	}
}

func TestConfigValidateNamesValues(t *testing.T) {
	cfg := Config{
		Gossip:     "0.0.0.0:7946",
		Domain:     "acme",
		Node:       "bad node",
		PassportID: "pp",
		Keys:       [][]byte{make([]byte, 16)},
		MaxAge:     time.Millisecond,
	}
	_, err := New(cfg)
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{`gossip address "0.0.0.0:7946"`, `node "bad node"`, "signer has 0 bytes", "verifier is nil", "gossip key 0 has 16 bytes", "max age 1ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	good := newCluster(t).config("127.0.70.52", "acme", "acme-0", [][]byte{gossipKey("a"), gossipKey("a")})
	if _, err := New(good); err == nil || !strings.Contains(err.Error(), "same key") {
		t.Errorf("duplicate keys: %v", err)
	}
	good.Keys = [][]byte{gossipKey("a"), gossipKey("b"), gossipKey("c")}
	if _, err := New(good); err == nil || !strings.Contains(err.Error(), "3 gossip keys") {
		t.Errorf("three keys: %v", err)
	}
}

// TestRestartedNodePublishesAboveItsOldSeq restarts a member with its
// clock stepped back behind the Seq it used before: push/pull brings its
// old signal back, and its next signal still supersedes it everywhere.
func TestRestartedNodePublishesAboveItsOldSeq(t *testing.T) {
	c := newCluster(t)
	key := gossipKey("k1")
	a := c.add(c.config("127.0.70.70", "acme", "acme-0", [][]byte{key}))
	b := c.add(c.config("127.0.70.71", "acme", "acme-1", [][]byte{key}))
	c.converge()
	old, err := a.Publish(DenyRate, 10, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first signal arrives", func() bool { return has(b, old) })
	addr := a.Addr()
	if err := a.Leave(waitTimeout); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	back := newTestClock()
	back.now.Add(-int64(10 * time.Second))
	cfg := c.config("127.0.70.70", "acme", "acme-0", [][]byte{key})
	cfg.Gossip, cfg.Clock = addr, back.Now
	restarted := c.start(cfg)
	if _, err := restarted.Join([]string{b.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted member hears its old signal", func() bool { return has(restarted, old) })
	next, err := restarted.Publish(DenyRate, 20, back.Now())
	if err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	if next.Seq <= old.Seq {
		t.Fatalf("seq after restart %d, not above %d", next.Seq, old.Seq)
	}
	waitFor(t, "the new signal supersedes the old one", func() bool { return has(b, next) })
}
