package sense

import (
	"cmp"
	"errors"
	"slices"
	"strings"
)

// Model 2 (fsm protocol 6): tail probabilities per metric, a Bonferroni
// correction, a governed false-alarm target. See doc.go, "Model 2".

// Model-2 constants (protocol: they decide alerts, so changing one needs
// a new rules version).
const (
	MinuteNs = 60_000_000_000 // the model's bucket: one minute of ledger time

	// DefaultAlertsPerDayMilli is the default false-alarm target: 0.1
	// alerts per entity-day at normal posture.
	DefaultAlertsPerDayMilli = 100
	// MaxAlertsPerDayMilli bounds the governed target (1000 per day).
	MaxAlertsPerDayMilli = 1_000_000

	// EstablishedCalls and EstablishedNs: an entity is established (its
	// novelty is scored, and it counts in its peer group) after this many
	// calls and this much ledger time since its first call.
	EstablishedCalls = 64
	EstablishedNs    = 3600 * 1_000_000_000

	// RatioPriorEvents is the beta-binomial prior weight: a ratio over n
	// events counts as n/(1 + n/RatioPriorEvents) independent events.
	RatioPriorEvents = 200
	// ShareHalfLifeNs is the half-life of the recent op counts the op
	// share test compares with the op's learned share.
	ShareHalfLifeNs = 30 * MinuteNs

	// AdaptMarginBits: an outcome or minute within this many bits of the
	// alert threshold is suspicious and is not learned from (Q16 bits).
	AdaptMarginBits = 6 * q16

	// FastDen: the fast scale of the call rate moves 1/FastDen of the way
	// to each minute's count (a time constant of about an hour).
	FastDen = 32
	// HourDen: the hour-of-day profile's EWMA denominator (minutes).
	HourDen = 256
	// DispDen: the 10- and 60-minute dispersions move 1/DispDen of the
	// way to each sample (one every 10 minutes: about 21 hours);
	// DispMinuteDen: the minute dispersion, one sample a minute (about 17
	// hours), long enough to average over the rare bursts of a sparse
	// entity rather than forget them between bursts.
	DispDen       = 128
	DispMinuteDen = 1024
	// YoungOpNs: an op younger than this is judged by its long share.
	YoungOpNs = 60 * MinuteNs
	// ShareFastDen: an op's fast share moves 1/ShareFastDen toward each
	// call (1 for its op, 0 for the others).
	ShareFastDen = 512
	// SizeDen: an op's argument size moves 1/SizeDen toward each call's.
	SizeDen = 128
	// DispPrior is a new entity's dispersion (thousandths).
	DispPrior = 4000

	maxCatchUpMinutes = 1440 // idle minutes folded at most (one day)
	maxPrefixes       = 64   // resource prefixes remembered per entity
	maxPrefixLen      = 64
	maxCount          = 1 << 40
	maxVar            = 1 << 60
	maxSizeForVar     = 1 << 24 // bytes of one call counted in variances
	actWindowNs       = 10_000_000_000
	sizeBuckets       = 84 // half-octaves of call bytes: ⌊2·log₂(bytes+1)⌋
	evidenceLen       = 8
	noveltyRing       = 4
)

// Metrics of model 2 (numbers are protocol; 0..7 are model 1's).
const (
	MetricRate1m      Metric = 8  // calls in the current minute
	MetricRate10m     Metric = 9  // calls in the last 10 minutes
	MetricRate60m     Metric = 10 // calls in the last hour
	MetricDeny10m     Metric = 11 // denies of the last 10 minutes' outcomes
	MetricDeny60m     Metric = 12
	MetricError10m    Metric = 13 // errors and failed effects of the last 10 minutes
	MetricError60m    Metric = 14
	MetricBytes10m    Metric = 15 // argument bytes in the last 10 minutes, against what the calls' ops usually carry
	MetricBytes60m    Metric = 16
	MetricCallBytes   Metric = 17 // argument bytes of this call
	MetricNovelOp     Metric = 18 // an op the entity never used
	MetricNovelRes    Metric = 19 // a resource prefix the entity never touched
	MetricOpShare     Metric = 20 // this op's share of the last ~43 minutes' calls
	MetricActive10m   Metric = 21 // 10-second windows with calls in the last 10 minutes
	MetricActive60m   Metric = 22
	MetricNovelOps60m Metric = 23 // distinct new ops in the last hour
	MetricNovelRes60m Metric = 24 // distinct new resource prefixes in the last hour
	MetricResShare    Metric = 25 // calls on a resource prefix first used within the hour
	MetricDenies10m   Metric = 26 // denies in the last 10 minutes, against the deny ratio × the expected calls
	MetricDenies60m   Metric = 27
	NumModel2Metrics         = 20
	firstModel2              = MetricRate1m
)

