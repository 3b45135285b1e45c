package fsm

import (
	"fmt"
	"math"
	"testing"
)

const (
	evoBase = `forbid(principal, action, resource) when { resource.path like "secret/*" };`
	// evoRegression also forbids every kv.put on orders/*: a canary
	// cohort under it is denied what the baseline is permitted.
	evoRegression = evoBase + "\n" + `forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/*" };`
	// evoHarmless forbids what nobody asks for: it changes no decision.
	evoHarmless = evoBase + "\n" + `forbid(principal, action, resource) when { resource.path like "archive/*" };`
	// evoRelaxed drops the base's forbid: a deny becomes a permit.
	evoRelaxed = `forbid(principal, action, resource) when { resource.path like "vault/*" };`
	evoAgents  = 200
	evoWindow  = int64(10e9)
)

// evoWorld is a ledger with agents, an ACTIVE "base" set, and helpers
// that drive an evolution through ledger time.
type evoWorld struct {
	*recordingGate
	t *testing.T
}

func newEvoWorld(t *testing.T) *evoWorld {
	t.Helper()
	w := &evoWorld{recordingGate: newRecordingGate(t, ProtocolEvolution), t: t}
	for i := range evoAgents {
		w.grant(evoAgent(i), []string{"kv.*"}, []string{"*"}, 0)
	}
	mustPermitted(t, "base policy", w.as(testRootToken[:], CmdPolicySet, &PolicySet{Name: "base", Text: evoBase, Mode: PolicyActive}))
	return w
}

func evoAgent(i int) string { return fmt.Sprintf("agent-%02d", i) }

func (w *evoWorld) start(text string, steps []int64, minShadow int64) string {
	w.t.Helper()
	a := w.as(testRootToken[:], CmdEvolveStart, &EvolveStart{Name: "base", Text: text, Steps: steps, WindowNs: evoWindow, MinShadow: minShadow})
	mustPermitted(w.t, "evolve.start", a)
	return a.Result.ID
}

func (w *evoWorld) evo(id string) *Evolution {
	e := w.State().Evolution(id)
	if e == nil {
		w.t.Fatalf("no evolution %s", id)
	}
	return e
}

// put is one agent's kv.put on path.
func (w *evoWorld) put(i int, path string) Applied {
	return w.as(tokenHash(evoAgent(i)), CmdSyscall, &Syscall{Op: "kv.put", Resource: path, Args: []byte("v")})
}

// traffic has every agent put once, and the canary cohort (if any) put
// until it made at least minCanary decisions in the window.
func (w *evoWorld) traffic(id string, minCanary int) {
	w.t.Helper()
	for i := range evoAgents {
		w.put(i, fmt.Sprintf("orders/%d", i))
	}
	e := w.evo(id)
	for round := 0; e.Phase == PhaseCanary && int(e.Canary.Decisions) < minCanary && round < 50; round++ {
		for i := range evoAgents {
			if e.InCanary(evoAgent(i)) {
				w.put(i, fmt.Sprintf("orders/%d", i))
			}
		}
	}
}

// tick proposes evolve.tick at the end of the evolution's window, as
// the leader does.
func (w *evoWorld) tick(id string) Applied {
	e := w.evo(id)
	if e.WindowEnd > w.now {
		w.now = e.WindowEnd
	}
	return w.rec(env(CmdEvolveTick, "", nil, w.gateLedger.tick(), &EvolveRef{ID: id}))
}

func (w *evoWorld) human(ct CommandType, id string) Applied {
	return w.as(testRootToken[:], ct, &EvolveRef{ID: id})
}

func (w *evoWorld) lastVerdict(id string) StepVerdict {
	e := w.evo(id)
	if len(e.Verdicts) == 0 {
		w.t.Fatalf("%s has no verdict", id)
	}
	return e.Verdicts[len(e.Verdicts)-1]
}

