// Package sovereign is reserved for the sovereign kernel's own code. Today
// the sovereign is a role of the one kernel node (kernel.Config.Role =
// "sovereign"): its replicated commands — the canon and its M-of-N
// amendments, the federation registry of domains, passports and their
// revocation, operator keys and levels, checkpoint witnessing and the
// federation-wide halt — live in fsm (fedsovereign.go, its state in
// federation.go), and its services
// (join, renewal, passport signing with the leader's node key, the
// link-key master secret, suspension of domains past an acknowledgement
// deadline) in kernel (federation.go, fedhttp.go). See ARCHITECTURE.md,
// "Federation".
//
// It may import fsm, canon, passport and kernel.
package sovereign