var model2Names = [NumModel2Metrics]string{
	"rate_1m", "rate_10m", "rate_60m", "deny_ratio_10m", "deny_ratio_60m", "error_ratio_10m", "error_ratio_60m",
	"bytes_10m", "bytes_60m", "call_bytes", "novel_op", "novel_resource", "op_share", "active_10m", "active_60m", "novel_ops_60m", "novel_resources_60m", "young_resource",
	"denies_10m", "denies_60m",
}

// lgTests is lg(NumModel2Metrics) in Q16: the Bonferroni correction.
var lgTests = lg(NumModel2Metrics)

// PostureTargetPct scales the false-alarm target by posture level:
// relaxed 50 %, normal 100 %, elevated 400 %, critical 1600 %.
var PostureTargetPct = [NumLevels]int64{50, 100, 400, 1600}

// Call is a syscall under evaluation at the gate: Judge scores the
// entity's recent behaviour with this call included.
type Call struct {
	Time     int64  // ledger time, unix ns
	Op       string // the op
	Resource string // the resource; its prefix (up to the first '/' or ':') is what is tracked
	Bytes    int64  // bytes of the arguments, every op
	// Peer names the entity's peer group (its capability shape) and
	// Parent the entity that delegated to it ("" if none): set on the
	// entity's first call, they decide whose history it borrows.
	Peer   string
	Parent string
}

// Outcome is a decided syscall: Observe folds it into the baseline.
type Outcome struct {
	Time     int64
	Op       string
	Resource string
	Decision Decision
	Bytes    int64
	Effect   bool   // an external effect was requested
	Error    bool   // the call or its effect failed
	Seq      uint64 // ledger seq of the event (evidence)
	Peer     string
	Parent   string
}

// Range is an expected range of a metric, in the metric's unit.
type Range struct{ Lo, Hi int64 }

// ErrTarget is returned for an invalid false-alarm target.
var ErrTarget = errors.New("sense: invalid alert target")

// minuteCounts are one minute's (or a bucket's) counts: calls, denies,
// errors, argument bytes, the bytes expected of those calls' ops, their
// variance (bytes²/1024) and that variance weighted by each call's op
// share (bvs: what the error of the learned sizes adds, bytesTest), and
// active 10-second windows.
type minuteCounts struct{ idx, calls, denies, errors, bytes, bexp, bvar, bvs, act int64 }

type op2 struct {
	name   string
	n      int64 // outcomes with this op (decays with entity2.opN)
	fast   int64 // share of recent calls, ppm (EWMA 1/128 per call)
	rec    int64 // recent count, micro, half-life ShareHalfLifeNs
	recT   int64
	since  int64 // time of its first call
	streak int64 // its share of recent calls at its own calls, ppm (EWMA 1/64)
	size   int64 // bytes per call, EWMA 1/SizeDen
	sq     int64 // bytes²/1024 per call, EWMA 1/16
}

// prefix2 is a resource prefix the entity used.
type prefix2 struct {
	name      string
	since     int64 // its first call
	rec, recT int64 // recent calls (as op2.rec)
}

