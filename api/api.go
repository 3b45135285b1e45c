package api

import "time"

// Header names.
const (
	HeaderRequestID = "X-Dominus-Request-Id"
	HeaderToken     = "Authorization" // "Bearer <token>"
)

// Exit statuses shared by every CLI command.
const (
	ExitOK        = 0
	ExitError     = 1
	ExitDenied    = 2
	ExitEscalated = 3
	ExitVerify    = 4
)

// Error codes carried in Error.Code.
const (
	CodeBadRequest     = "bad_request"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeTooLarge       = "too_large"
	CodeNoLeader       = "no_leader"
	CodeNotInitialized = "not_initialized"
	CodeAlreadyInit    = "already_initialized"
	CodeDiskFull       = "disk_full"
	CodeClockSkew      = "clock_skew"
	CodeTimeout        = "timeout"
	CodeVerifyFailed   = "verification_failed"
	CodeDenied         = "denied"
	CodeInternal       = "internal"
	CodeUnavailable    = "unavailable"
	// CodeStale (503): a read that checks a capability's scope, on a node
	// that cannot confirm against the leader that its state holds
	// everything committed (cut off, deposed, too far behind): it would
	// risk serving a capability revoked on the leader. Retry, or ask
	// another node.
	CodeStale = "stale"
)

// Error is the body of every non-2xx response: {"error": {...}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorBody wraps Error.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Head names a point of a kernel's chain.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Peer is one Raft server.
type Peer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
	// Supports is the newest protocol the member's binary implements, as
	// last asked (0: not known yet).
	Supports uint16 `json:"supports"`
	// NodeKey is the member's node key as the ledger records it (hex; ""
	// until the leader has recorded it).
	NodeKey string `json:"node_key,omitempty"`
}

// Status is GET /v1/status.
type Status struct {
	Node         string `json:"node"`
	KernelID     string `json:"kernel_id"`
	Leader       string `json:"leader"`
	LeaderAddr   string `json:"leader_addr"`
	RaftState    string `json:"raft_state"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	// LastLogIndex is the last entry in this node's Raft log (committed
	// or not); LastSnapshotIndex the last entry its latest Raft snapshot
	// covers (taken or installed).
	LastLogIndex      uint64    `json:"last_log_index"`
	LastSnapshotIndex uint64    `json:"last_snapshot_index"`
	Head              Head      `json:"head"`
	StateDigest       string    `json:"state_digest"`
	Epoch             uint64    `json:"epoch"`
	LedgerTime        time.Time `json:"ledger_time"`
	Peers             []Peer    `json:"peers"`
	CanonHash         string    `json:"canon_hash"`
	Initialized       bool      `json:"initialized"`
	Protocol          uint16    `json:"protocol"`           // in force
	ProtocolSupported uint16    `json:"protocol_supported"` // this node's binary implements up to
	Version           string    `json:"version"`
	Domain            string    `json:"domain"`
	Halted            bool      `json:"halted"` // a kernel-wide or federation halt is in force
	// Replaying: this node applies entries it already holds (after a
	// restart) or is catching up; ReplayTarget is the index it works
	// towards (the commit index, else its last log index).
	Replaying    bool   `json:"replaying"`
	ReplayTarget uint64 `json:"replay_target,omitempty"`
	Posture      string `json:"posture,omitempty"` // the kernel's posture level
	// DiskFull says why this node takes no writes when its disk is full
	// (the archive waits for space); "" otherwise.
	DiskFull string `json:"disk_full,omitempty"`

	// Federation (empty role = standalone kernel).
	Role         string       `json:"role"`
	CanonVersion uint64       `json:"canon_version"`
	Passport     *PassportRef `json:"passport,omitempty"`
	FedHalted    bool         `json:"federation_halted"`
}

// InitResponse is POST /v1/operator/init.
type InitResponse struct {
	RootToken string `json:"root_token"`
	// JoinSecret lets a node not yet in the configuration join (agent
	// --join-secret). Shown once; the ledger keeps only its hash.
	JoinSecret string `json:"join_secret,omitempty"`
	KernelID   string `json:"kernel_id"`
	Head       Head   `json:"head"`
}

// Decisions as the API spells them (Outcome.Decision, Event.Decision,
// RemoteRes.Decision, backtest transitions). A record that decides
// nothing (e.g. effect.complete) carries DecisionNone. Earlier kernels
// spelt them in upper case; readers of recorded answers compare without
// regard to case.
const (
	DecisionPermit   = "permit"
	DecisionDeny     = "deny"
	DecisionEscalate = "escalate"
	DecisionNone     = "none"
)

// Outcome is the common part of every ledgered answer.
type Outcome struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Decision  string    `json:"decision"` // permit, deny or escalate
	Reason    string    `json:"reason"`
	Duplicate bool      `json:"duplicate,omitempty"`
	// Retried marks a retried read answered with the current value, which
	// changed since its first answer (protocol 4).
	Retried bool `json:"retried,omitempty"`
}

// KVPutRequest is PUT /v1/kv/{key}.
type KVPutRequest struct {
	Value string `json:"value"`
}

// KVCASRequest is POST /v1/cas/{key}. With ExpectAbsent the key must not
// exist; otherwise its value must equal Expect (and its version
// ExpectVersion when non-zero).
type KVCASRequest struct {
	Expect        string `json:"expect"`
	ExpectAbsent  bool   `json:"expect_absent"`
	ExpectVersion uint64 `json:"expect_version,omitempty"`
	Value         string `json:"value"`
}

// KVResponse answers every kv operation.
type KVResponse struct {
	Outcome
	Key       string `json:"key"`
	Value     string `json:"value"`
	Found     bool   `json:"found"`
	Version   uint64 `json:"version"`
	Succeeded bool   `json:"succeeded"` // cas: the write happened
	AsOf      *AsOf  `json:"as_of,omitempty"`
}

// Event is one ledger event as shown to people and scripts.
type Event struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Epoch       uint64    `json:"epoch"`
	Index       uint64    `json:"index"`
	Type        string    `json:"type"`
	Actor       string    `json:"actor"`
	RequestID   string    `json:"request_id,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	Decision    string    `json:"decision"` // permit, deny, escalate, or none (a record that decides nothing)
	Reason      string    `json:"reason"`
	PayloadHash string    `json:"payload_hash"`
	Prev        string    `json:"prev"`
	Hash        string    `json:"hash"`
	// Gate detail, where the event has it.
	GrantedBy  string   `json:"granted_by,omitempty"`
	Op         string   `json:"op,omitempty"`
	CapID      string   `json:"cap_id,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty"`
	Shadow     []string `json:"shadow,omitempty"` // SHADOW sets' would-be decisions, "set:decision:reason"
	Matched    []string `json:"matched,omitempty"`
}

