// Package history records what the clients of a fault test asked for and
// what they were told: one JSON line per invocation and one per
// completion, stamped with a monotonic clock that starts with the run.
//
// What it owns: the Op record (the history file's line format), the
// Recorder that appends ops concurrently and in order, reading a history
// file back, and pairing invocations with their completions.
//
// Invariants:
//   - Op.Index is the line number (from 0); Op.Time never decreases along
//     the file.
//   - A process has at most one outstanding invocation; its completion
//     is the next op of that process in the file.
//   - A completion is OK (it happened, with this answer), Fail (it
//     certainly did not happen; a Fail with a Seq is a refusal the ledger
//     recorded, e.g. a gate DENY) or Info (unknown: it may or may not
//     have happened, now or later). An invocation without a completion
//     is read back as Info.
//
// Imports: the standard library only.
package history
