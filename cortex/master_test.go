package cortex

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// masterRig feeds a Master signals on a shared timeline: every round, one
// signal per domain, stepNs apart, each domain's value drawn by the test.
type masterRig struct {
	t        *testing.T
	m        *Master
	rng      *rand.Rand
	now      int64
	seq      uint64
	findings []Finding
}

const masterStepNs = int64(2e9)

func newMasterRig(t *testing.T, seed uint64, cfg MasterConfig) *masterRig {
	t.Helper()
	t.Logf("seed %d", seed)
	m, err := NewMaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &masterRig{t: t, m: m, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: baseTime}
}

// send observes one signal of domain and returns the findings it completed.
func (r *masterRig) send(domain string, kind Kind, value int64) (Signal, []Finding) {
	r.seq++
	s := Signal{Domain: domain, Node: "n-" + domain, Kind: kind, Value: value, Window: r.now, Seq: r.seq, PassportID: "pp-" + domain}
	f := r.m.Observe(s)
	r.findings = append(r.findings, f...)
	return s, f
}

// quiet runs rounds of noise around base (±spread) for every domain.
func (r *masterRig) quiet(rounds int, kind Kind, base, spread int64, domains ...string) {
	for range rounds {
		r.now += masterStepNs
		for _, d := range domains {
			r.send(d, kind, base+r.rng.Int64N(2*spread+1)-spread)
		}
	}
}

func (r *masterRig) requireNoFindings(what string) {
	r.t.Helper()
	if len(r.findings) != 0 {
		r.t.Fatalf("%s: %d findings, want none; first: %+v", what, len(r.findings), r.findings[0])
	}
}

// Noise inside the baseline's spread never scores, whatever the seed.
func TestMasterQuietBaselinesGiveNoFindings(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		r := newMasterRig(t, seed, MasterConfig{})
		r.quiet(300, AnomalyIndicator, 1000, 150, "a", "b", "c")
		r.requireNoFindings("quiet")
		st, ok := r.m.Baseline("a", AnomalyIndicator)
		if !ok || st.Samples != 300 || st.Mean < 850_000 || st.Mean > 1_150_000 {
			t.Fatalf("seed %d: baseline of a: %+v %v", seed, st, ok)
		}
	}
}

// A spike in one domain alone is detected locally (a high score) but is
// never a cross-domain finding, however large and however long.
func TestMasterSingleDomainSpikeIsNoFinding(t *testing.T) {
	r := newMasterRig(t, 11, MasterConfig{})
	r.quiet(20, AnomalyIndicator, 300, 100, "a", "b", "c")
	for i := range 10 {
		r.now += masterStepNs
		r.send("a", AnomalyIndicator, 9000)
		if st, _ := r.m.Baseline("a", AnomalyIndicator); i == 0 && st.LastScore < r.m.Config().Threshold {
			t.Fatalf("a's spike scored %d, below the threshold %d: the test does not exercise an exceedance", st.LastScore, r.m.Config().Threshold)
		}
		r.send("b", AnomalyIndicator, 300)
		r.send("c", AnomalyIndicator, 300)
	}
	r.requireNoFindings("single-domain spike")
}

