package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// ArchiveDirName is the archive's folder inside a node's data folder.
const ArchiveDirName = "archive"

// progressEvery is how many records pass between progress calls.
const progressEvery = 256

// Report is the outcome of a replay.
type Report struct {
	// OK: every record verified.
	OK bool
	// Head is the head after the last verified record (the snapshot's head
	// when nothing after it was replayed).
	Head fsm.HeadRef
	// StateDigest is the digest of the rebuilt state; zero when not OK.
	StateDigest [32]byte
	// Events counts the event records replayed and verified (records
	// skipped because the snapshot covers them are not counted).
	Events uint64
	// BadSeq is the first seq that could not be verified; 0 when OK.
	BadSeq uint64
	// Message says what failed; "" when OK.
	Message string
	// TreeSize and TreeRoot are the Merkle tree recomputed over the
	// replayed events (transparency/tlog); zero when the history does
	// not start at seq 1.
	TreeSize uint64
	TreeRoot []byte
	// Checkpoints counts the signed checkpoints checked against it.
	Checkpoints int
}

// Progress receives replay progress: done out of total units of work.
// The unit depends on the source (ledger seqs for a data folder, bytes for
// an export); only the ratio is meaningful. It is called from the
// replaying goroutine, every few hundred records and once at the end.
type Progress func(done, total uint64)

// ReplayDataDir replays the archive of a stopped node whose data folder is
// dir from genesis into a fresh ledger. dir is not modified. progress may
// be nil.
//
// The checkpoints the node stored (tlog.CheckpointDir under dir) are
// checked as the replay reaches each one's size; see
// ReplayDataDirCheckpoints to name others.
func ReplayDataDir(dir string, progress Progress) (Report, error) {
	notes, err := LoadCheckpoints(filepath.Join(dir, tlog.CheckpointDir))
	if err != nil {
		return Report{}, err
	}
	return ReplayDataDirCheckpoints(dir, notes, progress)
}

// ReplayDataDirCheckpoints is ReplayDataDir checking the given signed
// checkpoints instead of the node's own.
func ReplayDataDirCheckpoints(dir string, checkpoints [][]byte, progress Progress) (Report, error) {
	r := newRun(fsm.New())
	if err := r.holdCheckpoints(checkpoints); err != nil {
		return r.finish(err)
	}
	return replayDataDir(r, dir, progress)
}

func replayDataDir(r *run, dir string, progress Progress) (Report, error) {
	src := filepath.Join(dir, ArchiveDirName)
	info, err := os.Stat(src)
	if err != nil {
		return Report{}, fmt.Errorf("audit: no archive in data folder %s: %w", dir, err)
	}
	if !info.IsDir() {
		return Report{}, fmt.Errorf("audit: %s is not a folder", src)
	}
	work, err := os.MkdirTemp("", "dominus-audit-")
	if err != nil {
		return Report{}, fmt.Errorf("audit: create working folder: %w", err)
	}
	defer os.RemoveAll(work)
	copyDir := filepath.Join(work, ArchiveDirName)
	if err := cloneArchive(src, copyDir); err != nil {
		return Report{}, err
	}
	rep, err := replayArchive(r, copyDir, progress)
	// Name the data folder's files, not the working copy's.
	rep.Message = strings.ReplaceAll(rep.Message, copyDir, src)
	if err != nil {
		return Report{}, &renamedError{msg: strings.ReplaceAll(err.Error(), copyDir, src), err: err}
	}
	return rep, nil
}

