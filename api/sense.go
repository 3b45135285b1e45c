package api

import "time"

// Sensing shapes (DESIGN.md §5).

// SignalRequest is POST /v1/signals: one typed external signal.
type SignalRequest struct {
	Kind  string `json:"kind"`
	Value int64  `json:"value"`
}

// SignalResponse answers an ingested signal with the posture after it.
type SignalResponse struct {
	Outcome
	Kind  string `json:"kind"`
	Value int64  `json:"value"`
	Level string `json:"level,omitempty"`
	Score int64  `json:"score"`
}

// Baseline is GET /v1/baselines/{entity}.
type Baseline struct {
	Entity       string         `json:"entity"`
	Observations uint32         `json:"observations"` // closed ledger-time windows folded into the baseline
	Established  bool           `json:"established"`
	Deviation    int64          `json:"deviation"` // overall score in hundredths of a deviation unit over tolerance; 0 = normal
	Escalate     bool           `json:"escalate"`  // at the current posture, this deviation goes to a human
	Events       int64          `json:"events"`    // events in the current window
	Top          string         `json:"top_metric,omitempty"`
	Metrics      []MetricReport `json:"metrics"`
	AsOf         *AsOf          `json:"as_of,omitempty"`
}

// MetricReport is one scored statistic of a baseline.
type MetricReport struct {
	Metric string `json:"metric"`
	Value  int64  `json:"value"`
	Mean   int64  `json:"mean"`
	Scale  int64  `json:"scale"`
	Score  int64  `json:"score"`
}

// TrustReport is GET /v1/trust/{entity}.
type TrustReport struct {
	Entity string `json:"entity"`
	Known  bool   `json:"known"`
	Score  int64  `json:"score"` // 0..1000
	Tier   string `json:"tier"`  // probation, standard or trusted
	AsOf   *AsOf  `json:"as_of,omitempty"`
}

// TrustAdjustRequest is POST /v1/trust-adjust/{entity}.
type TrustAdjustRequest struct {
	Delta  int64  `json:"delta"`
	Reason string `json:"reason"`
}

// TrustAdjustResponse answers a trust adjustment.
type TrustAdjustResponse struct {
	Outcome
	Entity string `json:"entity"`
	Score  int64  `json:"score"`
	Tier   string `json:"tier"`
}

// Posture is GET /v1/posture.
type Posture struct {
	Level   string           `json:"level"` // relaxed, normal, elevated or critical
	Score   int64            `json:"score"` // sensitivity, 0..1000
	Signals map[string]int64 `json:"signals"`
	Since   *time.Time       `json:"since,omitempty"` // ledger time of the last signal
	AsOf    *AsOf            `json:"as_of,omitempty"`
}

// PostureSnapshot is one archived posture.
type PostureSnapshot struct {
	Seq     uint64           `json:"seq"`
	Time    time.Time        `json:"time"`
	Level   string           `json:"level"`
	Score   int64            `json:"score"`
	Signals map[string]int64 `json:"signals"`
}

// PostureMatch is an answer of GET /v1/posture/similar: a past posture
// near the asked signal vector, and what came next.
type PostureMatch struct {
	Snapshot PostureSnapshot  `json:"snapshot"`
	Distance int64            `json:"distance"`
	Next     *PostureSnapshot `json:"next,omitempty"`
}
