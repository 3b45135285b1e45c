package cortex

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	key := nodeKey("acme/acme-1")
	var msgs [][]byte
	for _, k := range Kinds() {
		s := sampleSignal()
		s.Kind, s.Value = k, 0
		msgs = append(msgs, mustSeal(t, s, key))
	}
	for _, in := range [][][]byte{nil, msgs[:1], msgs} {
		b := encodeState(in)
		out, err := decodeState(b)
		if err != nil {
			t.Fatalf("decode %d signals: %v", len(in), err)
		}
		if !slices.EqualFunc(out, in, bytes.Equal) {
			t.Fatalf("round trip of %d signals changed them", len(in))
		}
	}
	full := make([][]byte, MaxStateSignals)
	for i := range full {
		full[i] = make([]byte, MaxMessageBytes)
	}
	if b := encodeState(full); len(b) != maxStateBytes {
		t.Fatalf("largest state is %d bytes, want maxStateBytes %d", len(b), maxStateBytes)
	} else if _, err := decodeState(b); err != nil {
		t.Fatalf("largest state: %v", err)
	}
}

func TestStateRejects(t *testing.T) {
	good := encodeState([][]byte{[]byte("abc"), []byte("de")})
	mut := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"bad magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMalformed},
		{"count too high", mut(func(b []byte) []byte { b[4], b[5] = 0xff, 0xff; return b }), ErrMalformed},
		{"count one more", mut(func(b []byte) []byte { b[5]++; return b }), ErrMalformed},
		{"count one less", mut(func(b []byte) []byte { b[5]--; return b }), ErrMalformed},
		{"zero-length signal", encodeState([][]byte{{}}), ErrMalformed},
		{"signal past the end", mut(func(b []byte) []byte { b[7] = 50; return b }), ErrMalformed},
		{"signal over the limit", encodeState([][]byte{make([]byte, MaxMessageBytes+1)}), ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"over the state limit", make([]byte, maxStateBytes+1), ErrOversized},
	}
	for _, c := range cases {
		if _, err := decodeState(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: decodeState = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestFreshestOrderAndLimit checks what a push/pull state carries: fresh
// signals only, newest window first, at most the limit.
func TestFreshestOrderAndLimit(t *testing.T) {
	key := nodeKey("acme/acme-1")
	r, clock := newTestReceiver(16)
	var sent []Signal
	for i, k := range Kinds() {
		s := sampleSignal()
		s.Kind, s.Value, s.Seq, s.Window = k, 0, uint64(i+1), baseTime-int64(i)*int64(10*time.Second)
		if _, err := r.receive(mustSeal(t, s, key)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, s)
	}
	clock.now.Add(int64(35 * time.Second)) // kinds 4 and 5 (windows -30s, -40s) are now older than MaxAge (60s)
	got := r.freshest(clock.Now(), 2)
	if len(got) != 2 {
		t.Fatalf("freshest(limit 2) returned %d", len(got))
	}
	for i, b := range got {
		s, _, _ := Decode(b)
		if s != sent[i] {
			t.Errorf("freshest[%d] = %+v, want %+v", i, s, sent[i])
		}
	}
	if n := len(r.freshest(clock.Now(), 16)); n != 3 {
		t.Errorf("freshest(limit 16) returned %d signals, want the 3 fresh ones", n)
	}
}

// TestMergeStateChecksEverySignal feeds a push/pull state holding good and
// bad signals to a pool and checks that each goes through the receive
// checks, and that a broken state is dropped whole.
func TestMergeStateChecksEverySignal(t *testing.T) {
	c := newCluster(t)
	p := c.start(c.config("127.0.70.60", "acme", "acme-9", [][]byte{gossipKey("k1")}))
	c.config("127.0.70.61", "acme", "acme-1", nil) // register acme-1's key
	key := nodeKey("acme/acme-1")
	good := sampleSignal()
	forged := good
	forged.Kind = AnomalyIndicator
	p.mergeState(encodeState([][]byte{mustSeal(t, good, key), mustSeal(t, forged, nodeKey("mallory")), []byte("junk")}))
	if got := p.Latest(); !slices.Equal(got, []Signal{good}) {
		t.Fatalf("Latest = %+v, want only %+v", got, good)
	}
	if p.Dropped(DropBadSignature) != 1 || p.Dropped(DropMalformed) != 1 {
		t.Fatalf("dropped %v, want one bad_signature and one malformed", p.Stats().Dropped)
	}
	next := good
	next.Seq++
	broken := encodeState([][]byte{mustSeal(t, next, key)})
	p.mergeState(broken[:len(broken)-1])
	if got := p.Latest(); !slices.Equal(got, []Signal{good}) {
		t.Fatalf("a truncated state changed Latest: %+v", got)
	}
	if p.Dropped(DropMalformed) != 2 {
		t.Fatalf("truncated state not counted: %v", p.Stats().Dropped)
	}
}

// TestPushPullRepairsMissedSignals publishes a signal, waits until no
// member has it queued any more (broadcasting is over), then adds a member:
// only push/pull state can bring it the signal.
func TestPushPullRepairsMissedSignals(t *testing.T) {
	c := newCluster(t)
	key := gossipKey("k1")
	for i := range 2 {
		c.add(c.config(fmt.Sprintf("127.0.70.%d", 62+i), "acme", fmt.Sprintf("acme-%d", i), [][]byte{key}))
	}
	c.converge()
	s, err := c.pools[0].Publish(TrustVelocity, -3, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the signal spreads and every broadcast queue drains", func() bool {
		return has(c.pools[1], s) && c.pools[0].Stats().Queued == 0 && c.pools[1].Stats().Queued == 0
	})
	late := c.add(c.config("127.0.70.64", "acme", "acme-late", [][]byte{key}))
	waitFor(t, "the late member holds the signal", func() bool { return has(late, s) })
	if late.Stats().Merged == 0 {
		t.Fatal("the late member merged no push/pull state; the signal came another way")
	}
}
