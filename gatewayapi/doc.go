// Package gatewayapi is the kernel service for gateways that execute the
// effects of their agents' calls themselves (an MCP gateway in front of
// an agent's tools; protocol 5, fsm/callereffect.go):
//
//   - POST /v1/gateway/syscall: the agent's syscall (its token in
//     Authorization) relayed by a gateway (its own token in
//     X-Dominus-Gateway-Token). A gateway token that names no capability
//     is refused here (401) and never reaches the ledger; everything
//     else is the ledger's syscall.gateway.
//   - POST /v1/effects/{seq}/report: the gateway's report of how the
//     effect ended (effect.report; the ledger checks the caller is the
//     effect's gateway).
//   - GET /v1/gateway/capability: the bearer's own capability as this
//     node holds it, so a gateway can show an agent only the tools it
//     could use. It decides nothing: the gate judges every call.
//
// Its leader duty completes as indeterminate every caller-executed
// effect that no report reached within the timeout.
//
// It imports kernel, httpedge, fsm and api; kernel does not import it.
package gatewayapi