// A cohort is a function of the salt and the entity, and its size
// follows the weight: for 10,000 entities at each weight, the count is
// within four standard deviations of the binomial mean, for several
// salts; two salts choose different cohorts.
func TestCohortDeterministicAndWithinBinomialTolerance(t *testing.T) {
	const n = 10_000
	for _, seed := range []string{"a", "b", "c"} {
		salt := tokenHash("salt " + seed)
		for _, weight := range []int64{1, 5, 25, 50, 100} {
			e := &Evolution{Salt: salt, Phase: PhaseCanary, Steps: []int64{weight}}
			in := 0
			for i := range n {
				entity := fmt.Sprintf("entity-%d", i)
				got := e.InCanary(entity)
				if got != e.InCanary(entity) {
					t.Fatalf("cohort of %s is not deterministic", entity)
				}
				if got {
					in++
				}
			}
			p := float64(weight) / 100
			mean, sd := n*p, math.Sqrt(n*p*(1-p))
			if math.Abs(float64(in)-mean) > 4*sd+0.5 {
				t.Errorf("salt %s weight %d%%: %d of %d in the cohort, want %.0f ± %.0f", seed, weight, in, n, mean, 4*sd)
			}
		}
	}
	// Cohorts nest: an entity in the 5 % cohort is in the 25 % one.
	a := &Evolution{Salt: tokenHash("salt a"), Phase: PhaseCanary, Steps: []int64{5, 25}}
	b := &Evolution{Salt: tokenHash("salt b"), Phase: PhaseCanary, Steps: []int64{25}}
	differ := 0
	for i := range 1000 {
		entity := fmt.Sprintf("entity-%d", i)
		a.Step = 0
		small := a.InCanary(entity)
		a.Step = 1
		if small && !a.InCanary(entity) {
			t.Fatalf("%s in the 5%% cohort but not the 25%% one", entity)
		}
		if a.InCanary(entity) != b.InCanary(entity) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("two salts chose the same 25% cohort of 1000 entities")
	}
}

// Every replica derives the same salt and cohort from the evolve.start
// entry; another entry (another request id) gives another salt.
func TestCohortSaltFromTheStartEntry(t *testing.T) {
	w1, w2 := newEvoWorld(t), newEvoWorld(t)
	id1, id2 := w1.start(evoHarmless, nil, 10), w2.start(evoHarmless, nil, 10)
	if id1 != id2 || string(w1.evo(id1).Salt) != string(w2.evo(id2).Salt) {
		t.Fatal("the same entries gave different salts")
	}
	w3 := newEvoWorld(t)
	w3.now += 5 // another stamp: another entry
	if id3 := w3.start(evoHarmless, nil, 10); string(w3.evo(id3).Salt) == string(w1.evo(id1).Salt) {
		t.Fatal("another start entry gave the same salt")
	}
}

