package api

import "time"

// Codes added by the gate.
const (
	CodeRateLimited   = "rate_limited"
	CodePolicyInvalid = "policy_invalid"
)

// SyscallRequest is POST /v1/syscall (the agent's capability token in
// Authorization: Bearer). Args is passed to the effect; for kv.put it is
// the value; for kv.cas it is a KVCASRequest as JSON.
type SyscallRequest struct {
	Op         string `json:"op"`
	Resource   string `json:"resource"`
	Args       string `json:"args,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
	// RemoteToken, for a call on another domain's resource
	// ("DOMAIN:resource"), is the grant token that domain issued to this
	// caller's entity. Only its hash enters this kernel's ledger.
	RemoteToken string `json:"remote_token,omitempty"`
}

// SyscallResponse answers every syscall: the decision is in Outcome
// (permit, deny, escalate) with its reason; escalate carries the approval
// id to wait for, as escalation_id and as approval_id (the same id).
type SyscallResponse struct {
	Outcome
	Op           string `json:"op"`
	Resource     string `json:"resource"`
	CapID        string `json:"cap_id,omitempty"`
	EscalationID string `json:"escalation_id,omitempty"`
	ApprovalID   string `json:"approval_id,omitempty"` // = EscalationID
	UsesLeft     int64  `json:"uses_left"`             // -1 unlimited
	// Result is the operation's result where it has one: a permitted
	// kv.get's value when the key exists (also in Value).
	Result  *string `json:"result,omitempty"`
	Value   string  `json:"value,omitempty"`
	Found   bool    `json:"found,omitempty"`
	Version uint64  `json:"version,omitempty"`
	// Effect is "pending" for a permitted external op: a driver runs it
	// after the decision is committed; GET /v1/effects/{seq} tells how it
	// ended (ok, failed, indeterminate).
	Effect string `json:"effect,omitempty"`
	// EventID names the bus event of a permitted cross-domain call;
	// GET /v1/bus/{event_id} reports its delivery and the remote decision.
	EventID string `json:"event_id,omitempty"`
}

// Effect is an external effect of a permitted syscall.
type Effect struct {
	Seq          uint64 `json:"seq"`
	CapID        string `json:"cap_id"`
	Entity       string `json:"entity"`
	Op           string `json:"op"`
	Resource     string `json:"resource"`
	Status       string `json:"status"` // pending, ok, failed, indeterminate
	Code         int64  `json:"code"`
	OutputDigest string `json:"output_digest,omitempty"`
	CompletedSeq uint64 `json:"completed_seq,omitempty"`
}

// GrantRequest is POST /v1/caps (operator token) and POST
// /v1/caps/delegate (the parent's token).
type GrantRequest struct {
	Entity    string   `json:"entity"`
	Ops       []string `json:"ops"`
	Resources []string `json:"resources"`
	TTL       string   `json:"ttl,omitempty"`  // Go duration; "" = none (grant) or the parent's expiry (delegate)
	Uses      int64    `json:"uses,omitempty"` // 0 = unlimited
	Domain    string   `json:"domain,omitempty"`
}

// GrantResponse returns the new capability's token exactly once.
type GrantResponse struct {
	Outcome
	ID        string `json:"id"`
	Token     string `json:"token,omitempty"`
	GrantedBy string `json:"granted_by,omitempty"`
}

// Capability is a capability as listed to operators (never its token).
type Capability struct {
	ID        string    `json:"id"`
	Entity    string    `json:"entity"`
	Operator  bool      `json:"operator"`
	Domain    string    `json:"domain"`
	Ops       []string  `json:"ops"`
	Resources []string  `json:"resources"`
	Expires   time.Time `json:"expires,omitempty"`
	Uses      int64     `json:"uses"`
	Used      int64     `json:"used"`
	Reserved  int64     `json:"reserved"`
	Remaining int64     `json:"remaining"` // -1 unlimited
	Parent    string    `json:"parent,omitempty"`
	Depth     int       `json:"depth"`
	GrantedBy string    `json:"granted_by"`
	Revoked   bool      `json:"revoked"`
	Effective string    `json:"effective"` // ok, revoked, expired, domain_mismatch
	Created   uint64    `json:"created_seq"`
	AsOf      *AsOf     `json:"as_of,omitempty"`
}

// OperatorRequest is POST /v1/operators.
type OperatorRequest struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`              // governance ops, e.g. cap.grant, cap.revoke, policy.set, approval.decide, halt, audit.read
	Resources []string `json:"resources,omitempty"` // default ["*"]
	TTL       string   `json:"ttl,omitempty"`
}

