package sense

import "fmt"

// MaxResourceLen bounds the resource of a Call or Outcome (bytes).
const MaxResourceLen = 4096

// pending is what a scored call adds to the entity's open minute.
type pending struct {
	op, resource string
	bytes        int64
	decided      bool // deny and err are known (Observe); Judge scores before the decision
	peek         bool // no call: the entity's recent behaviour as it stands (Deviation)
	deny, err    bool
}

// Judge scores entity's recent behaviour with the call under evaluation
// included (the gate's read): the first anomalous call carries its own
// deviation. It learns nothing from the call; it may roll the entity's
// open minute forward to the call's minute, as Observe at that time would.
// An invalid call, or one before the entity's last outcome, yields a
// Report with Err set.
func (s *Sensor) Judge(entity string, c Call) Report {
	lvl := s.posture.Level()
	if err := checkCall(entity, c.Op, c.Resource, c.Bytes, c.Time, c.Peer, c.Parent); err != nil {
		return Report{Entity: entity, Call: c, Level: lvl, Err: err}
	}
	m := s.model()
	e := m.entities[entity]
	if e == nil {
		return Report{Entity: entity, Call: c, Level: lvl, Window: floorDiv(c.Time, MinuteNs)}
	}
	if c.Time < e.last {
		return Report{Entity: entity, Call: c, Level: lvl, Err: fmt.Errorf("%w: %d before the previous %d of %q", ErrTime, c.Time, e.last, entity)}
	}
	e.roll(c.Time)
	r := m.score(entity, e, c.Time, pending{op: c.Op, resource: c.Resource, bytes: c.Bytes}, lvl)
	r.Call = c
	return r
}

// Observe folds a decided call into entity's baseline and trust and
// returns its report (the outcome included). Report.Alert charges trust
// once per minute. A call scored suspicious (within AdaptMarginBits of an
// alert) is counted but not learned: a sustained attack does not become
// the baseline. A rejected outcome (invalid field, time before the
// entity's last, or an entity beyond MaxEntities) changes nothing and
// yields a Report with Err set.
func (s *Sensor) Observe(entity string, o Outcome) Report {
	lvl := s.posture.Level()
	c := Call{Time: o.Time, Op: o.Op, Resource: o.Resource, Bytes: o.Bytes, Peer: o.Peer, Parent: o.Parent}
	fail := func(err error) Report { return Report{Entity: entity, Call: c, Level: lvl, Err: err} }
	if err := checkCall(entity, o.Op, o.Resource, o.Bytes, o.Time, o.Peer, o.Parent); err != nil {
		return fail(err)
	}
	if o.Decision < DecisionPermit || o.Decision > DecisionError {
		return fail(fmt.Errorf("%w: %d", ErrDecision, o.Decision))
	}
	m := s.model()
	e := m.entities[entity]
	if e == nil {
		if len(m.entities) >= int(s.cfg.MaxEntities) {
			return fail(fmt.Errorf("%w: %d baselines", ErrEntityLimit, s.cfg.MaxEntities))
		}
	} else if o.Time < e.last {
		return fail(fmt.Errorf("%w: %d before the previous %d of %q", ErrTime, o.Time, e.last, entity))
	}
	if !s.trust.admits(entity) {
		return fail(fmt.Errorf("%w: %d trust entities", ErrEntityLimit, s.cfg.MaxEntities))
	}
	if e == nil {
		e = &entity2{first: o.Time, last: o.Time, peer: o.Peer, parent: o.Parent, disp: DispPrior, disp10: DispPrior, disp60: DispPrior, dispAct: DispPrior,
			actRatio: Micro, lastWin: -1, suspectBucket: -1 << 40,
			cur: minuteCounts{idx: floorDiv(o.Time, MinuteNs)}}
		m.entities[entity] = e
	}
	e.roll(o.Time)
	p := pending{op: o.Op, resource: o.Resource, bytes: o.Bytes, decided: true,
		deny: o.Decision == DecisionDeny, err: o.Error || o.Decision == DecisionError}
	r := m.score(entity, e, o.Time, p, lvl)
	r.Call = c
	m.fold(entity, e, o, p, r)
	var rise int64
	if r.Alert && !e.curAlerted {
		e.curAlerted = true
		rise = 100
	}
	d := o.Decision
	if p.err {
		d = DecisionError
	}
	if _, err := s.trust.Observe(entity, d, rise, lvl); err != nil {
		panic("sense: trust failed after check: " + err.Error())
	}
	return r
}

