package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// archiveSyncInterval bounds how long a record appended on the answer
// path stays written but not fsynced in the archive when nothing else
// (a snapshot, a backfill, shutdown) syncs it first.
const archiveSyncInterval = 50 * time.Millisecond

// ledgerFSM is the raft.FSM: it applies entries to the pure fsm.Ledger
// and then appends them to the archive before answering. Entries the
// archive already holds (re-applied after a restart) are checked against
// it instead: a stored log entry that differs from the chain stops the
// node.
//
// # Archive durability
//
// The answer path appends without fsync (archive.AppendNoSync): an
// applied entry is committed, so it is already fsynced in the Raft log
// (raft-boltdb) of this node and of a quorum, and the archive is rebuilt
// from that log after a crash: on restart Raft restores its latest
// snapshot and re-applies every entry after it, ApplyBatch checks the
// ones the archive still holds (reapply) and appends the ones a crash cut
// off. What must never happen is Raft discarding an entry that only the
// page cache holds in the archive. Raft deletes applied entries from its
// log only behind a snapshot (hashicorp/raft v1.7.3; the other deletion,
// of entries that conflict with a new leader's log in appendEntries,
// touches only uncommitted entries, never applied ones):
//
//   - takeSnapshot (snapshot.go): the FSM goroutine calls FSM.Snapshot
//     (fsm.go, runFSM), so every entry up to the snapshot's index has
//     been through ApplyBatch and appended; the snapshot goroutine then
//     calls FSMSnapshot.Persist, closes the sink, and only then
//     compactLogs(index) deletes entries up to min(index, last -
//     TrailingLogs). Persist syncs the archive before it writes a byte
//     of the snapshot, so both the compaction and the snapshot file
//     itself (which a restart restores, and Restore requires its head in
//     the archive) come after the archive is durable through the index.
//     The same holds for RecoverCluster (api.go), which also calls
//     Snapshot then Persist before compacting.
//   - installSnapshot (raft.go), and an operator's raft.Restore: the
//     snapshot is restored through Restore on the FSM goroutine, then the
//     log is compacted. Restore syncs the archive first (everything this
//     node applied before), and a backfill up to the snapshot appends
//     with fsync.
//
// Besides, a background sync runs archiveSyncInterval after an
// answer-path append, so the archive on disk trails what was answered by
// at most about that much, and archive.Close (at node shutdown) syncs
// whatever is left. A failed sync stops the node like a failed append:
// it must not answer on a ledger that cannot record.
type ledgerFSM struct {
	mu        sync.RWMutex // guards ledger and lastIndex for readers
	ledger    *fsm.Ledger
	lastIndex uint64

	arch *archive.Archive
	log  *slog.Logger
	// backfill fetches archive records (fromIndex, toIndex] from a peer
	// after a snapshot install; set by the node.
	backfill func(ctx context.Context, from, to uint64) ([]archive.Record, error)
	// observe is called with each applied entry's result (metrics, skew).
	observe func(fsm.Result)
	// onStop is called once when an entry needs rules this binary does
	// not implement (fsm.UnknownProtocolError, fsm.UnknownCommandError);
	// the FSM applies nothing more (see stopApplying).
	onStop func(error)
	// onDiskFull is told when an archive append starts waiting for disk
	// space (full, with the bytes it needs and the error) and when it
	// could append again; set by the node. done ends a wait at shutdown.
	onDiskFull func(full bool, need int64, err error)
	// onNoSpace gives the node's disk reserve up (diskreserve.go) so a
	// failed append can be retried at once.
	onNoSpace func(err error)
	done      <-chan struct{}
	// diskFull is non-zero (the bytes a batch needs) while an append
	// waits for space: the node takes no writes meanwhile.
	diskFull atomic.Int64
	// unrecorded is set when the node closed while a batch waited for
	// space: its entries were applied in memory but never archived, so
	// nothing more is applied or answered (a restart re-applies them
	// from the Raft log).
	unrecorded atomic.Bool

	// syncInterval is how long after an answer-path append the archive
	// is synced in the background (nanoseconds; archiveSyncInterval, or
	// 0 for no background sync, which only tests use).
	syncInterval atomic.Int64
	// syncPending is set while a background sync is scheduled.
	syncPending atomic.Bool

	// referenceCount and referenceHash are the whole state of the
	// benchmark reference state machine (benchreference.go): after
	// genesis it counts and hashes entries instead of applying them.
	referenceCount uint64
	referenceHash  [32]byte
}

