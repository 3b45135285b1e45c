package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"

	"github.com/dominus-kernel/dominus/api"
)

// Governed evolution (protocol 8, ProtocolEvolution).
//
// A candidate Cedar set (a new set, or a replacement for the ACTIVE set
// of its name) rolls out in stages, each judged by the ledger itself:
//
//   - shadow: the candidate is evaluated beside every judged syscall and
//     recorded as a shadow outcome (set "ev-N"); the ledger tallies the
//     decisions it would change, by transition, and the entities
//     affected. The phase ends at the first evolve.tick after its window
//     of ledger time once at least MinShadow decisions were judged. A
//     candidate that would relax any decision (deny or escalate to
//     permit, deny to escalate), in the shadow decisions or in the
//     backtest the start recorded, pauses there: only a human's
//     evolve.resume takes it on.
//   - canary: the candidate decides for a deterministic cohort, the
//     entities whose cohortBucket (SHA-256 of the evolution's salt and
//     the entity; the salt is derived from the evolve.start entry's
//     hash) is below the step's weight, and every judged decision
//     records its cohort in the Cedar request it was judged on. Each step
//     lasts one window of ledger time; the evolve.tick that closes it
//     compares the canary cohort with the baseline (evolvestat.go) and
//     records a verdict: successful (the next step, or
//     awaiting_promotion after the last), failed (rolled_back at once:
//     the candidate decides for nobody any more) or inconclusive
//     (paused, until a human resumes or aborts).
//   - awaiting_promotion: the candidate keeps deciding at the last
//     step's weight (as it does at its step's weight while paused after
//     an inconclusive step) until evolve.promote, by a human, installs it
//     as the ACTIVE set of its name, as a new version in the policy
//     history (via the evolution's id). Counting and verdicts happen only
//     in the shadow and canary phases.
//
// At most one evolution is in progress (shadow, canary, paused or
// awaiting_promotion) at a time. Every change of an ACTIVE set from
// protocol 8 on (policy.set, a promotion, policy.rollback) is a version
// in the policy history; policy.rollback reinstalls a kept version as a
// new one. Who may propose each command, and what the ledger checks, is
// in SECURITY.md's command table; all need policy.set on the set's name.

// ProtocolEvolution is the first protocol with governed evolution and
// policy versions.
const ProtocolEvolution uint16 = 8

// Evolution phases (api/evolve.go: lower-case, as the API shows them).
const (
	PhaseShadow            = api.PhaseShadow
	PhaseCanary            = api.PhaseCanary
	PhaseAwaitingPromotion = api.PhaseAwaitingPromotion
	PhasePromoted          = api.PhasePromoted
	PhaseRolledBack        = api.PhaseRolledBack
	PhasePaused            = api.PhasePaused
	PhaseAborted           = api.PhaseAborted
)

// Step verdicts.
const (
	VerdictSuccessful   = "successful"
	VerdictFailed       = "failed"
	VerdictInconclusive = "inconclusive"
)

// Defaults and bounds of an evolution.
const (
	DefaultEvolveWindowNs  = int64(60e9)
	MinEvolveWindowNs      = int64(1e9)
	MaxEvolveWindowNs      = int64(24 * 3600 * 1e9)
	DefaultEvolveMinShadow = 20
	MaxEvolveMinShadow     = 100_000
	MaxEvolveSteps         = 8
	// MaxEvolutions is how many evolutions the state keeps; the oldest
	// finished one leaves first.
	MaxEvolutions = 32
	// MaxEvolveWindowCount bounds a cohort's counted decisions (and
	// effects) in one window; the pooled baseline is halved when it
	// passes twice that, so recent decisions weigh most.
	MaxEvolveWindowCount = 1024
	// MaxShadowEntities bounds the entities a shadow tally names.
	MaxShadowEntities = 32
	// MaxPolicyVersions is how many versions of one set the history
	// keeps (the oldest leaves first); MaxPolicyHistories how many sets.
	MaxPolicyVersions  = 16
	MaxPolicyHistories = 2 * MaxPolicySets
	// MaxEvolveVerdicts bounds one evolution's verdicts (steps, resumes).
	MaxEvolveVerdicts = 64
)

