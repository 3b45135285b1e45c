package sense

import (
	"errors"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b SignalVector
		want int64
	}{
		{SignalVector{}, SignalVector{}, 0},
		{SignalVector{100, 0, 0, 0}, SignalVector{}, 1_000_000},
		{SignalVector{0, 0, 1000, 0}, SignalVector{}, 1_000_000}, // burn normalized like the rest
		{SignalVector{100, 100, 1000, 100}, SignalVector{}, 4_000_000},
		{SignalVector{10, 0, 100, 0}, SignalVector{0, 0, 0, 0}, 20_000},
	} {
		if got := Distance(c.a, c.b); got != c.want || Distance(c.b, c.a) != got {
			t.Errorf("Distance(%v, %v) = %d, want %d (symmetric)", c.a, c.b, got, c.want)
		}
	}
}

func TestSimilar(t *testing.T) {
	a := NewPostureArchive(10)
	vs := []SignalVector{{10}, {50}, {90}, {50}, {20}}
	for i, v := range vs {
		a.Add(Snapshot{Time: int64(i), Signals: v})
	}
	ms, err := a.Similar(SignalVector{50}, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Two exact matches: the newer (seq 3) first, then seq 1; then {20}
	// (distance 300²) before {90} (400²) and {10} (400², older).
	want := []struct {
		seq  uint64
		dist int64
		next uint64
		has  bool
	}{{3, 0, 4, true}, {1, 0, 2, true}, {4, 90_000, 0, false}}
	if len(ms) != len(want) {
		t.Fatalf("%d matches, want %d", len(ms), len(want))
	}
	for i, w := range want {
		m := ms[i]
		if m.Snapshot.Seq != w.seq || m.Distance != w.dist || m.HasNext != w.has || (w.has && m.Next.Seq != w.next) {
			t.Errorf("match %d: seq %d dist %d next %d/%v, want seq %d dist %d next %d/%v",
				i, m.Snapshot.Seq, m.Distance, m.Next.Seq, m.HasNext, w.seq, w.dist, w.next, w.has)
		}
	}
	if ms[0].Next.Signals != vs[4] {
		t.Errorf("what happened next after seq 3: %v, want %v", ms[0].Next.Signals, vs[4])
	}
	all, _ := a.Similar(SignalVector{100}, 99)
	if len(all) != 5 || all[0].Snapshot.Seq != 2 || all[3].Snapshot.Seq != 4 || all[4].Snapshot.Seq != 0 {
		t.Errorf("k beyond Len: %+v", all)
	}
	if none, err := a.Similar(SignalVector{}, 0); none != nil || err != nil {
		t.Errorf("k = 0: %v, %v", none, err)
	}
	var se *SignalError
	if _, err := a.Similar(SignalVector{0, 0, 1001, 0}, 1); !errors.Is(err, ErrSignalRange) || !errors.As(err, &se) {
		t.Errorf("out-of-range query: %v", err)
	}
}

func TestArchiveRingDropsOldest(t *testing.T) {
	s := newSensor(t, func(c *Config) { c.ArchiveCap = 3 })
	for i := range int64(5) {
		if _, err := s.Signal("threat_level", 10*i, i); err != nil {
			t.Fatal(err)
		}
	}
	snaps := s.Archive()
	if len(snaps) != 3 || snaps[0].Seq != 2 || snaps[2].Seq != 4 || snaps[2].Signals[SignalThreatLevel] != 40 {
		t.Fatalf("archive %+v, want seqs 2..4", snaps)
	}
	ms, _ := s.Similar(SignalVector{0, 0, 0, 40}, 1)
	if ms[0].Snapshot.Seq != 4 || ms[0].HasNext {
		t.Errorf("newest match %+v: want seq 4 with nothing after it", ms[0])
	}
	// The ring's physical rotation never shows in the encoding.
	d, err := Decode(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Archive(); len(got) != 3 || got[0] != snaps[0] || got[2] != snaps[2] {
		t.Errorf("decoded archive %+v, want %+v", got, snaps)
	}
}
