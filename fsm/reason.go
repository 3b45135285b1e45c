package fsm

import "fmt"

// Decision is the outcome recorded for an event.
type Decision uint8

const (
	DecisionNone     Decision = 0 // governance records that decide nothing
	DecisionPermit   Decision = 1
	DecisionDeny     Decision = 2
	DecisionEscalate Decision = 3
)

func (d Decision) String() string {
	switch d {
	case DecisionNone:
		return "NONE"
	case DecisionPermit:
		return "PERMIT"
	case DecisionDeny:
		return "DENY"
	case DecisionEscalate:
		return "ESCALATE"
	}
	return fmt.Sprintf("DECISION(%d)", uint8(d))
}

// JSON is the decision's name in the HTTP API's and the CLI's JSON:
// "permit", "deny", "escalate" ("none" for records that decide nothing).
// String, upper-case, is for text read by people.
func (d Decision) JSON() string {
	switch d {
	case DecisionNone:
		return "none"
	case DecisionPermit:
		return "permit"
	case DecisionDeny:
		return "deny"
	case DecisionEscalate:
		return "escalate"
	}
	return fmt.Sprintf("decision(%d)", uint8(d))
}

// Reason is a stable numeric reason code recorded in the ledger. Numbers
// are protocol: append-only, never renumbered. Error strings never enter
// replicated state; names are for people.
type Reason uint16

const (
	ReasonOK                  Reason = 0
	ReasonMalformed           Reason = 1
	ReasonNotInitialized      Reason = 2
	ReasonAlreadyInitialized  Reason = 3
	ReasonUnknownToken        Reason = 4
	ReasonForbidden           Reason = 5
	ReasonInvalidArgument     Reason = 6
	ReasonTooLarge            Reason = 7
	ReasonCASMismatch         Reason = 8
	ReasonNotFound            Reason = 9
	ReasonUnsupportedProtocol Reason = 10
	ReasonHeadMismatch        Reason = 11
	ReasonSnapshotInvalid     Reason = 12
	ReasonExpired             Reason = 13
	ReasonRevoked             Reason = 14
	ReasonUsesExhausted       Reason = 15
	ReasonOutOfScope          Reason = 16
	ReasonPolicyForbid        Reason = 17
	ReasonPolicyError         Reason = 18
	ReasonHalted              Reason = 19
	ReasonDomainMismatch      Reason = 20
	ReasonApprovalInvalid     Reason = 21
	ReasonApprovalRequired    Reason = 22
	ReasonWiderThanParent     Reason = 23
	ReasonDepthExceeded       Reason = 24
	ReasonUnknownOp           Reason = 25
	ReasonDuplicateToken      Reason = 26
	ReasonNotHalted           Reason = 27
	ReasonApprovalApproved    Reason = 28
	ReasonApprovalDenied      Reason = 29
	ReasonEffectFailed        Reason = 30
	ReasonIndeterminate       Reason = 31
	ReasonEffectBacklog       Reason = 32
	ReasonWrongRole           Reason = 33
	ReasonBadSignature        Reason = 34
	ReasonAlreadyExists       Reason = 35
	ReasonJoinTokenInvalid    Reason = 36
	ReasonAlreadyRedeemed     Reason = 37
	ReasonSuspended           Reason = 38
	ReasonWitnessConflict     Reason = 39
	ReasonAmendmentClosed     Reason = 40
	ReasonDuplicateSignature  Reason = 41
	ReasonPassportInvalid     Reason = 42
	ReasonDuplicateEvent      Reason = 43
	ReasonTooOld              Reason = 44
	ReasonSequenceGap         Reason = 45
	ReasonNoRevocation        Reason = 46 // a key rotation names no revocation after the last rotation
	ReasonWiderThanGranter    Reason = 47 // a grant or delegation beyond its granter's own scope (protocol 4)
	ReasonSelfApproval        Reason = 48 // an approval decided by the caller or its delegation chain (protocol 4)
	ReasonRequestIDReused     Reason = 49 // a request id reused with another command or payload (protocol 4)
	ReasonQuotaExceeded       Reason = 50 // a caller's dedup quota, or the kv bound, is full (protocol 4)
	ReasonInternalOnly        Reason = 51 // an internal command carrying a bearer token (protocol 4)
	ReasonMemberUnverified    Reason = 52 // an internal command without a current member's valid signature (protocol 4)
	ReasonRestoreIncomplete   Reason = 53 // an epoch names a staged restore that lacks bytes (protocol 4)
	ReasonGatewayInvalid      Reason = 54 // a relayed syscall names no usable gateway holding effect.report on its op, or the caller's own chain (protocol 5)
	ReasonNotReporter         Reason = 55 // an effect report by a capability other than the effect's gateway (protocol 5)
	ReasonEffectDone          Reason = 56 // an effect report for an effect whose completion is already recorded (protocol 5)

	// Governed evolution (evolve.go, protocol 8).
	ReasonEvolutionActive      Reason = 65 // an evolution is already in progress
	ReasonEvolutionClosed      Reason = 66 // the evolution was promoted, rolled back or aborted
	ReasonNotDue               Reason = 67 // a tick before the window's end (or before shadow's minimum decisions)
	ReasonNotPaused            Reason = 68 // a resume of an evolution that is not paused
	ReasonNotAwaitingPromotion Reason = 69 // a promotion before the last step succeeded
)