func checkCall(entity, op, resource string, bytes, t int64, peer, parent string) error {
	switch {
	case !validName(entity, MaxEntityLen):
		return fmt.Errorf("%w: %q", ErrEntityName, entity)
	case !validName(op, MaxOpLen):
		return fmt.Errorf("%w: %q", ErrOpName, op)
	case len(resource) > MaxResourceLen:
		return fmt.Errorf("%w: resource of %d bytes, want at most %d", ErrOpName, len(resource), MaxResourceLen)
	case bytes < 0 || bytes > MaxEventBytes:
		return fmt.Errorf("%w: %d, want 0..%d", ErrBytes, bytes, int64(MaxEventBytes))
	case t < 0:
		return fmt.Errorf("%w: negative time %d", ErrTime, t)
	case len(peer) > MaxEntityLen || len(parent) > MaxEntityLen:
		return fmt.Errorf("%w: peer or parent longer than %d bytes", ErrEntityName, MaxEntityLen)
	}
	return nil
}

func (s *Sensor) model() *model2 {
	if s.m2 == nil {
		s.m2 = newModel2()
	}
	return s.m2
}

// roll moves the entity's open minute to the minute of t.
func (e *entity2) roll(t int64) {
	if m := floorDiv(t, MinuteNs); m > e.cur.idx {
		e.closeMinute(m)
	}
}

// test is one metric's tail under model 2.
type test struct {
	metric   Metric
	bits     int64 // surprise, Q16 bits
	observed int64
	expected Range // for rangeFixed; otherwise computed by expectedRange
	kind     uint8
	a, b     int64 // count: λ and dispersion; ratio: p and effective events
	mul, div int64 // count: the range is scaled by mul/div
	horizon  int64 // minutes of evidence
}

// score judges entity's open minute with p included.
func (m *model2) score(entity string, e *entity2, now int64, p pending, lvl Level) Report {
	if lvl >= NumLevels {
		lvl = LevelCritical
	}
	r := Report{Entity: entity, Window: floorDiv(now, MinuteNs), Known: true, Established: e.established(now), Level: lvl,
		Windows: uint32(min(e.calls, 1<<31)), Events: e.cur.calls + 1}
	thrWin, thrCall, thrMin := m.thresholds(e, lvl)
	best, bestThr := test{bits: -1}, int64(0)
	consider := func(t test) {
		thr := thrWin
		switch {
		case t.perCall():
			thr = thrCall
		case t.perMinute():
			thr = thrMin
		}
		if best.bits < 0 || t.bits-thr > best.bits-bestThr {
			best, bestThr = t, thr
		}
	}
	if r.Established {
		e.rateTests(now, p, consider)
	}
	if !p.peek {
		e.callTests(m, entity, now, p, r.Established, consider)
	}
	if best.bits < 0 {
		r.Threshold = thrWin * 1000 / q16
		return r
	}
	thr := bestThr
	r.Threshold = thr * 1000 / q16
	r.Metric = best.metric
	r.Observed = best.observed
	r.Expected = best.expectedRange()
	r.P = probOf(best.bits)
	r.Surprise = best.bits * 1000 / q16
	// Score (the gate's deviation) is graded: centibits of surprise above
	// the suspicion level (AdaptMarginBits below the alert threshold), so
	// a suspicious call carries a non-zero deviation before it alerts.
	if best.bits > thr-AdaptMarginBits {
		r.Score = clamp((best.bits-thr+AdaptMarginBits)*100/q16, 1, MaxScore)
	}
	if r.Established && !p.peek && (!e.knowsOp(p.op) || !e.hasPrefix(resourcePrefix(p.resource))) {
		r.Score = max(r.Score, 1) // a never-seen op or resource is a deviation, alert or not
	}
	if best.bits > thr {
		r.Alert = true
		r.Score = max(r.Score, AdaptMarginBits*100/q16+1)
		r.Top = best.metric
		r.Escalate = lvl == LevelCritical
		r.Evidence = e.evidence(now - best.horizon*MinuteNs)
	}
	r.suspect = best.bits > thr-AdaptMarginBits
	return r
}

