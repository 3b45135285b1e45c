package sense

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Decision is the gate's verdict on an observed syscall. The numbers of
// permit, deny and escalate match fsm.Decision; error marks a permitted
// call whose execution failed. Numbers are protocol.
type Decision uint8

const (
	DecisionPermit   Decision = 1
	DecisionDeny     Decision = 2
	DecisionEscalate Decision = 3 // held for approval: counts toward rate and mix only
	DecisionError    Decision = 4
)

// String returns "permit", "deny", "escalate" or "error".
func (d Decision) String() string {
	switch d {
	case DecisionPermit:
		return "permit"
	case DecisionDeny:
		return "deny"
	case DecisionEscalate:
		return "escalate"
	case DecisionError:
		return "error"
	}
	return fmt.Sprintf("decision(%d)", uint8(d))
}

// Observation is one syscall of an entity as the ledger recorded it.
type Observation struct {
	Time     int64  // ledger time, unix ns, ≥ 0 and not before the entity's previous observation
	Op       string // 1..MaxOpLen printable bytes
	Decision Decision
	Bytes    int64 // bytes written, 0..MaxEventBytes
	Effect   bool  // an external effect was requested
}

// Metric names one scored statistic. Numbers are protocol.
type Metric uint8

const (
	MetricRate              Metric = 0 // events per window, micro-events
	MetricDenyRatio         Metric = 1 // denies / events, ppm
	MetricErrorRatio        Metric = 2 // errors / events, ppm
	MetricBytes             Metric = 3 // bytes written per window
	MetricEffects           Metric = 4 // external effects per window, micro-effects
	MetricOpMix             Metric = 5 // L1 distance of the window's op shares from the baseline's, ppm (0..2 000 000)
	MetricTransitionNovelty Metric = 6 // op→op transitions never seen before / transitions, ppm
	MetricNovelOps          Metric = 7 // distinct ops never seen before, in the window (a count; no baseline)
	NumMetrics                     = 8

	// NumStats is the number of metrics with an EWMA baseline (all but
	// MetricNovelOps); they are the first NumStats metrics.
	NumStats = 7
)

var metricNames = [NumMetrics]string{
	"rate", "deny_ratio", "error_ratio", "bytes", "effects", "op_mix", "transition_novelty", "novel_ops",
}

// String returns the metric's fixed name.
func (m Metric) String() string {
	if m < NumMetrics {
		return metricNames[m]
	}
	if m >= firstModel2 && m < firstModel2+NumModel2Metrics {
		return model2Names[m-firstModel2]
	}
	return fmt.Sprintf("metric(%d)", uint8(m))
}

// Scoring constants (protocol: they decide trust and policy inputs).
const (
	// MaxScore caps every deviation and score, in hundredths.
	MaxScore = 1_000_000
	// ShrinkEvents is the prior weight, in events, that pulls a window's
	// ratios, op shares and transition novelty toward the baseline mean,
	// so the first events of a window do not read as extreme ratios.
	ShrinkEvents = 8
	// ClipUnits bounds how far one window can pull an established
	// baseline: its value is clipped to mean ± ClipUnits×scale before it
	// is folded in. Transient spikes barely move the baseline; a sustained
	// shift is followed within a few windows.
	ClipUnits = 6
	// NovelOpScore is the score of each distinct never-seen op in the
	// window (one deviation unit over tolerance). Novel ops score only once
	// the entity's vocabulary has been stable: no closed window among the
	// MinWindows before the current one introduced a new op.
	NovelOpScore = 100
)

// A metric's scale (its deviation unit) is max(MAD, 2×Up, floorAbs,
// mean×floorPct/100, and for counts √mean): the floors keep a very
// regular entity from being flagged for tiny changes, and the √mean floor
// is the Poisson spread of a count.
var metricFloors = [NumStats]struct {
	abs, pct int64
	poisson  bool
}{
	MetricRate:              {Micro, 20, true},   // 1 event, 20 % of the mean, or √mean events
	MetricDenyRatio:         {50_000, 0, false},  // 5 percentage points
	MetricErrorRatio:        {50_000, 0, false},  // 5 percentage points
	MetricBytes:             {4096, 25, false},   // 4 KiB, or 25 % of the mean
	MetricEffects:           {Micro, 25, true},   // 1 effect, 25 % of the mean, or √mean effects
	MetricOpMix:             {150_000, 0, false}, // 0.15 of L1 distance
	MetricTransitionNovelty: {100_000, 0, false}, // 10 % of transitions
}