// Two domains leaving their baselines within the window is one finding,
// with one evidence signal per domain; the continuing condition is not
// reported again; after a quiet spell it is reported anew.
func TestMasterCrossDomainFindingOnceAndAgainAfterQuiet(t *testing.T) {
	r := newMasterRig(t, 21, MasterConfig{})
	r.quiet(20, AnomalyIndicator, 500, 100, "a", "b", "c")
	r.now += masterStepNs
	sa, fa := r.send("a", AnomalyIndicator, 7000)
	if len(fa) != 0 {
		t.Fatalf("one domain's spike completed a finding: %+v", fa)
	}
	r.now += masterStepNs / 2
	sb, fb := r.send("b", AnomalyIndicator, 6500)
	if len(fb) != 1 {
		t.Fatalf("second domain's spike: %d findings, want 1", len(fb))
	}
	f := fb[0]
	if f.Kind != AnomalyIndicator || !slices.Equal(f.Domains, []string{"a", "b"}) || f.Window != sb.Window {
		t.Fatalf("finding %+v", f)
	}
	if ids := f.EvidenceIDs(); !slices.Equal(ids, []string{SignalID(sa), SignalID(sb)}) {
		t.Fatalf("evidence %v, want the two spike signals %s %s", ids, SignalID(sa), SignalID(sb))
	}
	if f.Confidence < 400 || f.Confidence > 1000 {
		t.Fatalf("confidence %d outside 400..1000 for two domains over threshold", f.Confidence)
	}
	if f.Name() != "cross_domain.anomaly_indicator" || !strings.Contains(f.Summary(), "a=7000") || len(f.Summary()) > 1024 {
		t.Fatalf("name %q summary %q", f.Name(), f.Summary())
	}
	// The condition continues: no repeat.
	for range 5 {
		r.now += masterStepNs
		r.send("a", AnomalyIndicator, 9000)
		r.send("b", AnomalyIndicator, 9000)
	}
	if len(r.findings) != 1 {
		t.Fatalf("continuing condition reported %d times, want once", len(r.findings))
	}
	// Quiet for longer than QuietNs, then again: a new finding.
	r.quiet(int(r.m.Config().QuietNs/masterStepNs)+20, AnomalyIndicator, 500, 100, "a", "b", "c")
	if len(r.findings) != 1 {
		t.Fatalf("quiet spell produced findings: %+v", r.findings[1:])
	}
	r.now += masterStepNs
	r.send("a", AnomalyIndicator, 9500)
	r.send("b", AnomalyIndicator, 9500)
	if len(r.findings) != 2 {
		t.Fatalf("the condition after a quiet spell: %d findings, want 2", len(r.findings))
	}
}

// Exceedances further apart than the window are not together.
func TestMasterSpikesApartAreNoFinding(t *testing.T) {
	r := newMasterRig(t, 31, MasterConfig{})
	r.quiet(20, DenyRate, 200, 50, "a", "b")
	r.now += masterStepNs
	r.send("a", DenyRate, 8000)
	r.send("b", DenyRate, 200)
	r.quiet(int(r.m.Config().WindowNs/masterStepNs)+1, DenyRate, 200, 50, "a", "b")
	r.now += masterStepNs
	r.send("a", DenyRate, 200)
	r.send("b", DenyRate, 8000)
	r.requireNoFindings("spikes apart")
}

// A condition that spreads to a further domain is reported again, with
// every domain; its shrinking back is not.
func TestMasterSpreadIsNews(t *testing.T) {
	r := newMasterRig(t, 41, MasterConfig{})
	r.quiet(20, ResourcePressure, 1000, 100, "a", "b", "c")
	r.now += masterStepNs
	r.send("a", ResourcePressure, 9000)
	r.send("b", ResourcePressure, 9000)
	r.now += masterStepNs
	r.send("c", ResourcePressure, 9000)
	if len(r.findings) != 2 || !slices.Equal(r.findings[1].Domains, []string{"a", "b", "c"}) {
		t.Fatalf("findings %+v, want {a,b} then {a,b,c}", r.findings)
	}
	if r.findings[1].Confidence <= r.findings[0].Confidence {
		t.Fatalf("three domains (%d) not more confident than two (%d)", r.findings[1].Confidence, r.findings[0].Confidence)
	}
	r.now += masterStepNs
	r.send("a", ResourcePressure, 9500)
	if len(r.findings) != 2 {
		t.Fatalf("a subset of a live episode was reported: %+v", r.findings[2:])
	}
}

// Falling trust is the concern: a rise in trust velocity is no finding,
// a fall in two domains is.
func TestMasterTrustVelocityDirection(t *testing.T) {
	r := newMasterRig(t, 51, MasterConfig{})
	r.quiet(20, TrustVelocity, 0, 1, "a", "b")
	r.now += masterStepNs
	r.send("a", TrustVelocity, 300)
	r.send("b", TrustVelocity, 300)
	r.requireNoFindings("rising trust")
	r.now += masterStepNs
	r.send("a", TrustVelocity, -300)
	r.send("b", TrustVelocity, -300)
	if len(r.findings) != 1 || r.findings[0].Kind != TrustVelocity {
		t.Fatalf("falling trust in two domains: %+v", r.findings)
	}
}

