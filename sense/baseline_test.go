package sense

import (
	"errors"
	"hash/fnv"
	"math"
	"strings"
	"testing"
)

func TestEstablishedAfterMinWindows(t *testing.T) {
	s := newSensor(t, nil)
	f := newFeeder(t, s, "a")
	min := int64(s.Config().MinWindows)
	f.windows(0, min, 5)
	if r := f.steps[len(f.steps)-1].Report; r.Established || r.Windows != uint32(min-1) {
		t.Fatalf("after %d windows (last still open): established=%v windows=%d", min, r.Established, r.Windows)
	}
	st := f.window(min, 1, nil)[0] // closes window min-1
	if !st.Report.Established || st.Report.Windows != uint32(min) {
		t.Fatalf("first event of window %d: established=%v windows=%d, want true, %d", min, st.Report.Established, st.Report.Windows, min)
	}
	// An idle stretch adds no windows.
	st = f.window(min+100, 1, nil)[0]
	if st.Report.Windows != uint32(min+1) {
		t.Errorf("after idle windows: windows=%d, want %d", st.Report.Windows, min+1)
	}
}

func TestSteadyEntityScoresZero(t *testing.T) {
	s := newSensor(t, nil)
	f := newFeeder(t, s, "steady")
	steps := f.windows(0, 80, 10)
	if r, i := maxScore(steps); r.Score != 0 {
		t.Fatalf("steady stream flagged at step %d: %s", i, reportString(r))
	}
}

func TestBurstFlaggedAndAbsorbedOnlyWhenSustained(t *testing.T) {
	s := newSensor(t, nil)
	f := newFeeder(t, s, "bursty")
	f.windows(0, 40, 10)
	burst := f.window(40, 50, nil)
	i := firstFlag(burst)
	if i < 0 {
		t.Fatalf("5x burst not flagged: %s", reportString(burst[len(burst)-1].Report))
	}
	if i < 10 {
		t.Errorf("flagged after %d events, before the window exceeded the usual 10", i+1)
	}
	if r := burst[i].Report; r.Top != MetricRate {
		t.Errorf("burst top metric %s, want rate: %s", r.Top, reportString(r))
	}
	t.Logf("burst of 50 in a 10/window baseline flagged at event %d", i+1)
	// The spike barely moved the baseline: the next normal windows are clean
	// and a second burst is still flagged.
	if r, _ := maxScore(f.windows(41, 45, 10)); r.Score != 0 {
		t.Errorf("normal window after a burst flagged: %s", reportString(r))
	}
	if firstFlag(f.window(45, 50, nil)) < 0 {
		t.Error("second burst not flagged: one spike was absorbed into the baseline")
	}
	// A sustained shift to 30/window (on a fresh entity) is flagged at
	// first, then followed.
	g := newFeeder(t, s, "shifter")
	g.windows(0, 40, 10)
	var flagged []int64
	for w := int64(40); w < 80; w++ {
		if firstFlag(g.window(w, 30, nil)) >= 0 {
			flagged = append(flagged, w)
		}
	}
	if len(flagged) == 0 || flagged[0] != 40 {
		t.Fatalf("sustained 3x shift: flagged windows %v, want the first (40) among them", flagged)
	}
	if last := flagged[len(flagged)-1]; last > 50 {
		t.Errorf("sustained 3x shift still flagged at window %d: baseline does not follow", last)
	}
	t.Logf("sustained 3x shift flagged in windows %v", flagged)
}

func TestSlowDriftNotFlagged(t *testing.T) {
	s := newSensor(t, nil)
	f := newFeeder(t, s, "drifter", "a", "b", "c", "d")
	f.windows(0, 30, 10)
	// Rate +2 % of the start per window (10 → 30 events) while bytes per
	// event double and the op mix rotates from a-heavy to d-heavy.
	for w := int64(30); w < 130; w++ {
		k := w - 30
		n := 10 + int(k/5)
		steps := f.window(w, n, func(i int, ev *Observation) {
			ev.Bytes = 100 + k
			if i%100 < int(k) {
				ev.Op = "d"
			}
		})
		if r, i := maxScore(steps); r.Score != 0 {
			t.Fatalf("slow drift flagged in window %d event %d: %s", w, i, reportString(r))
		}
	}
}

