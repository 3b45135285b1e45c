package api

import "time"

// Cortex shapes: the gossip signals a node holds and the master cortex's
// ledgered findings.

// CortexSignal is one signal of GET /v1/cortex/signals: the latest signal
// this node accepted (or published) for its (domain, node, kind).
type CortexSignal struct {
	// ID is "domain/node/kind/seq", the form findings cite as evidence.
	ID     string `json:"id"`
	Domain string `json:"domain"`
	// Node is the hex Ed25519 public key of the node that signed it.
	Node string `json:"node"`
	// Kind is trust_velocity, anomaly_indicator, operational_tempo,
	// resource_pressure or deny_rate.
	Kind  string `json:"kind"`
	Value int64  `json:"value"`
	// Window is when the measured window ended (ledger time).
	Window     time.Time `json:"window"`
	Seq        uint64    `json:"seq"`
	PassportID string    `json:"passport_id"`
}

// CortexInsight is one finding of GET /v1/cortex/insights, as the
// sovereign's ledger recorded it.
type CortexInsight struct {
	Kind       string   `json:"kind"`
	Domains    []string `json:"domains"`
	Evidence   []string `json:"evidence"`   // signal ids
	Confidence int64    `json:"confidence"` // 0..1000
	Summary    string   `json:"summary"`
	// Window is the newest evidence signal's window.
	Window time.Time `json:"window"`
	Seq    uint64    `json:"seq"`  // ledger seq of the record
	Time   time.Time `json:"time"` // ledger time of the record
}

// CortexKeyringRequest is POST /v1/cortex/keyring: one step of a gossip
// key rotation on this node.
type CortexKeyringRequest struct {
	Action string `json:"action"` // install, use or remove
	Key    string `json:"key"`    // 32 bytes, hex
}

// CortexKeyring answers a rotation step with the node's keyring as key
// fingerprints (the first 8 hex digits), the primary first.
type CortexKeyring struct {
	Node string   `json:"node"`
	Keys []string `json:"keys"`
}