// DefaultEvolveSteps are the canary weights, in percent, without --steps.
var DefaultEvolveSteps = []int64{5, 25, 100}

func init() {
	registerTyped(CmdEvolveStart, typedSpec[EvolveStart]{
		proposer: proposerCaller, op: OpPolicySet, since: (*Ledger).evolution,
		subject: func(_ *Ledger, p *EvolveStart) string { return p.Name },
		run:     applyEvolveStart,
	})
	registerTyped(CmdEvolveTick, typedSpec[EvolveRef]{
		proposer: proposerInternal, actor: "kernel", since: (*Ledger).evolution,
		subject: func(_ *Ledger, p *EvolveRef) string { return p.ID },
		run:     applyEvolveTick,
	})
	for _, t := range []CommandType{CmdEvolvePromote, CmdEvolveAbort, CmdEvolveResume} {
		registerTyped(t, typedSpec[EvolveRef]{
			proposer: proposerCaller, op: OpPolicySet, resourceOf: evolvedSet, since: (*Ledger).evolution,
			subject: func(_ *Ledger, p *EvolveRef) string { return p.ID },
			run:     evolveHumanStep(t),
		})
	}
	registerTyped(CmdPolicyRollback, typedSpec[PolicyRollback]{
		proposer: proposerCaller, op: OpPolicySet, since: (*Ledger).evolution,
		subject: func(_ *Ledger, p *PolicyRollback) string { return p.Name },
		run:     applyPolicyRollback,
	})
}

func (l *Ledger) evolution() bool { return l.st.Meta.Protocol >= ProtocolEvolution }

// EvolveStart begins the staged rollout of Text as the set Name. Steps
// are canary weights in percent, strictly increasing (empty: the
// defaults); WindowNs each step's window of ledger time (0: the
// default); MinShadow the judged decisions shadow needs (0: the
// default). Backtest is what the proposing node's backtest of recent
// history found; it can only hold the candidate in shadow (Relaxations
// above zero), never let it out.
type EvolveStart struct {
	Name      string         `codec:"name"`
	Text      string         `codec:"text"`
	Steps     []int64        `codec:"steps"`
	WindowNs  int64          `codec:"window_ns"`
	MinShadow int64          `codec:"min_shadow"`
	Backtest  EvolveBacktest `codec:"backtest"`
}

// EvolveBacktest summarizes a backtest of the candidate over [From, To].
type EvolveBacktest struct {
	From        uint64 `codec:"from"`
	To          uint64 `codec:"to"`
	Evaluated   int64  `codec:"evaluated"`
	Changed     int64  `codec:"changed"`
	Relaxations int64  `codec:"relaxations"` // changed decisions that a relaxation made
}

// EvolveRef names an evolution (tick, promote, abort, resume).
type EvolveRef struct {
	ID string `codec:"id"`
}

// PolicyRollback reinstalls version Version of set Name as a new version.
type PolicyRollback struct {
	Name    string `codec:"name"`
	Version uint64 `codec:"version"`
}

// EvolveState is the replicated state of governed evolution.
type EvolveState struct {
	Evolutions []Evolution     `codec:"evolutions"` // oldest first
	History    []PolicyHistory `codec:"history"`    // by name
}

// Evolution is one staged rollout.
type Evolution struct {
	ID          string         `codec:"id"` // "ev-SEQ" of its evolve.start
	Name        string         `codec:"name"`
	Text        string         `codec:"text"`
	Steps       []int64        `codec:"steps"`
	WindowNs    int64          `codec:"window_ns"`
	MinShadow   int64          `codec:"min_shadow"`
	Salt        []byte         `codec:"salt"`
	Backtest    EvolveBacktest `codec:"backtest"`
	StartedBy   string         `codec:"started_by"`
	Started     uint64         `codec:"started"`
	Phase       string         `codec:"phase"`
	Step        int64          `codec:"step"` // the canary step in force, or the one a pause resumes
	WindowStart int64          `codec:"window_start"`
	WindowEnd   int64          `codec:"window_end"`
	Relaxed     bool           `codec:"relaxed"`
	Shadow      ShadowTally    `codec:"shadow"`
	Canary      CohortCounts   `codec:"canary"`   // this window's
	Baseline    CohortCounts   `codec:"baseline"` // pooled since the start
	PausedFrom  string         `codec:"paused_from"`
	Verdicts    []StepVerdict  `codec:"verdicts"`
	Closed      uint64         `codec:"closed"` // seq of the event that ended it
	ClosedBy    string         `codec:"closed_by"`
}