// thresholds are the surprises (Q16 bits) a metric's tail must exceed to
// alert: lg(tests per day) + lg(NumModel2Metrics) − lg(target per day ×
// posture factor), the Bonferroni bound on false alarms per entity-day.
// A test happens only at a call: a window metric is tested at most once
// per call and, its windows overlapping, about once a minute (tests per
// day: the entity's expected calls per day, between 24 and 1440); a call
// metric once per call (its expected calls per day, at least 24). A
// metric that only grows within a minute (perMinute) alerts in a minute
// if and only if its last test of the minute does, so its tests per day
// are the minutes with calls, at most the active 10-second windows
// (expected calls × actRatio): fewer than calls for a bursty entity.
func (m *model2) thresholds(e *entity2, lvl Level) (window, call, minute int64) {
	perDay := e.perDay
	target := max(1, m.targetMilli*PostureTargetPct[lvl]/100)
	fixed := lgTests - lg(target) + lg(1000)
	minutes := mulDiv(perDay, clamp(e.actRatio, 1, Micro), Micro)
	return lg(clamp(perDay, 24, 1440)) + fixed, lg(max(perDay, 24)) + fixed, lg(clamp(minutes, 24, 1440)) + fixed
}

// perCall reports whether the metric is a property of the call itself
// (tested once per call) rather than of a window (tested at most once per
// call and, in effect, once per minute).
func (t test) perCall() bool {
	switch t.metric {
	case MetricCallBytes, MetricNovelOp, MetricNovelRes, MetricOpShare, MetricResShare:
		return true
	}
	return false
}

// perMinute reports whether the metric is a window count whose expected
// value and dispersion are fixed within a minute (they learn at the
// minute's close), so that each call of the minute can only raise its
// surprise: the calls and the active 10-second windows. Bytes (each call
// also adds expected bytes), ratios and denies (the deny ratio learns at
// each call) are not.
func (t test) perMinute() bool {
	switch t.metric {
	case MetricRate1m, MetricRate10m, MetricRate60m, MetricActive10m, MetricActive60m:
		return true
	}
	return false
}

func (e *entity2) evidence(since int64) []uint64 {
	var out []uint64
	for i := range evidenceLen {
		j := (int(e.calls) + i) % evidenceLen // oldest first
		if e.ev[j] != 0 && e.evT[j] >= since {
			out = append(out, e.ev[j])
		}
	}
	return out
}

