package fsm

import "github.com/dominus-kernel/dominus/api"

// The public limits, names and operator signing messages are defined in
// api, so that clients share them without importing the ledger; the
// ledger keeps its own names for them here. The values and bytes are the
// same by definition.

// Limits on what may enter the log (api/ledger.go). Checked at the edge
// before Raft and again in the FSM, which must reject (not trust) anything
// larger.
const (
	MaxRequestIDBytes = api.MaxRequestIDBytes
	MaxKeyBytes       = api.MaxKeyBytes
	MaxValueBytes     = api.MaxValueBytes
	MaxArgsBytes      = api.MaxArgsBytes
	MaxPolicyBytes    = api.MaxPolicyBytes
	MaxCanonBytes     = api.MaxCanonBytes
)

// Kernel roles, sealed at genesis. A kernel sealed without a role is a
// standalone kernel: it has no federation state and rejects every
// federation command.
const (
	RoleStandalone = api.RoleStandalone
	RoleSovereign  = api.RoleSovereign
	RoleDomain     = api.RoleDomain
)

// Policy modes.
const (
	PolicyActive = api.PolicyActive
	PolicyShadow = api.PolicyShadow
)

// Approval states.
const (
	ApprovalPending  = api.ApprovalPending
	ApprovalApproved = api.ApprovalApproved
	ApprovalDenied   = api.ApprovalDenied
	ApprovalUsed     = api.ApprovalUsed
)

// AmendmentMessage is what an operator signs to ratify amendment id over
// the exact text whose SHA-256 is textHash (api.AmendmentMessage).
func AmendmentMessage(id string, textHash []byte) []byte { return api.AmendmentMessage(id, textHash) }

// ResumeMessage is what an operator signs to resume the federation after
// halt id (api.ResumeMessage).
func ResumeMessage(haltID string) []byte { return api.ResumeMessage(haltID) }

// RotateKeysMessage is what a federation operator signs to move the key
// epoch of the sovereign kernel sovereignID on to epoch
// (api.RotateKeysMessage).
func RotateKeysMessage(sovereignID string, epoch uint64) []byte {
	return api.RotateKeysMessage(sovereignID, epoch)
}

// RekeyMessage is what an operator signs to replace operator's key oldKey
// with newKey (api.RekeyMessage).
func RekeyMessage(operator string, oldKey, newKey []byte) []byte {
	return api.RekeyMessage(operator, oldKey, newKey)
}

// ProtocolMessage is what a federation operator signs to move the
// federation of the sovereign kernel sovereignID to protocol version
// (api.ProtocolMessage).
func ProtocolMessage(sovereignID string, version uint16) []byte {
	return api.ProtocolMessage(sovereignID, version)
}