// An injected regression (the candidate denies kv.put on orders/*) is
// shadowed, goes to canary at 25 %, and is rolled back by the tick that
// closes that window: the verdict names deny_rate, with its p-value
// below alpha, and afterwards the cohort is judged by the base again.
// Each decision in the canary records its cohort.
func TestInjectedRegressionRollsBackWithinOneWindow(t *testing.T) {
	w := newEvoWorld(t)
	id := w.start(evoRegression, []int64{25, 100}, 20)
	w.traffic(id, 0)
	if e := w.evo(id); e.Shadow.Judged != evoAgents || e.Shadow.Changed != evoAgents || e.Relaxed {
		t.Fatalf("shadow tally %+v relaxed %v", e.Shadow, e.Relaxed)
	}
	mustPermitted(t, "tick closing shadow", w.tick(id))
	if e := w.evo(id); e.Phase != PhaseCanary || e.Weight() != 25 {
		t.Fatalf("after shadow: %s at %d%%", e.Phase, e.Weight())
	}
	// The cohort is recorded in each decision's Cedar request.
	canaryAgent, baselineAgent := -1, -1
	for i := range evoAgents {
		if w.evo(id).InCanary(evoAgent(i)) {
			canaryAgent = i
		} else {
			baselineAgent = i
		}
	}
	if canaryAgent < 0 || baselineAgent < 0 {
		t.Fatal("fixture: the 25% cohort of the agents is empty or everyone")
	}
	a := w.put(canaryAgent, "orders/x")
	expect(t, a, DecisionDeny, ReasonPolicyForbid)
	if d := syscallDetail(t, a); d.Request.Cohort != id+":canary" {
		t.Fatalf("canary decision records cohort %q", d.Request.Cohort)
	}
	b := w.put(baselineAgent, "orders/x")
	expect(t, b, DecisionPermit, ReasonOK)
	if d := syscallDetail(t, b); d.Request.Cohort != id+":baseline" {
		t.Fatalf("baseline decision records cohort %q", d.Request.Cohort)
	}
	w.traffic(id, 10)
	// Not before the window ends.
	early := w.rec(env(CmdEvolveTick, "", nil, w.gateLedger.tick(), &EvolveRef{ID: id}))
	expect(t, early, DecisionDeny, ReasonNotDue)
	expect(t, w.tick(id), DecisionPermit, ReasonOK)
	e := w.evo(id)
	if e.Phase != PhaseRolledBack || e.Closed == 0 {
		t.Fatalf("after the canary window: %s", e.Phase)
	}
	v := w.lastVerdict(id)
	if v.Verdict != VerdictFailed || v.Weight != 25 {
		t.Fatalf("verdict %+v", v)
	}
	m := v.Metrics[0]
	if m.Name != MetricDenyRate || m.Outcome != metricFail || m.Canary != PPM || m.Baseline != 0 || m.P > EvolveAlphaPPM || m.Test != TestFisherOneSided {
		t.Fatalf("deny_rate %+v", m)
	}
	// Rolled back: the canary agent is judged by the base again.
	expect(t, w.put(canaryAgent, "orders/y"), DecisionPermit, ReasonOK)
	if d := syscallDetail(t, w.put(canaryAgent, "orders/z")); d.Request.Cohort != "" {
		t.Fatalf("after the rollback a decision records cohort %q", d.Request.Cohort)
	}
	if w.State().Policies["base"].Text != evoBase {
		t.Fatal("the rollback changed the ACTIVE set")
	}
}

func syscallDetail(t *testing.T, a Applied) SyscallDetail {
	t.Helper()
	var d SyscallDetail
	if a.Event == nil || Decode(a.Event.Detail, &d) != nil {
		t.Fatalf("no syscall detail in %+v", a.Result)
	}
	return d
}

// A harmless candidate passes shadow and every step and waits for a
// human; the promotion installs it as version 2 of "base" (version 1
// is the text it replaced), and policy.rollback reinstalls version 1
// as version 3.
func TestPassingCandidateWaitsForAHumanAndIsVersioned(t *testing.T) {
	w := newEvoWorld(t)
	id := w.start(evoHarmless, []int64{5, 25, 100}, 20)
	w.traffic(id, 0)
	mustPermitted(t, "shadow", w.tick(id))
	for _, weight := range []int64{5, 25, 100} {
		if e := w.evo(id); e.Phase != PhaseCanary || e.Weight() != weight {
			t.Fatalf("want canary at %d%%, have %s at %d%%", weight, e.Phase, e.Weight())
		}
		w.traffic(id, 10)
		mustPermitted(t, fmt.Sprint("tick at ", weight), w.tick(id))
		if v := w.lastVerdict(id); v.Verdict != VerdictSuccessful {
			t.Fatalf("step %d%%: %+v", weight, v)
		}
	}
	if e := w.evo(id); e.Phase != PhaseAwaitingPromotion {
		t.Fatalf("after the last step: %s", e.Phase)
	}
	expect(t, w.tick(id), DecisionDeny, ReasonNotDue)
	if w.State().Policies["base"].Text != evoBase {
		t.Fatal("the candidate was installed without a human")
	}
	// While it waits, the candidate keeps deciding at the last weight.
	if d := syscallDetail(t, w.put(0, "orders/wait")); d.Request.Cohort != id+":canary" {
		t.Fatalf("awaiting promotion, a decision records cohort %q", d.Request.Cohort)
	}
	p := w.human(CmdEvolvePromote, id)
	expect(t, p, DecisionPermit, ReasonOK)
	if p.Result.Version != 2 || w.State().Policies["base"].Text != evoHarmless || w.evo(id).Phase != PhasePromoted {
		t.Fatalf("promotion: version %d, phase %s", p.Result.Version, w.evo(id).Phase)
	}
	h := w.State().History("base")
	if h == nil || len(h.Versions) != 2 || h.Versions[0].Text != evoBase || h.Versions[1].Via != id || h.Versions[1].By != RootOperatorName {
		t.Fatalf("history %+v", h)
	}
	r := w.as(testRootToken[:], CmdPolicyRollback, &PolicyRollback{Name: "base", Version: 1})
	expect(t, r, DecisionPermit, ReasonOK)
	h = w.State().History("base")
	if r.Result.Version != 3 || w.State().Policies["base"].Text != evoBase || h.Versions[2].Via != "rollback:1" {
		t.Fatalf("rollback: version %d, history %+v", r.Result.Version, h.Versions)
	}
	expect(t, w.as(testRootToken[:], CmdPolicyRollback, &PolicyRollback{Name: "base", Version: 9}), DecisionDeny, ReasonNotFound)
	expect(t, w.as(testRootToken[:], CmdPolicyRollback, &PolicyRollback{Name: "nothing", Version: 1}), DecisionDeny, ReasonNotFound)
}

