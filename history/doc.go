// Package history makes the whole ledger queryable on every node: the
// state as of any seq or ledger time, and an entity's decisions with the
// state each was judged against. It is a kernel.Service; it reads the
// node's archive, never Raft, so nothing it does is on the write path.
//
// # Checkpoints
//
// A builder goroutine replays the archive (fsm.ReplayStep: each record
// must reproduce its archived head) into a ledger of its own and, at
// every seq that is a multiple of Config.Every (agent flag
// --history-checkpoint-every, default 10,000; 0 keeps none), writes the
// state to DATA/history/NNNNNNNNNNNNNNNNNNNN.ckpt: "DHC1", the Raft index
// of the event's archive record, and the ledger snapshot (fsm's snapshot
// encoding, with its digest and head). Files are written to a temporary
// name, fsynced and renamed. Each node builds its own from its own
// archive; none is trusted until verified.
//
// # As-of reads
//
// At(seq) takes the newest checkpoint at or before seq, verifies it — the
// snapshot's digest, its seq, its head against the archive's head at that
// seq, its Raft index against the archive's — and replays the archive from
// there to seq. A checkpoint that fails is refused: logged, removed, and
// rebuilt by the replay that passes its seq (the read answers from an
// earlier checkpoint or genesis). So a read replays at most Every events.
// Each read has its own copy of the state; Config.MaxReads (2) bound how
// many replay at once. A node whose archive starts at a snapshot (it
// joined late) answers only from its first checkpoint on. SeqAt resolves
// a ledger time to the last event at or before it by binary search (ledger
// time strictly increases).
//
// The kernel asks through kernel.History (SetHistory): kv get with as_of
// is a ledgered kv.get judged on the caller's capability now (the event
// records the seq; fsm.KVKey.AsOf, protocol 7) whose value is then read
// here; cap list and inspect, policy list, trust, baseline and posture
// with as_of need audit.read besides their own scope, and answer with
// "as_of": {"seq", "time"}.
//
// # Entity history
//
// GET /v1/history/entity/{entity} (audit.read; `dominus history`) scans
// the archive from --from to --to for the gate's decisions (commands
// whose detail is an fsm.SyscallDetail) on the entity's capabilities:
// judged calls name their principal, calls refused before the policy
// stage are attributed through their capability's grant event. Each entry
// carries the uses left after it and the tier, trust, posture, policy
// version and context.history it was judged with. The scan is linear in
// the range; --limit bounds the answer (default 1000, at most 100,000).
//
// Imports: kernel, fsm, archive, api, httpedge, temporal.
package history
