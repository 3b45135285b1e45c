package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

const (
	seedHistory = 20261126
	historySize = 400
)

func newHistory(t *testing.T) *history {
	t.Helper()
	t.Logf("history seed %d, %d entries", seedHistory, historySize)
	h := buildHistory(t, seedHistory, historySize)
	if h.noops() < 5 || len(h.snapshots) < 5 {
		t.Fatalf("fixture: want noops and snapshots, got %d noops, %d snapshots", h.noops(), len(h.snapshots))
	}
	return h
}

func assertMatches(t *testing.T, rep Report, want *fsm.Ledger) {
	t.Helper()
	if !rep.OK {
		t.Fatalf("replay failed at seq %d: %s", rep.BadSeq, rep.Message)
	}
	wh := want.Head()
	if rep.Head.Seq != wh.Seq || !bytes.Equal(rep.Head.Hash, wh.Hash) {
		t.Fatalf("head %s, want %s", rep.Head, wh)
	}
	if rep.StateDigest != want.Digest() {
		t.Fatalf("state digest %x, want %x", rep.StateDigest, want.Digest())
	}
	if rep.BadSeq != 0 || rep.Message != "" {
		t.Fatalf("ok report carries failure fields: %+v", rep)
	}
}

func assertFails(t *testing.T, rep Report, err error, badSeq uint64) {
	t.Helper()
	if err != nil {
		t.Fatalf("want a failed report, got error %v", err)
	}
	if rep.OK {
		t.Fatalf("replay reported ok, want a failure at seq %d", badSeq)
	}
	if rep.BadSeq != badSeq {
		t.Fatalf("bad seq %d (%s), want %d", rep.BadSeq, rep.Message, badSeq)
	}
	if rep.Message == "" {
		t.Fatal("failed report has no message")
	}
	if rep.StateDigest != ([32]byte{}) {
		t.Fatal("failed report carries a state digest")
	}
}