// Weight is the canary weight in force, in percent: the step's while a
// canary runs, and while it waits after one (paused after an
// inconclusive step, awaiting promotion after the last), so the cohort
// never flips back and forth while a human decides; 0 otherwise.
func (e *Evolution) Weight() int64 {
	switch {
	case e.Phase == PhaseCanary, e.Phase == PhaseAwaitingPromotion, e.Phase == PhasePaused && e.PausedFrom == PhaseCanary:
	default:
		return 0
	}
	if e.Step < 0 || e.Step >= int64(len(e.Steps)) {
		return 0
	}
	return e.Steps[e.Step]
}

// Finished reports whether the evolution has ended.
func (e *Evolution) Finished() bool {
	switch e.Phase {
	case PhasePromoted, PhaseRolledBack, PhaseAborted:
		return true
	}
	return false
}

// ShadowTally is what the candidate would have changed in shadow.
type ShadowTally struct {
	Judged       int64        `codec:"judged"`
	Changed      int64        `codec:"changed"`
	Transitions  []Transition `codec:"transitions"` // by (from, to)
	Entities     []string     `codec:"entities"`    // sorted, at most MaxShadowEntities
	EntitiesMore bool         `codec:"entities_more"`
}

// Transition counts decisions that changed from From to To.
type Transition struct {
	From  Decision `codec:"from"`
	To    Decision `codec:"to"`
	Count int64    `codec:"count"`
}

// CohortCounts are one cohort's counted outcomes.
type CohortCounts struct {
	Decisions    int64 `codec:"decisions"`
	Deny         int64 `codec:"deny"`
	Escalate     int64 `codec:"escalate"`
	Effects      int64 `codec:"effects"`
	EffectErrors int64 `codec:"effect_errors"`
	DeviationSum int64 `codec:"deviation_sum"`
}

// StepVerdict is the judgement of one phase or step.
type StepVerdict struct {
	Phase   string         `codec:"phase"` // shadow or canary
	Step    int64          `codec:"step"`
	Weight  int64          `codec:"weight"`
	Verdict string         `codec:"verdict"`
	Note    string         `codec:"note"`
	Metrics []MetricResult `codec:"metrics"`
	Shadow  *ShadowTally   `codec:"shadow,omitempty"`
	Seq     uint64         `codec:"seq"`
	Time    int64          `codec:"time"`
}

// MetricResult compares one metric between the cohorts. Rates and P are
// in ppm; P is -1 for a metric judged by its threshold alone.
type MetricResult struct {
	Name      string `codec:"name"`
	Canary    int64  `codec:"canary"`
	Baseline  int64  `codec:"baseline"`
	Threshold int64  `codec:"threshold"`
	Test      string `codec:"test"`
	P         int64  `codec:"p"`
	CanaryN   int64  `codec:"canary_n"`
	BaselineN int64  `codec:"baseline_n"`
	Outcome   string `codec:"outcome"` // pass, fail, inconclusive, no_data
}

// PolicyHistory is the kept versions of one set.
type PolicyHistory struct {
	Name     string          `codec:"name"`
	Last     uint64          `codec:"last"` // the newest version number
	Versions []PolicyVersion `codec:"versions"`
}

// PolicyVersion is one ACTIVE text of a set.
type PolicyVersion struct {
	Version uint64 `codec:"version"`
	Seq     uint64 `codec:"seq"`
	Time    int64  `codec:"time"`
	By      string `codec:"by"`
	Via     string `codec:"via"` // "" (policy.set), an evolution's id, or "rollback:N"
	Text    string `codec:"text"`
}