func newLedgerFSM(arch *archive.Archive, log *slog.Logger) *ledgerFSM {
	f := &ledgerFSM{ledger: fsm.New(), arch: arch, log: log}
	f.syncInterval.Store(int64(archiveSyncInterval))
	return f
}

// syncArchive makes every record appended so far durable. It returns
// archive.ErrClosed once the node has closed the archive (which synced
// it); any other failure stops the node.
func (f *ledgerFSM) syncArchive(why string) error {
	err := f.arch.Sync()
	if err == nil || errors.Is(err, archive.ErrClosed) {
		return err
	}
	panic(fmt.Sprintf("kernel: ledger archive sync (%s) failed; stopping rather than answer on a ledger that cannot record: %v", why, err))
}

// scheduleSync arranges a background sync of the archive after
// syncInterval unless one is already scheduled. A record appended after
// the sync started is covered by the next one: syncPending is cleared
// before the sync runs.
func (f *ledgerFSM) scheduleSync() {
	d := time.Duration(f.syncInterval.Load())
	if d <= 0 || !f.syncPending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(d, func() {
		f.syncPending.Store(false)
		_ = f.syncArchive("background")
	})
}

// errUnrecorded answers entries applied in memory that the archive never
// recorded because the node closed while the disk was full.
var errUnrecorded error = &httpedge.Error{Code: api.CodeDiskFull, Msg: "the node closed while its disk was full; this write was not recorded here (a restart with free space applies it from the Raft log)"}

// diskRetryInterval is how often an append waiting for space retries.
const diskRetryInterval = time.Second

// waitForSpace retries appending recs until the archive takes them
// (true) or the node closes (false). While it waits the node takes no
// writes, and is told so (onDiskFull), once.
func (f *ledgerFSM) waitForSpace(recs []archive.Record, err error) bool {
	var need int64
	for _, r := range recs {
		need += int64(len(r.Data)) + 64
	}
	f.diskFull.Store(need)
	if f.onDiskFull != nil {
		f.onDiskFull(true, need, err)
	}
	t := time.NewTicker(diskRetryInterval)
	defer t.Stop()
	for {
		select {
		case <-f.done:
			f.unrecorded.Store(true)
			return false
		case <-t.C:
		}
		err := f.arch.AppendNoSync(recs)
		if err == nil {
			f.diskFull.Store(0)
			if f.onDiskFull != nil {
				f.onDiskFull(false, need, nil)
			}
			return true
		}
		if !errors.Is(err, syscall.ENOSPC) {
			panic(fmt.Sprintf("kernel: ledger archive append failed; stopping to avoid answering unrecorded decisions: %v", err))
		}
	}
}

// raftSnapshot is the Raft snapshot payload: the ledger snapshot plus the
// Raft index it was taken at (for archive backfill).
type raftSnapshot struct {
	Index  uint64 `codec:"index"`
	Ledger []byte `codec:"ledger"`
}

var _ raft.BatchingFSM = (*ledgerFSM)(nil)

