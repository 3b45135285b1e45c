package kernel

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
)

// These tests run one node on 127.0.65.1.

var durabilitySeed = flag.Uint64("durability.seed", 0, "seed for the archive durability tests (0 picks one from the clock)")

func durabilityRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := *durabilitySeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -durability.seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x64757261))
}

// durabilityNode is one single-node kernel and an HTTP client on it.
type durabilityNode struct {
	t   *testing.T
	tc  *testCluster
	n   *Node
	srv *httptest.Server
	c   *client.Client
}

func startDurabilityNode(t *testing.T, mut func(*Config)) *durabilityNode {
	t.Helper()
	tc := startCluster(t, 65, 1, func(c *Config) {
		// Snapshots only when a test asks for one.
		c.SnapshotThreshold = 1 << 40
		c.SnapshotInterval = time.Hour
		if mut != nil {
			mut(c)
		}
	})
	d := &durabilityNode{t: t, tc: tc}
	d.attach(tc.nodes[0])
	return d
}

// attach serves n over HTTP and turns its background archive sync off, so
// that the archive stays behind the answers until something else syncs
// it (a snapshot, shutdown).
func (d *durabilityNode) attach(n *Node) {
	d.n = n
	d.tc.nodes[0] = n
	n.fsm.syncInterval.Store(0)
	d.tc.leader(10 * time.Second)
	d.srv = httptest.NewServer(n.Handler())
	d.t.Cleanup(d.srv.Close)
}