// Stat holds exponentially weighted statistics of one metric, in the
// metric's unit: the mean, the mean absolute deviation and the mean upper
// deviation (EWMA of max(0, value−Mean)). Scores are one-sided (only
// values above the mean score); 2×Up follows the right tail of skewed
// metrics such as bytes written, where the MAD understates it, and equals
// the MAD for a symmetric one.
type Stat struct {
	Mean int64
	MAD  int64
	Up   int64
}

func (s Stat) scale(m Metric) int64 {
	f := metricFloors[m]
	sc := max(s.MAD, 2*s.Up, f.abs, s.Mean*f.pct/100)
	if f.poisson {
		sc = max(sc, isqrt(s.Mean)*1000) // √(mean events) in micro-events: √(Mean/10⁶)×10⁶
	}
	return sc
}

// MetricScore is one metric of a Report. Dev is (Value−Mean)/Scale in
// hundredths (negative below the mean); Score is max(0, Dev−Tolerance),
// and 0 until the baseline is Established. For MetricNovelOps, Value is
// the count and Score is Value×NovelOpScore.
type MetricScore struct {
	Value int64
	Mean  int64
	Scale int64
	Dev   int64
	Score int64
}

// Report is the deviation of an entity's current window from its
// baseline. Score is the largest metric score (0 = normal; 100 = one
// deviation unit beyond the tolerance), Top the metric that gave it (the
// lowest-numbered on a tie; meaningless when Score is 0). Tolerance is the one the metrics were judged by: the posture level's,
// widened by ×(1 + MinWindows/Windows) while the baseline is young.
// Escalate is set at critical posture when Score > 0: the call needs human
// review.
type Report struct {
	Entity      string
	Window      int64 // index of the window holding the report time
	Known       bool  // the entity has a baseline
	Established bool
	Windows     uint32 // closed windows folded into the baseline
	Events      int64  // events of the entity in the reported window
	Level       Level
	Tolerance   int64
	Metrics     [NumMetrics]MetricScore
	Top         Metric
	Score       int64
	Escalate    bool

	// Model 2 (Judge and Observe; see doc.go). Alert is the one
	// definition of an alert: the top metric's tail probability is below
	// the governed target's threshold. Metric, Observed, Expected, P and
	// Surprise describe the most surprising metric even when it does not
	// alert; Evidence holds the seqs of the entity's recent outcomes
	// within that metric's horizon (alerts only).
	Alert     bool
	Metric    Metric
	Observed  int64 // in the metric's unit (see Metric)
	Expected  Range // the expected range, same unit
	P         int64 // tail probability, parts per PScale (10^15)
	Surprise  int64 // −log₂ P, millibits
	Threshold int64 // surprise an alert needs at this posture, millibits
	Evidence  []uint64
	Call      Call  // the call judged
	Err       error // the input was rejected; nothing changed
	suspect   bool
}

type opStat struct {
	name  string
	share int64 // EWMA of the op's share of a window, ppm
	win   int64 // events with this op in the open window
}

// Transition is a decayed count of one op following another.
type Transition struct {
	From, To string
	Count    int64
}

// baseline is one entity's statistics.
type baseline struct {
	window  int64  // index of the open window (valid when events > 0)
	last    int64  // time of the last observation
	lastOp  string // op of the last observation ("" before the first)
	windows uint32 // closed windows folded in
	// lastNovel is the most recent closed window in which the entity used
	// an op for the first time (0 before the first fold).
	lastNovel int64

	// The open window.
	events, denies, errors, bytes, effects int64
	novelOps, trans, novelTrans            int64
	peak                                   int64 // highest score reported at an observation in this window

	stats [NumStats]Stat
	ops   []opStat // sorted by name
	other opStat   // ops beyond MaxOps
	tr    []Transition
	seen  bloom
}

// Baselines holds per-entity behavioural statistics over ledger-time
// windows. It is a pure fold of the observations given to it.
type Baselines struct {
	cfg      Config
	entities map[string]*baseline
}

