package sense

import (
	"crypto/sha256"
	"fmt"
)

// Sensor is the whole sensing state of one kernel: baselines and trust per
// entity, the posture and its archive. Every method is a pure function of
// the state and its arguments; the FSM owns the only copy and applies
// calls in log order. A Sensor is not safe for concurrent use.
type Sensor struct {
	cfg     Config
	base    *Baselines
	trust   *Trust
	posture *Posture
	archive *PostureArchive
	m2      *model2 // model 2 (Judge, Observe); nil until first used
}

// New returns an empty Sensor under cfg: no entities, posture normal.
func New(cfg Config) (*Sensor, error) {
	b, err := NewBaselines(cfg)
	if err != nil {
		return nil, err
	}
	return &Sensor{
		cfg:     cfg,
		base:    b,
		trust:   NewTrust(int(cfg.MaxEntities)),
		posture: NewPosture(),
		archive: NewPostureArchive(int(cfg.ArchiveCap)),
	}, nil
}

// Config returns the parameters the Sensor was built with.
func (s *Sensor) Config() Config { return s.cfg }

// Step is the outcome of one observation: the deviation of the entity's
// window after it and the trust movement it caused.
type Step struct {
	Report Report
	Trust  TrustChange
}

// Fold records one gate decision of entity under model 1 (fsm
// protocols 2 to 4): it folds the observation
// into the baseline, scores the window at the current posture and moves
// trust by the decision and by the rise of the window's peak score. A
// rejected observation (invalid name, op, decision, bytes or time, or an
// entity beyond MaxEntities in either book) returns an error and changes
// nothing.
func (s *Sensor) Fold(entity string, ev Observation) (Step, error) {
	if err := s.base.check(entity, ev); err != nil {
		return Step{}, err
	}
	if !s.trust.admits(entity) {
		return Step{}, fmt.Errorf("%w: %d trust entities", ErrEntityLimit, s.cfg.MaxEntities)
	}
	lvl := s.posture.Level()
	r, rise, err := s.base.Observe(entity, ev, lvl)
	if err != nil {
		panic("sense: observation failed after check: " + err.Error())
	}
	tc, err := s.trust.Observe(entity, ev.Decision, rise, lvl)
	if err != nil {
		panic("sense: trust failed after check: " + err.Error())
	}
	return Step{Report: r, Trust: tc}, nil
}

// Deviation reports entity's deviation at ledger time now under the
// current posture (see Baselines.Deviation).
//
// An entity known only to model 2 (fsm protocol 6) is reported by model
// 2 as its recent behaviour stands, without a call (the window metrics;
// Windows counts its calls). This read changes nothing: it rolls a copy
// of the entity's open minute forward, not the entity.
func (s *Sensor) Deviation(entity string, now int64) Report {
	if s.m2 != nil {
		if e := s.m2.entities[entity]; e != nil && now >= e.last {
			if _, ok := s.base.entities[entity]; !ok {
				c := *e
				c.roll(now)
				return s.m2.score(entity, &c, now, pending{peek: true, decided: true}, s.posture.Level())
			}
		}
	}
	return s.base.Deviation(entity, now, s.posture.Level())
}

// Trust returns entity's trust; an unknown entity reads TrustInitial.
func (s *Sensor) Trust(entity string) TrustStatus { return s.trust.Status(entity) }

// AdjustTrust applies a governed trust adjustment (see Trust.Adjust).
func (s *Sensor) AdjustTrust(entity string, delta int64, reason string) (TrustChange, error) {
	return s.trust.Adjust(entity, delta, reason)
}

// Profile returns a copy of entity's baseline (see Baselines.Profile).
func (s *Sensor) Profile(entity string) (Profile, bool) { return s.base.Profile(entity) }

// Forget drops entity's baseline and trust, as a governed command would;
// it reports whether anything was dropped.
func (s *Sensor) Forget(entity string) bool {
	a := s.base.Forget(entity)
	b := s.trust.Forget(entity)
	c := s.m2 != nil && s.m2.forget(entity)
	return a || b || c
}

// Entities returns the number of entities with a baseline (model 1 or
// model 2) and with a trust score.
func (s *Sensor) Entities() (baselines, trust int) {
	n := s.base.Len()
	if s.m2 != nil {
		n += len(s.m2.entities)
	}
	return n, s.trust.Len()
}

// Signal applies one external posture signal at ledger time t and archives
// the resulting posture. The returned change carries the evidence to
// ledger; a rejected signal returns a *SignalError and changes nothing.
func (s *Sensor) Signal(kind string, value, t int64) (PostureChange, error) {
	c, err := s.posture.Signal(kind, value, t)
	if err != nil {
		return PostureChange{}, err
	}
	s.archive.Add(s.posture.snapshot())
	return c, nil
}

// PostureStatus is the current posture.
type PostureStatus struct {
	Level       Level
	Sensitivity int64
	Signals     SignalVector
	Time        int64 // ledger time of the last signal
	Set         bool  // a signal has been accepted
}

// Posture returns the current posture.
func (s *Sensor) Posture() PostureStatus {
	t, ok := s.posture.Time()
	return PostureStatus{Level: s.posture.Level(), Sensitivity: s.posture.Sensitivity(), Signals: s.posture.Signals(), Time: t, Set: ok}
}

// Similar returns the k archived postures nearest to v, with what
// followed each (see PostureArchive.Similar).
func (s *Sensor) Similar(v SignalVector, k int) ([]Match, error) { return s.archive.Similar(v, k) }

// Archive returns a copy of the archived snapshots, oldest first.
func (s *Sensor) Archive() []Snapshot {
	out := make([]Snapshot, s.archive.Len())
	for i := range out {
		out[i] = s.archive.At(i)
	}
	return out
}

// Digest is SHA-256 of Encode(): equal digests mean equal state.
func (s *Sensor) Digest() [32]byte { return sha256.Sum256(s.Encode()) }
