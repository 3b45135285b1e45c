// Package workload defines what the clients of a fault test do: a
// Workload generates invocations, performs them through the public
// client, classifies each answer as OK, Fail or Info, and names the
// checkers that judge its history. A workload that needs state in the
// kernel first (capabilities) also implements Setup; one that can run
// beside others in a Mix names its op names (Functions). Registry and
// Parse turn `-workload kv:3,caps:1` into a workload.
//
// KV: concurrent reads (ledgered, linearizable kv-get), writes and
// compare-and-swaps on a few registers. Each register is retired after a
// bounded number of invocations and replaced by a fresh key, which keeps
// each key's linearizability check small.
//
// Caps: the syscall gate. Setup grants a few capabilities with small use
// limits (root token); clients call the gate with them (each call with
// its capability's own token), every other capability is revoked while
// in use, and each is replaced by a fresh grant after a bounded number of
// calls. Judged by the cap-limit and cap-revoke checkers.
//
// Mix: several workloads at once, each op drawn by weight.
//
// Fed: cross-domain calls of a federation run (not in Registry: a single
// kernel has no bus). Each domain's agent calls kv.put on the other's
// fed/<unique> with the grant the other issued it; the run reads every
// bus event's final state on its origin, and the passports.
//
// Invariants:
//   - Only an answer that proves the request never reached the log (an
//     API error returned before proposing, or a failed dial) is Fail
//     without a seq; a gate DENY is Fail with its seq and reason (the
//     ledger recorded the refusal, which changed nothing else); every
//     other error (a timeout, a transport error, an unavailable or
//     internal error, an unexpected decision) is Info.
//   - Written values are unique within a run; request ids are the
//     runner's.
//   - A capability token never leaves the workload: the history records
//     capability ids only.
//
// Imports: api, client, jepsen/history, jepsen/checker and the standard
// library.
package workload