// treeDigest hashes every file name, mode and content under dir.
func treeDigest(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel + "\x00" + info.Mode().String() + "\x00"))
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func TestReplayDataDirIntact(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	h.writeDataDir(t, dir, h.recs)
	before := treeDigest(t, dir)
	var calls int
	var lastDone, lastTotal uint64
	rep, err := ReplayDataDir(dir, func(done, total uint64) { calls++; lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatal(err)
	}
	assertMatches(t, rep, h.final)
	if rep.Events != h.final.State().Seq {
		t.Fatalf("events %d, want %d", rep.Events, h.final.State().Seq)
	}
	if calls == 0 || lastDone != lastTotal || lastTotal != h.final.State().Seq {
		t.Fatalf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	if treeDigest(t, dir) != before {
		t.Fatal("replay changed the data folder")
	}
}

// A torn tail is what a crash leaves; archive.Open would truncate it. The
// replay must succeed on the intact prefix and leave the bytes on disk.
func TestReplayDataDirLeavesTornTailOnDisk(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	h.writeDataDir(t, dir, h.recs)
	segs, _ := filepath.Glob(filepath.Join(dir, ArchiveDirName, "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("fixture: want several segments, got %d", len(segs))
	}
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := []byte{0xD1, 1, 0, 0} // the start of a frame header
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lockPath := filepath.Join(dir, ArchiveDirName, "LOCK")
	_ = os.Remove(lockPath)
	before := treeDigest(t, dir)
	rep, err := ReplayDataDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertMatches(t, rep, h.final)
	if treeDigest(t, dir) != before {
		t.Fatal("replay changed the data folder")
	}
	if _, err := os.Stat(lockPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("replay created a lock file in the data folder: %v", err)
	}
	b, _ := os.ReadFile(last)
	if !bytes.HasSuffix(b, torn) {
		t.Fatal("torn tail was truncated in the data folder")
	}
}

func TestReplayDataDirFlippedByte(t *testing.T) {
	h := newHistory(t)
	const seed = 77
	rng := rand.New(rand.NewSource(seed))
	t.Logf("flip seed %d", seed)
	for trial := 0; trial < 8; trial++ {
		dir := t.TempDir()
		h.writeDataDir(t, dir, h.recs)
		segs, _ := filepath.Glob(filepath.Join(dir, ArchiveDirName, "*.seg"))
		seg := segs[rng.Intn(len(segs))]
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		spans := parseFrames(t, b, 0)
		off := len(b)/4 + rng.Intn(len(b)/2)
		s, _ := spanAt(spans, off)
		b[off] ^= 1 << rng.Intn(8)
		if err := os.WriteFile(seg, b, 0o600); err != nil {
			t.Fatal(err)
		}
		before := treeDigest(t, dir)
		rep, err := ReplayDataDir(dir, nil)
		t.Logf("trial %d: %s offset %d in record seq %d (%s): %s", trial, filepath.Base(seg), off, s.seq, s.kind, rep.Message)
		assertFails(t, rep, err, s.firstUntrusted())
		if !strings.Contains(rep.Message, seg) {
			t.Fatalf("message %q does not name the damaged file %s", rep.Message, seg)
		}
		// What precedes the damage is replayed and verified, not thrown
		// away; the data folder is left as it was.
		if good := s.firstUntrusted() - 1; rep.Head.Seq != good || rep.Events != good {
			t.Fatalf("before damage at seq %d: head %d, %d events verified, want %d", s.firstUntrusted(), rep.Head.Seq, rep.Events, good)
		}
		if treeDigest(t, dir) != before {
			t.Fatal("the replay changed the data folder")
		}
	}
}

// An attacker who rewrites a record and recomputes the frame checksums is
// caught by the replay itself.
func TestReplayDataDirRewrittenRecord(t *testing.T) {
	h := newHistory(t)
	recs := append([]archive.Record(nil), h.recs...)
	target := -1
	for i := len(recs) / 2; i < len(recs); i++ {
		if recs[i].Kind == archive.KindEvent {
			target = i
			break
		}
	}
	ae, err := fsm.DecodeArchived(recs[target].Data)
	if err != nil {
		t.Fatal(err)
	}
	ae.Event.Decision = fsm.DecisionDeny
	recs[target].Data = fsm.Encode(&ae)
	dir := t.TempDir()
	h.writeDataDir(t, dir, recs)
	rep, err := ReplayDataDir(dir, nil)
	assertFails(t, rep, err, recs[target].Seq)
	if rep.Events != recs[target].Seq-1 || rep.Head.Seq != recs[target].Seq-1 {
		t.Fatalf("failed report: %d events, head %s; want the last good seq %d", rep.Events, rep.Head, recs[target].Seq-1)
	}
}

// A node whose archive begins after genesis (it installed a snapshot and
// was not backfilled) cannot be replayed from genesis.
func TestReplayDataDirMissingHistory(t *testing.T) {
	h := newHistory(t)
	start := len(h.recs) / 3
	for h.recs[start].Kind != archive.KindEvent {
		start++
	}
	dir := t.TempDir()
	h.writeDataDir(t, dir, h.recs[start:])
	rep, err := ReplayDataDir(dir, nil)
	assertFails(t, rep, err, 1)
}

func TestReplayDataDirErrors(t *testing.T) {
	if _, err := ReplayDataDir(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Fatal("missing data folder: want an error")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ArchiveDirName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReplayDataDir(dir, nil); err == nil {
		t.Fatal("archive that is a file: want an error")
	}
}

func TestReplayExportFromGenesis(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	for _, from := range []uint64{0, 1} {
		p := writeFile(t, dir, "export", h.export(t, from, h.recs))
		rep, err := ReplayExport(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertMatches(t, rep, h.final)
	}
	p := writeFile(t, dir, "late", h.export(t, 5, h.recs))
	rep, err := ReplayExport(p, nil)
	assertFails(t, rep, err, 1)
}

func TestReplaySnapshotMatchesFullReplay(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	seqs := h.snapshotSeqs()
	for _, at := range []uint64{seqs[0], seqs[len(seqs)/2], seqs[len(seqs)-1]} {
		snap := writeFile(t, dir, "snap", h.snapshots[at])
		// Exports that start well before, just before, at and right after
		// the snapshot's head all reproduce the full replay.
		for _, from := range []uint64{1, max(at, 4) - 3, at, at + 1} {
			p := writeFile(t, dir, "export", h.export(t, from, h.recs))
			var calls int
			rep, err := ReplaySnapshot(snap, p, func(done, total uint64) {
				if done > total {
					t.Errorf("progress %d of %d", done, total)
				}
				calls++
			})
			if err != nil {
				t.Fatal(err)
			}
			assertMatches(t, rep, h.final)
			if want := h.final.State().Seq - at; rep.Events != want {
				t.Fatalf("snapshot at %d, export from %d: %d events replayed, want %d", at, from, rep.Events, want)
			}
			if calls == 0 {
				t.Fatal("no progress reported")
			}
		}
	}
}

func TestReplaySnapshotGapAfterHead(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	at := h.snapshotSeqs()[1]
	snap := writeFile(t, dir, "snap", h.snapshots[at])
	p := writeFile(t, dir, "export", h.export(t, at+2, h.recs))
	rep, err := ReplaySnapshot(snap, p, nil)
	assertFails(t, rep, err, at+1)
}

func TestReplaySnapshotTamperedSnapshot(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	at := h.snapshotSeqs()[2]
	export := writeFile(t, dir, "export", h.export(t, 1, h.recs))
	good := h.snapshots[at]
	for _, off := range []int{len(good) / 3, len(good) / 2, len(good) - 5} {
		bad := append([]byte(nil), good...)
		bad[off] ^= 0x10
		snap := writeFile(t, dir, "snap", bad)
		rep, err := ReplaySnapshot(snap, export, nil)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if rep.OK || !strings.Contains(rep.Message, "snapshot") {
			t.Fatalf("offset %d: tampered snapshot: %+v", off, rep)
		}
		t.Logf("offset %d: bad seq %d: %s", off, rep.BadSeq, rep.Message)
	}
	if _, err := ReplaySnapshot(filepath.Join(dir, "missing"), export, nil); err == nil {
		t.Fatal("missing snapshot: want an error")
	}
	if _, err := ReplaySnapshot(writeFile(t, dir, "snap", good), filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("missing export: want an error")
	}
	if _, err := ReplaySnapshot(writeFile(t, dir, "snap", good), writeFile(t, dir, "junk", []byte("not an export at all")), nil); err == nil {
		t.Fatal("a file that is not an export: want an error")
	}
}

// A snapshot of another history (a fork that diverged before its head)
// does not verify against the export: the export's record at the
// snapshot's head, or the first record after it, does not link.
func TestReplaySnapshotFromAFork(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	at := h.snapshotSeqs()[len(h.snapshots)/2]
	fork := fsm.New()
	for i, r := range h.recs {
		ae, _ := fsm.DecodeArchived(r.Data)
		data := ae.Entry
		if r.Seq == at-2 && r.Kind == archive.KindEvent {
			data = entry(fsm.CmdKVPut, "fork", rootToken[:], t0+int64(i), &fsm.KVPut{Key: "fork", Value: []byte("x")})
		}
		fork.Apply(r.Index, data)
		if fork.State().Seq == at {
			break
		}
	}
	if fork.State().Seq != at || fork.State().Head == h.final.State().Head {
		t.Fatalf("fixture: fork at %d", fork.State().Seq)
	}
	snap := writeFile(t, dir, "fork-snap", fork.Snapshot())
	for _, tc := range []struct {
		from, bad uint64
	}{{1, at}, {at, at}, {at + 1, at + 1}} {
		p := writeFile(t, dir, "export", h.export(t, tc.from, h.recs))
		rep, err := ReplaySnapshot(snap, p, nil)
		t.Logf("export from %d: %s", tc.from, rep.Message)
		assertFails(t, rep, err, tc.bad)
	}
}

// A byte flipped anywhere in the records of an export is caught, and the
// report names the seq of the record that holds the byte.
func TestReplayExportFlippedByte(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	at := h.snapshotSeqs()[len(h.snapshots)/2]
	snap := writeFile(t, dir, "snap", h.snapshots[at])
	good := h.export(t, 1, h.recs)
	spans := exportSpans(t, good)
	const seed = 4242
	rng := rand.New(rand.NewSource(seed))
	t.Logf("flip seed %d, export of %d bytes, %d records, snapshot at %d", seed, len(good), len(spans), at)
	lo, hi := spans[0].start, spans[len(spans)-1].end
	for trial := 0; trial < 24; trial++ {
		off := lo + (hi-lo)/8 + rng.Intn((hi-lo)*3/4)
		s, ok := spanAt(spans, off)
		if !ok {
			t.Fatalf("offset %d is in no record", off)
		}
		bad := append([]byte(nil), good...)
		bad[off] ^= 1 << rng.Intn(8)
		p := writeFile(t, dir, "export", bad)
		rep, err := ReplayExport(p, nil)
		assertFails(t, rep, err, s.firstUntrusted())
		// With a snapshot the damaged record may be one the snapshot
		// covers; it must still be found.
		rep, err = ReplaySnapshot(snap, p, nil)
		assertFails(t, rep, err, s.firstUntrusted())
		t.Logf("offset %d in record seq %d (%s): %s", off, s.seq, s.kind, rep.Message)
	}
}

func TestReplayExportTruncated(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	good := h.export(t, 1, h.recs)
	spans := exportSpans(t, good)
	cut := spans[len(spans)/2]
	// Cut inside a record: everything before it verifies, the rest cannot.
	p := writeFile(t, dir, "export", good[:cut.start+10])
	rep, err := ReplayExport(p, nil)
	want := spans[len(spans)/2-1].seq + 1
	assertFails(t, rep, err, want)
	// Cut just before the trailer.
	p = writeFile(t, dir, "export", good[:len(good)-exportTrailerSize])
	rep, err = ReplayExport(p, nil)
	assertFails(t, rep, err, h.final.State().Seq+1)
}

// Records the snapshot covers are not replayed, but a rewritten one (its
// frame checksums recomputed) still breaks the chain links checked there.
func TestReplaySnapshotRewrittenCoveredRecord(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	at := h.snapshotSeqs()[len(h.snapshots)-1]
	snap := writeFile(t, dir, "snap", h.snapshots[at])
	for _, target := range []uint64{at - 5, at} {
		recs := append([]archive.Record(nil), h.recs...)
		for i, r := range recs {
			if r.Seq == target && r.Kind == archive.KindEvent {
				ae, _ := fsm.DecodeArchived(r.Data)
				ae.Event.Reason = fsm.ReasonForbidden
				recs[i].Data = fsm.Encode(&ae)
			}
		}
		p := writeFile(t, dir, "export", h.export(t, 1, recs))
		rep, err := ReplaySnapshot(snap, p, nil)
		t.Logf("rewritten seq %d: %s", target, rep.Message)
		assertFails(t, rep, err, target)
	}
}

// A flip inside a noop record names the seq after it: the noop moves no
// seq, and the first seq it leaves unvouched for is the next one.
func TestReplayExportFlippedNoop(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	good := h.export(t, 1, h.recs)
	var hit int
	for _, s := range exportSpans(t, good) {
		if s.kind != archive.KindNoop {
			continue
		}
		bad := append([]byte(nil), good...)
		bad[(s.start+s.end)/2] ^= 0x04
		rep, err := ReplayExport(writeFile(t, dir, "export", bad), nil)
		assertFails(t, rep, err, s.seq+1)
		hit++
	}
	if hit == 0 {
		t.Fatal("fixture: export holds no noop")
	}
}

// A failure early in a history much longer than the pipeline's read-ahead
// stops the reading goroutine, which is blocked handing over batches, and
// the report names the failing seq; the same for an export. Progress is
// reported in order.
func TestReplayPipelineStopsAtAnEarlyFailure(t *testing.T) {
	n := 4 * pipelineBatch * pipelineDepth
	t.Logf("history seed %d, %d entries", seedHistory, n)
	h := buildHistory(t, seedHistory, n)
	recs := append([]archive.Record(nil), h.recs...)
	target := pipelineBatch + 7
	for recs[target].Kind != archive.KindEvent {
		target++
	}
	ae, err := fsm.DecodeArchived(recs[target].Data)
	if err != nil {
		t.Fatal(err)
	}
	ae.Event.Subject += "-rewritten"
	recs[target].Data = fsm.Encode(&ae)
	dir := t.TempDir()
	h.writeDataDir(t, dir, recs)
	before := runtime.NumGoroutine()

	// The first progress call (after pipelineBatch records) pauses the
	// replay until the reader has filled the read-ahead and blocks.
	var last uint64
	slow := func(done, total uint64) {
		if done < last || done > total {
			t.Errorf("progress %d of %d after %d", done, total, last)
		}
		if last == 0 {
			time.Sleep(300 * time.Millisecond)
		}
		last = done
	}
	rep, err := ReplayDataDir(dir, slow)
	assertFails(t, rep, err, recs[target].Seq)
	if rep.Events != recs[target].Seq-1 {
		t.Fatalf("%d events verified, want %d", rep.Events, recs[target].Seq-1)
	}
	p := writeFile(t, t.TempDir(), "export", h.export(t, 0, recs))
	last = 0
	rep, err = ReplayExport(p, slow)
	assertFails(t, rep, err, recs[target].Seq)

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after the replays, %d before: the reader did not stop", g, before)
	}

	// The intact history replays to the same head through the pipeline.
	dir = t.TempDir()
	h.writeDataDir(t, dir, h.recs)
	rep, err = ReplayDataDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertMatches(t, rep, h.final)
}