// renamedError is err with the working copy's paths in its text replaced
// by the data folder's.
type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// replayArchive replays the archive in dir (a private copy) from genesis.
func replayArchive(r *run, dir string, progress Progress) (Report, error) {
	a, err := archive.Open(dir, archive.Options{NoSync: true})
	var damage *archive.CorruptError
	if errors.As(err, &damage) && damage.Path != "" {
		// Replay what precedes the damage, then report it: the working
		// copy is cut at the bad frame (never the data folder).
		if cerr := cutAt(dir, damage); cerr != nil {
			return r.finish(r.corrupt(damage))
		}
		a, err = archive.Open(dir, archive.Options{NoSync: true})
	}
	if err != nil {
		var ce *archive.CorruptError
		if errors.As(err, &ce) {
			return r.finish(r.corrupt(ce))
		}
		return Report{}, fmt.Errorf("audit: open archive: %w", err)
	}
	defer a.Close()

	_, lastSeq := a.Last()
	var n uint64
	err = r.pipeline(func(yield func(archive.Record, uint64) error) error {
		return a.Iterate(0, func(rec archive.Record) error { return yield(rec, 0) })
	}, func(uint64) {
		if n++; progress != nil && n%progressEvery == 0 {
			progress(r.l.State().Seq, lastSeq)
		}
	})
	if progress != nil && err == nil {
		progress(r.l.State().Seq, lastSeq)
	}
	if damage != nil && err == nil {
		// Everything before the damage verified: the report names the
		// head it reached and the first seq that cannot be trusted.
		err = r.corrupt(damage)
	}
	return r.finish(err)
}

