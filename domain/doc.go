// Package domain will own a tenant's domain kernel: joining the federation
// with a passport, the syscall gate's domain-side commands, and sending
// and receiving federation events through its own ledger (outbox and
// inbox). Tenant isolation is structural: a domain is its own Raft group
// with its own ledger, state and keys.
//
// It may import fsm, passport, transport and kernel. (Empty until the
// federation work lands.)
package domain