type entity2 struct {
	first, last   int64
	calls         int64 // folded outcomes, saturating
	peer, parent  string
	member        bool // contributes to its peer group
	cur           minuteCounts
	curSuspect    bool // the open minute saw a suspicious outcome: not learned
	curAlerted    bool // trust was charged for this minute
	ring          [10]minuteCounts
	tens          [6]minuteCounts // 10-minute buckets: idx = minute/10
	hour          [24]int64       // calls per minute by hour of day, micro
	hourSeen      uint32
	hourN         [24]uint16 // minutes learned per hour slot, up to HourDen
	excess        [60]int64  // calls per minute above base, by minute of the hour (periodic jobs), micro
	fast          int64      // calls per minute, micro, EWMA 1/16 per minute
	disp          int64      // variance-to-mean of a minute's calls, thousandths (≥ 1000)
	disp10        int64      // of 10 minutes' calls
	disp60        int64      // of 60 minutes' calls
	dispAct       int64      // of 10 minutes' active windows
	actRatio      int64      // active windows per call, ppm (EWMA 1/32 per minute)
	lastWin       int64      // the last 10-second window with a call
	perDay        int64      // expected calls per day (derived: callsPerDay at the last minute close; not encoded)
	suspectBucket int64      // the last 10-minute bucket with a suspicious minute
	sizeMean      int64      // bytes per call, EWMA
	sizeSq        int64      // bytes² per call / 1024, EWMA
	rd, re, rn    int64      // denies, errors, outcomes (halved past 1<<14)
	ops           []op2
	opN           int64
	rec, recT     int64              // all calls, recent (as op2.rec)
	novOps        int64              // novel ops after establishment
	novT, resT    [noveltyRing]int64 // times of the latest novel ops and prefixes
	novRes        int64
	prefixes      []prefix2
	size          [sizeBuckets]int64
	sizeN         int64
	dispN         int64 // samples of the 10-minute dispersions, up to DispDen
	ev            [evidenceLen]uint64
	evT           [evidenceLen]int64
}

type peerAgg struct{ calls, novOps, novRes int64 }

type peerGroup struct {
	all      peerAgg
	byParent map[string]*peerAgg
}

type model2 struct {
	targetMilli int64
	entities    map[string]*entity2
	groups      map[string]*peerGroup
}

func newModel2() *model2 {
	return &model2{targetMilli: DefaultAlertsPerDayMilli, entities: map[string]*entity2{}, groups: map[string]*peerGroup{}}
}

func resourcePrefix(r string) string {
	if i := strings.IndexAny(r, "/:"); i >= 0 {
		r = r[:i]
	}
	if len(r) > maxPrefixLen {
		r = r[:maxPrefixLen]
	}
	return r
}

func sizeBucket(b int64) int {
	if b <= 0 {
		return 0
	}
	// ⌊2·log₂(b+1)⌋ from the Q16 log.
	return int(min(2*lg(b+1)/q16, sizeBuckets-1))
}

// decayTo returns v decayed from t0 to t with half-life h.
func decayTo(v, t0, t, h int64) int64 {
	if t <= t0 || v == 0 {
		return v
	}
	d := t - t0
	if d/h >= 40 {
		return 0
	}
	k := d * 256 / h
	return mulDiv(v>>(k/256), exp2Table[k%256], 1<<30)
}

func (e *entity2) established(now int64) bool {
	return e.calls >= EstablishedCalls && now-e.first >= EstablishedNs
}

// base is the expected calls per minute at minute m without its periodic
// excess: the hour-of-day profile (its mean while the hour is unseen),
// and the fast scale when higher.
func (e *entity2) base(m int64) int64 {
	h := (m / 60) % 24
	var slow int64
	if e.hourSeen&(1<<h) != 0 {
		slow = e.hour[h]
	} else if e.hourSeen != 0 {
		var sum, n int64
		for i := range 24 {
			if e.hourSeen&(1<<i) != 0 {
				sum += e.hour[i]
				n++
			}
		}
		slow = sum / n
	}
	return max(slow, e.fast, Micro/100)
}