// A candidate that would permit what the base denies pauses at the end
// of shadow, whatever the ticks that follow; while paused nobody is
// judged by it; only a human's resume takes it to canary. A backtest
// that found a relaxation holds a candidate the same way, even when the
// live shadow decisions show none.
func TestRelaxationNeverLeavesShadowWithoutAHuman(t *testing.T) {
	w := newEvoWorld(t)
	id := w.start(evoRelaxed, []int64{50, 100}, 10)
	w.traffic(id, 0)
	expect(t, w.put(0, "secret/a"), DecisionDeny, ReasonPolicyForbid)
	if e := w.evo(id); !e.Relaxed || len(e.Shadow.Transitions) == 0 {
		t.Fatalf("shadow saw no relaxation: %+v", e.Shadow)
	}
	mustPermitted(t, "tick closing shadow", w.tick(id))
	if e, v := w.evo(id), w.lastVerdict(id); e.Phase != PhasePaused || e.PausedFrom != PhaseShadow || v.Verdict != VerdictInconclusive {
		t.Fatalf("after shadow: %s from %s, verdict %+v", e.Phase, e.PausedFrom, v)
	}
	for range 5 {
		w.now += 2 * evoWindow
		expect(t, w.tick(id), DecisionDeny, ReasonNotDue)
		for i := range evoAgents {
			expect(t, w.put(i, "secret/b"), DecisionDeny, ReasonPolicyForbid)
		}
	}
	if e := w.evo(id); e.Phase != PhasePaused {
		t.Fatalf("paused evolution moved to %s without a human", e.Phase)
	}
	expect(t, w.human(CmdEvolveResume, id), DecisionPermit, ReasonOK)
	if e := w.evo(id); e.Phase != PhaseCanary || e.Weight() != 50 {
		t.Fatalf("after resume: %s at %d%%", e.Phase, e.Weight())
	}

	// The backtest's relaxation holds a candidate that changes nothing live.
	w2 := newEvoWorld(t)
	a := w2.as(testRootToken[:], CmdEvolveStart, &EvolveStart{Name: "base", Text: evoHarmless, WindowNs: evoWindow, MinShadow: 10,
		Backtest: EvolveBacktest{From: 1, To: 50, Evaluated: 40, Changed: 1, Relaxations: 1}})
	mustPermitted(t, "start with a relaxing backtest", a)
	w2.traffic(a.Result.ID, 0)
	mustPermitted(t, "tick", w2.tick(a.Result.ID))
	if e := w2.evo(a.Result.ID); e.Phase != PhasePaused || e.Shadow.Changed != 0 {
		t.Fatalf("a relaxing backtest let the candidate out of shadow: %s (changed %d)", e.Phase, e.Shadow.Changed)
	}
}

