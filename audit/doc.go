// Package audit is offline verification of a Dominus ledger: it rebuilds
// a kernel's state from its recorded history, on any machine, without a
// running server, and proves that history has not been altered. It backs
// `dominus audit replay`.
//
// Two sources are replayed:
//
//   - a stopped node's data folder (ReplayDataDir): every record of its
//     archive (D/archive), from genesis, into a fresh fsm.Ledger;
//   - a snapshot and a ledger export (ReplaySnapshot): the state restored
//     from the snapshot, then every exported record after the snapshot's
//     head. ReplayExport replays an export alone, from genesis.
//
// # Invariants
//
//   - Every replayed record goes through fsm.ReplayPrepared (ReplayStep
//     in two parts), which re-applies the archived Raft entry and requires
//     exactly the archived chain record and head. Nothing is trusted
//     because it is stored.
//   - Replays are pipelined: one goroutine reads records and prepares
//     each (fsm.PrepareRecord: decode, hash the chain record against its
//     own head, prepare the Raft entry; no ledger needed) while the
//     caller's goroutine re-applies
//     them in order. The read-ahead is bounded (pipelineDepth batches of
//     pipelineBatch records), the outcome is the sequential one, and a
//     failure stops the reader before the replay returns.
//   - Seqs are contiguous: the first record that does not continue the
//     ledger (a gap, a repeat) is a failure at the first seq that cannot be
//     vouched for.
//   - With a snapshot at head H, export records at or below H are not
//     replayed (the state at H comes from the snapshot), but their chain
//     links are checked, and the export's record at H must carry the
//     snapshot's head hash; the first replayed event must link to H.
//   - A verification failure is a Report with OK false naming the first bad
//     seq; an error return means the replay could not be attempted (a
//     missing file, an unreadable folder, a file that is not an export).
//   - A data folder is never modified: archive.Open takes a lock, may
//     truncate a torn tail and remove an empty last segment, so the archive
//     is opened from a private copy (sealed segments hard-linked when the
//     file system allows it, the last segment always copied).
//   - A damaged archive segment (a frame whose checksum fails, records out
//     of order) does not throw away what precedes it: the private copy is
//     cut at the bad frame (the damaged segment rewritten as a new file,
//     the later segments dropped), everything before it is replayed and
//     verified, and the Report names the head reached, the events
//     verified and the first seq that cannot be trusted.
//
// # Imports
//
// fsm, archive and the standard library. No cobra, no client, no network.
package audit
