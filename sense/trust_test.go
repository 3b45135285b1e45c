package sense

import (
	"errors"
	"strings"
	"testing"
)

func TestTierOf(t *testing.T) {
	for _, c := range []struct {
		points int64
		tier   string
	}{{0, TierProbation}, {399, TierProbation}, {400, TierStandard}, {TrustInitial, TierStandard}, {799, TierStandard}, {800, TierTrusted}, {1000, TierTrusted}} {
		if got := TierOf(c.points); got != c.tier {
			t.Errorf("TierOf(%d) = %q, want %q", c.points, got, c.tier)
		}
	}
}

func TestTrustMoves(t *testing.T) {
	for _, c := range []struct {
		name  string
		d     Decision
		rise  int64
		lvl   Level
		delta int64 // milli-points
		cause string
	}{
		{"permit", DecisionPermit, 0, LevelNormal, PermitGainMilli, "permit"},
		{"permit ignores posture", DecisionPermit, 0, LevelCritical, PermitGainMilli, "permit"},
		{"deny", DecisionDeny, 0, LevelNormal, -DenyLossMilli, "deny"},
		{"deny ignores posture", DecisionDeny, 0, LevelCritical, -DenyLossMilli, "deny"},
		{"escalate", DecisionEscalate, 0, LevelNormal, 0, "escalate"},
		{"error relaxed", DecisionError, 0, LevelRelaxed, -ErrorLossMilli / 2, "error"},
		{"error normal", DecisionError, 0, LevelNormal, -ErrorLossMilli, "error"},
		{"error elevated", DecisionError, 0, LevelElevated, -2 * ErrorLossMilli, "error"},
		{"error critical", DecisionError, 0, LevelCritical, -4 * ErrorLossMilli, "error"},
		{"deviation one unit", DecisionPermit, 100, LevelNormal, PermitGainMilli - 100*DeviationLossMilli, "permit+deviation"},
		{"deviation at elevated", DecisionPermit, 100, LevelElevated, PermitGainMilli - 200*DeviationLossMilli, "permit+deviation"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := NewTrust(10)
			ch, err := tr.Observe("e", c.d, c.rise, c.lvl)
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.ToMilli - ch.FromMilli; got != c.delta || ch.Cause != c.cause {
				t.Errorf("delta %d cause %q, want %d %q", got, ch.Cause, c.delta, c.cause)
			}
			if ch.FromMilli != TrustInitial*trustMilli || ch.From != TrustInitial {
				t.Errorf("new entity started at %d", ch.FromMilli)
			}
		})
	}
}

func TestTrustClampsAndTiers(t *testing.T) {
	tr := NewTrust(10)
	var ch TrustChange
	var err error
	for range 3000 { // 3000 × 0.2 = 600 points, clamped at 1000
		if ch, err = tr.Observe("good", DecisionPermit, 0, LevelNormal); err != nil {
			t.Fatal(err)
		}
	}
	if st := tr.Status("good"); st.Score != TrustMax || st.Tier != TierTrusted {
		t.Errorf("after 3000 permits: %+v", st)
	}
	crossed := 0
	for range 400 {
		ch, _ = tr.Observe("bad", DecisionDeny, 0, LevelNormal)
		if ch.TierChanged() {
			crossed++
			if ch.FromTier != TierStandard || ch.ToTier != TierProbation || ch.From < TierStandardFrom || ch.To >= TierStandardFrom {
				t.Errorf("tier change %+v", ch)
			}
		}
	}
	if st := tr.Status("bad"); st.Milli != 0 || st.Tier != TierProbation || crossed != 1 {
		t.Errorf("after 400 denies: %+v, %d tier changes", st, crossed)
	}
	if st := tr.Status("unknown"); st.Known || st.Score != TrustInitial || st.Tier != TierStandard {
		t.Errorf("unknown entity: %+v", st)
	}
}

func TestTrustAdjust(t *testing.T) {
	tr := NewTrust(1)
	ch, err := tr.Adjust("e", 350, "reviewed by ops")
	if err != nil {
		t.Fatal(err)
	}
	if ch.To != 850 || ch.ToTier != TierTrusted || ch.Cause != "adjust: reviewed by ops" || !ch.TierChanged() {
		t.Errorf("adjust +350: %+v", ch)
	}
	if ch, _ = tr.Adjust("e", -1000, "incident 42"); ch.To != 0 {
		t.Errorf("adjust -1000 from 850 = %d, want clamp at 0", ch.To)
	}
	for _, c := range []struct {
		name, entity string
		delta        int64
		reason       string
		err          error
	}{
		{"delta too large", "e", MaxAdjustPoints + 1, "r", ErrAdjust},
		{"delta too small", "e", -MaxAdjustPoints - 1, "r", ErrAdjust},
		{"empty reason", "e", 1, "", ErrAdjust},
		{"long reason", "e", 1, strings.Repeat("r", MaxReasonLen+1), ErrAdjust},
		{"control in reason", "e", 1, "a\x00b", ErrAdjust},
		{"bad entity", "", 1, "r", ErrEntityName},
		{"entity limit", "f", 1, "r", ErrEntityLimit},
	} {
		before := tr.Status("e")
		if _, err := tr.Adjust(c.entity, c.delta, c.reason); !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		}
		if tr.Status("e") != before || tr.Len() != 1 {
			t.Errorf("%s: rejected adjustment changed the book", c.name)
		}
	}
}

func TestSensorTrustFollowsDeviation(t *testing.T) {
	s := newSensor(t, nil)
	f := newFeeder(t, s, "a")
	f.windows(0, 40, 10)
	before := s.Trust("a")
	steps := f.window(40, 60, nil)
	var charged int64
	for _, st := range steps {
		if st.Trust.Cause == "permit+deviation" {
			charged += PermitGainMilli - (st.Trust.ToMilli - st.Trust.FromMilli)
		}
	}
	peak, _ := maxScore(steps)
	if want := min(peak.Score, DeviationChargeCap) * DeviationLossMilli; charged != want {
		t.Errorf("deviation charged %d milli-points over the window, want peak %d × %d = %d", charged, peak.Score, DeviationLossMilli, want)
	}
	after := s.Trust("a")
	t.Logf("trust %d → %d over a 6x burst (peak score %d)", before.Score, after.Score, peak.Score)
	if after.Milli >= before.Milli {
		t.Error("trust did not fall over a burst")
	}
}