// evoToPhase drives a fresh world's evolution into phase.
func evoToPhase(t *testing.T, phase string) (*evoWorld, string) {
	t.Helper()
	w := newEvoWorld(t)
	text := evoHarmless
	switch phase {
	case PhaseRolledBack:
		text = evoRegression
	case PhasePaused:
		text = evoRelaxed
	}
	id := w.start(text, []int64{50, 100}, 10)
	if phase == PhaseShadow {
		return w, id
	}
	w.traffic(id, 0)
	w.put(0, "secret/a")
	mustPermitted(t, "shadow", w.tick(id))
	for w.evo(id).Phase != phase {
		switch e := w.evo(id); {
		case phase == PhaseAborted:
			mustPermitted(t, "abort", w.human(CmdEvolveAbort, id))
		case e.Phase == PhaseAwaitingPromotion:
			mustPermitted(t, "promote", w.human(CmdEvolvePromote, id))
		case e.Phase == PhaseCanary:
			w.traffic(id, 10)
			mustPermitted(t, "tick", w.tick(id))
		default:
			t.Fatalf("cannot reach %s: at %s", phase, e.Phase)
		}
	}
	return w, id
}

// evolve.abort and evolve.resume at every phase: abort ends any
// evolution in progress and is refused on an ended one; resume is
// accepted only from paused. A refusal is one DENY event and changes
// nothing; after an abort the gate no longer consults the candidate and
// a new evolution may start.
func TestAbortAndResumeAtEveryPhase(t *testing.T) {
	phases := []string{PhaseShadow, PhaseCanary, PhasePaused, PhaseAwaitingPromotion, PhasePromoted, PhaseRolledBack, PhaseAborted}
	for _, phase := range phases {
		t.Run(phase, func(t *testing.T) {
			ended := phase == PhasePromoted || phase == PhaseRolledBack || phase == PhaseAborted
			for _, ct := range []CommandType{CmdEvolveResume, CmdEvolveAbort} {
				w, id := evoToPhase(t, phase)
				want := ReasonOK
				switch {
				case ended:
					want = ReasonEvolutionClosed
				case ct == CmdEvolveResume && phase != PhasePaused:
					want = ReasonNotPaused
				}
				before := governed(w.Ledger)
				a := w.human(ct, id)
				if want != ReasonOK {
					expect(t, a, DecisionDeny, want)
					if governed(w.Ledger) != before {
						t.Fatalf("%s refused at %s changed the state", ct, phase)
					}
					continue
				}
				expect(t, a, DecisionPermit, ReasonOK)
				e := w.evo(id)
				if ct == CmdEvolveResume {
					if e.Phase != PhaseCanary {
						t.Fatalf("resume from %s: %s", phase, e.Phase)
					}
					continue
				}
				if e.Phase != PhaseAborted || e.ClosedBy != RootOperatorName {
					t.Fatalf("abort from %s: %s", phase, e.Phase)
				}
				for i := range evoAgents {
					if d := syscallDetail(t, w.put(i, "orders/after")); d.Request.Cohort != "" || len(d.Shadow) != 0 {
						t.Fatalf("after abort the candidate still judges %s: %+v", evoAgent(i), d)
					}
				}
				w.start(evoHarmless, nil, 10)
			}
		})
	}
}