func TestNovelOpFlagged(t *testing.T) {
	s := newSensor(t, nil)
	f := newFeeder(t, s, "agent")
	// Before the baseline is established a new op is learned, not flagged.
	f.windows(0, 3, 5)
	st := f.window(3, 1, func(_ int, ev *Observation) { ev.Op = "kv.delete" })[0]
	if st.Report.Score != 0 || st.Report.Metrics[MetricNovelOps].Value != 1 {
		t.Fatalf("new op before establishment: %s", reportString(st.Report))
	}
	// Vocabulary changing recently (window 3): a new op in window 10 is
	// learned without a score.
	f.windows(4, 10, 5)
	st = f.window(10, 1, func(_ int, ev *Observation) { ev.Op = "kv.scan" })[0]
	if !st.Report.Established || st.Report.Score != 0 {
		t.Fatalf("new op while the vocabulary is still changing: %s", reportString(st.Report))
	}
	// After a stable stretch the first never-seen op is flagged on itself.
	f.windows(11, 30, 5)
	steps := f.window(30, 3, func(i int, ev *Observation) {
		if i == 1 {
			ev.Op = "admin.grant"
		}
	})
	if steps[0].Report.Score != 0 {
		t.Errorf("known op flagged: %s", reportString(steps[0].Report))
	}
	r := steps[1].Report
	if r.Score != NovelOpScore || r.Top != MetricNovelOps {
		t.Errorf("novel op: %s, want score %d top novel_ops", reportString(r), NovelOpScore)
	}
	// Once seen it is not novel again.
	if st := f.window(45, 1, func(_ int, ev *Observation) { ev.Op = "admin.grant" })[0]; st.Report.Metrics[MetricNovelOps].Value != 0 {
		t.Errorf("op seen before counted novel again: %s", reportString(st.Report))
	}
}

func TestErrorAndDenyStormFlagged(t *testing.T) {
	for _, c := range []struct {
		d   Decision
		top Metric
	}{{DecisionError, MetricErrorRatio}, {DecisionDeny, MetricDenyRatio}} {
		t.Run(c.d.String(), func(t *testing.T) {
			s := newSensor(t, nil)
			f := newFeeder(t, s, "agent")
			f.windows(0, 40, 10)
			steps := f.window(40, 10, func(_ int, ev *Observation) { ev.Decision = c.d })
			i := firstFlag(steps)
			if i < 0 || i > 3 {
				t.Fatalf("storm of %ss flagged at event %d, want within 4: %s", c.d, i, reportString(steps[len(steps)-1].Report))
			}
			if r := steps[i].Report; r.Top != c.top {
				t.Errorf("top metric %s, want %s", r.Top, c.top)
			}
			// One error among ten is not a storm.
			steps = f.window(41, 10, func(i int, ev *Observation) {
				if i == 5 {
					ev.Decision = c.d
				}
			})
			if r, _ := maxScore(steps); r.Score != 0 {
				t.Errorf("a single %s flagged: %s", c.d, reportString(r))
			}
		})
	}
}

func TestPostureTightensDeviation(t *testing.T) {
	signals := []struct {
		level Level
		kind  string
		value int64
	}{
		{LevelRelaxed, "incident_level", 0},
		{LevelNormal, "", 0},
		{LevelElevated, "market_volatility", 100},
		{LevelCritical, "incident_level", 100},
	}
	var scores [NumLevels]int64
	for _, sg := range signals {
		s := newSensor(t, nil)
		if sg.kind != "" {
			if c, err := s.Signal(sg.kind, sg.value, 0); err != nil || c.To != sg.level {
				t.Fatalf("signal %s=%d: level %s, %v; want %s", sg.kind, sg.value, c.To, err, sg.level)
			}
		}
		f := newFeeder(t, s, "agent")
		f.windows(0, 40, 10)
		// A moderate rise: 22 events where 10 are usual.
		r, _ := maxScore(f.window(40, 22, nil))
		scores[sg.level] = r.Score
		if r.Level != sg.level {
			t.Errorf("report level %s, want %s", r.Level, sg.level)
		}
		if want := sg.level == LevelCritical && r.Score > 0; r.Escalate != want {
			t.Errorf("%s: escalate=%v with score %d, want %v", sg.level, r.Escalate, r.Score, want)
		}
		if dr := s.Deviation("agent", 40*testWindow+testWindow-1); dr.Score != r.Score || dr.Escalate != r.Escalate {
			t.Errorf("%s: Deviation at window end %s differs from the last Observe report %s", sg.level, reportString(dr), reportString(r))
		}
	}
	t.Logf("scores of one window of 22 (usual 10) by level: %v", scores)
	for l := LevelNormal; l < NumLevels; l++ {
		if scores[l] < scores[l-1] {
			t.Errorf("score at %s (%d) below %s (%d): thresholds must drop as posture rises", l, scores[l], l-1, scores[l-1])
		}
	}
	if scores[LevelCritical] == 0 || scores[LevelRelaxed] != 0 {
		t.Errorf("scores %v: want the rise flagged at critical and not at relaxed", scores)
	}
}