// Nothing is scored before MinSamples samples; stale, repeated and
// out-of-bounds signals change nothing.
func TestMasterWarmUpAndIgnoredSignals(t *testing.T) {
	r := newMasterRig(t, 61, MasterConfig{})
	min := r.m.Config().MinSamples
	r.quiet(min-1, AnomalyIndicator, 0, 0, "a", "b")
	r.now += masterStepNs
	r.send("a", AnomalyIndicator, 10000)
	r.send("b", AnomalyIndicator, 10000)
	r.requireNoFindings("spikes while warming up")
	st, _ := r.m.Baseline("a", AnomalyIndicator)
	if st.Samples != min || st.LastScore != 0 {
		t.Fatalf("baseline after warm-up %+v", st)
	}
	before := st
	// The same window again, an older one, and an out-of-bounds value.
	for _, s := range []Signal{
		{Domain: "a", Node: "x", Kind: AnomalyIndicator, Value: 5, Window: r.now, Seq: 1, PassportID: "p"},
		{Domain: "a", Node: "x", Kind: AnomalyIndicator, Value: 5, Window: r.now - 1, Seq: 2, PassportID: "p"},
		{Domain: "a", Node: "x", Kind: AnomalyIndicator, Value: 10001, Window: r.now + 1, Seq: 3, PassportID: "p"},
		{Domain: "a", Node: "x", Kind: Kind(99), Value: 1, Window: r.now + 1, Seq: 4, PassportID: "p"},
	} {
		if f := r.m.Observe(s); f != nil {
			t.Fatalf("ignored signal gave %+v", f)
		}
	}
	if st, _ := r.m.Baseline("a", AnomalyIndicator); st != before {
		t.Fatalf("ignored signals moved the baseline: %+v -> %+v", before, st)
	}
}

// The tracked domains are bounded; signals of further domains are counted
// and ignored.
func TestMasterBoundsDomains(t *testing.T) {
	r := newMasterRig(t, 71, MasterConfig{MaxDomains: 3})
	r.quiet(2, OperationalTempo, 10, 0, "a", "b", "c", "d", "e")
	if _, ok := r.m.Baseline("d", OperationalTempo); ok {
		t.Fatal("a fourth domain is tracked with MaxDomains 3")
	}
	if got := r.m.Ignored(); got != 4 {
		t.Fatalf("ignored %d signals, want 4 (two rounds of d and e)", got)
	}
}

// Property: over random traffic with random spikes, every finding has at
// least MinDomains distinct domains whose evidence windows lie within the
// window of each other, confidence within bounds, and the same input gives
// the same findings.
func TestMasterFindingsAreWellFormedAndDeterministic(t *testing.T) {
	run := func(seed uint64) []Finding {
		r := newMasterRig(t, seed, MasterConfig{})
		domains := []string{"a", "b", "c", "d"}
		for range 2000 {
			r.now += masterStepNs / 2
			d := domains[r.rng.IntN(len(domains))]
			k := Kinds()[r.rng.IntN(len(Kinds()))]
			lo, hi, _ := k.Bounds()
			v := lo + (hi-lo)/20 + r.rng.Int64N(10)
			if r.rng.IntN(25) == 0 {
				v = hi
				if k == TrustVelocity {
					v = lo
				}
			}
			r.send(d, k, v)
		}
		return r.findings
	}
	for seed := uint64(100); seed < 105; seed++ {
		a, b := run(seed), run(seed)
		if len(a) != len(b) {
			t.Fatalf("seed %d: %d then %d findings from the same input", seed, len(a), len(b))
		}
		cfg := DefaultMasterConfig()
		for i, f := range a {
			if !slices.Equal(f.EvidenceIDs(), b[i].EvidenceIDs()) {
				t.Fatalf("seed %d: finding %d differs between runs", seed, i)
			}
			if len(f.Domains) < cfg.MinDomains || !slices.IsSorted(f.Domains) || len(slices.Compact(slices.Clone(f.Domains))) != len(f.Domains) {
				t.Fatalf("seed %d: domains %v", seed, f.Domains)
			}
			if f.Confidence < 0 || f.Confidence > 1000 {
				t.Fatalf("seed %d: confidence %d", seed, f.Confidence)
			}
			for _, e := range f.Evidence {
				if e.Signal.Kind != f.Kind || e.Score < cfg.Threshold || f.Window-e.Signal.Window > 2*cfg.WindowNs || e.Signal.Window > f.Window {
					t.Fatalf("seed %d: evidence %+v of finding %+v", seed, e, f)
				}
			}
		}
		t.Logf("seed %d: %d findings", seed, len(a))
	}
}

func TestMasterConfigValidateNamesValues(t *testing.T) {
	_, err := NewMaster(MasterConfig{MinDomains: 1, Threshold: -5})
	if err == nil || !strings.Contains(err.Error(), "min domains 1") || !strings.Contains(err.Error(), "threshold -5") {
		t.Fatalf("err = %v", err)
	}
}
