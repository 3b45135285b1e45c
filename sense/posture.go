package sense

import (
	"errors"
	"fmt"
)

// Level is the posture level. Its numbers are protocol (encoded state).
type Level uint8

const (
	LevelRelaxed  Level = 0
	LevelNormal   Level = 1
	LevelElevated Level = 2
	LevelCritical Level = 3
	NumLevels           = 4
)

var levelNames = [NumLevels]string{"relaxed", "normal", "elevated", "critical"}

// String returns the fixed name policies see: "relaxed", "normal",
// "elevated" or "critical".
func (l Level) String() string {
	if l < NumLevels {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel is the inverse of Level.String.
func ParseLevel(s string) (Level, error) {
	for l, n := range levelNames {
		if n == s {
			return Level(l), nil
		}
	}
	return 0, fmt.Errorf("sense: unknown posture level %q", s)
}

// SignalKind is an external posture signal. Its numbers are protocol.
type SignalKind uint8

const (
	SignalIncidentLevel    SignalKind = 0 // 0..100
	SignalMarketVolatility SignalKind = 1 // 0..100
	SignalErrorBudgetBurn  SignalKind = 2 // 0..1000
	SignalThreatLevel      SignalKind = 3 // 0..100
	NumSignals                        = 4
)

type signalSpec struct {
	name   string
	max    int64 // values are 0..max
	weight int64 // per mille: the sensitivity a maxed signal reaches alone (before the mean term)
}

var signalSpecs = [NumSignals]signalSpec{
	{"incident_level", 100, 1000},
	{"market_volatility", 100, 600},
	{"error_budget_burn", 1000, 700},
	{"threat_level", 100, 900},
}

// String returns the signal's wire name, e.g. "incident_level".
func (k SignalKind) String() string {
	if k < NumSignals {
		return signalSpecs[k].name
	}
	return fmt.Sprintf("signal(%d)", uint8(k))
}

// Max is the largest value the signal accepts; the smallest is 0.
func (k SignalKind) Max() int64 { return signalSpecs[k].max }

// ParseSignalKind maps a wire name to its kind; an unknown name is a
// *SignalError wrapping ErrUnknownSignal.
func ParseSignalKind(name string) (SignalKind, error) {
	for k := range signalSpecs {
		if signalSpecs[k].name == name {
			return SignalKind(k), nil
		}
	}
	return 0, &SignalError{Kind: name, Err: ErrUnknownSignal}
}

// SignalVector holds the raw value of every signal, indexed by SignalKind.
type SignalVector [NumSignals]int64

// Posture errors; a *SignalError wraps one of them.
var (
	ErrUnknownSignal = errors.New("sense: unknown signal kind")
	ErrSignalRange   = errors.New("sense: signal value out of range")
	ErrSignalTime    = errors.New("sense: signal time before the previous signal")
	ErrSignalTimeNeg = errors.New("sense: negative signal time")
)

// SignalError is a rejected signal. Errors.Is(err, ErrSignalRange) and the
// other sentinels select the cause.
type SignalError struct {
	Kind  string
	Value int64
	Max   int64 // the accepted range is 0..Max when Err is ErrSignalRange
	Err   error
}

func (e *SignalError) Error() string {
	switch e.Err {
	case ErrSignalRange:
		return fmt.Sprintf("%v: %s = %d, want 0..%d", e.Err, e.Kind, e.Value, e.Max)
	case ErrUnknownSignal:
		return fmt.Sprintf("%v: %q", e.Err, e.Kind)
	default:
		return fmt.Sprintf("%v: %s at %d", e.Err, e.Kind, e.Value)
	}
}

func (e *SignalError) Unwrap() error { return e.Err }

// checkVector validates every component of v.
func checkVector(v SignalVector) error {
	for k := range v {
		if v[k] < 0 || v[k] > signalSpecs[k].max {
			return &SignalError{Kind: signalSpecs[k].name, Value: v[k], Max: signalSpecs[k].max, Err: ErrSignalRange}
		}
	}
	return nil
}

// normalized scales each signal to 0..1000.
func normalized(v SignalVector) SignalVector {
	var n SignalVector
	for k := range v {
		n[k] = v[k] * 1000 / signalSpecs[k].max
	}
	return n
}

// Sensitivity folds a signal vector into one score 0..1000:
//
//	n_k  = value_k × 1000 / max_k                 (each signal on 0..1000)
//	peak = max_k n_k × weight_k / 1000             (the loudest signal)
//	mean = Σ n_k × weight_k / Σ weight_k           (the chorus)
//	sensitivity = min(1000, peak + mean/4)
//
// with weights incident_level 1000, market_volatility 600,
// error_budget_burn 700, threat_level 900. incident_level 100 alone gives
// 1000 (critical); market_volatility 100 alone gives 646 (elevated); every
// signal at half range gives 625.
func Sensitivity(v SignalVector) int64 {
	n := normalized(v)
	var peak, sum, wsum int64
	for k := range n {
		w := signalSpecs[k].weight
		peak = max(peak, n[k]*w/1000)
		sum += n[k] * w
		wsum += w
	}
	return min(1000, peak+sum/wsum/4)
}

// Posture thresholds on the sensitivity score. Entering a level needs a
// higher score than staying in it, so a score that oscillates around one
// threshold does not flap:
//
//	critical: enter at ≥ 800, stay while ≥ 700
//	elevated: enter at ≥ 500, stay while ≥ 400
//	relaxed:  enter at < 100, stay while < 200
//	normal:   otherwise
const (
	CriticalEnter = 800
	CriticalExit  = 700
	ElevatedEnter = 500
	ElevatedExit  = 400
	RelaxedEnter  = 100
	RelaxedExit   = 200
)

// freshLevel is the level of score s judged by the enter thresholds alone.
func freshLevel(s int64) Level {
	switch {
	case s >= CriticalEnter:
		return LevelCritical
	case s >= ElevatedEnter:
		return LevelElevated
	case s < RelaxedEnter:
		return LevelRelaxed
	}
	return LevelNormal
}

// holds reports whether level l is kept at score s.
func holds(l Level, s int64) bool {
	switch l {
	case LevelCritical:
		return s >= CriticalExit
	case LevelElevated:
		return s >= ElevatedExit
	case LevelNormal:
		return s >= RelaxedEnter
	}
	return true
}

// NextLevel is the posture level after level cur sees score s. It rises
// straight to the level whose enter threshold s meets (relaxed is left
// for normal only once s ≥ RelaxedExit) and falls one level at a time
// while the current level's stay threshold is not met. It is idempotent:
// NextLevel(NextLevel(l, s), s) == NextLevel(l, s).
func NextLevel(cur Level, s int64) Level {
	up := freshLevel(s)
	if up > cur {
		if cur == LevelRelaxed && up == LevelNormal && s < RelaxedExit {
			return LevelRelaxed
		}
		return up
	}
	for cur > up && !holds(cur, s) {
		cur--
	}
	return cur
}

// Posture folds typed external signals into a sensitivity score and a
// level with hysteresis. Before the first signal the level is normal and
// the sensitivity 0; signals persist until replaced.
type Posture struct {
	signals     SignalVector
	sensitivity int64
	level       Level
	time        int64 // ledger time of the last accepted signal
	set         bool  // a signal has been accepted
}

// NewPosture returns the posture before any signal: normal.
func NewPosture() *Posture { return &Posture{level: LevelNormal} }

// PostureChange is the outcome of one accepted signal, with the evidence a
// caller ledgers: the full signal vector after the signal, the scores and
// the levels. Changed reports From != To.
type PostureChange struct {
	Time            int64
	Kind            string
	Value           int64
	Signals         SignalVector
	FromSensitivity int64
	Sensitivity     int64
	From            Level
	To              Level
	Changed         bool
}

// Signal sets signal kind to value at ledger time t (unix ns, not before
// the previous signal) and re-derives the sensitivity and level. A
// rejected signal returns a *SignalError and changes nothing.
func (p *Posture) Signal(kind string, value, t int64) (PostureChange, error) {
	k, err := ParseSignalKind(kind)
	if err != nil {
		return PostureChange{}, err
	}
	if value < 0 || value > k.Max() {
		return PostureChange{}, &SignalError{Kind: kind, Value: value, Max: k.Max(), Err: ErrSignalRange}
	}
	if t < 0 {
		return PostureChange{}, &SignalError{Kind: kind, Value: t, Err: ErrSignalTimeNeg}
	}
	if p.set && t < p.time {
		return PostureChange{}, &SignalError{Kind: kind, Value: t, Err: ErrSignalTime}
	}
	c := PostureChange{Time: t, Kind: kind, Value: value, FromSensitivity: p.sensitivity, From: p.level}
	p.signals[k] = value
	p.sensitivity = Sensitivity(p.signals)
	p.level = NextLevel(p.level, p.sensitivity)
	p.time, p.set = t, true
	c.Signals, c.Sensitivity, c.To, c.Changed = p.signals, p.sensitivity, p.level, c.From != p.level
	return c, nil
}

// Level is the current posture level.
func (p *Posture) Level() Level { return p.level }

// Sensitivity is the current sensitivity score, 0..1000.
func (p *Posture) Sensitivity() int64 { return p.sensitivity }

// Signals is the current signal vector (zero for signals never set).
func (p *Posture) Signals() SignalVector { return p.signals }

// Time is the ledger time of the last accepted signal; ok is false before
// the first.
func (p *Posture) Time() (t int64, ok bool) { return p.time, p.set }

// snapshot captures the posture for the archive.
func (p *Posture) snapshot() Snapshot {
	return Snapshot{Time: p.time, Signals: p.signals, Sensitivity: p.sensitivity, Level: p.level}
}