func TestDeviationReportsTheWindowOfNow(t *testing.T) {
	s := newSensor(t, nil)
	f := newFeeder(t, s, "a")
	f.windows(0, 40, 10)
	f.window(40, 60, nil)
	if r := s.Deviation("a", 40*testWindow+testWindow/2); r.Score == 0 || r.Events != 60 {
		t.Errorf("inside the burst window: %s", reportString(r))
	}
	if r := s.Deviation("a", 41*testWindow); r.Score != 0 || r.Events != 0 || r.Window != 41 {
		t.Errorf("next (empty) window: %s", reportString(r))
	}
	if r := s.Deviation("nobody", 0); r.Known || r.Established || r.Score != 0 {
		t.Errorf("unknown entity: %+v", r)
	}
}

func TestOpsAndTransitionsBounded(t *testing.T) {
	s := newSensor(t, func(c *Config) { c.MaxOps = 4; c.MaxTransitions = 5 })
	ops := []string{"a", "b", "c", "d", "e", "f", "g"}
	f := newFeeder(t, s, "wide", ops...)
	f.windows(0, 20, 14)
	p, ok := s.Profile("wide")
	if !ok {
		t.Fatal("no profile")
	}
	if len(p.Ops) != 4 || p.Other == 0 {
		t.Errorf("ops %v other %d: want 4 tracked and the rest in other", p.Ops, p.Other)
	}
	if len(p.Transitions) > 5 {
		t.Errorf("%d transitions kept, bound 5", len(p.Transitions))
	}
	for i := 1; i < len(p.Transitions); i++ {
		a, b := p.Transitions[i-1], p.Transitions[i]
		if a.From > b.From || (a.From == b.From && a.To >= b.To) {
			t.Errorf("transitions out of order: %v", p.Transitions)
		}
	}
	// Ops beyond the table are still known: not novel.
	if st := f.window(40, 1, func(_ int, ev *Observation) { ev.Op = "g" })[0]; st.Report.Metrics[MetricNovelOps].Value != 0 {
		t.Errorf("op counted in other reported novel: %s", reportString(st.Report))
	}
	// An op that stops is dropped from the table, freeing its slot.
	g := newFeeder(t, s, "switcher", "x", "y")
	g.windows(0, 10, 4)
	g.ops = []string{"y"}
	g.windows(10, 200, 4)
	p, _ = s.Profile("switcher")
	if len(p.Ops) != 1 || p.Ops[0].Op != "y" || p.Ops[0].Share != Micro {
		t.Errorf("after x stopped: ops %v, want only y at %d", p.Ops, Micro)
	}
}

func TestObserveRejectsBadInput(t *testing.T) {
	s := newSensor(t, func(c *Config) { c.MaxEntities = 2 })
	f := newFeeder(t, s, "a")
	f.windows(0, 10, 3)
	if _, err := s.Fold("b", Observation{Time: 1, Op: "x", Decision: DecisionPermit}); err != nil {
		t.Fatal(err)
	}
	ok := Observation{Time: 10 * testWindow, Op: "kv.get", Decision: DecisionPermit}
	with := func(mod func(*Observation)) Observation { o := ok; mod(&o); return o }
	for _, c := range []struct {
		name   string
		entity string
		ev     Observation
		err    error
	}{
		{"empty entity", "", ok, ErrEntityName},
		{"long entity", strings.Repeat("e", MaxEntityLen+1), ok, ErrEntityName},
		{"control char in entity", "a\nb", ok, ErrEntityName},
		{"invalid utf-8 entity", "a\xffb", ok, ErrEntityName},
		{"empty op", "a", with(func(o *Observation) { o.Op = "" }), ErrOpName},
		{"long op", "a", with(func(o *Observation) { o.Op = strings.Repeat("o", MaxOpLen+1) }), ErrOpName},
		{"decision 0", "a", with(func(o *Observation) { o.Decision = 0 }), ErrDecision},
		{"decision 5", "a", with(func(o *Observation) { o.Decision = 5 }), ErrDecision},
		{"negative bytes", "a", with(func(o *Observation) { o.Bytes = -1 }), ErrBytes},
		{"too many bytes", "a", with(func(o *Observation) { o.Bytes = MaxEventBytes + 1 }), ErrBytes},
		{"negative time", "a", with(func(o *Observation) { o.Time = -1 }), ErrTime},
		{"time regression", "a", with(func(o *Observation) { o.Time = 9*testWindow - 1 }), ErrTime},
		{"entity limit", "c", ok, ErrEntityLimit},
	} {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, s, c.name, func() {
				if _, err := s.Fold(c.entity, c.ev); !errors.Is(err, c.err) {
					t.Errorf("err = %v, want %v", err, c.err)
				}
			})
		})
	}
	// The same input with a good entity is accepted, and an equal time is fine.
	if _, err := s.Fold("a", ok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fold("a", ok); err != nil {
		t.Fatalf("equal time refused: %v", err)
	}
}