// EvolveDetail is the event detail of the evolution commands.
type EvolveDetail struct {
	ID      string       `codec:"id"`
	Name    string       `codec:"name"`
	Phase   string       `codec:"phase"` // after the command
	Weight  int64        `codec:"weight"`
	Verdict *StepVerdict `codec:"verdict,omitempty"`
}

func evolutionID(seq uint64) string { return "ev-" + strconv.FormatUint(seq, 10) }

func (l *Ledger) evolveState() *EvolveState {
	if l.st.Evolve == nil {
		l.st.Evolve = &EvolveState{}
	}
	return l.st.Evolve
}

// Evolution returns the evolution id names (nil if none).
func (s *State) Evolution(id string) *Evolution {
	if s.Evolve == nil {
		return nil
	}
	for i := range s.Evolve.Evolutions {
		if s.Evolve.Evolutions[i].ID == id {
			return &s.Evolve.Evolutions[i]
		}
	}
	return nil
}

// CurrentEvolution returns the evolution in progress (nil if none).
func (s *State) CurrentEvolution() *Evolution {
	if s.Evolve == nil {
		return nil
	}
	for i := range s.Evolve.Evolutions {
		if !s.Evolve.Evolutions[i].Finished() {
			return &s.Evolve.Evolutions[i]
		}
	}
	return nil
}

// History returns the kept versions of set name (nil if none).
func (s *State) History(name string) *PolicyHistory {
	if s.Evolve == nil {
		return nil
	}
	for i := range s.Evolve.History {
		if s.Evolve.History[i].Name == name {
			return &s.Evolve.History[i]
		}
	}
	return nil
}

// evolvedSet is the resource an evolution command governs: its set's
// name ("*" for no such evolution, which is not_found once governed).
func evolvedSet(l *Ledger, p *EvolveRef) string {
	if e := l.st.Evolution(p.ID); e != nil {
		return e.Name
	}
	return "*"
}

// validSteps reports whether steps are 1..MaxEvolveSteps weights in
// 1..100, strictly increasing.
func validSteps(steps []int64) bool {
	if len(steps) == 0 || len(steps) > MaxEvolveSteps {
		return false
	}
	for i, w := range steps {
		if w < 1 || w > 100 || (i > 0 && w <= steps[i-1]) {
			return false
		}
	}
	return true
}

func applyEvolveStart(l *Ledger, c *call, p *EvolveStart) outcome {
	st := l.st
	if len(p.Steps) == 0 {
		p.Steps = DefaultEvolveSteps
	}
	if p.WindowNs == 0 {
		p.WindowNs = DefaultEvolveWindowNs
	}
	if p.MinShadow == 0 {
		p.MinShadow = DefaultEvolveMinShadow
	}
	if !validName(p.Name) || p.Text == "" || len(p.Text) > MaxPolicyBytes || !validSteps(p.Steps) ||
		p.WindowNs < MinEvolveWindowNs || p.WindowNs > MaxEvolveWindowNs || p.MinShadow < 1 || p.MinShadow > MaxEvolveMinShadow ||
		p.Backtest.Evaluated < 0 || p.Backtest.Changed < 0 || p.Backtest.Relaxations < 0 {
		return deny(ReasonInvalidArgument)
	}
	if _, err := CompilePolicySet(p.Name, PolicyActive, 0, p.Text); err != nil {
		return deny(ReasonInvalidArgument)
	}
	if cur := st.CurrentEvolution(); cur != nil {
		return deny(ReasonEvolutionActive)
	}
	es := l.evolveState()
	if len(es.Evolutions) >= MaxEvolutions {
		// None is in progress (checked above): the oldest has finished.
		es.Evolutions = append([]Evolution(nil), es.Evolutions[1:]...)
	}
	seq := st.Seq + 1
	salt := sha256.Sum256(append([]byte("dominus-evolve-cohort-v1\x00"), c.pre.sum[:]...))
	e := Evolution{
		ID: evolutionID(seq), Name: p.Name, Text: p.Text, Steps: append([]int64(nil), p.Steps...),
		WindowNs: p.WindowNs, MinShadow: p.MinShadow, Salt: salt[:], Backtest: p.Backtest,
		StartedBy: c.actor, Started: seq, Phase: PhaseShadow, WindowStart: c.now, WindowEnd: c.now + p.WindowNs,
		Relaxed: p.Backtest.Relaxations > 0, Verdicts: []StepVerdict{},
	}
	es.Evolutions = append(es.Evolutions, e)
	c.detail = Encode(&EvolveDetail{ID: e.ID, Name: e.Name, Phase: e.Phase})
	return outcome{decision: DecisionPermit, id: e.ID}
}

