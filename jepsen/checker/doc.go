// Package checker judges a fault test's outcome with code that is
// independent of the server: it reads only the recorded history, the
// ledger events each node serves through the public API (api.Event), the
// nodes' status and verification answers, and the lines each agent wrote
// to its log.
//
// What it owns: the Checker interface and its Input and Verdict, and the
// checkers every run applies — linearizability of kv registers (with
// porcupine, partitioned per key), ledger chain links per replica,
// convergence of replicas, request ids at most once (and every
// acknowledged one exactly once, every ledgered refusal as a refusal),
// acknowledged-before order, at most one leader per term, no unexpected
// process exits, and for the syscall gate: use limits (cap-limit) and
// revocation (cap-revoke), judged against every replica's ledger; and for
// a federation: bus events applied exactly once and none forged
// (fed-exactly-once), delivered after the heal (fed-delivery), and a
// revoked passport refused within its bound (fed-revocation).
//
// Invariants:
//   - A checker that cannot finish (a timeout, data it could not fetch)
//     returns an invalid verdict: unknown is failure.
//   - Checkers never change their input.
//
// Imports: api, jepsen/history, porcupine and the standard library. Never
// fsm, kernel, archive or audit (a test enforces it for every package
// under jepsen).
package checker