// Observation errors.
var (
	ErrOpName   = errors.New("sense: invalid op name")
	ErrDecision = errors.New("sense: unknown decision")
	ErrBytes    = errors.New("sense: bytes out of range")
	ErrTime     = errors.New("sense: observation time out of order")
)

// NewBaselines returns empty baselines under cfg, which must be valid.
func NewBaselines(cfg Config) (*Baselines, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Baselines{cfg: cfg, entities: make(map[string]*baseline)}, nil
}

// Len is the number of entities with a baseline.
func (b *Baselines) Len() int { return len(b.entities) }

func (b *Baselines) established(e *baseline) bool { return e.windows >= b.cfg.MinWindows }

// check validates an observation for entity without changing anything.
func (b *Baselines) check(entity string, ev Observation) error {
	switch {
	case !validName(entity, MaxEntityLen):
		return fmt.Errorf("%w: %q", ErrEntityName, entity)
	case !validName(ev.Op, MaxOpLen):
		return fmt.Errorf("%w: %q", ErrOpName, ev.Op)
	case ev.Decision < DecisionPermit || ev.Decision > DecisionError:
		return fmt.Errorf("%w: %d", ErrDecision, ev.Decision)
	case ev.Bytes < 0 || ev.Bytes > MaxEventBytes:
		return fmt.Errorf("%w: %d, want 0..%d", ErrBytes, ev.Bytes, int64(MaxEventBytes))
	case ev.Time < 0:
		return fmt.Errorf("%w: negative time %d", ErrTime, ev.Time)
	}
	e, ok := b.entities[entity]
	if !ok && len(b.entities) >= int(b.cfg.MaxEntities) {
		return fmt.Errorf("%w: %d baselines", ErrEntityLimit, b.cfg.MaxEntities)
	}
	if ok && ev.Time < e.last {
		return fmt.Errorf("%w: %d before the previous %d of %q", ErrTime, ev.Time, e.last, entity)
	}
	return nil
}

// Observe folds one observation into entity's baseline and returns the
// deviation report of its window afterwards (judged at level lvl) and the
// rise of the window's peak score, counted up to DeviationChargeCap, which
// Trust charges. A rejected observation changes nothing.
func (b *Baselines) Observe(entity string, ev Observation, lvl Level) (Report, int64, error) {
	if err := b.check(entity, ev); err != nil {
		return Report{}, 0, err
	}
	e, ok := b.entities[entity]
	if !ok {
		e = &baseline{}
		b.entities[entity] = e
	}
	b.add(e, ev)
	r := b.report(entity, e, ev.Time, lvl)
	var rise int64
	if r.Score > e.peak {
		rise = min(r.Score, DeviationChargeCap) - min(e.peak, DeviationChargeCap)
		e.peak = r.Score
	}
	return r, rise, nil
}

func (b *Baselines) add(e *baseline, ev Observation) {
	w := floorDiv(ev.Time, b.cfg.WindowNs)
	if e.events > 0 && w != e.window {
		b.fold(e)
	}
	if e.events == 0 {
		e.window = w
	}
	e.last = ev.Time
	prev := e.lastOp
	e.lastOp = ev.Op
	novelOp := !e.seen.has('o', ev.Op, "")
	e.seen.add('o', ev.Op, "")
	novelTr := prev != "" && !e.seen.has('t', prev, ev.Op)
	if prev != "" {
		e.seen.add('t', prev, ev.Op)
		b.countTransition(e, prev, ev.Op)
	}
	if e.events >= maxWindowCount {
		return // the window's counters are full; they stay consistent with each other
	}
	e.events++
	switch ev.Decision {
	case DecisionDeny:
		e.denies++
	case DecisionError:
		e.errors++
	}
	e.bytes = satAdd(e.bytes, ev.Bytes, maxWindowBytes)
	if ev.Effect {
		e.effects++
	}
	if novelOp {
		e.novelOps++
	}
	if prev != "" {
		e.trans++
		if novelTr {
			e.novelTrans++
		}
	}
	i, found := slices.BinarySearchFunc(e.ops, ev.Op, func(o opStat, name string) int { return cmp.Compare(o.name, name) })
	switch {
	case found:
		e.ops[i].win++
	case len(e.ops) < int(b.cfg.MaxOps):
		e.ops = slices.Insert(e.ops, i, opStat{name: ev.Op, win: 1})
	default:
		e.other.win++
	}
}

