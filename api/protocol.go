package api

import "time"

// CodeProtocolUnsupported: an upgrade to a protocol that a voter (or, on
// the sovereign, a domain) does not implement yet.
const CodeProtocolUnsupported = "protocol_unsupported"

// ProtocolStatus is GET /v1/operator/protocol: the protocol in force, what
// each member's binary implements, and every change since genesis.
type ProtocolStatus struct {
	InForce uint16 `json:"in_force"`
	// Node and Supported: the node that answered and what it implements.
	Node      string           `json:"node"`
	Supported uint16           `json:"supported"`
	Members   []ProtocolMember `json:"members"`
	History   []ProtocolChange `json:"history"`
	// Domains (sovereign): what each joined domain last acknowledged
	// running and reported its voters implement.
	Domains []ProtocolDomain `json:"domains,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// ProtocolMember is one member of the Raft configuration. Supports is the
// newest protocol its binary implements (0: it did not answer; Error says
// why).
type ProtocolMember struct {
	Node     string `json:"node"`
	Supports uint16 `json:"supports"`
	Voter    bool   `json:"voter"`
	Error    string `json:"error,omitempty"`
}

// ProtocolChange is one entry of the history; the first is genesis.
type ProtocolChange struct {
	Version uint16    `json:"version"`
	Seq     uint64    `json:"seq"`
	By      string    `json:"by"`
	From    uint16    `json:"from,omitempty"`
	Time    time.Time `json:"time,omitzero"`
}

// ProtocolDomain is a domain as the sovereign sees its protocol.
type ProtocolDomain struct {
	Domain       string `json:"domain"`
	Acknowledged uint16 `json:"acknowledged"`
	Supports     uint16 `json:"supports"`
	Suspended    bool   `json:"suspended"`
}

// ProtocolUpgradeRequest is POST /v1/operator/protocol/upgrade. On the
// sovereign, Signatures are the federation operators' OPERATOR:HEX
// signatures over fsm.ProtocolMessage.
type ProtocolUpgradeRequest struct {
	Version    uint16   `json:"version"`
	Signatures []string `json:"signatures,omitempty"`
}

// ProtocolUpgradeResponse answers an upgrade.
type ProtocolUpgradeResponse struct {
	Outcome
	InForce uint16 `json:"in_force"`
	// Warnings name non-voting members whose binaries stop at the upgrade.
	Warnings []string `json:"warnings,omitempty"`
}

// Limits is GET /v1/operator/limits: the replicated bounds in force
// (protocol 4), defaults filled in, and what the kv store holds.
type Limits struct {
	DedupPerCaller int64        `json:"dedup_per_caller"`
	KVBytes        int64        `json:"kv_bytes"`
	KVBytesUsed    int64        `json:"kv_bytes_used"`
	Rates          []EntityRate `json:"rates"`
	// EvolveAutoPromote is the kind of evolution the kernel promotes
	// without a human: "never" or "tightening" (protocol 8).
	EvolveAutoPromote string `json:"evolve_auto_promote"`
}

// EntityRate is one entity's replicated rate limit, in calls per second.
type EntityRate struct {
	Entity    string `json:"entity"`
	PerSecond int64  `json:"per_second"`
}

// LimitsRequest is POST /v1/operator/limits (operator.manage): positive
// fields set a bound; a rate of 0 removes that entity's.
type LimitsRequest struct {
	DedupPerCaller int64        `json:"dedup_per_caller,omitempty"`
	KVBytes        int64        `json:"kv_bytes,omitempty"`
	Rates          []EntityRate `json:"rates,omitempty"`
	// EvolveAutoPromote sets what the kernel promotes without a human:
	// "never" or "tightening"; "" keeps it.
	EvolveAutoPromote string `json:"evolve_auto_promote,omitempty"`
}

// LimitsResponse answers limits set.
type LimitsResponse struct {
	Outcome
	Limits Limits `json:"limits"`
}