var reasonNames = map[Reason]string{
	ReasonOK:                  "ok",
	ReasonMalformed:           "malformed",
	ReasonNotInitialized:      "not_initialized",
	ReasonAlreadyInitialized:  "already_initialized",
	ReasonUnknownToken:        "unknown_token",
	ReasonForbidden:           "forbidden",
	ReasonInvalidArgument:     "invalid_argument",
	ReasonTooLarge:            "too_large",
	ReasonCASMismatch:         "cas_mismatch",
	ReasonNotFound:            "not_found",
	ReasonUnsupportedProtocol: "unsupported_protocol",
	ReasonHeadMismatch:        "head_mismatch",
	ReasonSnapshotInvalid:     "snapshot_invalid",
	ReasonExpired:             "expired",
	ReasonRevoked:             "revoked",
	ReasonUsesExhausted:       "uses_exhausted",
	ReasonOutOfScope:          "out_of_scope",
	ReasonPolicyForbid:        "policy_forbid",
	ReasonPolicyError:         "policy_error",
	ReasonHalted:              "halted",
	ReasonDomainMismatch:      "domain_mismatch",
	ReasonApprovalInvalid:     "approval_invalid",
	ReasonApprovalRequired:    "approval_required",
	ReasonWiderThanParent:     "wider_than_parent",
	ReasonDepthExceeded:       "depth_exceeded",
	ReasonUnknownOp:           "unknown_op",
	ReasonDuplicateToken:      "duplicate_token",
	ReasonNotHalted:           "not_halted",
	ReasonApprovalApproved:    "approved",
	ReasonApprovalDenied:      "denied",
	ReasonEffectFailed:        "effect_failed",
	ReasonIndeterminate:       "indeterminate",
	ReasonEffectBacklog:       "effect_backlog",
	ReasonWrongRole:           "wrong_role",
	ReasonBadSignature:        "bad_signature",
	ReasonAlreadyExists:       "already_exists",
	ReasonJoinTokenInvalid:    "join_token_invalid",
	ReasonAlreadyRedeemed:     "already_redeemed",
	ReasonSuspended:           "suspended",
	ReasonWitnessConflict:     "witness_conflict",
	ReasonAmendmentClosed:     "amendment_closed",
	ReasonDuplicateSignature:  "duplicate_signature",
	ReasonPassportInvalid:     "passport_invalid",
	ReasonDuplicateEvent:      "duplicate_event",
	ReasonTooOld:              "too_old",
	ReasonSequenceGap:         "sequence_gap",
	ReasonNoRevocation:        "no_revocation",
	ReasonWiderThanGranter:    "wider_than_granter",
	ReasonSelfApproval:        "self_approval",
	ReasonRequestIDReused:     "request_id_reused",
	ReasonQuotaExceeded:       "quota_exceeded",
	ReasonInternalOnly:        "internal_only",
	ReasonMemberUnverified:    "member_unverified",
	ReasonRestoreIncomplete:   "restore_incomplete",
	ReasonGatewayInvalid:      "gateway_invalid",
	ReasonNotReporter:         "not_reporter",
	ReasonEffectDone:          "effect_done",

	ReasonEvolutionActive:      "evolution_active",
	ReasonEvolutionClosed:      "evolution_closed",
	ReasonNotDue:               "not_due",
	ReasonNotPaused:            "not_paused",
	ReasonNotAwaitingPromotion: "not_awaiting_promotion",
}

// ReasonByName returns the code with the given name.
func ReasonByName(name string) (Reason, bool) {
	for r, n := range reasonNames { // detcheck:ordered names are unique, the result does not depend on order
		if n == name {
			return r, true
		}
	}
	return 0, false
}

func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", uint16(r))
}