// PolicyRequest is POST /v1/policies. Empty Text removes the set.
type PolicyRequest struct {
	Name string `json:"name"`
	Text string `json:"text"`
	Mode string `json:"mode"` // ACTIVE (default) or SHADOW, in either case
}

// Policy is a policy set as listed.
type Policy struct {
	Name    string `json:"name"`
	Mode    string `json:"mode"`
	Version uint64 `json:"version"`
	SetBy   string `json:"set_by"`
	Text    string `json:"text"`
	AsOf    *AsOf  `json:"as_of,omitempty"`
}

// PolicyResponse answers policy set. Warnings are things about the
// accepted text that an operator should read (the set is installed
// regardless).
type PolicyResponse struct {
	Outcome
	Name          string   `json:"name"`
	PolicyVersion uint64   `json:"policy_version"`
	Warnings      []string `json:"warnings,omitempty"` // e.g. a deprecated form of a policy
}

// BacktestRequest is POST /v1/policies/backtest.
type BacktestRequest struct {
	Name string `json:"name,omitempty"` // replace this ACTIVE set; "" = add Text as a new set
	Text string `json:"text"`
	From uint64 `json:"from"`
	To   uint64 `json:"to,omitempty"` // 0 = the current head
}

// BacktestTransition counts decisions that changed one way (From and To
// are decisions: permit, deny, escalate).
type BacktestTransition struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Count    int      `json:"count"`
	Examples []uint64 `json:"examples"` // seqs, at most MaxBacktestExamples
}

// MaxBacktestExamples bounds the example seqs of a backtest answer and of
// each of its transitions.
const MaxBacktestExamples = 10

// BacktestResponse reports a read-only re-judgment of history.
// ByTransition counts the changed decisions by "from->to" (e.g.
// "permit->deny"; a changed reason with the same decision counts under
// "deny->deny"); Examples holds the first changed seqs (at most
// MaxBacktestExamples).
type BacktestResponse struct {
	From         uint64               `json:"from"`
	To           uint64               `json:"to"`
	Evaluated    int                  `json:"evaluated"`
	Changed      int                  `json:"changed"`
	ByTransition map[string]int       `json:"by_transition"`
	Examples     []uint64             `json:"examples"`
	Transitions  []BacktestTransition `json:"transitions"`
}

// Approval is an escalation as listed.
type Approval struct {
	ID            string    `json:"id"`
	CapID         string    `json:"cap_id"`
	Entity        string    `json:"entity"`
	Op            string    `json:"op"`
	Resource      string    `json:"resource"`
	ArgsDigest    string    `json:"args_digest"`
	PolicyVersion uint64    `json:"policy_version"`
	Why           string    `json:"why"`
	RequestedSeq  uint64    `json:"requested_seq"`
	Expires       time.Time `json:"expires"`
	State         string    `json:"state"`
	DecidedBy     string    `json:"decided_by,omitempty"`
}

// HaltRequest is POST /v1/halt and /v1/resume. Empty Entity = the whole kernel.
type HaltRequest struct {
	Entity string `json:"entity,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Halt is a kill switch in force.
type Halt struct {
	Entity string `json:"entity"`
	Reason string `json:"reason"`
	By     string `json:"by"`
	Seq    uint64 `json:"seq"`
}
