package api

// Limits on what a request may carry. The kernel checks them at its edge
// before Raft and the ledger checks them again (it rejects, never trusts,
// anything larger); a client checks them first to fail without a round
// trip. The numbers are protocol: a ledger replays under the limits it was
// written with.
const (
	MaxRequestIDBytes = 128       // X-Dominus-Request-Id
	MaxKeyBytes       = 1024      // a kv key
	MaxValueBytes     = 1 << 20   // a kv value; a kv.cas syscall carries two
	MaxArgsBytes      = 64 << 10  // a syscall's args, other than kv.put and kv.cas
	MaxPolicyBytes    = 64 << 10  // one Cedar policy set's text
	MaxCanonBytes     = 256 << 10 // the text of a canon amendment
)

// Kernel roles, sealed at genesis (Status.Role). A kernel sealed
// without a role is a standalone kernel.
const (
	RoleStandalone = ""
	RoleSovereign  = "sovereign"
	RoleDomain     = "domain"
)

// Policy modes (PolicyRequest.Mode): an ACTIVE set decides, a SHADOW
// set is evaluated and its would-be decision recorded beside it.
const (
	PolicyActive = "ACTIVE"
	PolicyShadow = "SHADOW"
)

// Approval states (Approval.State).
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalUsed     = "used"
)

// ReasonNotFound is the reason name the ledger gives an answer about a
// missing key or record.
const ReasonNotFound = "not_found"
