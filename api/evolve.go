package api

import "time"

// Governed evolution shapes (protocol 8): a candidate policy set rolled
// out shadow → canary steps → promotion, and the versions of each set.

// Evolution phases, as Evolution.Phase reports them.
const (
	PhaseShadow            = "shadow"
	PhaseCanary            = "canary"
	PhaseAwaitingPromotion = "awaiting_promotion"
	PhasePromoted          = "promoted"
	PhaseRolledBack        = "rolled_back"
	PhasePaused            = "paused"
	PhaseAborted           = "aborted"
)

// EvolveStartRequest is POST /v1/evolutions: the candidate Text for the
// policy set Name. Zero fields take the kernel's defaults (steps 5, 25,
// 100 percent; a 60 s window; 20 shadow decisions).
type EvolveStartRequest struct {
	Name      string  `json:"name"`
	Text      string  `json:"text"`
	Steps     []int64 `json:"steps,omitempty"`     // canary weights in percent, strictly increasing
	WindowMs  int64   `json:"window_ms,omitempty"` // each step's window of ledger time
	MinShadow int64   `json:"min_shadow,omitempty"`
}

// EvolveStartResponse answers a start: the evolution's id (ev-SEQ) and
// the backtest of recent history that the start recorded.
type EvolveStartResponse struct {
	Outcome
	ID       string         `json:"id"`
	Backtest EvolveBacktest `json:"backtest"`
}

// EvolveBacktest summarizes the backtest a start ran over [from, to]:
// relaxations are changed decisions that a relaxation made (a deny or an
// escalation that would be permitted, a deny that would be escalated).
type EvolveBacktest struct {
	From        uint64 `json:"from"`
	To          uint64 `json:"to"`
	Evaluated   int64  `json:"evaluated"`
	Changed     int64  `json:"changed"`
	Relaxations int64  `json:"relaxations"`
}

// EvolveResponse answers promote, abort and resume: the phase after it
// and, for a promotion, the version it installed.
type EvolveResponse struct {
	Outcome
	ID      string `json:"id"`
	Phase   string `json:"phase,omitempty"`
	Version uint64 `json:"version,omitempty"`
}

// Evolution is GET /v1/evolutions/{id}.
type Evolution struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Phase      string          `json:"phase"`
	Weight     int64           `json:"weight"` // the canary weight in force, percent (held while paused after a step or awaiting promotion)
	Steps      []int64         `json:"steps"`
	Step       int64           `json:"step"` // index into steps
	WindowMs   int64           `json:"window_ms"`
	WindowEnd  time.Time       `json:"window_end"`
	MinShadow  int64           `json:"min_shadow"`
	Relaxed    bool            `json:"relaxed"`
	PausedFrom string          `json:"paused_from,omitempty"`
	StartedBy  string          `json:"started_by"`
	StartedSeq uint64          `json:"started_seq"`
	ClosedSeq  uint64          `json:"closed_seq,omitempty"`
	ClosedBy   string          `json:"closed_by,omitempty"`
	Backtest   EvolveBacktest  `json:"backtest"`
	Shadow     EvolveShadow    `json:"shadow"`
	Canary     EvolveCounts    `json:"canary"`   // this window's
	Baseline   EvolveCounts    `json:"baseline"` // pooled since the start
	Verdicts   []EvolveVerdict `json:"verdicts"`
	Text       string          `json:"text"`
}

// EvolveShadow is what the candidate would have changed in shadow:
// by_transition counts changed decisions as "permit->deny" etc.
type EvolveShadow struct {
	Judged       int64            `json:"judged"`
	Changed      int64            `json:"changed"`
	ByTransition map[string]int64 `json:"by_transition"`
	Entities     []string         `json:"entities"`
	EntitiesMore bool             `json:"entities_more"`
}

// EvolveCounts are one cohort's counted outcomes.
type EvolveCounts struct {
	Decisions    int64 `json:"decisions"`
	Deny         int64 `json:"deny"`
	Escalate     int64 `json:"escalate"`
	Effects      int64 `json:"effects"`
	EffectErrors int64 `json:"effect_errors"`
}

// EvolveVerdict is the judgement of one phase or step: successful,
// failed or inconclusive, with each metric (deny_rate, escalation_rate,
// effect_error_rate, mean_deviation) compared between the cohorts.
type EvolveVerdict struct {
	Phase   string                  `json:"phase"`
	Step    int64                   `json:"step"`
	Weight  int64                   `json:"weight"`
	Verdict string                  `json:"verdict"`
	Note    string                  `json:"note,omitempty"`
	Seq     uint64                  `json:"seq"`
	Time    time.Time               `json:"time"`
	Metrics map[string]EvolveMetric `json:"metrics"`
	Shadow  *EvolveShadow           `json:"shadow,omitempty"`
}

// EvolveMetric compares one metric: rates are fractions (0..1), the mean
// deviation in score units; p is the test's p-value (null for a metric
// judged by its threshold alone); outcome is pass, fail, inconclusive or
// no_data.
type EvolveMetric struct {
	Canary    float64  `json:"canary"`
	Baseline  float64  `json:"baseline"`
	Threshold float64  `json:"threshold"`
	Test      string   `json:"test"`
	P         *float64 `json:"p"`
	CanaryN   int64    `json:"canary_n"`
	BaselineN int64    `json:"baseline_n"`
	Outcome   string   `json:"outcome"`
}

// PolicyVersion is one kept ACTIVE text of a policy set (GET
// /v1/policies/{name}/history): via is the evolution that promoted it,
// "rollback:N" for a rollback, "" for policy set.
type PolicyVersion struct {
	Version uint64    `json:"version"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	By      string    `json:"by"`
	Via     string    `json:"via"`
	Text    string    `json:"text"`
}

// PolicyRollbackRequest is POST /v1/policies/{name}/rollback.
type PolicyRollbackRequest struct {
	Version uint64 `json:"version"`
}

// PolicyRollbackResponse answers a rollback with the new version it made.
type PolicyRollbackResponse struct {
	Outcome
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}