// callsPerDay is the entity's expected calls per day from its base
// profile (kept in perDay, refreshed as each minute closes).
func (e *entity2) callsPerDay() int64 {
	var n int64
	for h := range int64(24) {
		n += e.base(h*60) * 60 / Micro
	}
	return n
}

func (e *entity2) expect(m int64) int64 {
	b := e.base(m)
	return b + e.periodic(m, e.noise(b))
}

// noise is the noise level of a minute-of-hour's excess when base is b:
// 1.2 standard deviations of a minute's count (√(b·D)) — an EWMA of 1/4
// has a spread of 0.38 of it, so a slot only counts as a periodic job
// when its excess stands three of its own spreads above noise.
func (e *entity2) noise(b int64) int64 {
	return isqrt2(mulDiv(b, max(e.disp, 1000), 1000)) * 1200
}

// periodic is the learned excess of minute m's slot above its noise.
func (e *entity2) periodic(m, noise int64) int64 { return max(0, e.excess[m%60]-noise) }

// expectSum is Σ expect(m) for m in [from, to].
func (e *entity2) expectSum(from, to int64) int64 {
	var s int64
	for h := from / 60; h <= to/60; h++ {
		lo, hi := max(from, h*60), min(to, h*60+59)
		b := e.base(lo)
		nz := e.noise(b)
		s += b * (hi - lo + 1)
		for m := lo; m <= hi; m++ {
			s += e.periodic(m, nz)
		}
	}
	return s
}

// closeMinute folds the open minute and the idle minutes up to (not
// including) minute now into the profiles.
func (e *entity2) closeMinute(now int64) {
	c := e.cur
	e.ring[c.idx%10] = c
	t := &e.tens[(c.idx/10)%6]
	if t.idx != c.idx/10 {
		*t = minuteCounts{idx: c.idx / 10}
	}
	t.calls += c.calls
	t.denies += c.denies
	t.errors += c.errors
	t.bytes = min(t.bytes+c.bytes, maxCount)
	t.bexp = min(t.bexp+c.bexp, maxCount)
	t.bvar = min(t.bvar+c.bvar, maxVar)
	t.bvs = min(t.bvs+c.bvs, maxVar)
	t.act += c.act
	e.learnMinute(c.idx, c.calls*Micro, e.curSuspect)
	if !e.curSuspect && c.calls > 0 {
		e.actRatio = ewmaStep(e.actRatio, c.act*Micro/c.calls, 1, 32)
	}
	if e.curSuspect {
		e.suspectBucket = c.idx / 10
	}
	if (c.idx+1)%10 == 0 {
		e.learnBuckets(c.idx / 10)
	}
	idle := min(now-c.idx-1, maxCatchUpMinutes)
	for m := now - idle; m < now; m++ {
		e.learnMinute(m, 0, false)
		if (m+1)%10 == 0 {
			e.learnBuckets(m / 10)
		}
	}
	e.cur = minuteCounts{idx: now}
	e.perDay = e.callsPerDay()
	e.curSuspect, e.curAlerted = false, false
}

// learnMinute folds one minute's calls (micro) into the hour-of-day
// profile, the periodic excess, the fast scale and the dispersion. The
// value learned is clipped to 2×expected + 1 call, so one burst moves the
// profiles by a bounded step.
func (e *entity2) learnMinute(m, c int64, suspect bool) {
	lam := e.expect(m)
	b := e.base(m)
	if e.calls >= EstablishedCalls {
		e.disp = learnDisp(e.disp, c, lam, DispMinuteDen)
	}
	// A suspicious minute teaches only the spread and its minute of the
	// hour (a job that recurs at the same minute every hour becomes
	// expected), not the rate profiles.
	e.excess[m%60] = ewmaStep(e.excess[m%60], max(c-b, -b), 1, 4)
	if suspect {
		return
	}
	// The periodic excess is learned apart; the base profiles learn the
	// rest, clipped so one burst moves them by a bounded step.
	cb := max(0, c-e.periodic(m, e.noise(b)))
	x := min(cb, b+4*isqrt2(mulDiv(b, max(e.disp, 1000), 1000))*1000+Micro)
	h := (m / 60) % 24
	// The hour-of-day profile is the slow scale: a plain mean over the
	// slot's first HourDen minutes, then an EWMA of 1/HourDen (about four
	// days of that hour).
	e.hourN[h] = min(e.hourN[h]+1, HourDen)
	if e.hourSeen&(1<<h) == 0 {
		e.hour[h] = x
		e.hourSeen |= 1 << h
	} else {
		e.hour[h] = ewmaStep(e.hour[h], x, 1, int64(e.hourN[h]))
	}
	// The fast scale follows drift: it moves 1/FastDen of the way to each
	// minute's count, counted up to 1.5× the base, so it can grow by at
	// most 1/(2·FastDen) a minute (×3 in about 70 minutes).
	e.fast = ewmaStep(e.fast, min(cb, b*3/2), 1, FastDen)
}

