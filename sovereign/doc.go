// Package sovereign will own the sovereign kernel's commands: the canon
// and its M-of-N amendments, the federation registry of domains and their
// nodes' public keys, passports, operator authority levels, checkpoint
// witnessing and the federation-wide halt. It runs on the same replicated
// core as every kernel (package kernel) and executes no domain logic.
//
// It may import fsm, canon, passport and kernel. (Empty until the
// federation work lands.)
package sovereign