// cohortBucket is the entity's place in the evolution's cohort order,
// 0..9999: the first 8 bytes of SHA-256(salt ‖ entity) modulo 10000.
func cohortBucket(salt []byte, entity string) int64 {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(entity))
	var sum [32]byte
	h.Sum(sum[:0])
	return int64(binary.BigEndian.Uint64(sum[:8]) % 10_000)
}

// InCanary reports whether entity is in the evolution's canary cohort
// at the weight in force.
func (e *Evolution) InCanary(entity string) bool {
	return cohortBucket(e.Salt, entity) < e.Weight()*100
}

// openWindow starts a new window at now for the phase and step in force.
func (e *Evolution) openWindow(now int64) {
	e.WindowStart, e.WindowEnd = now, now+e.WindowNs
	e.Canary = CohortCounts{}
}

// Due reports whether an evolve.tick at ledger time now would close the
// evolution's window (the leader proposes one when it is).
func (e *Evolution) Due(now int64) bool {
	switch e.Phase {
	case PhaseShadow:
		return now >= e.WindowEnd && e.Shadow.Judged >= e.MinShadow
	case PhaseCanary:
		return now >= e.WindowEnd
	}
	return false
}

func applyEvolveTick(l *Ledger, c *call, p *EvolveRef) outcome {
	e := l.st.Evolution(p.ID)
	if e == nil {
		return deny(ReasonNotFound)
	}
	if e.Finished() {
		return deny(ReasonEvolutionClosed)
	}
	if !e.Due(c.now) {
		return deny(ReasonNotDue)
	}
	v := StepVerdict{Phase: e.Phase, Step: e.Step, Weight: e.Weight(), Seq: l.st.Seq + 1, Time: c.now}
	if e.Phase == PhaseShadow {
		judgeShadow(e, &v)
	} else {
		judgeCanary(e, &v)
	}
	e.addVerdict(v)
	switch {
	case v.Verdict == VerdictFailed:
		e.Phase, e.Closed, e.ClosedBy = PhaseRolledBack, v.Seq, "kernel"
	case v.Verdict == VerdictInconclusive:
		e.PausedFrom, e.Phase = e.Phase, PhasePaused
	case e.Phase == PhaseShadow:
		e.Phase, e.Step = PhaseCanary, 0
		e.openWindow(c.now)
	case e.Step+1 < int64(len(e.Steps)):
		e.Step++
		e.openWindow(c.now)
	case l.autoPromotes(e):
		// Governance lets the kernel promote this kind of change
		// (limits.set --evolve-auto-promote): installed at this entry.
		if r := l.installVersion(c, e.Name, e.Text, e.ID, AutoPromoteBy); r != ReasonOK {
			e.Phase = PhaseAwaitingPromotion // the set cannot be installed now: a human decides
			v.Note = "automatic promotion refused (" + r.String() + "): awaiting a human"
			e.Verdicts[len(e.Verdicts)-1].Note = v.Note
			break
		}
		e.Phase, e.Closed, e.ClosedBy = PhasePromoted, l.st.Seq+1, AutoPromoteBy
	default:
		e.Phase = PhaseAwaitingPromotion
	}
	c.detail = Encode(&EvolveDetail{ID: e.ID, Name: e.Name, Phase: e.Phase, Weight: e.Weight(), Verdict: &v})
	return outcome{decision: DecisionPermit, id: e.ID}
}

func (e *Evolution) addVerdict(v StepVerdict) {
	if len(e.Verdicts) >= MaxEvolveVerdicts {
		e.Verdicts = append([]StepVerdict(nil), e.Verdicts[1:]...)
	}
	e.Verdicts = append(e.Verdicts, v)
}

