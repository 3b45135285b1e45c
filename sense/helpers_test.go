package sense

import (
	"bytes"
	"fmt"
	"testing"
)

const testWindow = int64(10_000_000_000) // DefaultConfig().WindowNs

func newSensor(t testing.TB, mod func(*Config)) *Sensor {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feeder drives one entity window by window with evenly spaced events.
type feeder struct {
	t      testing.TB
	s      *Sensor
	entity string
	ops    []string
	next   int // op cursor
	steps  []Step
}

func newFeeder(t testing.TB, s *Sensor, entity string, ops ...string) *feeder {
	if len(ops) == 0 {
		ops = []string{"kv.get", "kv.put", "kv.list"}
	}
	return &feeder{t: t, s: s, entity: entity, ops: ops}
}

// window feeds n events into window w; mod may change each observation.
// It returns the steps of this window.
func (f *feeder) window(w int64, n int, mod func(i int, ev *Observation)) []Step {
	f.t.Helper()
	var out []Step
	for i := range n {
		ev := Observation{
			Time:     w*testWindow + int64(i)*(testWindow/int64(n+1)) + 1,
			Op:       f.ops[f.next%len(f.ops)],
			Decision: DecisionPermit,
			Bytes:    100,
		}
		f.next++
		if mod != nil {
			mod(i, &ev)
		}
		st, err := f.s.Fold(f.entity, ev)
		if err != nil {
			f.t.Fatalf("observe %s window %d event %d: %v", f.entity, w, i, err)
		}
		out = append(out, st)
	}
	f.steps = append(f.steps, out...)
	return out
}

// windows feeds n events into each of windows [from, to).
func (f *feeder) windows(from, to int64, n int) []Step {
	f.t.Helper()
	var out []Step
	for w := from; w < to; w++ {
		out = append(out, f.window(w, n, nil)...)
	}
	return out
}

func maxScore(steps []Step) (Report, int) {
	var best Report
	at := -1
	for i, st := range steps {
		if at < 0 || st.Report.Score > best.Score {
			best, at = st.Report, i
		}
	}
	return best, at
}

func firstFlag(steps []Step) int {
	for i, st := range steps {
		if st.Report.Score > 0 {
			return i
		}
	}
	return -1
}

// unchanged fails if fn changes s's encoded state.
func unchanged(t *testing.T, s *Sensor, what string, fn func()) {
	t.Helper()
	before := s.Encode()
	fn()
	if !bytes.Equal(before, s.Encode()) {
		t.Errorf("%s changed the state", what)
	}
}

func reportString(r Report) string {
	return fmt.Sprintf("score=%d top=%s events=%d windows=%d tol=%d %s=%+v", r.Score, r.Top, r.Events, r.Windows, r.Tolerance, r.Top, r.Metrics[r.Top])
}
