package sense

import (
	"errors"
	"fmt"
)

// Trust scale and tiers. Scores are points 0..1000, kept internally in
// milli-points (0..1 000 000) so that small steps accumulate exactly.
const (
	TrustMax     = 1000
	TrustInitial = 500 // a new entity starts here, in the standard tier
	// An entity is in probation below TierStandardFrom and trusted from
	// TierTrustedFrom; standard in between.
	TierStandardFrom = 400
	TierTrustedFrom  = 800

	TierProbation = "probation"
	TierStandard  = "standard"
	TierTrusted   = "trusted"

	trustMilli = 1000 // milli-points per point
)

// Trust movements, in milli-points. Errors and deviations are multiplied
// by the posture weight (PostureWeightPct); permits and denies are not.
const (
	PermitGainMilli = 200  // +0.2 point per permit: 1500 permits from 500 to 800
	DenyLossMilli   = 2000 // −2 points per deny
	ErrorLossMilli  = 1000 // −1 point per error at normal posture
	// DeviationLossMilli is charged per hundredth of a deviation unit by
	// which a window's peak score rises, counting the peak only up to
	// DeviationChargeCap: at most 100 points per window at normal posture.
	DeviationLossMilli = 20
	DeviationChargeCap = 5000
	MaxAdjustPoints    = TrustMax // |delta| bound of one governed adjustment
)

// PostureWeightPct scales error and deviation losses by posture level:
// relaxed 50 %, normal 100 %, elevated 200 %, critical 400 %.
var PostureWeightPct = [NumLevels]int64{50, 100, 200, 400}

// TierOf names the tier of a score in points.
func TierOf(points int64) string {
	switch {
	case points >= TierTrustedFrom:
		return TierTrusted
	case points >= TierStandardFrom:
		return TierStandard
	}
	return TierProbation
}

// Trust errors.
var (
	ErrEntityLimit = errors.New("sense: entity limit reached")
	ErrEntityName  = errors.New("sense: invalid entity name")
	ErrAdjust      = errors.New("sense: invalid trust adjustment")
)

// TrustChange is one movement of an entity's trust, with the cause
// ("permit", "deny", "error", "escalate", "deviation", or "adjust: " and
// the governed reason). Scores are in points; the milli values are exact.
type TrustChange struct {
	Entity    string
	Cause     string
	FromMilli int64
	ToMilli   int64
	From      int64
	To        int64
	FromTier  string
	ToTier    string
}

// TierChanged reports whether the change moved the entity between tiers.
func (c TrustChange) TierChanged() bool { return c.FromTier != c.ToTier }

// TrustStatus is an entity's current trust. Known is false for an entity
// without a score, which is reported at TrustInitial.
type TrustStatus struct {
	Entity string
	Known  bool
	Milli  int64
	Score  int64
	Tier   string
}

// Trust holds a score per entity, at most max entities.
type Trust struct {
	max    int
	scores map[string]int64 // milli-points, 0..TrustMax×1000
}

// NewTrust returns an empty trust book for at most maxEntities entities.
func NewTrust(maxEntities int) *Trust {
	return &Trust{max: maxEntities, scores: make(map[string]int64)}
}

// Len is the number of entities with a score.
func (t *Trust) Len() int { return len(t.scores) }

// Status is entity's trust; an unknown entity reads TrustInitial.
func (t *Trust) Status(entity string) TrustStatus {
	m, ok := t.scores[entity]
	if !ok {
		m = TrustInitial * trustMilli
	}
	return TrustStatus{Entity: entity, Known: ok, Milli: m, Score: m / trustMilli, Tier: TierOf(m / trustMilli)}
}

// admits reports whether entity has or can get a score.
func (t *Trust) admits(entity string) bool {
	_, ok := t.scores[entity]
	return ok || len(t.scores) < t.max
}

// move applies delta milli-points, clamped to the scale. The caller has
// checked admits.
func (t *Trust) move(entity, cause string, delta int64) TrustChange {
	st := t.Status(entity)
	to := clamp(st.Milli+delta, 0, TrustMax*trustMilli)
	t.scores[entity] = to
	return TrustChange{
		Entity: entity, Cause: cause,
		FromMilli: st.Milli, ToMilli: to, From: st.Score, To: to / trustMilli,
		FromTier: st.Tier, ToTier: TierOf(to / trustMilli),
	}
}

// Observe moves entity's trust for one gate decision and for rise, the
// increase of its window's peak deviation score (hundredths), at posture
// level lvl. It fails only on an invalid name or a full book, changing
// nothing.
func (t *Trust) Observe(entity string, d Decision, rise int64, lvl Level) (TrustChange, error) {
	if !validName(entity, MaxEntityLen) {
		return TrustChange{}, fmt.Errorf("%w: %q", ErrEntityName, entity)
	}
	if !t.admits(entity) {
		return TrustChange{}, fmt.Errorf("%w: %d trust entities", ErrEntityLimit, t.max)
	}
	if lvl >= NumLevels {
		lvl = LevelCritical
	}
	w := PostureWeightPct[lvl]
	var delta int64
	cause := d.String()
	switch d {
	case DecisionPermit:
		delta = PermitGainMilli
	case DecisionDeny:
		delta = -DenyLossMilli
	case DecisionError:
		delta = -ErrorLossMilli * w / 100
	}
	if rise > 0 {
		delta -= rise * DeviationLossMilli * w / 100
		cause += "+deviation"
	}
	return t.move(entity, cause, delta), nil
}

// Adjust applies a governed adjustment of delta points (|delta| ≤
// MaxAdjustPoints) with a non-empty printable reason of at most
// MaxReasonLen bytes. The result is clamped to 0..TrustMax. A rejected
// adjustment changes nothing.
func (t *Trust) Adjust(entity string, delta int64, reason string) (TrustChange, error) {
	switch {
	case !validName(entity, MaxEntityLen):
		return TrustChange{}, fmt.Errorf("%w: %q", ErrEntityName, entity)
	case delta < -MaxAdjustPoints || delta > MaxAdjustPoints:
		return TrustChange{}, fmt.Errorf("%w: delta %d, want -%d..%d", ErrAdjust, delta, MaxAdjustPoints, MaxAdjustPoints)
	case !validName(reason, MaxReasonLen):
		return TrustChange{}, fmt.Errorf("%w: reason must be 1..%d printable bytes", ErrAdjust, MaxReasonLen)
	case !t.admits(entity):
		return TrustChange{}, fmt.Errorf("%w: %d trust entities", ErrEntityLimit, t.max)
	}
	return t.move(entity, "adjust: "+reason, delta*trustMilli), nil
}

// Forget removes entity's score; it reports whether there was one.
func (t *Trust) Forget(entity string) bool {
	_, ok := t.scores[entity]
	delete(t.scores, entity)
	return ok
}
