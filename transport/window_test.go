package transport

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestWindowCases(t *testing.T) {
	var w Window
	step := func(seq uint64, want error) {
		t.Helper()
		if err := w.Accept(seq); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("Accept(%d) = %v, want %v (highest %d)", seq, err, want, w.Highest())
		}
	}
	step(0, ErrTooOld)
	step(1, nil)
	step(1, ErrReplay)
	step(3, nil)
	step(2, nil) // out of order inside the window
	step(2, ErrReplay)
	step(3, ErrReplay)
	step(3+WindowSize-1, nil) // 3 is now the oldest remembered
	step(3, ErrReplay)
	step(4, nil)
	step(2, ErrTooOld)
	step(1<<40, nil) // a jump clears the window
	step(1<<40-WindowSize, ErrTooOld)
	step(1<<40-WindowSize+1, nil)
	step(1<<40-1, nil)
	step(1<<40, ErrReplay)
	step(^uint64(0), nil)
	step(^uint64(0), ErrReplay)
	if w.Highest() != ^uint64(0) {
		t.Fatalf("highest %d", w.Highest())
	}
	// Check changes nothing.
	before := w.Encode()
	_ = w.Check(^uint64(0) - 5)
	if !bytes.Equal(before, w.Encode()) {
		t.Fatal("Check changed the window")
	}
}

// modelWindow is the obvious reference: every accepted seq in a set.
type modelWindow struct {
	highest uint64
	seen    map[uint64]bool
}

func (m *modelWindow) accept(seq uint64) error {
	switch {
	case seq == 0 || (seq <= m.highest && m.highest-seq >= WindowSize):
		return ErrTooOld
	case m.seen[seq]:
		return ErrReplay
	}
	m.seen[seq] = true
	if seq > m.highest {
		m.highest = seq
	}
	return nil
}

// nextSeq draws a sequence number near the model's highest, exercising
// replays, in-window reordering, the window edge and jumps of every size.
func nextSeq(rng *rand.Rand, highest uint64) uint64 {
	switch rng.IntN(6) {
	case 0:
		return highest + 1
	case 1:
		return highest + 1 + rng.Uint64N(200)
	case 2:
		return highest + rng.Uint64N(3*WindowSize)
	case 3:
		if highest < 8 {
			return rng.Uint64N(8)
		}
		return highest - rng.Uint64N(8)
	case 4:
		return highest - min(highest, WindowSize-2+rng.Uint64N(5)) // around the edge
	default:
		return highest - min(highest, rng.Uint64N(WindowSize+64))
	}
}

func TestWindowMatchesModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for run := range 20 {
		var w Window
		m := &modelWindow{seen: map[uint64]bool{}}
		for i := range 3000 {
			seq := nextSeq(rng, m.highest)
			want := m.accept(seq)
			got := w.Accept(seq)
			if !errors.Is(got, want) || (want == nil) != (got == nil) {
				t.Fatalf("run %d op %d: Accept(%d) = %v, model %v (highest %d)", run, i, seq, got, want, m.highest)
			}
			if w.Highest() != m.highest {
				t.Fatalf("run %d op %d: highest %d, model %d", run, i, w.Highest(), m.highest)
			}
			if i%97 == 0 {
				enc := w.Encode()
				back, err := DecodeWindow(enc)
				if err != nil {
					t.Fatalf("run %d op %d: DecodeWindow(Encode) = %v", run, i, err)
				}
				if back != w {
					t.Fatalf("run %d op %d: window did not survive Encode/Decode", run, i)
				}
			}
		}
	}
}

func TestDecodeWindowRejectsUnreachableStates(t *testing.T) {
	var w Window
	for _, s := range []uint64{1, 2, 5} {
		if err := w.Accept(s); err != nil {
			t.Fatal(err)
		}
	}
	good := w.Encode()
	if len(good) != EncodedWindowBytes {
		t.Fatalf("encoding of %d bytes, want %d", len(good), EncodedWindowBytes)
	}
	mut := func(f func([]byte)) []byte { c := bytes.Clone(good); f(c); return c }
	cases := map[string][]byte{
		"short":              good[:len(good)-1],
		"version":            mut(func(c []byte) { c[0] = 9 }),
		"highest unmarked":   mut(func(c []byte) { c[9+7] &^= 1 }),
		"mark below seq 1":   mut(func(c []byte) { c[9+7] |= 1 << 5 }), // offset 5 of highest 5 is seq 0
		"marks with nothing": append(append([]byte{1}, make([]byte, 8)...), append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 120)...)...),
	}
	for name, b := range cases {
		if _, err := DecodeWindow(b); err == nil {
			t.Errorf("%s: DecodeWindow accepted %x", name, b)
		}
	}
	var zero Window
	if back, err := DecodeWindow(zero.Encode()); err != nil || back != zero {
		t.Fatalf("zero window: %v", err)
	}
}

// AcceptUpTo(seq) leaves exactly what accepting 1, 2, ..., seq in turn
// leaves, from any reachable window, and its result survives
// Encode/Decode.
func TestWindowAcceptUpToMatchesAcceptingEach(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x51ed27))
	for run := range 300 {
		var w Window
		var highest uint64
		for range rng.IntN(40) {
			seq := nextSeq(rng, highest)
			if w.Accept(seq) == nil {
				highest = w.Highest()
			}
		}
		upTo := nextSeq(rng, highest)
		if rng.IntN(8) == 0 {
			upTo = 0
		}
		want := w
		for s := max(1, upTo-min(upTo, 2*WindowSize)); s <= upTo && s != 0; s++ {
			_ = want.Accept(s) // below the window or already accepted: no change
		}
		got := w
		got.AcceptUpTo(upTo)
		if got != want {
			t.Fatalf("run %d: AcceptUpTo(%d) from highest %d: highest %d, accepting each gives %d (or different marks)", run, upTo, highest, got.Highest(), want.Highest())
		}
		if back, err := DecodeWindow(got.Encode()); err != nil || back != got {
			t.Fatalf("run %d: AcceptUpTo(%d) left a window Decode refuses: %v", run, upTo, err)
		}
		for s := upTo; s > 0 && upTo-s < WindowSize; s-- {
			if err := got.Check(s); err == nil {
				t.Fatalf("run %d: seq %d passes Check after AcceptUpTo(%d)", run, s, upTo)
			}
		}
	}
}
