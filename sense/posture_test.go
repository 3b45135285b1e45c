package sense

import (
	"errors"
	"testing"
)

func TestSensitivity(t *testing.T) {
	for _, c := range []struct {
		name  string
		v     SignalVector
		sens  int64
		level Level
	}{
		{"quiet", SignalVector{}, 0, LevelRelaxed},
		{"incident 100 alone", SignalVector{100, 0, 0, 0}, 1000, LevelCritical},
		{"threat 100 alone", SignalVector{0, 0, 0, 100}, 970, LevelCritical},
		{"volatility 100 alone", SignalVector{0, 100, 0, 0}, 646, LevelElevated},
		{"burn 1000 alone", SignalVector{0, 0, 1000, 0}, 754, LevelElevated},
		{"all at half", SignalVector{50, 50, 500, 50}, 625, LevelElevated},
		{"all at 80%", SignalVector{80, 80, 800, 80}, 1000, LevelCritical},
		{"incident 20", SignalVector{20, 0, 0, 0}, 215, LevelNormal},
	} {
		if got := Sensitivity(c.v); got != c.sens {
			t.Errorf("%s: Sensitivity(%v) = %d, want %d", c.name, c.v, got, c.sens)
		}
		if got := NextLevel(LevelNormal, c.sens); got != c.level {
			t.Errorf("%s: level from normal at %d = %s, want %s", c.name, c.sens, got, c.level)
		}
	}
}

func TestNextLevel(t *testing.T) {
	for _, c := range []struct {
		from Level
		s    int64
		want Level
	}{
		{LevelNormal, 799, LevelElevated}, {LevelNormal, 800, LevelCritical}, {LevelNormal, 499, LevelNormal},
		{LevelNormal, 100, LevelNormal}, {LevelNormal, 99, LevelRelaxed},
		{LevelRelaxed, 199, LevelRelaxed}, {LevelRelaxed, 200, LevelNormal}, {LevelRelaxed, 500, LevelElevated},
		{LevelElevated, 400, LevelElevated}, {LevelElevated, 399, LevelNormal}, {LevelElevated, 50, LevelRelaxed},
		{LevelElevated, 800, LevelCritical},
		{LevelCritical, 700, LevelCritical}, {LevelCritical, 699, LevelElevated}, {LevelCritical, 399, LevelNormal},
		{LevelCritical, 0, LevelRelaxed},
	} {
		if got := NextLevel(c.from, c.s); got != c.want {
			t.Errorf("NextLevel(%s, %d) = %s, want %s", c.from, c.s, got, c.want)
		}
	}
	// Idempotent, and the enter threshold always exceeds the stay one.
	for l := Level(0); l < NumLevels; l++ {
		for s := int64(0); s <= 1000; s++ {
			n := NextLevel(l, s)
			if NextLevel(n, s) != n {
				t.Fatalf("NextLevel not idempotent at (%s, %d)", l, s)
			}
		}
	}
}

// TestHysteresisNoFlap drives a signal back and forth across each enter
// and stay threshold, one step either side, for 200 signals: the level
// may change once, never back and forth.
func TestHysteresisNoFlap(t *testing.T) {
	// incident_level v gives sensitivity 10v + ⌊10v×1000/3200⌋/4; find the
	// v on either side of each threshold.
	around := func(th int64) (lo, hi int64) {
		for v := int64(0); v <= 100; v++ {
			if Sensitivity(SignalVector{v}) >= th {
				return v - 1, v
			}
		}
		t.Fatalf("no incident level reaches %d", th)
		return
	}
	for _, c := range []struct {
		name      string
		start     int64 // incident level to start from; -1: just below the threshold
		threshold int64
	}{
		{"critical enter", -1, CriticalEnter},
		{"critical stay", 100, CriticalExit},
		{"elevated enter", -1, ElevatedEnter},
		{"elevated stay", 60, ElevatedExit},
		{"relaxed enter", 15, RelaxedEnter},
		{"relaxed exit", 0, RelaxedExit},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSensor(t, nil)
			lo, hi := around(c.threshold)
			start := c.start
			if start < 0 {
				start = lo
			}
			if _, err := s.Signal("incident_level", start, 0); err != nil {
				t.Fatal(err)
			}
			changes := 0
			var seen []Level
			for i := range 200 {
				v := lo
				if i%2 == 1 {
					v = hi
				}
				ch, err := s.Signal("incident_level", v, int64(i+1))
				if err != nil {
					t.Fatal(err)
				}
				if ch.Changed {
					changes++
					seen = append(seen, ch.To)
				}
			}
			if changes > 1 {
				t.Errorf("level changed %d times oscillating %d↔%d (sensitivity %d↔%d): %v",
					changes, lo, hi, Sensitivity(SignalVector{lo}), Sensitivity(SignalVector{hi}), seen)
			}
		})
	}
}

func TestPostureChangeEvidence(t *testing.T) {
	s := newSensor(t, nil)
	if p := s.Posture(); p.Level != LevelNormal || p.Set {
		t.Fatalf("initial posture %+v, want normal and unset", p)
	}
	c, err := s.Signal("market_volatility", 100, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := PostureChange{Time: 5, Kind: "market_volatility", Value: 100, Signals: SignalVector{0, 100, 0, 0},
		FromSensitivity: 0, Sensitivity: 646, From: LevelNormal, To: LevelElevated, Changed: true}
	if c != want {
		t.Errorf("change %+v, want %+v", c, want)
	}
	c, _ = s.Signal("incident_level", 100, 6)
	if c.To != LevelCritical || c.Signals != (SignalVector{100, 100, 0, 0}) {
		t.Errorf("incident_level 100: %+v", c)
	}
	if c, _ = s.Signal("incident_level", 100, 6); c.Changed {
		t.Errorf("repeated signal reported a change: %+v", c)
	}
}

func TestSignalRejectsBadInput(t *testing.T) {
	s := newSensor(t, nil)
	if _, err := s.Signal("threat_level", 10, 100); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind  string
		value int64
		time  int64
		err   error
	}{
		{"weather", 1, 200, ErrUnknownSignal},
		{"", 1, 200, ErrUnknownSignal},
		{"Incident_Level", 1, 200, ErrUnknownSignal},
		{"incident_level", -1, 200, ErrSignalRange},
		{"incident_level", 101, 200, ErrSignalRange},
		{"market_volatility", 101, 200, ErrSignalRange},
		{"error_budget_burn", 1001, 200, ErrSignalRange},
		{"threat_level", 101, 200, ErrSignalRange},
		{"threat_level", 50, 99, ErrSignalTime},
		{"threat_level", 50, -1, ErrSignalTimeNeg},
	} {
		unchanged(t, s, c.kind, func() {
			_, err := s.Signal(c.kind, c.value, c.time)
			var se *SignalError
			if !errors.Is(err, c.err) || !errors.As(err, &se) {
				t.Errorf("Signal(%q, %d, %d) = %v, want a *SignalError wrapping %v", c.kind, c.value, c.time, err, c.err)
			}
		})
	}
	// The upper bounds themselves are accepted.
	for k := SignalKind(0); k < NumSignals; k++ {
		if _, err := s.Signal(k.String(), k.Max(), 300); err != nil {
			t.Errorf("%s = %d: %v", k, k.Max(), err)
		}
	}
}

func TestLevelNames(t *testing.T) {
	for l := Level(0); l < NumLevels; l++ {
		if p, err := ParseLevel(l.String()); err != nil || p != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), p, err)
		}
	}
	if _, err := ParseLevel("panic"); err == nil {
		t.Error("ParseLevel accepted an unknown name")
	}
}