func TestForget(t *testing.T) {
	s := newSensor(t, func(c *Config) { c.MaxEntities = 1 })
	newFeeder(t, s, "a").windows(0, 3, 3)
	if _, err := s.Fold("b", Observation{Time: 1, Op: "x", Decision: DecisionPermit}); !errors.Is(err, ErrEntityLimit) {
		t.Fatalf("second entity at limit 1: %v", err)
	}
	if !s.Forget("a") || s.Forget("a") {
		t.Fatal("Forget should report true once")
	}
	if b, tr := s.Entities(); b != 0 || tr != 0 {
		t.Fatalf("after forget: %d baselines, %d trust", b, tr)
	}
	if _, err := s.Fold("b", Observation{Time: 1, Op: "x", Decision: DecisionPermit}); err != nil {
		t.Fatalf("after forget: %v", err)
	}
}

func TestFixedPointHelpers(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{{7, 2, 3}, {-7, 2, -4}, {-8, 2, -4}, {0, 5, 0}, {-1, 10, -1}} {
		if got := floorDiv(c.a, c.b); got != c.want {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	for _, c := range []struct{ x, want int64 }{{-4, 0}, {0, 0}, {1, 1}, {3, 1}, {4, 2}, {99, 9}, {100, 10}, {1 << 62, 1 << 31}, {1<<62 - 1, 1<<31 - 1}, {math.MaxInt64, 3037000499}} {
		if got := isqrt(c.x); got != c.want {
			t.Errorf("isqrt(%d) = %d, want %d", c.x, got, c.want)
		}
	}
	// ewmaStep reaches its target exactly, from above and below.
	for _, start := range []int64{0, 7, 1_000_000} {
		m := start
		for range 500 {
			m = ewmaStep(m, 3, 1, 8)
		}
		if m != 3 {
			t.Errorf("ewmaStep from %d settles at %d, want 3", start, m)
		}
	}
}

// TestExtremeValuesDoNotOverflow scores windows at the bounds the state
// allows (and Decode accepts): results stay in range and keep their sign.
func TestExtremeValuesDoNotOverflow(t *testing.T) {
	b, err := NewBaselines(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	full := &baseline{
		window: 100, windows: 100, events: maxWindowCount, errors: maxWindowCount, bytes: maxWindowBytes, effects: maxWindowCount,
		novelOps: maxWindowCount, trans: maxWindowCount, novelTrans: maxWindowCount, lastOp: "x",
		other: opStat{win: maxWindowCount},
	}
	r := b.report("full", full, 100*testWindow, LevelCritical)
	for m := range NumMetrics {
		ms := r.Metrics[m]
		if m != int(MetricOpMix) && (ms.Dev <= 0 || ms.Score <= 0 || ms.Score > MaxScore) && m != int(MetricDenyRatio) {
			t.Errorf("%s at its maximum over a zero baseline: %+v", Metric(m), ms)
		}
	}
	if r.Score != MaxScore-r.Tolerance && r.Score != MaxScore {
		t.Errorf("score %d, want the cap", r.Score)
	}
	huge := &baseline{windows: 100, events: 1, lastOp: "x", other: opStat{win: 1}}
	for m := range NumStats {
		huge.stats[m] = Stat{Mean: statMax, MAD: statMax, Up: statMax}
	}
	r = b.report("huge", huge, 0, LevelNormal)
	for m := range NumStats {
		if ms := r.Metrics[m]; ms.Dev > 0 || ms.Dev < -MaxScore || ms.Scale <= 0 || ms.Score != 0 {
			t.Errorf("%s under a maximal baseline: %+v", Metric(m), ms)
		}
	}
	b.fold(huge) // clipping and EWMA at the bounds must not overflow
	for m, st := range huge.stats {
		if st.Mean < 0 || st.Mean > statMax || st.MAD < 0 || st.MAD > statMax || st.Up < 0 || st.Up > statMax {
			t.Errorf("%s after folding at the bounds: %+v", Metric(m), st)
		}
	}
}

// TestBloomKeyIsFNV1a pins the seen-set hash (it is protocol: encoded
// seen-sets depend on it) to hash/fnv's FNV-1a.
func TestBloomKeyIsFNV1a(t *testing.T) {
	for _, c := range []struct {
		kind byte
		a, b string
	}{{'o', "kv.get", ""}, {'t', "kv.get", "kv.put"}, {'t', "", ""}, {'o', "ü", "x"}} {
		h := fnv.New64a()
		h.Write([]byte{c.kind})
		h.Write([]byte(c.a))
		h.Write([]byte{0})
		h.Write([]byte(c.b))
		s := h.Sum64()
		i, j := bloomKey(c.kind, c.a, c.b)
		if i != uint32(s%bloomBits) || j != uint32((s>>32)%bloomBits) {
			t.Errorf("bloomKey(%c, %q, %q) = %d, %d; FNV-1a gives %d, %d", c.kind, c.a, c.b, i, j, s%bloomBits, (s>>32)%bloomBits)
		}
	}
}