// rateTests scores the count and ratio metrics over 1, 10 and 60 minutes.
func (e *entity2) rateTests(now int64, p pending, consider func(test)) {
	M := floorDiv(now, MinuteNs)
	x := e.cur
	if !p.peek {
		x.add(e.callCounts(now, p)) // the call is scored before it is folded
	}
	undecided := int64(1)
	if p.decided || p.peek {
		undecided = 0
	}
	disp := max(e.disp, 1000)
	lam1 := e.expect(M)
	consider(countTest(MetricRate1m, x.calls*Micro, lam1, max(disp, e.disp10), 1))

	s10 := e.sumRing(M-9, M-1)
	s10.add(x)
	lam10 := e.expectSum(M-9, M)
	consider(countTest(MetricRate10m, s10.calls*Micro, lam10, max(disp, e.disp10), 10))

	tensLo := floorDiv(M-60+9, 10) * 10
	tensHi := floorDiv(M-10, 10)*10 - 1
	s60 := e.sumRing(M-10, M-1)
	s60.add(x)
	lam60 := e.expectSum(M-10, M)
	if tensLo <= tensHi {
		s60.add(e.sumTens(tensLo, tensHi))
		lam60 += e.expectSum(tensLo, tensHi)
	}
	consider(countTest(MetricRate60m, s60.calls*Micro, lam60, max(disp, e.disp10, e.disp60), 60))

	pd := (e.rd*Micro + 20_000*32) / (e.rn + 32)
	pe := (e.re*Micro + 20_000*32) / (e.rn + 32)
	consider(ratioTest(MetricDeny10m, s10.denies, s10.calls-undecided, pd, 10))
	consider(ratioTest(MetricDeny60m, s60.denies, s60.calls-undecided, pd, 60))
	consider(ratioTest(MetricError10m, s10.errors, s10.calls-undecided, pe, 10))
	consider(ratioTest(MetricError60m, s60.errors, s60.calls-undecided, pe, 60))
	// Denies per unit of time: the ratio tests above are blind to a
	// rise of calls that brings its own denials (probing).
	consider(thinnedTest(MetricDenies10m, s10.denies*Micro, lam10, pd, max(disp, e.disp10), 10))
	consider(thinnedTest(MetricDenies60m, s60.denies*Micro, lam60, pd, max(disp, e.disp10, e.disp60), 60))

	consider(bytesTest(MetricBytes10m, s10, 10))
	consider(bytesTest(MetricBytes60m, s60, 60))
	a := max(e.actRatio, Micro/100)
	consider(countTest(MetricActive10m, s10.act*Micro, mulDiv(lam10, a, Micro), max(e.dispAct, 1000), 10))
	consider(countTest(MetricActive60m, s60.act*Micro, mulDiv(lam60, a, Micro), max(e.dispAct, 1000), 60))
}

// bytesTest compares the bytes of the calls in s with what their ops
// usually carry: a compound count in units of 64 bytes whose
// variance-to-mean ratio is the calls' size variance over their expected
// bytes, widened for the error of the expected sizes themselves. An op's
// expected size is an EWMA of weight 1/SizeDen, about as uncertain as a
// mean of 2·SizeDen calls, and its error is common to all of the op's
// calls in the horizon: with n calls, n·share of them the op's, it adds
// (n·share)²·σ²/(2·SizeDen) to the variance of the sum, that is
// n·Σ(share·σ²)/(2·SizeDen) over the calls (bvs). It is what keeps a
// dense entity's hour of ordinary bytes, whose sampling spread is a few
// percent, from alerting on the learned sizes' own few percent of error.
func bytesTest(m Metric, s minuteCounts, horizon int64) test {
	const unit = 64
	if s.bexp <= 0 {
		return test{metric: m, horizon: horizon}
	}
	v := min(s.bvar+mulDiv(s.bvs, min(s.calls, maxCount), 2*SizeDen), maxVar)
	disp := clamp(mulDiv(v, 1024*1000, s.bexp*unit), 1000, 1000*1000)
	t := countTest(m, mulDiv(s.bytes, Micro, unit), mulDiv(s.bexp, Micro, unit), disp, horizon)
	t.observed = s.bytes
	t.mul, t.div = unit, Micro
	return t
}

// callCounts is what one call adds to the open minute.
func (e *entity2) callCounts(now int64, p pending) minuteCounts {
	c := minuteCounts{calls: 1, bytes: p.bytes}
	if p.decided && p.deny {
		c.denies = 1
	}
	if p.decided && p.err {
		c.errors = 1
	}
	if floorDiv(now, actWindowNs) != e.lastWin {
		c.act = 1
	}
	mean, sq, share := e.sizeMean, e.sizeSq, int64(0)
	if i, ok := e.opIndex(p.op); ok && e.ops[i].n >= 4 {
		mean, sq = e.ops[i].size, e.ops[i].sq
		share = mulDiv(e.ops[i].n, Micro, max(e.opN, 1))
	}
	c.bexp = max(mean, 1)
	c.bvar = max(sq-mean*mean/1024, mean*mean*9/4096, 1) // a spread of at least 1.5 means
	c.bvs = mulDiv(c.bvar, min(share, Micro), Micro)
	return c
}

// Kinds of expected range.
const (
	rangeFixed = iota
	rangeCount // λ ± 2√(λ·D), scaled by mul/div
	rangeRatio // p ± 2√(p(1−p)/n)
)

