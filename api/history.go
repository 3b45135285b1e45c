package api

import "time"

// AsOf names the point of history a read answered from: the state right
// after event Seq, whose ledger time is Time.
type AsOf struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
}

// HistoryEntry is one decision of an entity, GET /v1/history/{entity},
// with the state it was judged against: uses left after it, and the tier,
// trust and posture the policy saw (empty when the gate refused the call
// before the policy stage).
type HistoryEntry struct {
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"`
	Op            string    `json:"op"`
	Resource      string    `json:"resource"`
	Decision      string    `json:"decision"`
	Reason        string    `json:"reason"`
	UsesLeft      int64     `json:"uses_left"` // -1 unlimited
	Tier          string    `json:"tier"`
	Trust         int64     `json:"trust"`
	Posture       string    `json:"posture"`
	PolicyVersion uint64    `json:"policy_version"`
	CapID         string    `json:"cap_id"`
	// History is context.history the call was judged with (protocol 7).
	History map[string]int64 `json:"history,omitempty"`
	// AsOf is the seq an as-of kv.get read at.
	AsOf uint64 `json:"as_of,omitempty"`
}

// HistoryStatus is GET /v1/history/status: this node's checkpoints.
type HistoryStatus struct {
	Every       uint64 `json:"every"`        // events between checkpoints; 0 = none kept
	Checkpoints int    `json:"checkpoints"`  // verified checkpoints on disk
	LatestSeq   uint64 `json:"latest_seq"`   // the newest checkpoint's seq
	FirstSeq    uint64 `json:"first_seq"`    // the earliest seq an as-of read can answer
	ArchivedSeq uint64 `json:"archived_seq"` // the newest seq
	Bytes       int64  `json:"bytes"`        // checkpoint bytes on disk
}