func (d *durabilityNode) client(token string) *client.Client {
	c, err := client.New(client.Config{Addr: d.srv.URL, Token: token, RetryFor: 5 * time.Second})
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

// write puts count keys through the gate and returns the acknowledged
// ledger seqs.
func (d *durabilityNode) write(round, count int) []uint64 {
	d.t.Helper()
	var seqs []uint64
	for i := range count {
		r, err := d.c.KVPut(context.Background(), fmt.Sprintf("r%d/k%d", round, i%7), fmt.Sprintf("v%d", i))
		if err != nil || r.Decision != "permit" {
			d.t.Fatalf("round %d put %d: %v %+v", round, i, err, r)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

// crashClose stops the node and then puts on disk what a machine crash
// could have left of its archive: the synced prefix plus cutAt of the
// bytes written after it (cutAt in [0, 1]; the cut may tear a record).
// Raft's own files are left as they are: raft-boltdb fsyncs every
// append, so they are what a crash leaves. It returns the archive's
// records as they were before the crash.
func (d *durabilityNode) crashClose(cutAt float64) []archive.Record {
	d.t.Helper()
	before := archiveRecords(d.t, d.n.arch)
	syncedIndex, _ := d.n.arch.Synced()
	d.srv.Close()
	// Close syncs the archive; the truncation below undoes what a crash
	// would have lost.
	if err := d.n.Close(); err != nil {
		d.t.Fatal(err)
	}
	var synced []archive.Record
	for _, r := range before {
		if r.Index <= syncedIndex {
			synced = append(synced, r)
		}
	}
	seg := onlySegment(d.t, filepath.Join(d.tc.cfgs[0].DataDir, "archive"))
	size := fileSize(d.t, seg)
	syncedSize := framedSize(d.t, synced)
	if syncedSize > size {
		d.t.Fatalf("synced prefix is %d bytes, the segment %d", syncedSize, size)
	}
	cut := syncedSize + int64(cutAt*float64(size-syncedSize))
	if err := os.Truncate(seg, cut); err != nil {
		d.t.Fatal(err)
	}
	d.t.Logf("crash: %d records archived, %d synced (to index %d); segment cut at byte %d of %d (synced prefix %d bytes)",
		len(before), len(synced), syncedIndex, cut, size, syncedSize)
	return before
}

// restart starts a node on the same data dir and config.
func (d *durabilityNode) restart() {
	d.t.Helper()
	n, err := New(d.tc.cfgs[0])
	if err != nil {
		d.t.Fatalf("restart after the crash: %v", err)
	}
	d.attach(n)
}

// requireRecovered waits until the restarted node has re-applied up to
// head, then checks that its archive holds exactly the records it held
// before the crash (so every acknowledged write, byte for byte), that
// the chain verifies from genesis to head as `ledger verify` does, and
// that the acknowledged seqs are the permitted puts.
func (d *durabilityNode) requireRecovered(head fsm.HeadRef, before []archive.Record, acked []uint64) {
	d.t.Helper()
	// The ledger answers before its batch is archived, so wait for both.
	wantIndex := before[len(before)-1].Index
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, _ := d.n.Head()
		archIndex, _ := d.n.arch.Last()
		if h.Seq >= head.Seq && archIndex >= wantIndex {
			if h.Seq != head.Seq || !bytes.Equal(h.Hash, head.Hash) {
				d.t.Fatalf("after restart the head is %s, before the crash %s", h, head)
			}
			break
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("restarted node re-applied up to %s and archived up to index %d, want %s and index %d", h, archIndex, head, wantIndex)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := archiveRecords(d.t, d.n.arch)
	if len(after) < len(before) {
		li, ls := d.n.arch.Last()
		h, _ := d.n.Head()
		d.t.Fatalf("archive holds %d records after restart (last index %d seq %d; head %s), %d before the crash", len(after), li, ls, h, len(before))
	}
	for i, r := range before {
		a := after[i]
		if a.Index != r.Index || a.Seq != r.Seq || a.Kind != r.Kind || !bytes.Equal(a.Data, r.Data) {
			d.t.Fatalf("archive record %d after restart is (index %d, seq %d), before the crash (index %d, seq %d), or its bytes differ",
				i, a.Index, a.Seq, r.Index, r.Seq)
		}
	}
	for _, seq := range acked {
		rec, err := d.n.arch.ReadSeq(seq)
		if err != nil {
			d.t.Fatalf("acknowledged seq %d is not in the archive: %v", seq, err)
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil || ae.Event == nil || ae.Event.Seq != seq || ae.Event.Decision != fsm.DecisionPermit {
			d.t.Fatalf("acknowledged seq %d: archived %+v, %v; want its permitted event", seq, ae.Event, err)
		}
	}
	v := d.n.VerifyArchive()
	if !v.OK || v.Head.Seq != head.Seq || v.Head.Hash != fmt.Sprintf("%x", head.Hash) {
		d.t.Fatalf("ledger verify after restart: %+v; want ok up to %s", v, head)
	}
}

// TestArchiveDurabilityCrashLosesUnsyncedTail: the answer path leaves the
// archive unsynced; a crash that loses the unsynced tail (all of it, or
// part of it, tearing a record) loses no acknowledged write, because
// the restarted node re-applies the lost entries from its Raft log.
func TestArchiveDurabilityCrashLosesUnsyncedTail(t *testing.T) {
	rng := durabilityRand(t)
	d := startDurabilityNode(t, nil)
	ir, err := d.client("").Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.c = d.client(ir.RootToken)
	var acked []uint64
	for round, cutAt := range []float64{0, rng.Float64(), rng.Float64()} {
		acked = append(acked, d.write(round, 20+rng.IntN(20))...)
		syncedIndex, _ := d.n.arch.Synced()
		lastIndex, _ := d.n.arch.Last()
		if round == 0 && syncedIndex >= lastIndex {
			t.Fatalf("the answer path fsynced the archive: synced to index %d, last %d", syncedIndex, lastIndex)
		}
		head, _ := d.n.Head()
		before := d.crashClose(cutAt)
		d.restart()
		d.requireRecovered(head, before, acked)
		d.c = d.client(ir.RootToken)
	}
	// And the node goes on answering.
	d.write(99, 3)
}

// TestArchiveDurabilityBeforeCompaction: a Raft snapshot makes the
// archive durable through the snapshot's index before Raft deletes those
// entries from its log, so a crash right after the compaction loses no
// record that only the archive still had. The control shows the property
// carries weight: an archive cut below the snapshot does not start.
func TestArchiveDurabilityBeforeCompaction(t *testing.T) {
	rng := durabilityRand(t)
	d := startDurabilityNode(t, func(c *Config) { c.TrailingLogs = 2 })
	ir, err := d.client("").Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.c = d.client(ir.RootToken)
	acked := d.write(0, 40)
	if s, l := d.archiveSyncedLast(); s >= l {
		t.Fatalf("the answer path fsynced the archive: synced to index %d, last %d", s, l)
	}

	snap, err := d.n.RaftSnapshot()
	if err != nil || !snap.Taken {
		t.Fatalf("raft snapshot: %+v, %v", snap, err)
	}
	first, err := d.n.LogFirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Fatalf("no compaction: the Raft log still starts at %d after a snapshot at %d", first, snap.Index)
	}
	// Background syncs are off: only the snapshot path can have synced.
	syncedIndex, _ := d.n.arch.Synced()
	var compacted []archive.Record
	for _, r := range archiveRecords(t, d.n.arch) {
		if r.Index < first {
			compacted = append(compacted, r)
			if r.Index > syncedIndex {
				t.Fatalf("archive record at index %d is gone from the Raft log (first index %d) but not synced (synced to %d)", r.Index, first, syncedIndex)
			}
		}
	}
	t.Logf("snapshot at index %d; Raft log now starts at %d; archive synced to index %d; %d archived records exist only in the archive",
		snap.Index, first, syncedIndex, len(compacted))
	if len(compacted) < 30 {
		t.Fatalf("only %d archived records were compacted from the log; the test wants the writes among them", len(compacted))
	}

	// More writes after the snapshot stay unsynced; then the crash.
	acked = append(acked, d.write(1, 10+rng.IntN(10))...)
	head, _ := d.n.Head()
	control := filepath.Join(t.TempDir(), "control")
	before := d.crashClose(0)
	if err := os.CopyFS(control, os.DirFS(d.tc.cfgs[0].DataDir)); err != nil {
		t.Fatal(err)
	}
	d.restart()
	d.requireRecovered(head, before, acked)

	// Control: the snapshot on disk restores over the crash-state
	// archive, and does not once the archive is cut inside the compacted
	// range (the node would have to backfill from a peer; alone, it
	// cannot start).
	if err := restoreLatestSnapshot(t, control); err != nil {
		t.Fatalf("control: restore over the crash-state archive: %v", err)
	}
	seg := onlySegment(t, filepath.Join(control, "archive"))
	cutRecs := compacted[:len(compacted)/2]
	if err := os.Truncate(seg, framedSize(t, cutRecs)); err != nil {
		t.Fatal(err)
	}
	err = restoreLatestSnapshot(t, control)
	if !errors.Is(err, ErrSnapshotHeadUnknown) {
		t.Fatalf("control: restore over an archive cut after index %d = %v, want ErrSnapshotHeadUnknown", cutRecs[len(cutRecs)-1].Index, err)
	}
	t.Logf("control: archive cut after index %d, snapshot at %d: %v", cutRecs[len(cutRecs)-1].Index, snap.Index, err)
}

// restoreLatestSnapshot restores the newest Raft snapshot of dataDir into
// a ledgerFSM over dataDir's archive, as a node's start-up does, with no
// peer to backfill from.
func restoreLatestSnapshot(t *testing.T, dataDir string) error {
	t.Helper()
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dataDir, "raft"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("snapshots in %s: %v, %v", dataDir, list, err)
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := archive.Open(filepath.Join(dataDir, "archive"), archive.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer arch.Close()
	return newLedgerFSM(arch, testLogger(t)).Restore(rc)
}

func (d *durabilityNode) archiveSyncedLast() (synced, last uint64) {
	synced, _ = d.n.arch.Synced()
	last, _ = d.n.arch.Last()
	return synced, last
}

func archiveRecords(t *testing.T, a *archive.Archive) []archive.Record {
	t.Helper()
	var out []archive.Record
	if err := a.IterateIndex(0, func(r archive.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// framedSize is the number of bytes recs take in a segment: the size of
// a fresh archive holding exactly them (frames are deterministic).
func framedSize(t *testing.T, recs []archive.Record) int64 {
	t.Helper()
	if len(recs) == 0 {
		return 0
	}
	dir := t.TempDir()
	a, err := archive.Open(dir, archive.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AppendNoSync(recs); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return fileSize(t, onlySegment(t, dir))
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("want exactly one archive segment in %s, found %v (%v)", dir, matches, err)
	}
	return matches[0]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// durabilityFSM is a ledgerFSM over a fresh archive (real fsync) with
// records appended on the answer path and not yet synced.
func durabilityFSM(t *testing.T, interval time.Duration) (*ledgerFSM, *archive.Archive) {
	t.Helper()
	arch, err := archive.Open(t.TempDir(), archive.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = arch.Close() })
	lf := newLedgerFSM(arch, testLogger(t))
	lf.syncInterval.Store(int64(interval))
	var logs []*raft.Log
	for i := range 5 {
		// Entries before genesis: archived as noops.
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	lf.ApplyBatch(logs)
	return lf, arch
}

func requireSynced(t *testing.T, arch *archive.Archive, want bool, what string) {
	t.Helper()
	synced, _ := arch.Synced()
	last, _ := arch.Last()
	if last == 0 {
		t.Fatalf("%s: nothing archived", what)
	}
	if (synced == last) != want {
		t.Fatalf("%s: archive synced to index %d, last %d; want synced=%v", what, synced, last, want)
	}
}

// snapshotSink records whether the archive was synced when the first
// byte of the snapshot was written.
type snapshotSink struct {
	bytes.Buffer
	arch          *archive.Archive
	wrote         bool
	syncedAtWrite bool
	closed        bool
}

func (s *snapshotSink) Write(p []byte) (int, error) {
	if !s.wrote {
		synced, _ := s.arch.Synced()
		last, _ := s.arch.Last()
		s.wrote, s.syncedAtWrite = true, synced == last
	}
	return s.Buffer.Write(p)
}
func (s *snapshotSink) Close() error  { s.closed = true; return nil }
func (s *snapshotSink) ID() string    { return "test" }
func (s *snapshotSink) Cancel() error { return nil }

// TestArchiveDurabilityFSMSyncPoints: ApplyBatch leaves the archive
// unsynced; a snapshot's Persist syncs it before writing any byte of the
// snapshot (Snapshot itself, on the FSM goroutine, does not wait for an
// fsync); Restore syncs it before anything else, even for a snapshot it
// refuses; and the background sync catches up within a bounded time.
func TestArchiveDurabilityFSMSyncPoints(t *testing.T) {
	t.Run("persist", func(t *testing.T) {
		lf, arch := durabilityFSM(t, 0)
		requireSynced(t, arch, false, "after ApplyBatch")
		snap, err := lf.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		requireSynced(t, arch, false, "after Snapshot")
		sink := &snapshotSink{arch: arch}
		if err := snap.Persist(sink); err != nil {
			t.Fatal(err)
		}
		if !sink.wrote || !sink.syncedAtWrite || !sink.closed {
			t.Fatalf("Persist: wrote %v, archive synced at the first write %v, closed %v", sink.wrote, sink.syncedAtWrite, sink.closed)
		}
	})
	t.Run("restore", func(t *testing.T) {
		lf, arch := durabilityFSM(t, 0)
		requireSynced(t, arch, false, "after ApplyBatch")
		if err := lf.Restore(io.NopCloser(bytes.NewReader([]byte("not a snapshot")))); err == nil {
			t.Fatal("a garbage snapshot restored")
		}
		requireSynced(t, arch, true, "after Restore")
	})
	t.Run("background", func(t *testing.T) {
		_, arch := durabilityFSM(t, archiveSyncInterval)
		if last, _ := arch.Last(); last == 0 {
			t.Fatal("nothing was archived: the background sync has nothing to show")
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			synced, _ := arch.Synced()
			last, _ := arch.Last()
			if synced == last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("background sync: archive still synced only to index %d of %d after 5s", synced, last)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
