// Package kernel is the composition root of one kernel node: it wires the
// pure ledger (package fsm) to hashicorp/raft with raft-boltdb/v2 on disk,
// the fsynced ledger archive (package archive), node-to-node RPC and the
// HTTP API.
//
// What it owns:
//   - one TCP port per node (--bind) multiplexing Raft and node RPC after a
//     mutual-TLS handshake; every outgoing connection is dialed from the
//     node's own bind IP;
//   - cluster formation: bootstrap with BootstrapExpect only when the node
//     has no Raft state; joining an existing cluster through its leader;
//   - the write path: authenticate the token against ledger state (unknown
//     tokens never reach Raft), forward to the leader, stamp the leader's
//     time, raft.Apply, wait for the ledger's answer;
//   - ledgerFSM: applies batches to fsm.Ledger, appends them to the archive
//     with one fsync before anyone is answered, verifies re-applied entries
//     against the archive, and accepts a snapshot only if its head is in the
//     archive or reachable by a verified backfill from the leader;
//   - start-up checks: the embedded canon, the canon sealed in genesis, and
//     every stored Raft command entry against the archived bytes;
//   - linearizable reads (ReadIndex: a barrier once per term, the last
//     index, VerifyLeader), the clock-skew guard, the disk-space guard.
//
// Imports: fsm, archive, canon, api, internal/tlsutil, raft, raft-boltdb,
// go-metrics. Never internal/cli or client.
package kernel
