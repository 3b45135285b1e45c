package fsm

import (
	"sort"
	"strings"
)

// The gate's side of governed evolution (evolve.go): which sets decide a
// judged call, what is recorded beside it, and the counts each verdict
// is judged on.

// Thresholds of a canary step's analysis (evolvestat.go). A rate metric
// fails when the canary's rate exceeds the baseline's by more than
// EvolveRateThresholdPPM and Fisher's one-sided p is at most
// EvolveAlphaPPM; it is inconclusive when it exceeds the threshold
// without significance. Mean deviation is judged by its threshold
// alone (deviation scores are not counts).
const (
	EvolveRateThresholdPPM    = 50_000 // 5 percentage points
	EvolveAlphaPPM            = 50_000 // p <= 0.05
	EvolveDeviationThreshold  = 100    // sense deviation score units
	EvolveMinCanaryDecisions  = 5      // fewer in a window: inconclusive
	TestFisherOneSided        = "fisher_exact_one_sided"
	TestThreshold             = "threshold"
	MetricDenyRate            = "deny_rate"
	MetricEscalationRate      = "escalation_rate"
	MetricEffectErrorRate     = "effect_error_rate"
	MetricMeanDeviation       = "mean_deviation"
	metricPass                = "pass"
	metricFail                = "fail"
	metricInconclusive        = "inconclusive"
	metricNoData              = "no_data"
	cohortCanary, cohortBasis = "canary", "baseline"
)

// evolving is the evolution whose candidate the gate consults (in
// shadow, or deciding for a cohort: Weight above 0), nil when none.
func (l *Ledger) evolving() *Evolution {
	if !l.evolution() {
		return nil
	}
	e := l.st.CurrentEvolution()
	if e == nil || (e.Phase != PhaseShadow && e.Weight() == 0) {
		return nil
	}
	return e
}

// candidateSets are the ACTIVE sets with e's candidate in place of the
// set of its name, in name order; rebuilt only when the policies or the
// evolution change.
func (l *Ledger) candidateSets(e *Evolution) []*CompiledSet {
	active := l.setsFor(PolicyActive)
	if l.evSetsOK && l.evSetsID == e.ID && l.evSetsVersion == l.st.PolicyVersion {
		return l.evSets
	}
	cs, err := CompilePolicySet(e.Name, PolicyActive, e.Started, e.Text)
	if err != nil {
		// Only candidates that compiled were started: an evaluation error.
		cs = &CompiledSet{name: e.Name, mode: PolicyActive, version: e.Started, entries: []policyEntry{{id: e.Name + "/unparseable"}}}
	}
	out := make([]*CompiledSet, 0, len(active)+1)
	placed := false
	for _, s := range active {
		if s.name == e.Name {
			continue
		}
		if !placed && s.name > e.Name {
			out, placed = append(out, cs), true
		}
		out = append(out, s)
	}
	if !placed {
		out = append(out, cs)
	}
	l.evSets, l.evSetsID, l.evSetsVersion, l.evSetsOK = out, e.ID, l.st.PolicyVersion, true
	return out
}

// gateSets returns the sets that judge entity's call, and marks the
// request with its cohort while a canary runs.
func (l *Ledger) gateSets(e *Evolution, entity string, req *CedarRequest) (sets []*CompiledSet, canary bool) {
	if e == nil || e.Weight() == 0 {
		return l.setsFor(PolicyActive), false
	}
	canary = e.InCanary(entity)
	if canary {
		req.Cohort = e.ID + ":" + cohortCanary
		return l.candidateSets(e), true
	}
	req.Cohort = e.ID + ":" + cohortBasis
	return l.setsFor(PolicyActive), false
}

// evolveObserve records a judged call for evolution e: in shadow, the
// candidate's would-be outcome beside the decision (and what it would
// change); in both phases, the decision in its cohort's counts. decided
// is the sets' own decision, final the policy stage's (with a
// deviation escalation).
func (l *Ledger) evolveObserve(e *Evolution, d *SyscallDetail, entity string, canary bool, decided Decision, now int64) {
	final := d.Policy.Decision
	if e.Phase == PhaseShadow {
		out := EvaluatePolicies(l.candidateSets(e), d.Request, l.st.Meta.Protocol)
		d.Shadow = append(d.Shadow, ShadowOutcome{Set: e.ID, Outcome: out})
		e.Shadow.observe(entity, decided, out.Decision)
		if relaxes(decided, out.Decision) {
			e.Relaxed = true
		}
		e.Baseline.count(final, d.Request.Deviation)
		e.Baseline.decay()
		return
	}
	if e.Phase != PhaseCanary {
		return // waiting for a human: the cohort holds, nothing is counted
	}
	if canary {
		if now < e.WindowEnd && e.Canary.Decisions < MaxEvolveWindowCount {
			e.Canary.count(final, d.Request.Deviation)
		}
		return
	}
	e.Baseline.count(final, d.Request.Deviation)
	e.Baseline.decay()
}

// evolveEffect counts a completed effect of entity in its cohort.
func (l *Ledger) evolveEffect(entity string, failed bool, now int64) {
	e := l.evolving()
	if e == nil || (e.Phase != PhaseShadow && e.Phase != PhaseCanary) {
		return
	}
	cc := &e.Baseline
	if e.Phase == PhaseCanary && e.InCanary(entity) {
		if now >= e.WindowEnd || e.Canary.Effects >= MaxEvolveWindowCount {
			return
		}
		cc = &e.Canary
	}
	cc.Effects++
	if failed {
		cc.EffectErrors++
	}
	cc.decay()
}