// expectedRange is the test's expected range, computed only for the
// metric a report names.
func (t test) expectedRange() Range {
	switch t.kind {
	case rangeCount:
		sd := isqrt2(mulDiv(t.a, t.b, 1000)) * 1000 // √(λ·D) in micro-units
		return Range{mulDiv(max(0, t.a-2*sd), t.mul, t.div), mulDiv(t.a+2*sd, t.mul, t.div)}
	case rangeRatio:
		sd := isqrt2(t.a * (Micro - t.a) / max(t.b, 1))
		return Range{max(0, t.a-2*sd), min(Micro, t.a+2*sd)}
	}
	return t.expected
}

func countTest(m Metric, c, lam, disp, horizon int64) test {
	return test{metric: m, bits: countBits(c, lam, disp), observed: c, kind: rangeCount, a: lam, b: disp, mul: 1, div: 1, horizon: horizon}
}

// thinnedTest is a count of the calls of one kind, share of them (ppm),
// against share × λ expected calls whose dispersion is disp: a random
// thinning of a negative binomial keeps its size r = λ/(D−1), so the
// count is a negative binomial of mean μ = share·λ and the same r
// (thinnedBits), with variance-to-mean 1 + share·(D−1).
func thinnedTest(m Metric, c, lam, share, disp, horizon int64) test {
	mu := mulDiv(lam, min(share, Micro), Micro)
	return test{metric: m, bits: thinnedBits(c, lam, mu, disp), observed: c, kind: rangeCount, a: mu, b: thinnedDisp(disp, share),
		mul: 1, div: 1, horizon: horizon}
}

func ratioTest(m Metric, k, n, p, horizon int64) test {
	if n <= 0 {
		return test{metric: m, bits: 0, horizon: horizon}
	}
	neff := max(1, n*RatioPriorEvents/(RatioPriorEvents+n))
	return test{metric: m, bits: binomBits(k*Micro, n*Micro, p, RatioPriorEvents), observed: k * Micro / n,
		kind: rangeRatio, a: p, b: neff, horizon: horizon}
}

// callTests scores the call itself: its bytes, its op and its resource.
func (e *entity2) callTests(m *model2, entity string, now int64, p pending, established bool, consider func(test)) {
	if e.sizeN >= 32 {
		consider(e.sizeTest(p.bytes))
	}
	i, known := e.opIndex(p.op)
	if established {
		pc, pn, pr := m.peer(entity, e)
		n := decayTo(e.rec, e.recT, now, ShareHalfLifeNs) + Micro // recent calls, this one included
		if !known && len(e.ops) < maxOps2 {
			consider(noveltyTest(MetricNovelOp, e.calls+pc, e.novOps+pn))
			consider(noveltyBurst(MetricNovelOps60m, e.novT, now, e.calls+pc, e.novOps+pn, n))
		}
		if pre := resourcePrefix(p.resource); !e.hasPrefix(pre) && len(e.prefixes) < maxPrefixes {
			consider(noveltyTest(MetricNovelRes, e.calls+pc, e.novRes+pr))
			consider(noveltyBurst(MetricNovelRes60m, e.resT, now, e.calls+pc, e.novRes+pr, n))
		}
		if j := e.prefixIndex(resourcePrefix(p.resource)); j >= 0 && now-e.prefixes[j].since < YoungOpNs && e.calls > 0 {
			// A young resource prefix, like a young op, is judged by an
			// eighth of a pseudo-call among the entity's calls.
			x := e.prefixes[j]
			k := decayTo(x.rec, x.recT, now, ShareHalfLifeNs) + Micro
			t := countTest(MetricResShare, k, mulDiv(Micro/8, n, (e.calls+1)*Micro), max(e.disp, 1000), 43)
			t.observed = mulDiv(k, Micro, max(n, 1))
			consider(t)
		}
		if known && e.opN > 0 {
			o := e.ops[i]
			k := decayTo(o.rec, o.recT, now, ShareHalfLifeNs) + Micro
			// The op's learned share, with an eighth of a pseudo-call.
			// The op's recent count against its share of the recent calls,
			// as a quasi-Poisson count (ops come in runs: the minute
			// dispersion). The share is the largest of the long share
			// (an eighth of a pseudo-call), the fast share (drift of the
			// mix) and the streak share (runs such as batch jobs); an op
			// first used within YoungOpNs has only the pseudo-call, so a
			// new op cannot teach its own share while it is abused.
			share := max((o.n*Micro+Micro/8)/(e.opN+1), o.fast, o.streak, 1)
			disp := max(e.disp, 1000)
			if now-o.since < YoungOpNs {
				share = max(Micro/8/(e.opN+1), 1)
				disp = thinnedDisp(e.disp, share)
			}
			t := countTest(MetricOpShare, k, mulDiv(share, n, Micro), disp, 43)
			t.observed = mulDiv(k, Micro, max(n, 1))
			t.mul, t.div = Micro, max(n, 1)
			consider(t)
		}
	}
}