// Who may run an evolution: policy.set on the set's name. An agent, an
// agent holding "*", and an operator holding policy.set on another set
// are refused forbidden; each refusal is ledgered and changes nothing.
// Before protocol 8 the commands do not exist (unsupported_protocol).
// A second evolution while one is in progress is evolution_active.
func TestEvolutionRefusedWithoutPolicySetScope(t *testing.T) {
	w := newEvoWorld(t)
	root := testRootToken[:]
	mustPermitted(t, "star agent", w.grantAs(root, "star", false, []string{"*"}, []string{"*"}, 0, 0))
	mustPermitted(t, "other-set operator", w.grantAs(root, "carol", true, []string{OpPolicySet}, []string{"other"}, 0, 0))
	id := w.start(evoHarmless, nil, 10)
	for _, who := range []string{evoAgent(0), "star", "carol"} {
		tok := tokenHash(who)
		for _, c := range []struct {
			ct CommandType
			p  any
		}{
			{CmdEvolveStart, &EvolveStart{Name: "base", Text: evoRelaxed}},
			{CmdEvolvePromote, &EvolveRef{ID: id}},
			{CmdEvolveAbort, &EvolveRef{ID: id}},
			{CmdEvolveResume, &EvolveRef{ID: id}},
			{CmdPolicyRollback, &PolicyRollback{Name: "base", Version: 1}},
		} {
			before, seq := governed(w.Ledger), w.State().Seq
			a := w.as(tok, c.ct, c.p)
			expect(t, a, DecisionDeny, ReasonForbidden)
			if a.Event.Seq != seq+1 || governed(w.Ledger) != before {
				t.Fatalf("%s by %s: not ledgered, or the state changed", c.ct, who)
			}
		}
	}
	mustPermitted(t, "carol on her own set", w.as(tokenHash("carol"), CmdPolicySet, &PolicySet{Name: "other", Text: evoBase, Mode: PolicyActive}))
	expect(t, w.as(tokenHash("carol"), CmdEvolveStart, &EvolveStart{Name: "other", Text: evoHarmless}), DecisionDeny, ReasonEvolutionActive)
	expect(t, w.as(root, CmdEvolveStart, &EvolveStart{Name: "base", Text: "not cedar"}), DecisionDeny, ReasonInvalidArgument)
	expect(t, w.as(root, CmdEvolveStart, &EvolveStart{Name: "base", Text: evoBase, Steps: []int64{25, 5}}), DecisionDeny, ReasonInvalidArgument)

	old := newRecordingGate(t, ProtocolCallerEffects)
	expect(t, old.as(root, CmdEvolveStart, &EvolveStart{Name: "base", Text: evoBase}), DecisionDeny, ReasonUnsupportedProtocol)
	expect(t, old.as(root, CmdPolicyRollback, &PolicyRollback{Name: "base", Version: 1}), DecisionDeny, ReasonUnsupportedProtocol)
}

// The one-sided Fisher exact test against hand-computed values.
func TestFisherExact(t *testing.T) {
	cases := []struct {
		a, n1, b, n2, want int64
	}{
		{0, 10, 0, 10, PPM},   // no bad outcome: no evidence
		{5, 5, 0, 15, 65},     // 1/C(20,5) = 1/15504 = 64.5 ppm, rounded up
		{1, 2, 1, 2, 833_334}, // P(X>=1), N=4 K=2 n=2: 1 - C(2,0)C(2,2)/C(4,2) = 5/6
		{2, 2, 0, 2, 166_667}, // 1/6
		{3, 10, 3, 30, 152_752},
	}
	for _, c := range cases {
		if got := fisherGreaterPPM(c.a, c.n1, c.b, c.n2); got != c.want {
			t.Errorf("fisher(%d/%d vs %d/%d) = %d ppm, want %d", c.a, c.n1, c.b, c.n2, got, c.want)
		}
	}
	// The bound: a full window against a large baseline stays exact and
	// monotone in a.
	prev := int64(PPM + 1)
	for a := int64(0); a <= MaxEvolveWindowCount; a += 512 {
		p := fisherGreaterPPM(a, MaxEvolveWindowCount, 400, 2*MaxEvolveWindowCount)
		if p > prev {
			t.Fatalf("p not monotone at a=%d", a)
		}
		prev = p
	}
}