func (f *ledgerFSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries, archives them (written, not yet
// fsynced: see Archive durability on ledgerFSM) and returns one
// fsm.Result per entry.
func (f *ledgerFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	if f.unrecorded.Load() {
		for i := range out {
			out[i] = errUnrecorded
		}
		return out
	}
	recs := make([]archive.Record, 0, len(logs))
	archLastIndex, _ := f.arch.Last()
	recs, stop := f.applyLocked(logs, out, recs, archLastIndex)
	if stop != nil {
		f.stopApplying(recs, stop)
	}
	if len(recs) > 0 {
		if err := f.arch.AppendNoSync(recs); err != nil {
			// The decision is applied in memory but the ledger archive
			// cannot record it. Answering would break "recorded before
			// it happens". A full disk is a state: wait for space (the
			// archive's failed append left it as it was), answering
			// nothing meanwhile. Anything else stops the node; a restart
			// re-applies from the Raft log.
			if !errors.Is(err, syscall.ENOSPC) {
				panic(fmt.Sprintf("kernel: ledger archive append failed; stopping to avoid answering unrecorded decisions: %v", err))
			}
			if f.onNoSpace != nil {
				f.onNoSpace(err)
				err = f.arch.AppendNoSync(recs)
			}
			if err != nil && !f.waitForSpace(recs, err) {
				for i := range out {
					out[i] = errUnrecorded
				}
				return out
			}
		}
		f.scheduleSync()
	}
	for _, r := range out {
		if res, ok := r.(fsm.Result); ok && f.observe != nil {
			f.observe(res)
		}
	}
	return out
}

// applyLocked applies the batch under the FSM lock. It returns the
// archive records of the entries it applied and, when an entry needs
// rules this binary does not implement, the error that stops this node
// (the entries before it are applied, that one and the rest are not).
func (f *ledgerFSM) applyLocked(logs []*raft.Log, out []interface{}, recs []archive.Record, archLastIndex uint64) (_ []archive.Record, stop error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err, _ := r.(error)
		var up fsm.UnknownProtocolError
		var uc fsm.UnknownCommandError
		if !errors.As(err, &up) && !errors.As(err, &uc) {
			panic(r)
		}
		stop = err
	}()
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		if benchReferenceFSM && f.ledger.State().Initialized {
			f.referenceCount++
			h := sha256.New()
			h.Write(f.referenceHash[:])
			h.Write(l.Data)
			h.Sum(f.referenceHash[:0])
			out[i] = fsm.Result{Seq: f.referenceCount, Head: f.referenceHash, Decision: fsm.DecisionPermit}
			continue
		}
		if l.Index <= archLastIndex {
			out[i] = f.reapply(l)
			f.lastIndex = l.Index
			continue
		}
		a := f.ledger.Apply(l.Index, l.Data)
		kind := archive.KindNoop
		if a.Event != nil {
			kind = archive.KindEvent
		}
		recs = append(recs, archive.Record{Index: l.Index, Seq: f.ledger.State().Seq, Kind: kind, Data: fsm.EncodeArchived(l.Data, a)})
		out[i] = a.Result
		f.lastIndex = l.Index
	}
	if n := len(logs); n > 0 {
		f.lastIndex = logs[n-1].Index
	}
	return recs, nil
}

// stopApplying ends this replica's applying for good: an entry needs
// rules this binary does not implement, and judging it (or anything after
// it) by older rules would diverge from the replicas that know them. The
// entries applied before it are archived and synced, the node is told
// (onStop: it logs the cause and shuts down), and Raft's FSM goroutine
// exits without answering, so nothing later is applied or acknowledged
// here. A restart with the same binary stops at the same entry; one that
// implements the rules applies on from it.
func (f *ledgerFSM) stopApplying(recs []archive.Record, err error) {
	if len(recs) > 0 {
		if aerr := f.arch.AppendNoSync(recs); aerr != nil {
			f.log.Error("archiving the entries applied before the stop", "err", aerr)
		} else {
			_ = f.syncArchive("stop")
		}
	}
	f.log.Error("stopped applying the ledger", "err", err)
	if f.onStop != nil {
		f.onStop(err)
	}
	runtime.Goexit()
}