const maxOps2 = 64 // ops tracked per entity in model 2

// thinnedDisp is the dispersion of the calls of one op, share of them
// (ppm), when the entity's calls have dispersion disp (thousandths): a
// count thinned at random keeps 1 + share·(D−1) of its overdispersion,
// so a rare op's count is nearly Poisson however bursty the entity is.
// It is used for a young op (first called within YoungOpNs), judged by
// its pseudo-share alone; an established op keeps the entity's D, since
// its share adapts to drift of the mix and runs of one op are the
// streak share's to expect.
func thinnedDisp(disp, share int64) int64 {
	d := max(disp, 1000)
	return 1000 + mulDiv(d-1000, min(share, Micro), Micro)
}

// noveltyTest is the Good-Turing tail of a never-seen op or resource: the
// share of the entity's and its peers' calls (after establishment) that
// used one for the first time, with an eighth of a pseudo-novelty.
func noveltyTest(m Metric, calls, novel int64) test {
	return test{metric: m, bits: lg(8*(calls+1)) - lg(8*novel+1), observed: 1}
}

// noveltyBurst scores the distinct novelties of the last hour, this one
// included, as a Poisson count: the novelty rate (as in noveltyTest) times
// the entity's recent calls n (micro). A second or third new op within
// the hour is far rarer than one.
func noveltyBurst(m Metric, times [noveltyRing]int64, now, calls, novel, n int64) test {
	k := int64(1)
	for _, t := range times {
		if t != 0 && now-t < 60*MinuteNs {
			k++
		}
	}
	lam := mulDiv(n, 8*novel+1, 8*(calls+1))
	t := countTest(m, k*Micro, lam, 1000, 60)
	if k < 2 {
		t.bits = 0
	}
	return t
}

func (e *entity2) knowsOp(op string) bool {
	_, ok := e.opIndex(op)
	return ok
}

func (e *entity2) hasPrefix(p string) bool { return e.prefixIndex(p) >= 0 }

func (e *entity2) prefixIndex(p string) int {
	for i := range e.prefixes {
		if e.prefixes[i].name == p {
			return i
		}
	}
	return -1
}

// sizeTest is the empirical tail of the call's bytes among the entity's
// calls (half-octave histogram, one pseudo-call), extrapolated by
// halving per half-octave beyond the largest bucket seen.
func (e *entity2) sizeTest(b int64) test {
	k := sizeBucket(b)
	var tail int64
	top := 0
	for i := range sizeBuckets {
		if e.size[i] > 0 {
			top = i
			if i >= k {
				tail += e.size[i]
			}
		}
	}
	bits := lg(e.sizeN+1) - lg(tail+1)
	if tail == 0 && k > top+1 {
		bits += int64(k-top-1) * q16
	}
	return test{metric: MetricCallBytes, bits: max(bits, 0), observed: b, expected: Range{0, bucketTop(top)}, horizon: 0}
}

func bucketTop(k int) int64 {
	v := int64(1) << ((k + 1) / 2)
	if (k+1)%2 == 1 {
		v = v * 1448 / 1024
	}
	return v
}