// Evolution rides on protocol 8: a ledger under protocol 5 refuses the
// commands and keeps no versions; after protocol.upgrade to 8 it accepts
// them, and the set installed before the upgrade becomes version 1 of
// its history when it first changes.
func TestEvolutionArrivesWithItsProtocol(t *testing.T) {
	g := newRecordingGate(t, ProtocolCallerEffects)
	root := testRootToken[:]
	g.grant("agent-00", []string{"kv.*"}, []string{"*"}, 0)
	mustPermitted(t, "base", g.as(root, CmdPolicySet, &PolicySet{Name: "base", Text: evoBase, Mode: PolicyActive}))
	expect(t, g.as(root, CmdEvolveStart, &EvolveStart{Name: "base", Text: evoHarmless}), DecisionDeny, ReasonUnsupportedProtocol)
	if g.State().Evolve != nil {
		t.Fatal("protocol 5 kept evolution state")
	}
	mustPermitted(t, "upgrade", g.as(root, CmdProtocolUpgrade, &ProtocolUpgrade{Version: ProtocolEvolution}))
	a := g.as(root, CmdEvolveStart, &EvolveStart{Name: "base", Text: evoHarmless, MinShadow: 1})
	mustPermitted(t, "start after the upgrade", a)
	if d := syscallDetail(t, g.as(tokenHash("agent-00"), CmdSyscall, &Syscall{Op: "kv.put", Resource: "orders/1"})); len(d.Shadow) != 1 || d.Shadow[0].Set != a.Result.ID {
		t.Fatalf("the candidate is not shadowed: %+v", d.Shadow)
	}
	mustPermitted(t, "abort", g.as(root, CmdEvolveAbort, &EvolveRef{ID: a.Result.ID}))
	mustPermitted(t, "base again", g.as(root, CmdPolicySet, &PolicySet{Name: "base", Text: evoHarmless, Mode: PolicyActive}))
	h := g.State().History("base")
	if h == nil || len(h.Versions) != 2 || h.Versions[0].Text != evoBase || h.Versions[1].Text != evoHarmless || h.Versions[1].Via != "" {
		t.Fatalf("history %+v", h)
	}
}

// Effect errors are a metric too: when the canary cohort's external
// effects fail and the baseline's succeed, the window's verdict fails
// on effect_error_rate, though no decision changed.
func TestCanaryEffectErrorsRollBack(t *testing.T) {
	w := newEvoWorld(t)
	for i := range 40 {
		w.grant("payer-"+fmt.Sprint(i), []string{"pay.send"}, []string{"*"}, 0)
	}
	id := w.start(evoHarmless, []int64{50, 100}, 10)
	w.traffic(id, 0)
	mustPermitted(t, "shadow", w.tick(id))
	e := w.evo(id)
	for round := range 3 {
		for i := range 40 {
			who := "payer-" + fmt.Sprint(i)
			a := w.as(tokenHash(who), CmdSyscall, &Syscall{Op: "pay.send", Resource: fmt.Sprint("acct/", round, "/", i)})
			expect(t, a, DecisionPermit, ReasonOK)
			status := EffectOK
			if e.InCanary(who) {
				status = EffectFailed
			}
			c := w.rec(env(CmdEffectComplete, "", nil, w.gateLedger.tick(), &EffectComplete{Seq: a.Event.Seq, Status: status}))
			if c.Event == nil || c.Result.Reason == ReasonNotFound {
				t.Fatalf("effect.complete: %+v", c.Result)
			}
		}
	}
	mustPermitted(t, "tick", w.tick(id))
	v := w.lastVerdict(id)
	var m MetricResult
	for _, x := range v.Metrics {
		if x.Name == MetricEffectErrorRate {
			m = x
		}
	}
	if v.Verdict != VerdictFailed || m.Outcome != metricFail || m.Canary != PPM || m.Baseline != 0 || w.evo(id).Phase != PhaseRolledBack {
		t.Fatalf("verdict %+v, effect_error_rate %+v", v, m)
	}
}

// A canary window with too few decisions is inconclusive: the evolution
// pauses, holding the step's weight (the cohort neither grows nor flips
// back), no tick moves it, and resume runs the same step again in a new
// window.
func TestInconclusiveStepPausesAndResumesTheSameStep(t *testing.T) {
	w := newEvoWorld(t)
	id := w.start(evoHarmless, []int64{25, 100}, 10)
	w.traffic(id, 0)
	mustPermitted(t, "shadow", w.tick(id))
	mustPermitted(t, "quiet window", w.tick(id)) // no canary traffic at all
	e := w.evo(id)
	if v := w.lastVerdict(id); e.Phase != PhasePaused || e.PausedFrom != PhaseCanary || v.Verdict != VerdictInconclusive || e.Weight() != 25 {
		t.Fatalf("after a quiet window: %s from %s at %d%%, verdict %+v", e.Phase, e.PausedFrom, e.Weight(), v)
	}
	w.now += 3 * evoWindow
	expect(t, w.tick(id), DecisionDeny, ReasonNotDue)
	canary := 0
	for i := range evoAgents {
		if syscallDetail(t, w.put(i, "orders/p")).Request.Cohort == id+":canary" {
			canary++
		}
	}
	if canary == 0 || canary == evoAgents || w.evo(id).Canary.Decisions != 0 {
		t.Fatalf("paused: %d of %d agents in the cohort, %d counted", canary, evoAgents, w.evo(id).Canary.Decisions)
	}
	expect(t, w.human(CmdEvolveResume, id), DecisionPermit, ReasonOK)
	if e := w.evo(id); e.Phase != PhaseCanary || e.Weight() != 25 || e.WindowStart != w.now {
		t.Fatalf("resumed: %s at %d%%", e.Phase, e.Weight())
	}
	w.traffic(id, 10)
	mustPermitted(t, "tick", w.tick(id))
	if e := w.evo(id); e.Phase != PhaseCanary || e.Weight() != 100 {
		t.Fatalf("after the repeated step: %s at %d%%", e.Phase, e.Weight())
	}
}

