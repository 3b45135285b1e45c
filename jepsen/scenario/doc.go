// Package scenario holds targeted fault scenarios against a kernel of
// real processes, each checking one promise end to end:
//
//   - kill-leader-mid-batch: kill -9 the leader while writers are busy;
//     no acknowledged write is lost (every acknowledged value is read
//     back through every node, and its request id is in every replica's
//     ledger exactly once).
//   - corrupt-snapshot: a saved snapshot with one flipped byte makes
//     `dominus snapshot inspect` exit 4 and `snapshot restore` be
//     refused, with the ledger head unchanged.
//   - corrupt-raft-log: a byte flipped inside a value stored in a
//     stopped node's raft.db makes the node refuse to start (non-zero
//     exit, "does not match the ledger archive") instead of serving
//     divergent data.
//
// Invariants: a scenario that could not set up what it tests (no write
// acknowledged before the kill, no marker found in raft.db) fails; it
// never passes vacuously. Every wait is bounded.
//
// Imports: api, client, jepsen/cluster and the standard library.
package scenario