// peer returns the calls and novelty counts of entity's peer group, less
// its own and its delegates'.
func (m *model2) peer(entity string, e *entity2) (calls, novOps, novRes int64) {
	g := m.groups[e.peer]
	if g == nil || e.peer == "" {
		return 0, 0, 0
	}
	a := g.all
	if e.member {
		a.calls -= e.calls
		a.novOps -= e.novOps
		a.novRes -= e.novRes
	}
	if d := g.byParent[entity]; d != nil {
		a.calls -= d.calls
		a.novOps -= d.novOps
		a.novRes -= d.novRes
	}
	return max(a.calls, 0), max(a.novOps, 0), max(a.novRes, 0)
}

// fold learns one outcome (r is its report).
func (m *model2) fold(entity string, e *entity2, o Outcome, p pending, r Report) {
	wasEst := e.established(o.Time)
	e.last = o.Time
	e.cur.add(e.callCounts(o.Time, p))
	e.lastWin = floorDiv(o.Time, actWindowNs)
	if r.suspect {
		e.curSuspect = true
	}
	slot := int(e.calls) % evidenceLen
	e.ev[slot], e.evT[slot] = o.Seq, o.Time
	var dOps, dRes int64
	dCalls := min(e.calls+1, maxCount) - e.calls
	e.calls += dCalls

	e.rec = decayTo(e.rec, e.recT, o.Time, ShareHalfLifeNs) + Micro
	e.recT = o.Time
	i, known := e.opIndex(o.Op)
	if !known && len(e.ops) < maxOps2 {
		e.ops = append(e.ops, op2{})
		copy(e.ops[i+1:], e.ops[i:])
		e.ops[i] = op2{name: o.Op, since: o.Time}
		known = true
		if wasEst {
			e.novOps++
			dOps = 1
			copy(e.novT[1:], e.novT[:])
			e.novT[0] = o.Time
		}
	}
	pre := resourcePrefix(o.Resource)
	j := e.prefixIndex(pre)
	if j < 0 && len(e.prefixes) < maxPrefixes {
		j = len(e.prefixes)
		e.prefixes = append(e.prefixes, prefix2{name: pre, since: o.Time})
		if wasEst {
			e.novRes++
			dRes = 1
			copy(e.resT[1:], e.resT[:])
			e.resT[0] = o.Time
		}
	}
	if j >= 0 {
		x := &e.prefixes[j]
		x.rec = decayTo(x.rec, x.recT, o.Time, ShareHalfLifeNs) + Micro
		x.recT = o.Time
	}
	if known {
		op := &e.ops[i]
		op.rec = decayTo(op.rec, op.recT, o.Time, ShareHalfLifeNs) + Micro
		op.recT = o.Time
		if !r.suspect && e.rec > 0 {
			// The op's share of recent calls when it is called: an op
			// used in streaks (a batch job) is expected to dominate the
			// recent calls while it runs.
			op.streak = ewmaStep(op.streak, mulDiv(op.rec, Micro, e.rec), 1, 64)
		}
	}
	if !r.suspect {
		e.learnCall(i, known, o, p)
	}
	// Sizes learn from every call: leaving out the suspicious (large)
	// ones would bias the expected bytes low; the 4× clip of each sample
	// is what keeps exfiltration from teaching itself quickly.
	e.learnSize(i, known, o)
	m.joinPeers(entity, e, o.Time, dCalls, dOps, dRes)
}

// learnCall folds a non-suspicious outcome into the ratios and op shares.
func (e *entity2) learnCall(i int, known bool, o Outcome, p pending) {
	e.rn++
	if p.deny {
		e.rd++
	}
	if p.err {
		e.re++
	}
	if e.rn > 1<<14 {
		e.rn, e.rd, e.re = e.rn/2, e.rd/2, e.re/2
	}
	if known {
		e.ops[i].n++
		e.opN++
		for j := range e.ops {
			// fast share: EWMA 1/ShareFastDen per call
			x := int64(0)
			if j == i {
				x = Micro
			}
			e.ops[j].fast = ewmaStep(e.ops[j].fast, x, 1, ShareFastDen)
		}
		if e.opN > 1<<14 {
			e.opN = 0
			for j := range e.ops {
				e.ops[j].n /= 2
				e.opN += e.ops[j].n
			}
		}
	}
}