// Governance may let the kernel promote tightenings
// (limits.set evolve_auto_promote): a harmless candidate is then
// installed at the tick that closes its last step, by the kernel, and
// versioned; a relaxation, even when a human took it out of shadow,
// still waits for a human; "never" restores the default; the setting
// does not exist before protocol 8.
func TestAutoPromotionOfTighteningsOnlyWhenGovernanceAllows(t *testing.T) {
	w := newEvoWorld(t)
	expect(t, w.as(testRootToken[:], CmdLimitsSet, &LimitsSet{EvolveAutoPromote: "always"}), DecisionDeny, ReasonInvalidArgument)
	expect(t, w.as(tokenHash(evoAgent(0)), CmdLimitsSet, &LimitsSet{EvolveAutoPromote: AutoPromoteTightening}), DecisionDeny, ReasonForbidden)
	mustPermitted(t, "allow tightenings", w.as(testRootToken[:], CmdLimitsSet, &LimitsSet{EvolveAutoPromote: AutoPromoteTightening}))
	run := func(text string, resume bool) *Evolution {
		id := w.start(text, []int64{50, 100}, 10)
		w.traffic(id, 0)
		w.put(0, "secret/a")
		mustPermitted(t, "shadow", w.tick(id))
		if resume {
			if w.evo(id).Phase != PhasePaused {
				t.Fatalf("a relaxation left shadow: %s", w.evo(id).Phase)
			}
			mustPermitted(t, "resume", w.human(CmdEvolveResume, id))
		}
		for w.evo(id).Phase == PhaseCanary {
			w.traffic(id, 10)
			mustPermitted(t, "tick", w.tick(id))
		}
		return w.evo(id)
	}
	e := run(evoHarmless, false)
	if e.Phase != PhasePromoted || e.ClosedBy != AutoPromoteBy || w.State().Policies["base"].Text != evoHarmless {
		t.Fatalf("a tightening under auto-promotion: %s by %q", e.Phase, e.ClosedBy)
	}
	h := w.State().History("base")
	if last := h.Versions[len(h.Versions)-1]; last.By != AutoPromoteBy || last.Via != e.ID {
		t.Fatalf("the auto-promoted version: %+v", last)
	}
	e = run(evoRelaxed, true)
	if e.Phase != PhaseAwaitingPromotion || w.State().Policies["base"].Text != evoHarmless {
		t.Fatalf("a relaxation under auto-promotion: %s", e.Phase)
	}
	mustPermitted(t, "abort", w.human(CmdEvolveAbort, e.ID))
	mustPermitted(t, "never", w.as(testRootToken[:], CmdLimitsSet, &LimitsSet{EvolveAutoPromote: AutoPromoteNever}))
	if e := run(evoBase+"\n"+`forbid(principal, action, resource) when { resource.path like "attic/*" };`, false); e.Phase != PhaseAwaitingPromotion {
		t.Fatalf("with auto-promotion off: %s", e.Phase)
	}
	old := newRecordingGate(t, ProtocolTemporal)
	expect(t, old.as(testRootToken[:], CmdLimitsSet, &LimitsSet{EvolveAutoPromote: AutoPromoteTightening}), DecisionDeny, ReasonUnsupportedProtocol)
}
