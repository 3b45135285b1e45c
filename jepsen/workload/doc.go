// Package workload defines what the clients of a fault test do: a
// Workload generates invocations, performs them through the public
// client, classifies each answer as OK, Fail or Info, and names the
// checkers that judge its history. New workloads (capability use,
// revocation, federation) implement the same interface.
//
// KV is the first workload: concurrent reads (ledgered, linearizable
// kv-get), writes and compare-and-swaps on a few registers. Each register
// is retired after a bounded number of invocations and replaced by a
// fresh key, which keeps each key's linearizability check small.
//
// Invariants:
//   - Only an answer that proves the request never reached the log (an
//     API error returned before proposing, or a failed dial) is Fail;
//     every other error (a timeout, a transport error, an
//     unavailable or internal error, an unexpected decision) is Info.
//   - Written values are unique within a run.
//
// Imports: api, client, jepsen/history, jepsen/checker and the standard
// library.
package workload