// reapply applies an entry the archive already holds and checks it
// reproduces the archived record exactly.
func (f *ledgerFSM) reapply(l *raft.Log) fsm.Result {
	rec, err := f.arch.ReadIndex(l.Index)
	if err != nil {
		panic(fmt.Sprintf("kernel: raft entry %d is below the archive's last index but has no archive record: %v", l.Index, err))
	}
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil || !bytes.Equal(ae.Entry, l.Data) {
		panic(fmt.Sprintf("kernel: raft log entry %d differs from the ledger archive (seq %d); refusing to apply a tampered or corrupt log", l.Index, rec.Seq))
	}
	if err := fsm.ReplayStep(f.ledger, l.Index, rec.Seq, rec.Data); err != nil {
		panic(fmt.Sprintf("kernel: re-applying raft entry %d diverges from the archive: %v", l.Index, err))
	}
	st := f.ledger.State()
	return fsm.Result{Seq: st.Seq, Head: st.Head, Time: st.Time, Noop: true}
}

type fsmSnapshot struct {
	index  uint64
	ledger []byte
	f      *ledgerFSM // whose archive Persist makes durable first
}

// Persist syncs the archive before writing the snapshot: Raft compacts
// its log behind a snapshot only after Persist returns (see Archive
// durability on ledgerFSM). The sync runs here, on Raft's snapshot
// goroutine, rather than in Snapshot, so the FSM goroutine does not wait
// for it. The container is written as its header and then the ledger
// snapshot itself (raftsnap.go), never copied into one buffer.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.f.syncArchive("snapshot"); err != nil {
		sink.Cancel()
		return fmt.Errorf("sync the ledger archive before the snapshot: %w", err)
	}
	if _, err := sink.Write(raftSnapshotHeader(s.index, len(s.ledger))); err != nil {
		sink.Cancel()
		return err
	}
	if _, err := sink.Write(s.ledger); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Snapshot runs on Raft's FSM goroutine, so every entry up to the
// snapshot's index has been appended to the archive; the returned
// snapshot's Persist makes them durable before Raft may compact them.
func (f *ledgerFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ledger := f.ledger.Snapshot()
	if ledger == nil || len(ledger) > maxRaftSnapshotLedger {
		return nil, errStateTooLarge
	}
	return &fsmSnapshot{index: f.lastIndex, ledger: ledger, f: f}, nil
}

// errStateTooLarge: a state a snapshot cannot carry.
var errStateTooLarge = fmt.Errorf("the ledger's state exceeds the %d bytes a snapshot carries: lower the kv bound (limits.set) and delete keys", maxRaftSnapshotLedger)

// Restore installs a snapshot (at start-up or from the leader). It is
// accepted only if its head is in this node's archive, or the archive can
// be backfilled from a peer with records that chain from the archive's
// last head to exactly the snapshot's head. The snapshot is read whole,
// whatever its size (raftsnap.go), and decoded once.
func (f *ledgerFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	// Raft compacts its log after installing a snapshot: what this node
	// applied before must be durable in the archive first.
	if err := f.syncArchive("restore"); err != nil {
		return err
	}
	rs, err := readRaftSnapshot(rc)
	if err != nil {
		return err
	}
	fresh := fsm.New()
	sf, err := fresh.Restore(rs.Ledger)
	if err != nil {
		return err
	}
	head := sf.Head
	sf, rs.Ledger = nil, nil // the state holds its own copies: let the snapshot's bytes go
	if err := f.checkAgainstArchive(head, rs.Index); err != nil {
		return err
	}
	f.mu.Lock()
	f.ledger = fresh
	f.lastIndex = rs.Index
	f.mu.Unlock()
	f.log.Info("restored snapshot", "seq", head.Seq, "index", rs.Index)
	return nil
}

// ErrSnapshotHeadUnknown is returned for a snapshot whose head neither
// matches the archive nor can be reached by a verified backfill.
var ErrSnapshotHeadUnknown = errors.New("snapshot head does not match the ledger archive")