func compareTransition(t Transition, from, to string) int {
	return cmp.Or(cmp.Compare(t.From, from), cmp.Compare(t.To, to))
}

// countTransition bumps from→to. When the table is full, a new transition
// replaces the entry with the smallest count if that count is 1 (the
// last such entry in (from, to) order); otherwise it is not tracked.
func (b *Baselines) countTransition(e *baseline, from, to string) {
	i, found := slices.BinarySearchFunc(e.tr, from, func(t Transition, f string) int { return compareTransition(t, f, to) })
	if found {
		e.tr[i].Count = satAdd(e.tr[i].Count, 1, maxWindowCount)
		return
	}
	if len(e.tr) >= int(b.cfg.MaxTransitions) {
		victim := -1
		for j := range e.tr {
			if e.tr[j].Count <= 1 {
				victim = j
			}
		}
		if victim < 0 {
			return
		}
		e.tr = slices.Delete(e.tr, victim, victim+1)
		i, _ = slices.BinarySearchFunc(e.tr, from, func(t Transition, f string) int { return compareTransition(t, f, to) })
	}
	e.tr = slices.Insert(e.tr, i, Transition{From: from, To: to, Count: 1})
}

// values are the open window's metric values. Ratios, the op mix and
// transition novelty are shrunk toward the baseline by ShrinkEvents.
func (e *baseline) values() [NumStats]int64 {
	n := e.events
	var v [NumStats]int64
	v[MetricRate] = n * Micro
	v[MetricDenyRatio] = (e.denies*Micro + ShrinkEvents*e.stats[MetricDenyRatio].Mean) / (n + ShrinkEvents)
	v[MetricErrorRatio] = (e.errors*Micro + ShrinkEvents*e.stats[MetricErrorRatio].Mean) / (n + ShrinkEvents)
	v[MetricBytes] = e.bytes
	v[MetricEffects] = e.effects * Micro
	var l1 int64
	for _, o := range e.ops {
		l1 += abs64(o.win*Micro - n*o.share)
	}
	l1 += abs64(e.other.win*Micro - n*e.other.share)
	v[MetricOpMix] = min(l1/(n+ShrinkEvents), 2*Micro)
	v[MetricTransitionNovelty] = (e.novelTrans*Micro + ShrinkEvents*e.stats[MetricTransitionNovelty].Mean) / (e.trans + ShrinkEvents)
	return v
}

// fold closes the open window into the baseline.
func (b *Baselines) fold(e *baseline) {
	num, den := int64(b.cfg.AlphaNum), int64(b.cfg.AlphaDen)
	if n := int64(e.windows) + 1; num*n < den {
		num, den = 1, n // warm-up: the plain mean of the windows so far
	}
	est := b.established(e)
	v := e.values()
	for m := range NumStats {
		st := &e.stats[m]
		x := v[m]
		if est {
			sc := st.scale(Metric(m))
			x = clamp(x, st.Mean-ClipUnits*sc, st.Mean+ClipUnits*sc)
		}
		if e.windows > 0 {
			st.MAD = ewmaStep(st.MAD, abs64(x-st.Mean), num, den)
			st.Up = ewmaStep(st.Up, max(0, x-st.Mean), num, den)
		}
		st.Mean = ewmaStep(st.Mean, x, num, den)
	}
	n := e.events
	kept := e.ops[:0]
	for _, o := range e.ops {
		o.share = ewmaStep(o.share, o.win*Micro/n, num, den)
		o.win = 0
		if o.share > 0 {
			kept = append(kept, o)
		}
	}
	clear(e.ops[len(kept):])
	e.ops = kept
	e.other.share = ewmaStep(e.other.share, e.other.win*Micro/n, num, den)
	e.other.win = 0
	tr := e.tr[:0]
	for _, t := range e.tr {
		if t.Count = t.Count * 7 / 8; t.Count > 0 {
			tr = append(tr, t)
		}
	}
	clear(e.tr[len(tr):])
	e.tr = tr
	if e.novelOps > 0 {
		e.lastNovel = e.window
	}
	if e.windows < ^uint32(0) {
		e.windows++
	}
	e.events, e.denies, e.errors, e.bytes, e.effects = 0, 0, 0, 0, 0
	e.novelOps, e.trans, e.novelTrans, e.peak = 0, 0, 0, 0
}

