package api

// HeaderGatewayToken carries a gateway's own token beside the agent's
// (Authorization) on POST /v1/gateway/syscall; only its hash enters the
// ledger.
const HeaderGatewayToken = "X-Dominus-Gateway-Token"

// GatewaySyscallRequest is POST /v1/gateway/syscall: an agent's syscall
// relayed by the gateway that will execute its effect (protocol 5). The
// answer is a SyscallResponse; on PERMIT its seq names the pending effect
// the gateway reports with POST /v1/effects/{seq}/report.
type GatewaySyscallRequest struct {
	Op         string `json:"op"`
	Resource   string `json:"resource"`
	Args       string `json:"args,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
}

// EffectReportRequest is POST /v1/effects/{seq}/report: how a
// caller-executed effect ended, reported by the gateway that relayed it
// (scope effect.report). Status is ok, failed or indeterminate; Code the
// executor's numeric result; OutputDigest the digest of its output (at
// most 128 bytes). No error text enters the ledger.
type EffectReportRequest struct {
	Status       string `json:"status"`
	Code         int64  `json:"code,omitempty"`
	OutputDigest string `json:"output_digest,omitempty"`
}

// EffectReportResponse answers an effect report.
type EffectReportResponse struct {
	Outcome
	Effect uint64 `json:"effect"`
	Status string `json:"status"`
}