// cutAt cuts the working copy of an archive at a damaged frame: the
// damaged segment keeps the frames before it (as a new file: the copy may
// hard-link the data folder's), and the segments after it are removed, so
// archive.Open accepts what precedes the damage.
func cutAt(dir string, ce *archive.CorruptError) error {
	if filepath.Dir(ce.Path) != filepath.Clean(dir) || ce.Offset < 0 {
		return fmt.Errorf("audit: damage outside the working copy: %s", ce.Path)
	}
	b, err := os.ReadFile(ce.Path)
	if err != nil || int64(len(b)) < ce.Offset {
		return fmt.Errorf("audit: read %s: %v", ce.Path, err)
	}
	if err := os.Remove(ce.Path); err != nil {
		return err
	}
	if ce.Offset > 0 {
		if err := os.WriteFile(ce.Path, b[:ce.Offset], 0o600); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	damaged := filepath.Base(ce.Path)
	for _, e := range entries {
		if isSegmentName(e.Name()) && e.Name() > damaged {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReplaySnapshot restores the snapshot in snapshotPath (the bytes of `dominus
// snapshot save`, an fsm.SnapshotFile) into a fresh ledger and replays the
// records of the export in exportPath (`dominus ledger export`) that follow
// the snapshot's head. A snapshot that does not verify is a failed Report
// (BadSeq is its head seq when its header can be read). progress may be nil.
func ReplaySnapshot(snapshotPath, exportPath string, progress Progress) (Report, error) {
	snap, err := os.ReadFile(snapshotPath)
	if err != nil {
		return Report{}, fmt.Errorf("audit: read snapshot: %w", err)
	}
	l := fsm.New()
	f, err := l.Restore(snap)
	if err != nil {
		rep := Report{Message: fmt.Sprintf("snapshot %s does not verify: %v", snapshotPath, err)}
		var hdr fsm.SnapshotFile
		if fsm.Decode(snap, &hdr) == nil {
			rep.BadSeq = hdr.Head.Seq
		}
		return rep, nil
	}
	r := newRun(l)
	r.base = f.Head
	r.skip = true
	return replayExport(r, exportPath, progress)
}

// ReplayExport replays the export in exportPath from genesis into a fresh
// ledger; the export must begin at the start of the ledger (ledger export
// --from 0). progress may be nil.
func ReplayExport(exportPath string, progress Progress) (Report, error) {
	return ReplayExportCheckpoints(exportPath, nil, progress)
}

// ReplayExportCheckpoints is ReplayExport that also checks signed
// checkpoints against the recomputed Merkle tree as the replay reaches
// each one's size (an export carries none: an auditor names them).
func ReplayExportCheckpoints(exportPath string, checkpoints [][]byte, progress Progress) (Report, error) {
	r := newRun(fsm.New())
	if err := r.holdCheckpoints(checkpoints); err != nil {
		return r.finish(err)
	}
	return replayExport(r, exportPath, progress)
}

func replayExport(r *run, exportPath string, progress Progress) (Report, error) {
	file, err := os.Open(exportPath)
	if err != nil {
		return Report{}, fmt.Errorf("audit: open export: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return Report{}, fmt.Errorf("audit: stat export: %w", err)
	}
	total := uint64(max(info.Size(), 0))
	cr := &countReader{r: file}
	er, hdr, err := archive.NewExportReader(cr)
	if err != nil {
		var ce *archive.CorruptError
		if errors.As(err, &ce) {
			return r.finish(r.corrupt(ce))
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return r.finish(r.fail(r.l.State().Seq+1, fmt.Sprintf("export %s ends inside its header: %v", exportPath, err)))
		}
		return Report{}, fmt.Errorf("audit: %s: %w", exportPath, err)
	}
	// The export must reach back to the first seq the ledger lacks.
	if next := r.l.State().Seq + 1; hdr.FromSeq > next {
		return r.finish(r.fail(next, fmt.Sprintf("export starts at seq %d; seqs %d to %d are missing (export with --from %d or earlier)",
			hdr.FromSeq, next, hdr.FromSeq-1, next)))
	}
	var n uint64
	var readErr error // from the reader, not from a step
	err = r.pipeline(func(yield func(archive.Record, uint64) error) error {
		for {
			rec, err := er.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				readErr = err
				return err
			}
			if err := yield(rec, cr.n); err != nil {
				return err
			}
		}
	}, func(at uint64) {
		if n++; progress != nil && n%progressEvery == 0 {
			progress(at, total)
		}
	})
	if err != nil && err == readErr {
		// Every record read before the error verified.
		return r.finish(r.readError(exportPath, err))
	}
	if err != nil {
		return r.finish(err)
	}
	if progress != nil {
		progress(cr.n, total)
	}
	return r.finish(nil)
}

// Replay pipeline: one goroutine reads records and prepares each
// (fsm.PrepareRecord: decode, hash the chain record against its own head,
// prepare the Raft entry) while the caller's goroutine re-applies them in
// order. Records
// travel in batches; at most pipelineDepth batches wait, which bounds
// the memory read ahead.
const (
	pipelineBatch = 256
	pipelineDepth = 8
)

type preparedRecord struct {
	rec archive.Record
	at  uint64 // the source's position after the record (progress)
	p   fsm.PreparedRecord
}

// pipeline replays the records src yields, calling applied after each
// verified record with its position. It returns the first step failure,
// or else src's error, which comes after every record src yielded
// before it was verified. On a step failure src's yield returns errStop
// and pipeline waits for src to return.
func (r *run) pipeline(src func(yield func(rec archive.Record, at uint64) error) error, applied func(at uint64)) error {
	batches := make(chan []preparedRecord, pipelineDepth)
	stop := make(chan struct{})
	var srcErr error
	go func() {
		defer close(batches)
		batch := make([]preparedRecord, 0, pipelineBatch)
		send := func() bool {
			select {
			case batches <- batch:
				batch = make([]preparedRecord, 0, pipelineBatch)
				return true
			case <-stop:
				return false
			}
		}
		srcErr = src(func(rec archive.Record, at uint64) error {
			pr := preparedRecord{rec: rec, at: at}
			if !r.covered(rec) {
				pr.p = fsm.PrepareRecord(rec.Data)
			}
			batch = append(batch, pr)
			if len(batch) == pipelineBatch && !send() {
				return errStop
			}
			return nil
		})
		if len(batch) > 0 {
			send()
		}
	}()
	var err error
	for batch := range batches {
		for i := range batch {
			if err = r.step(batch[i].rec, &batch[i].p); err != nil {
				break
			}
			applied(batch[i].at)
		}
		if err != nil {
			close(stop)
			for range batches { // until src returns
			}
			return err
		}
	}
	return srcErr
}

// Witness replays an export (from genesis) or, with dataDir set instead,
// a stopped node's data folder, and compares it with the heads the sovereign witnessed
// for the domain (ascending by seq): a differing head at a witnessed seq is
// a rewrite, and a history ending before the last witnessed seq is a
// truncation. Either fails the report, naming the seq.
func Witness(exportPath, dataDir string, heads []fsm.HeadRef, progress Progress) (Report, error) {
	r := newRun(fsm.New())
	r.witnessed = append([]fsm.HeadRef(nil), heads...)
	var rep Report
	var err error
	if dataDir != "" {
		rep, err = replayDataDir(r, dataDir, progress)
	} else {
		rep, err = replayExport(r, exportPath, progress)
	}
	if err != nil || !rep.OK {
		return rep, err
	}
	if n := len(heads); n > 0 && rep.Head.Seq < heads[n-1].Seq {
		rep.OK = false
		rep.BadSeq = rep.Head.Seq + 1
		rep.Message = fmt.Sprintf("history ends at seq %d but the sovereign witnessed seq %d: this history was truncated", rep.Head.Seq, heads[n-1].Seq)
	}
	return rep, nil
}

// run is one replay in progress.
type run struct {
	l      *fsm.Ledger
	events uint64
	good   fsm.HeadRef // head after the last verified record

	// With skip, records at or below base.Seq are covered by the
	// snapshot: their links are checked (from skipPrev on), not replayed.
	skip     bool
	base     fsm.HeadRef
	skipPrev *fsm.HeadRef

	failure *Report

	// witnessed, when set, are heads a witness recorded, ascending by seq:
	// each must be reproduced exactly, and the history must reach the last.
	witnessed []fsm.HeadRef

	// tree is the Merkle tree over the events replayed so far (nil once
	// the history skipped a seq); held are the checkpoints not yet
	// reached, by size; checked counts those checked (transparency.go).
	tree    *tlog.Tree
	held    []heldCheckpoint
	checked int
}

// errStop ends an iteration after a failure was recorded.
var errStop = errors.New("audit: verification failed")

func newRun(l *fsm.Ledger) *run {
	r := &run{l: l, good: l.Head()}
	if l.State().Seq == 0 {
		r.tree = tlog.NewTree()
	}
	return r
}

// fail records the first verification failure and returns errStop.
func (r *run) fail(seq uint64, msg string) error {
	if r.failure == nil {
		r.failure = &Report{Head: r.good, Events: r.events, BadSeq: seq, Message: msg}
	}
	return errStop
}

func (r *run) corrupt(ce *archive.CorruptError) error {
	return r.fail(ce.AfterSeq+1, ce.Error())
}

// readError classifies an error from the export reader.
func (r *run) readError(path string, err error) error {
	var ce *archive.CorruptError
	switch {
	case errors.As(err, &ce):
		return r.corrupt(ce)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// Everything before the cut verified, but the export promised
		// more: the records after the last one read cannot be vouched for.
		return r.fail(r.l.State().Seq+1, fmt.Sprintf("export %s is truncated: %v", path, err))
	}
	return fmt.Errorf("audit: read %s: %w", path, err)
}

// finish turns the end of a replay into its Report.
func (r *run) finish(err error) (Report, error) {
	if r.failure != nil {
		return *r.failure, nil
	}
	if err != nil {
		var ce *archive.CorruptError
		if errors.As(err, &ce) {
			r.corrupt(ce)
			return *r.failure, nil
		}
		return Report{}, err
	}
	if r.checkpointsBeyond() != nil {
		return *r.failure, nil
	}
	rep := Report{OK: true, Head: r.l.Head(), StateDigest: r.l.Digest(), Events: r.events, Checkpoints: r.checked}
	if r.tree != nil {
		rep.TreeSize = r.tree.Size()
		rep.TreeRoot, _ = r.tree.Root(rep.TreeSize)
	}
	return rep, nil
}

// covered reports whether rec is covered by the snapshot the replay
// started from (checked by its links, not replayed).
func (r *run) covered(rec archive.Record) bool { return r.skip && rec.Seq <= r.base.Seq }

// step verifies one record, which p holds prepared unless the snapshot
// covers it: skipped (covered) or replayed.
func (r *run) step(rec archive.Record, p *fsm.PreparedRecord) error {
	if r.covered(rec) {
		return r.checkCovered(rec)
	}
	cur := r.l.State().Seq
	switch {
	case rec.Kind == archive.KindEvent && rec.Seq != cur+1,
		rec.Kind == archive.KindNoop && rec.Seq != cur:
		return r.fail(cur+1, fmt.Sprintf("history is missing: the ledger is at seq %d and the next record is %s seq %d (index %d)",
			cur, rec.Kind, rec.Seq, rec.Index))
	}
	if err := fsm.ReplayPrepared(r.l, rec.Index, rec.Seq, p); err != nil {
		var ve *fsm.VerifyError
		if errors.As(err, &ve) {
			return r.fail(ve.Seq, fmt.Sprintf("%s (index %d)", ve.Error(), rec.Index))
		}
		return r.fail(cur+1, err.Error())
	}
	if rec.Kind == archive.KindEvent {
		r.events++
		r.good = r.l.Head()
		if err := r.grow(r.good.Seq, r.good.Hash, r.l.State().Time, r.l.State()); err != nil {
			return err
		}
		for len(r.witnessed) > 0 && r.witnessed[0].Seq <= r.good.Seq {
			w := r.witnessed[0]
			r.witnessed = r.witnessed[1:]
			if w.Seq == r.good.Seq && !bytes.Equal(w.Hash, r.good.Hash) {
				return r.fail(w.Seq, fmt.Sprintf("seq %d has head %x but the sovereign witnessed %x: this history was rewritten", w.Seq, r.good.Hash, w.Hash))
			}
		}
	}
	return nil
}

// checkCovered checks a record the snapshot covers: it decodes, agrees
// with its framing, links to the record before it, and, at the snapshot's
// head seq, carries the snapshot's head.
func (r *run) checkCovered(rec archive.Record) error {
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil {
		return r.fail(rec.Seq, fmt.Sprintf("archived entry at index %d does not decode: %v", rec.Index, err))
	}
	if ae.Event == nil {
		if rec.Kind != archive.KindNoop {
			return r.fail(rec.Seq, fmt.Sprintf("record at index %d is framed as an event but holds no chain record", rec.Index))
		}
		return nil
	}
	if rec.Kind != archive.KindEvent || ae.Event.Seq != rec.Seq {
		return r.fail(rec.Seq, fmt.Sprintf("record at index %d is framed as %s seq %d but holds the chain record of seq %d",
			rec.Index, rec.Kind, rec.Seq, ae.Event.Seq))
	}
	prevSeq, prevHash := ae.Event.Seq-1, ae.Event.Prev
	if r.skipPrev != nil {
		prevSeq, prevHash = r.skipPrev.Seq, r.skipPrev.Hash
	}
	if err := fsm.VerifyLink(prevSeq, prevHash, ae.Event, ae.Head); err != nil {
		return r.fail(rec.Seq, "a record the snapshot covers does not link: "+err.Error())
	}
	r.skipPrev = &fsm.HeadRef{Seq: rec.Seq, Hash: ae.Head}
	if r.tree == nil && rec.Seq == 1 {
		r.tree = tlog.NewTree()
	}
	if err := r.grow(rec.Seq, ae.Head, ae.Event.Time, r.l.State()); err != nil {
		return err
	}
	if rec.Seq == r.base.Seq && !bytes.Equal(ae.Head, r.base.Hash) {
		return r.fail(rec.Seq, fmt.Sprintf("the export's head at seq %d is %x, the snapshot's is %x", rec.Seq, ae.Head, r.base.Hash))
	}
	return nil
}

type countReader struct {
	r io.Reader
	n uint64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}