// Deviation reports entity's deviation at ledger time now under posture
// level lvl. The reported window is the one holding now: if the entity
// has no events in it, every value is 0 and so is the score.
func (b *Baselines) Deviation(entity string, now int64, lvl Level) Report {
	e, ok := b.entities[entity]
	if !ok {
		if lvl >= NumLevels {
			lvl = LevelCritical
		}
		return Report{Entity: entity, Window: floorDiv(now, b.cfg.WindowNs), Level: lvl, Tolerance: b.cfg.Tolerance[lvl]}
	}
	return b.report(entity, e, now, lvl)
}

func (b *Baselines) report(entity string, e *baseline, now int64, lvl Level) Report {
	if lvl >= NumLevels {
		lvl = LevelCritical
	}
	r := Report{
		Entity: entity, Window: floorDiv(now, b.cfg.WindowNs), Known: true,
		Established: b.established(e), Windows: e.windows, Level: lvl, Tolerance: b.cfg.Tolerance[lvl],
	}
	if e.windows > 0 {
		// A young baseline's spread is uncertain: widen the tolerance by
		// MinWindows/windows of itself (×2 when it establishes).
		r.Tolerance += r.Tolerance * int64(b.cfg.MinWindows) / int64(e.windows)
	}
	active := e.events > 0 && r.Window == e.window
	var v [NumStats]int64
	if active {
		r.Events = e.events
		v = e.values()
	}
	for m := range NumStats {
		st := e.stats[m]
		ms := MetricScore{Mean: st.Mean, Scale: st.scale(Metric(m))}
		if active {
			ms.Value = v[m]
			ms.Dev = clamp((v[m]-st.Mean)*100/ms.Scale, -MaxScore, MaxScore)
			if r.Established {
				ms.Score = clamp(ms.Dev-r.Tolerance, 0, MaxScore)
			}
		}
		r.Metrics[m] = ms
	}
	if active {
		nov := &r.Metrics[MetricNovelOps]
		nov.Value, nov.Scale = e.novelOps, 1
		nov.Dev = min(e.novelOps*NovelOpScore, MaxScore)
		if r.Established && r.Window-e.lastNovel > int64(b.cfg.MinWindows) {
			nov.Score = nov.Dev
		}
	}
	for m := range NumMetrics {
		if r.Metrics[m].Score > r.Score {
			r.Score, r.Top = r.Metrics[m].Score, Metric(m)
		}
	}
	r.Escalate = lvl == LevelCritical && r.Score > 0
	return r
}

// OpShare is an op's EWMA share of an entity's windows, in ppm.
type OpShare struct {
	Op    string
	Share int64
}

// Profile is a read-only copy of an entity's baseline, for planners and
// speculation: the metric statistics, op mix (sorted by op; Other is the
// share of ops beyond MaxOps) and transition counts (sorted by From, To;
// counts decay by 1/8 per window).
type Profile struct {
	Entity      string
	Windows     uint32
	Established bool
	Stats       [NumStats]Stat
	Ops         []OpShare
	Other       int64
	Transitions []Transition
}

// Profile returns entity's baseline; ok is false for an unknown entity.
func (b *Baselines) Profile(entity string) (Profile, bool) {
	e, ok := b.entities[entity]
	if !ok {
		return Profile{}, false
	}
	p := Profile{Entity: entity, Windows: e.windows, Established: b.established(e), Stats: e.stats, Other: e.other.share,
		Transitions: slices.Clone(e.tr)}
	for _, o := range e.ops {
		p.Ops = append(p.Ops, OpShare{Op: o.name, Share: o.share})
	}
	return p, true
}

// Forget removes entity's baseline; it reports whether there was one.
func (b *Baselines) Forget(entity string) bool {
	_, ok := b.entities[entity]
	delete(b.entities, entity)
	return ok
}