// judgeShadow closes the shadow phase: successful unless the candidate
// relaxes a decision, which only a human may accept (inconclusive:
// paused).
func judgeShadow(e *Evolution, v *StepVerdict) {
	tally := e.Shadow
	tally.Transitions = append([]Transition(nil), tally.Transitions...)
	tally.Entities = append([]string(nil), tally.Entities...)
	v.Shadow = &tally
	v.Metrics = []MetricResult{}
	if e.Relaxed {
		v.Verdict, v.Note = VerdictInconclusive, "relaxation: a human must take it out of shadow (evolve resume)"
		return
	}
	v.Verdict = VerdictSuccessful
}

// evolveHumanStep is the handler of promote, abort and resume.
func evolveHumanStep(t CommandType) func(l *Ledger, c *call, p *EvolveRef) outcome {
	return func(l *Ledger, c *call, p *EvolveRef) outcome {
		e := l.st.Evolution(p.ID)
		if e == nil {
			return deny(ReasonNotFound)
		}
		if e.Finished() {
			return deny(ReasonEvolutionClosed)
		}
		switch t {
		case CmdEvolvePromote:
			if e.Phase != PhaseAwaitingPromotion {
				return deny(ReasonNotAwaitingPromotion)
			}
			if r := l.installVersion(c, e.Name, e.Text, e.ID); r != ReasonOK {
				return deny(r)
			}
			e.Phase, e.Closed, e.ClosedBy = PhasePromoted, l.st.Seq+1, c.actor
		case CmdEvolveAbort:
			e.Phase, e.Closed, e.ClosedBy = PhaseAborted, l.st.Seq+1, c.actor
		case CmdEvolveResume:
			if e.Phase != PhasePaused {
				return deny(ReasonNotPaused)
			}
			if e.PausedFrom == PhaseShadow {
				// A human accepts what shadow found (a relaxation).
				e.Step = 0
			}
			e.Phase, e.PausedFrom = PhaseCanary, ""
			e.openWindow(c.now)
		}
		c.detail = Encode(&EvolveDetail{ID: e.ID, Name: e.Name, Phase: e.Phase, Weight: e.Weight()})
		out := outcome{decision: DecisionPermit, id: e.ID, value: []byte(e.Phase)}
		if t == CmdEvolvePromote {
			out.version = l.st.History(e.Name).Last
		}
		return out
	}
}

// AutoPromoteBy is who promoted an evolution that governance let the
// kernel promote (a version's "by", an evolution's closed_by).
const AutoPromoteBy = "kernel (auto-promotion)"

// autoPromotes reports whether governance lets the kernel promote e once
// its last step succeeded: a tightening (nothing relaxed in shadow or in
// its backtest) when the limits allow tightenings.
func (l *Ledger) autoPromotes(e *Evolution) bool {
	return l.st.EffectiveLimits().EvolveAutoPromote == AutoPromoteTightening && !e.Relaxed
}

// installVersion makes text the ACTIVE set name, as a new version of its
// history (via names what installed it, by who: "" is the caller).
func (l *Ledger) installVersion(c *call, name, text, via string, by ...string) Reason {
	st := l.st
	if _, exists := st.Policies[name]; !exists && len(st.Policies) >= MaxPolicySets {
		return ReasonTooLarge
	}
	seq := st.Seq + 1
	who := c.actor
	if len(by) > 0 {
		who = by[0]
	}
	st.Policies[name] = &PolicyRecord{Name: name, Text: text, Mode: PolicyActive, Version: seq, SetBy: who}
	st.PolicyVersion = seq
	l.recordVersion(c, name, text, via, who)
	return ReasonOK
}

// recordVersion appends an ACTIVE text of set name to its history.
func (l *Ledger) recordVersion(c *call, name, text, via string, by ...string) {
	who := c.actor
	if len(by) > 0 {
		who = by[0]
	}
	h := l.historyFor(name)
	if len(h.Versions) >= MaxPolicyVersions {
		h.Versions = append([]PolicyVersion(nil), h.Versions[1:]...)
	}
	h.Last++
	h.Versions = append(h.Versions, PolicyVersion{Version: h.Last, Seq: l.st.Seq + 1, Time: c.now, By: who, Via: via, Text: text})
}