// maxDispSample bounds one sample of a dispersion (thousandths): 10^5,
// far above what a burst of a sparse entity gives ((c−λ)²/λ of 10 calls
// against 0.01 is 10^4), so the estimate is not biased low for them.
const maxDispSample = 100_000 * 1000

// learnDisp folds one count c against its expectation lam (micro) into
// a variance-to-mean ratio (thousandths, EWMA 1/DispDen).
func learnDisp(disp, c, lam, den int64) int64 {
	r := (c - lam) / 1000 // milli-calls
	d := clamp(r*r/max(lam/1000, 1), 1000, maxDispSample)
	return max(1000, ewmaStep(disp, d, 1, den))
}

// learnBuckets folds the 10-minute bucket b, and the hour ending with it,
// into the dispersions of the 10- and 60-minute counts (unless a minute
// of them was suspicious).
func (e *entity2) learnBuckets(b int64) {
	if e.calls < EstablishedCalls {
		return
	}
	var c10, c60, a10 int64
	for _, t := range e.tens {
		if t.idx == b {
			c10 = t.calls * Micro
			a10 = t.act * Micro
		}
		if t.idx > b-6 && t.idx <= b {
			c60 += t.calls * Micro
		}
	}
	lam := e.expectSum(b*10, b*10+9)
	// A plain mean of DispPrior (as one sample) and the samples until
	// there are DispDen of them, then the EWMA: otherwise the prior kept
	// half its weight a day after a sparse entity was established.
	e.dispN = min(e.dispN+1, DispDen)
	den := min(e.dispN+1, DispDen)
	e.disp10 = learnDisp(e.disp10, c10, lam, den)
	e.dispAct = learnDisp(e.dispAct, a10, mulDiv(lam, e.actRatio, Micro), den)
	e.disp60 = learnDisp(e.disp60, c60, e.expectSum(b*10-50, b*10+9), den)
}

func (e *entity2) opIndex(op string) (int, bool) {
	return slices.BinarySearchFunc(e.ops, op, func(o op2, n string) int { return cmp.Compare(o.name, n) })
}

// sumRing sums the closed minutes in [from, to] kept in the minute ring
// (the last ten).
func (e *entity2) sumRing(from, to int64) minuteCounts {
	var s minuteCounts
	for _, c := range e.ring {
		if c.calls > 0 && c.idx >= from && c.idx <= to {
			s.add(c)
		}
	}
	return s
}

// sumTens sums the 10-minute buckets lying wholly in [from, to].
func (e *entity2) sumTens(from, to int64) minuteCounts {
	var s minuteCounts
	for _, t := range e.tens {
		if t.calls > 0 && t.idx*10 >= from && t.idx*10+9 <= to {
			s.add(t)
		}
	}
	return s
}

func (s *minuteCounts) add(c minuteCounts) {
	s.calls += c.calls
	s.denies += c.denies
	s.errors += c.errors
	s.bytes = min(s.bytes+c.bytes, maxCount)
	s.bexp = min(s.bexp+c.bexp, maxCount)
	s.bvar = min(s.bvar+c.bvar, maxVar)
	s.bvs = min(s.bvs+c.bvs, maxVar)
	s.act += c.act
}