func (cc *CohortCounts) count(d Decision, deviation int64) {
	cc.Decisions++
	switch d {
	case DecisionDeny:
		cc.Deny++
	case DecisionEscalate:
		cc.Escalate++
	}
	cc.DeviationSum += max(0, min(deviation, 1<<20))
}

// decay halves the pooled counts past twice MaxEvolveWindowCount, so
// they stay bounded and recent decisions weigh most.
func (cc *CohortCounts) decay() {
	if cc.Decisions > 2*MaxEvolveWindowCount {
		cc.Decisions, cc.Deny, cc.Escalate, cc.DeviationSum = cc.Decisions/2, cc.Deny/2, cc.Escalate/2, cc.DeviationSum/2
	}
	if cc.Effects > 2*MaxEvolveWindowCount {
		cc.Effects, cc.EffectErrors = cc.Effects/2, cc.EffectErrors/2
	}
}

// strictness orders decisions: permit < escalate < deny.
func strictness(d Decision) int {
	switch d {
	case DecisionEscalate:
		return 1
	case DecisionDeny:
		return 2
	}
	return 0
}

// relaxes reports whether changing from to to is a relaxation: a deny
// or escalation that would be permitted, or a deny that would be
// escalated.
func relaxes(from, to Decision) bool { return strictness(to) < strictness(from) }

// observe tallies one shadow decision.
func (t *ShadowTally) observe(entity string, from, to Decision) {
	t.Judged++
	if from == to {
		return
	}
	t.Changed++
	i := sort.Search(len(t.Transitions), func(i int) bool {
		x := t.Transitions[i]
		return x.From > from || (x.From == from && x.To >= to)
	})
	if i < len(t.Transitions) && t.Transitions[i].From == from && t.Transitions[i].To == to {
		t.Transitions[i].Count++
	} else {
		t.Transitions = append(t.Transitions, Transition{})
		copy(t.Transitions[i+1:], t.Transitions[i:])
		t.Transitions[i] = Transition{From: from, To: to, Count: 1}
	}
	j := sort.SearchStrings(t.Entities, entity)
	if j < len(t.Entities) && t.Entities[j] == entity {
		return
	}
	if len(t.Entities) >= MaxShadowEntities {
		t.EntitiesMore = true
		return
	}
	t.Entities = append(t.Entities, "")
	copy(t.Entities[j+1:], t.Entities[j:])
	t.Entities[j] = entity
}

// judgeCanary judges a canary window: the canary's counts of this
// window against the pooled baseline.
func judgeCanary(e *Evolution, v *StepVerdict) {
	cn, bl := e.Canary, e.Baseline
	v.Metrics = []MetricResult{
		judgeRate(MetricDenyRate, cn.Deny, cn.Decisions, bl.Deny, bl.Decisions),
		judgeRate(MetricEscalationRate, cn.Escalate, cn.Decisions, bl.Escalate, bl.Decisions),
		judgeRate(MetricEffectErrorRate, cn.EffectErrors, cn.Effects, bl.EffectErrors, bl.Effects),
		judgeDeviation(cn, bl),
	}
	var failed, unsure []string
	for _, m := range v.Metrics {
		switch m.Outcome {
		case metricFail:
			failed = append(failed, m.Name)
		case metricInconclusive:
			unsure = append(unsure, m.Name)
		}
	}
	switch {
	case len(failed) > 0:
		v.Verdict, v.Note = VerdictFailed, "breached: "+strings.Join(failed, ", ")
	case cn.Decisions < EvolveMinCanaryDecisions:
		v.Verdict, v.Note = VerdictInconclusive, "too few canary decisions in the window"
	case len(unsure) > 0:
		v.Verdict, v.Note = VerdictInconclusive, "above threshold without significance: "+strings.Join(unsure, ", ")
	default:
		v.Verdict = VerdictSuccessful
	}
}

// judgeRate judges a rate metric: a bad of n1 canary, b of n2 baseline.
func judgeRate(name string, a, n1, b, n2 int64) MetricResult {
	m := MetricResult{Name: name, Canary: ratePPM(a, n1), Baseline: ratePPM(b, n2), Threshold: EvolveRateThresholdPPM,
		Test: TestFisherOneSided, P: PPM, CanaryN: n1, BaselineN: n2}
	if n1 == 0 {
		m.Outcome = metricNoData
		return m
	}
	m.P = fisherGreaterPPM(a, n1, b, n2)
	worse := m.Canary-m.Baseline > m.Threshold
	switch {
	case worse && m.P <= EvolveAlphaPPM:
		m.Outcome = metricFail
	case worse, n1 < EvolveMinCanaryDecisions:
		m.Outcome = metricInconclusive
	default:
		m.Outcome = metricPass
	}
	return m
}

// judgeDeviation judges the mean deviation by its threshold.
func judgeDeviation(cn, bl CohortCounts) MetricResult {
	mean := func(c CohortCounts) int64 {
		if c.Decisions == 0 {
			return 0
		}
		return c.DeviationSum / c.Decisions
	}
	m := MetricResult{Name: MetricMeanDeviation, Canary: mean(cn), Baseline: mean(bl), Threshold: EvolveDeviationThreshold,
		Test: TestThreshold, P: -1, CanaryN: cn.Decisions, BaselineN: bl.Decisions}
	worse := m.Canary-m.Baseline > m.Threshold
	switch {
	case cn.Decisions == 0:
		m.Outcome = metricNoData
	case worse && cn.Decisions >= EvolveMinCanaryDecisions:
		m.Outcome = metricFail
	case worse, cn.Decisions < EvolveMinCanaryDecisions:
		m.Outcome = metricInconclusive
	default:
		m.Outcome = metricPass
	}
	return m
}
