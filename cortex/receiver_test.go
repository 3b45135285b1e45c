package cortex

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"
)

const testMaxAge = time.Minute
const testMaxFuture = 10 * time.Second

// newTestReceiver returns a receiver that knows acme/acme-1 under pp-acme.
func newTestReceiver(maxTracked int) (*receiver, *testClock) {
	reg := newRegistry()
	reg.add("acme", "acme-1", "pp-acme", nodeKey("acme/acme-1").Public().(ed25519.PublicKey))
	reg.add("acme", "acme-2", "pp-acme", nodeKey("acme/acme-2").Public().(ed25519.PublicKey))
	clock := newTestClock()
	return newReceiver(receiverConfig{
		verifier:      reg.verify,
		clock:         clock.Now,
		maxAge:        testMaxAge,
		maxFutureSkew: testMaxFuture,
		maxTracked:    maxTracked,
	}), clock
}

func mustSeal(t *testing.T, s Signal, key ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := Seal(s, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signUnchecked signs s without Validate, to build out-of-range messages
// a faulty or hostile node could send.
func signUnchecked(t *testing.T, s Signal, key ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := Encode(s, ed25519.Sign(key, SigningBytes(s)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReceiverDrops feeds one bad message per reason to a receiver that
// has accepted one good signal, and checks that exactly that reason is
// counted once and Latest is unchanged.
func TestReceiverDrops(t *testing.T) {
	key := nodeKey("acme/acme-1")
	good := sampleSignal()
	goodWire := mustSeal(t, good, key)
	with := func(f func(*Signal)) Signal { s := good; f(&s); return s }

	older := with(func(s *Signal) { s.Seq = good.Seq - 1 })
	sameSeqOtherValue := with(func(s *Signal) { s.Value = good.Value + 1 })
	forgedSig := mustSeal(t, with(func(s *Signal) { s.Seq = good.Seq + 1 }), nodeKey("mallory"))
	unsigned, _ := Encode(with(func(s *Signal) { s.Seq = good.Seq + 1 }), make([]byte, SignatureBytes))
	tampered := bytes.Clone(mustSeal(t, with(func(s *Signal) { s.Seq = good.Seq + 1 }), key))
	tampered[len(tampered)-SignatureBytes-len("pp-acme")-1-8-1]++ // last byte of Window

	cases := []struct {
		name string
		msg  []byte
		want DropReason
	}{
		{"oversized", make([]byte, MaxMessageBytes+1), DropOversized},
		{"garbage", []byte("not a signal"), DropMalformed},
		{"truncated", goodWire[:len(goodWire)-1], DropMalformed},
		{"out of range", signUnchecked(t, with(func(s *Signal) { s.Seq++; s.Value = 10001 }), key), DropOutOfRange},
		{"negative deny rate", signUnchecked(t, with(func(s *Signal) { s.Seq++; s.Value = -1 }), key), DropOutOfRange},
		{"exact re-delivery", goodWire, DropDuplicate},
		{"unknown node", mustSeal(t, with(func(s *Signal) { s.Node = "ghost"; s.Seq++ }), nodeKey("acme/ghost")), DropUnknownKey},
		{"unknown passport", mustSeal(t, with(func(s *Signal) { s.PassportID = "pp-other"; s.Seq++ }), key), DropUnknownKey},
		{"other domain", mustSeal(t, with(func(s *Signal) { s.Domain = "globex"; s.Seq++ }), key), DropUnknownKey},
		{"forged signature", forgedSig, DropBadSignature},
		{"unsigned", unsigned, DropBadSignature},
		{"tampered window", tampered, DropBadSignature},
		{"another node's key", mustSeal(t, with(func(s *Signal) { s.Seq++ }), nodeKey("acme/acme-2")), DropBadSignature},
		{"stale", mustSeal(t, with(func(s *Signal) { s.Seq++; s.Window = baseTime - int64(testMaxAge) - 1 }), key), DropStale},
		{"far future", mustSeal(t, with(func(s *Signal) { s.Seq++; s.Window = baseTime + int64(testMaxFuture) + 1 }), key), DropFuture},
		{"older seq", mustSeal(t, older, key), DropReplay},
		{"same seq, other bytes", mustSeal(t, sameSeqOtherValue, key), DropReplay},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := newTestReceiver(16)
			if _, err := r.receive(goodWire); err != nil {
				t.Fatalf("good signal: %v", err)
			}
			_, err := r.receive(c.msg)
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, c.want)
			}
			for reason, n := range r.droppedCounts() {
				want := uint64(0)
				if reason == c.want {
					want = 1
				}
				if n != want {
					t.Errorf("dropped[%s] = %d, want %d", reason, n, want)
				}
			}
			if got := r.snapshot(); len(got) != 1 || got[0] != good {
				t.Errorf("Latest = %+v, want only %+v", got, good)
			}
			if n := r.accepted.Load(); n != 1 {
				t.Errorf("accepted = %d, want 1", n)
			}
		})
	}
}

// TestReceiverWindowEdges checks that the age and skew limits are
// inclusive.
func TestReceiverWindowEdges(t *testing.T) {
	key := nodeKey("acme/acme-1")
	r, _ := newTestReceiver(16)
	s := sampleSignal()
	s.Window = baseTime - int64(testMaxAge)
	if _, err := r.receive(mustSeal(t, s, key)); err != nil {
		t.Fatalf("window exactly MaxAge old: %v", err)
	}
	s.Kind, s.Seq, s.Window = AnomalyIndicator, s.Seq+1, baseTime+int64(testMaxFuture)
	if _, err := r.receive(mustSeal(t, s, key)); err != nil {
		t.Fatalf("window exactly MaxFutureSkew ahead: %v", err)
	}
}

// TestReceiverReorderedKinds checks that signals of different kinds from
// one node are all accepted in any order, while within a kind only a
// higher Seq replaces the latest.
func TestReceiverReorderedKinds(t *testing.T) {
	key := nodeKey("acme/acme-1")
	r, _ := newTestReceiver(16)
	a := sampleSignal()
	a.Kind, a.Seq = TrustVelocity, 10
	b := sampleSignal()
	b.Kind, b.Seq = DenyRate, 11
	for _, s := range []Signal{b, a} { // newer first, as one gossip packet may carry them
		if _, err := r.receive(mustSeal(t, s, key)); err != nil {
			t.Fatalf("%s seq %d: %v", s.Kind, s.Seq, err)
		}
	}
	if got := r.snapshot(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("Latest = %+v, want [%+v %+v]", got, a, b)
	}
	newer := a
	newer.Seq, newer.Value = 12, -5
	if _, err := r.receive(mustSeal(t, newer, key)); err != nil {
		t.Fatalf("newer trust velocity: %v", err)
	}
	if _, err := r.receive(mustSeal(t, a, key)); ReasonOf(err) != DropReplay {
		t.Fatalf("old trust velocity after newer: %v, want replay", err)
	}
	if got := r.snapshot(); got[0] != newer {
		t.Fatalf("Latest[0] = %+v, want %+v", got[0], newer)
	}
}

func TestReceiverCapacity(t *testing.T) {
	key := nodeKey("acme/acme-1")
	r, clock := newTestReceiver(2)
	for i, k := range []Kind{TrustVelocity, AnomalyIndicator} {
		s := sampleSignal()
		s.Kind, s.Value, s.Seq, s.Window = k, 0, uint64(i+1), baseTime-int64(10*time.Second)*int64(i)
		if _, err := r.receive(mustSeal(t, s, key)); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	s := sampleSignal()
	s.Kind, s.Seq = DenyRate, 3
	if _, err := r.receive(mustSeal(t, s, key)); ReasonOf(err) != DropCapacity {
		t.Fatalf("third slot: %v, want capacity", err)
	}
	// A tracked slot still takes newer signals.
	s.Kind, s.Value, s.Seq = TrustVelocity, 7, 4
	if _, err := r.receive(mustSeal(t, s, key)); err != nil {
		t.Fatalf("newer signal for a tracked slot: %v", err)
	}
	if n := r.tracked(); n != 2 {
		t.Fatalf("tracked = %d, want 2", n)
	}
	// Once a slot's window is stale, a new slot takes its place: the one
	// with the oldest window (AnomalyIndicator, whose window is earlier).
	clock.now.Add(int64(testMaxAge) + int64(time.Second))
	s.Kind, s.Value, s.Seq, s.Window = DenyRate, 1, 5, clock.Now()
	if _, err := r.receive(mustSeal(t, s, key)); err != nil {
		t.Fatalf("new slot with a stale one held: %v", err)
	}
	var kinds []Kind
	for _, sig := range r.snapshot() {
		kinds = append(kinds, sig.Kind)
	}
	if !slices.Equal(kinds, []Kind{TrustVelocity, DenyRate}) {
		t.Fatalf("slots after eviction: %v, want [trust_velocity deny_rate]", kinds)
	}
}

// TestLatestSorted checks Latest's order whatever the arrival order.
func TestLatestSorted(t *testing.T) {
	r, _ := newTestReceiver(16)
	var want []Signal
	for _, node := range []string{"acme-1", "acme-2"} {
		for _, k := range Kinds() {
			s := sampleSignal()
			s.Node, s.Kind, s.Value, s.Seq = node, k, 1, uint64(k)
			want = append(want, s)
		}
	}
	for i := len(want) - 1; i >= 0; i-- {
		if _, err := r.receive(mustSeal(t, want[i], nodeKey("acme/"+want[i].Node))); err != nil {
			t.Fatal(err)
		}
	}
	got := r.snapshot()
	if len(got) != len(want) {
		t.Fatalf("Latest has %d signals, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Latest[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