// historyFor returns the history of set name, created (and seeded with
// the ACTIVE text the set had before histories were kept) on first use.
func (l *Ledger) historyFor(name string) *PolicyHistory {
	st := l.st
	if h := st.History(name); h != nil {
		return h
	}
	es := l.evolveState()
	if len(es.History) >= MaxPolicyHistories {
		es.History = dropOldestHistory(es.History, st.Policies)
	}
	h := PolicyHistory{Name: name, Versions: []PolicyVersion{}}
	if rec := st.Policies[name]; rec != nil && rec.Mode == PolicyActive {
		h.Last = 1
		h.Versions = append(h.Versions, PolicyVersion{Version: 1, Seq: rec.Version, By: rec.SetBy, Text: rec.Text})
	}
	at := len(es.History)
	for i := range es.History {
		if es.History[i].Name > name {
			at = i
			break
		}
	}
	es.History = append(es.History, PolicyHistory{})
	copy(es.History[at+1:], es.History[at:])
	es.History[at] = h
	return &es.History[at]
}

// dropOldestHistory removes the history whose newest version is oldest,
// preferring sets no longer installed.
func dropOldestHistory(hs []PolicyHistory, installed map[string]*PolicyRecord) []PolicyHistory {
	victim := -1
	better := func(i int) bool {
		if victim < 0 {
			return true
		}
		_, vi := installed[hs[victim].Name]
		_, ii := installed[hs[i].Name]
		if vi != ii {
			return !ii
		}
		return lastSeq(&hs[i]) < lastSeq(&hs[victim])
	}
	for i := range hs {
		if better(i) {
			victim = i
		}
	}
	return append(hs[:victim:victim], hs[victim+1:]...)
}

func lastSeq(h *PolicyHistory) uint64 {
	if len(h.Versions) == 0 {
		return 0
	}
	return h.Versions[len(h.Versions)-1].Seq
}

func applyPolicyRollback(l *Ledger, c *call, p *PolicyRollback) outcome {
	if !validName(p.Name) {
		return deny(ReasonInvalidArgument)
	}
	h := l.st.History(p.Name)
	if h == nil {
		return deny(ReasonNotFound)
	}
	var text string
	for _, v := range h.Versions {
		if v.Version == p.Version {
			text = v.Text
		}
	}
	if text == "" {
		return deny(ReasonNotFound)
	}
	if r := l.installVersion(c, p.Name, text, "rollback:"+strconv.FormatUint(p.Version, 10)); r != ReasonOK {
		return deny(r)
	}
	c.detail = Encode(&GovernanceDetail{Target: p.Name, Note: "rollback to version " + strconv.FormatUint(p.Version, 10)})
	return outcome{decision: DecisionPermit, version: l.st.History(p.Name).Last}
}

// clone returns a deep copy (DigestLater encodes it outside the lock).
func (es *EvolveState) clone() *EvolveState {
	if es == nil {
		return nil
	}
	var out EvolveState
	if err := Decode(Encode(es), &out); err != nil {
		panic("fsm: evolve state does not round-trip: " + err.Error())
	}
	return &out
}

// validEvolveState checks a restored evolution state against its
// bounds and order: at most one evolution in progress, histories by
// name.
func validEvolveState(es *EvolveState) bool {
	if len(es.Evolutions) > MaxEvolutions || len(es.History) > MaxPolicyHistories {
		return false
	}
	open := 0
	for i := range es.Evolutions {
		e := &es.Evolutions[i]
		if !e.Finished() {
			open++
		}
		if len(e.Verdicts) > MaxEvolveVerdicts || !validSteps(e.Steps) || len(e.Shadow.Entities) > MaxShadowEntities {
			return false
		}
	}
	for i := range es.History {
		if (i > 0 && es.History[i-1].Name >= es.History[i].Name) || len(es.History[i].Versions) > MaxPolicyVersions {
			return false
		}
	}
	return open <= 1
}