// VerifyResponse is GET /v1/ledger/verify: the node re-verifies every
// link of its archive from genesis.
type VerifyResponse struct {
	OK      bool   `json:"ok"`
	Head    Head   `json:"head"`
	Events  uint64 `json:"events"`
	BadSeq  uint64 `json:"bad_seq,omitempty"`
	Message string `json:"message,omitempty"`
}

// SnapshotRestoreResponse is POST /v1/snapshot/restore. The outcome is
// the epoch's, or that of the epoch.chunk the ledger refused.
type SnapshotRestoreResponse struct {
	Outcome
	Epoch        uint64 `json:"epoch"`
	SnapshotHead Head   `json:"snapshot_head"`
	Bytes        int64  `json:"bytes"`  // the snapshot's size
	Chunks       int    `json:"chunks"` // epoch.chunk entries that staged it (protocol 4; 0: one inline epoch)
}

// RemovePeerRequest is POST /v1/operator/raft/remove-peer.
type RemovePeerRequest struct {
	ID string `json:"id"`
}

// AddPeerRequest is POST /v1/operator/raft/add-peer: admit a node of this
// kernel by name and --bind address and add it to the configuration.
type AddPeerRequest struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter,omitempty"`
}

// AddPeerResponse answers add-peer: the ledgered admission and whether the
// node is now in the configuration.
type AddPeerResponse struct {
	Outcome
	ID      string `json:"id"`
	Address string `json:"address"`
	Added   bool   `json:"added"`
}

// TransferLeadershipRequest is POST /v1/operator/raft/transfer-leadership.
// An empty ID lets Raft choose the most up-to-date follower.
type TransferLeadershipRequest struct {
	ID string `json:"id,omitempty"`
}

// RaftSnapshotResponse is POST /v1/operator/raft/snapshot: the node took
// a Raft snapshot of its ledger and compacted its Raft log behind it
// (keeping its trailing entries for slow followers).
type RaftSnapshotResponse struct {
	Node string `json:"node"`
	// Index and Term are the last Raft entry the snapshot covers.
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// FirstLogIndex and LastLogIndex bound the Raft log the node still
	// holds; a follower whose log ends before FirstLogIndex-1 catches up
	// only by installing a snapshot.
	FirstLogIndex uint64 `json:"first_log_index"`
	LastLogIndex  uint64 `json:"last_log_index"`
	// Taken is false only when the node has applied nothing yet (its
	// last snapshot, if any, is described).
	Taken bool `json:"taken"`
}

// Health is GET /v1/health and /v1/ready.
type Health struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}
