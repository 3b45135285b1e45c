// Package domain is reserved for a tenant's domain kernel's own code.
// Today a domain is a role of the one kernel node (kernel.Config.Role =
// "domain"): its replicated commands — the federation view recorded from
// the sovereign, the outbox of cross-domain calls and the inbox that
// applies each peer event exactly once through this domain's own gate —
// live in fsm (feddomain.go, fedbus.go), and its services (redeeming the join token,
// continuous passport renewal, witness reports, shipping the outbox over
// the QUIC bus, the bus handler) in kernel (federation.go). Tenant
// isolation is structural: a domain is its own Raft group with its own
// ledger, state and keys.
//
// It may import fsm, passport, transport and kernel.
package domain