func (f *ledgerFSM) checkAgainstArchive(head fsm.HeadRef, index uint64) error {
	if head.Seq == 0 {
		return nil
	}
	_, lastSeq := f.arch.Last()
	if lastSeq >= head.Seq {
		rec, err := f.arch.ReadSeq(head.Seq)
		if err != nil {
			return fmt.Errorf("%w: seq %d: %v", ErrSnapshotHeadUnknown, head.Seq, err)
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil || !bytes.Equal(ae.Head, head.Hash) {
			return fmt.Errorf("%w: snapshot head %s, archive holds another hash at that seq", ErrSnapshotHeadUnknown, head)
		}
		return nil
	}
	if f.backfill == nil {
		return fmt.Errorf("%w: archive ends at seq %d, snapshot head is %s, and no peer to backfill from", ErrSnapshotHeadUnknown, lastSeq, head)
	}
	return f.backfillTo(head, index)
}

// backfillTo fetches archive records up to index from the leader and
// verifies they chain from the archive's head to the snapshot's.
func (f *ledgerFSM) backfillTo(head fsm.HeadRef, index uint64) error {
	lastIndex, lastSeq := f.arch.Last()
	prev := fsm.HeadRef{Seq: 0, Hash: fsm.ZeroHead[:]}
	if lastSeq > 0 {
		rec, err := f.arch.ReadSeq(lastSeq)
		if err != nil {
			return fmt.Errorf("archive head: %w", err)
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil {
			return fmt.Errorf("archive head: %w", err)
		}
		prev = fsm.HeadRef{Seq: lastSeq, Hash: ae.Head}
	}
	start := time.Now()
	total := 0
	for guard := 0; lastIndex < index; guard++ {
		if guard > 1_000_000 {
			return errors.New("backfill: too many pages")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		recs, err := f.backfill(ctx, lastIndex, index)
		cancel()
		if err != nil {
			return fmt.Errorf("backfill archive from leader: %w", err)
		}
		if len(recs) == 0 {
			return fmt.Errorf("backfill: leader returned no records after index %d (want up to %d)", lastIndex, index)
		}
		for _, r := range recs {
			if r.Index <= lastIndex || r.Index > index {
				return fmt.Errorf("backfill: record index %d outside (%d, %d]", r.Index, lastIndex, index)
			}
			next, err := fsm.VerifyChain(prev, r.Data)
			if err != nil {
				return fmt.Errorf("backfill: %w", err)
			}
			if next.Seq != r.Seq {
				return fmt.Errorf("backfill: record at index %d claims seq %d, chain says %d", r.Index, r.Seq, next.Seq)
			}
			prev = next
			lastIndex = r.Index
		}
		if err := f.arch.Append(recs); err != nil {
			return fmt.Errorf("backfill: append: %w", err)
		}
		total += len(recs)
	}
	if prev.Seq != head.Seq || !bytes.Equal(prev.Hash, head.Hash) {
		return fmt.Errorf("%w: backfilled chain ends at %s, snapshot head is %s", ErrSnapshotHeadUnknown, prev, head)
	}
	f.log.Info("backfilled ledger archive", "records", total, "to_seq", head.Seq, "took", time.Since(start).String())
	return nil
}

// read runs fn with the ledger under the read lock.
func (f *ledgerFSM) read(fn func(l *fsm.Ledger, lastIndex uint64)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.ledger, f.lastIndex)
}

// waitApplied blocks until the FSM has applied index, or ctx ends. (Raft's
// own AppliedIndex runs ahead of the FSM, so it is not consulted.) It
// polls with a short, growing pause: waits are brief and rare.
func (f *ledgerFSM) waitApplied(ctx context.Context, index uint64) error {
	delay := 200 * time.Microsecond
	for {
		f.mu.RLock()
		done := f.lastIndex >= index
		f.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}