// learnSize folds the call's argument bytes into the size histogram and
// the entity's and the op's size moments.
func (e *entity2) learnSize(i int, known bool, o Outcome) {
	k := sizeBucket(o.Bytes)
	e.size[k]++
	e.sizeN++
	if e.sizeN > 1<<12 {
		e.sizeN = 0
		for j := range e.size {
			e.size[j] /= 2
			e.sizeN += e.size[j]
		}
	}
	b := min(o.Bytes, maxSizeForVar)
	if e.sizeN == 1 {
		e.sizeMean, e.sizeSq = b, b*b/1024
	} else {
		e.sizeMean = ewmaStep(e.sizeMean, b, 1, 64)
		e.sizeSq = ewmaStep(e.sizeSq, b*b/1024, 1, 64)
	}
	if known {
		// Per-op sizes: a plain mean over the first SizeDen calls, then
		// an EWMA of 1/SizeDen; from the 16th call each sample is clipped
		// to 4× the mean, so larger arguments are learned only slowly.
		op := &e.ops[i]
		if op.n > 16 {
			b = min(b, 4*op.size+64)
		}
		den := min(op.n, SizeDen)
		if op.n <= 1 {
			op.size, op.sq = b, b*b/1024
		} else {
			op.size = ewmaStep(op.size, b, 1, den)
			op.sq = ewmaStep(op.sq, b*b/1024, 1, den)
		}
	}
}

// forget drops entity's model-2 state and its share of its peer group.
func (m *model2) forget(entity string) bool {
	e := m.entities[entity]
	if e == nil {
		return false
	}
	if e.member {
		if g := m.groups[e.peer]; g != nil {
			g.all.calls -= e.calls
			g.all.novOps -= e.novOps
			g.all.novRes -= e.novRes
			if d := g.byParent[e.parent]; d != nil {
				d.calls -= e.calls
				d.novOps -= e.novOps
				d.novRes -= e.novRes
			}
		}
	}
	delete(m.entities, entity)
	return true
}

// joinPeers adds the entity to its peer group once established, and its
// later calls and novelties to the group's totals.
func (m *model2) joinPeers(entity string, e *entity2, now, dCalls, dOps, dRes int64) {
	if e.peer == "" {
		return
	}
	if !e.member {
		if !e.established(now) {
			return
		}
		e.member = true
		dCalls, dOps, dRes = e.calls, e.novOps, e.novRes
	}
	g := m.groups[e.peer]
	if g == nil {
		g = &peerGroup{byParent: map[string]*peerAgg{}}
		m.groups[e.peer] = g
	}
	g.all.calls += dCalls
	g.all.novOps += dOps
	g.all.novRes += dRes
	if e.parent != "" && e.parent != entity {
		d := g.byParent[e.parent]
		if d == nil {
			d = &peerAgg{}
			g.byParent[e.parent] = d
		}
		d.calls += dCalls
		d.novOps += dOps
		d.novRes += dRes
	}
}

// AlertTarget is the governed false-alarm target in alerts per
// entity-day, thousandths.
func (s *Sensor) AlertTarget() int64 {
	if s.m2 == nil {
		return DefaultAlertsPerDayMilli
	}
	return s.m2.targetMilli
}

// SetAlertTarget sets the false-alarm target (1..MaxAlertsPerDayMilli
// thousandths of an alert per entity-day) and returns the previous one.
// An invalid value returns ErrTarget and changes nothing.
func (s *Sensor) SetAlertTarget(milli int64) (int64, error) {
	if milli < 1 || milli > MaxAlertsPerDayMilli {
		return 0, fmt.Errorf("%w: %d thousandths per entity-day, want 1..%d", ErrTarget, milli, MaxAlertsPerDayMilli)
	}
	m := s.model()
	prev := m.targetMilli
	m.targetMilli = milli
	return prev, nil
}
