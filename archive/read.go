package archive

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

const iterateBufferSize = 64 << 10

// ReadSeq returns the KindEvent record with ledger seq seq, or an error
// wrapping ErrNotFound.
func (a *Archive) ReadSeq(seq uint64) (Record, error) {
	if a.closed.Load() {
		return Record{}, ErrClosed
	}
	st := a.state.Load()
	si, ri := st.lowerSeq(seq)
	if si == st.nseg() || st.seg(si).seqAt(ri) != seq || st.seg(si).kindAt(ri) != KindEvent {
		return Record{}, fmt.Errorf("archive: event seq %d: %w", seq, ErrNotFound)
	}
	return a.readOne(st, si, ri)
}

// ReadIndex returns the record with Raft index index, or an error wrapping
// ErrNotFound.
func (a *Archive) ReadIndex(index uint64) (Record, error) {
	if a.closed.Load() {
		return Record{}, ErrClosed
	}
	st := a.state.Load()
	si, ri := st.lowerIndex(index)
	if si == st.nseg() || st.seg(si).indexAt(ri) != index {
		return Record{}, fmt.Errorf("archive: index %d: %w", index, ErrNotFound)
	}
	return a.readOne(st, si, ri)
}

// readOne reads and verifies record (si, ri) of st.
func (a *Archive) readOne(st *state, si, ri int) (Record, error) {
	s := st.seg(si)
	off := int64(s.recs[ri].off)
	b := make([]byte, s.frameEnd(ri)-off)
	f, err := a.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return Record{}, fmt.Errorf("archive: open %s: %w", s.path, err)
	}
	_, err = f.ReadAt(b, off)
	_ = f.Close()
	if err != nil {
		return Record{}, fmt.Errorf("archive: read %s at offset %d: %w", s.path, off, err)
	}
	return verify(st, si, ri, b)
}

// verify decodes frame b of record (si, ri) and checks it is the record the
// index says: the file was checked at Open, so a difference means it changed
// underneath the archive.
func verify(st *state, si, ri int, b []byte) (Record, error) {
	s := st.seg(si)
	r, reason := decodeFrame(b)
	if reason == "" && (r.Index != s.indexAt(ri) || r.Seq != s.seqAt(ri) || r.Kind != s.kindAt(ri)) {
		reason = fmt.Sprintf("record (index %d, seq %d, %s) differs from the one indexed at Open (index %d, seq %d, %s)",
			r.Index, r.Seq, r.Kind, s.indexAt(ri), s.seqAt(ri), s.kindAt(ri))
	}
	if reason != "" {
		return Record{}, &CorruptError{Path: s.path, Offset: int64(s.recs[ri].off), AfterSeq: st.seqBefore(si, ri), Reason: reason}
	}
	return r, nil
}

// Iterate calls fn with every record (events and noops) whose Seq >=
// fromSeq, in order, as of the call: records appended meanwhile are not
// visited. It stops at the first error from fn and returns it unwrapped.
// fn may call any method of the Archive; it owns each Record it is given.
func (a *Archive) Iterate(fromSeq uint64, fn func(Record) error) error {
	if a.closed.Load() {
		return ErrClosed
	}
	st := a.state.Load()
	si, ri := st.lowerSeq(fromSeq)
	return a.iterate(st, si, ri, fn)
}

// IterateIndex is Iterate over the records whose Index >= fromIndex.
func (a *Archive) IterateIndex(fromIndex uint64, fn func(Record) error) error {
	if a.closed.Load() {
		return ErrClosed
	}
	st := a.state.Load()
	si, ri := st.lowerIndex(fromIndex)
	return a.iterate(st, si, ri, fn)
}

func (a *Archive) iterate(st *state, si, ri int, fn func(Record) error) error {
	for ; si < st.nseg(); si, ri = si+1, 0 {
		if a.closed.Load() {
			return ErrClosed
		}
		if err := a.iterateSegment(st, si, ri, fn); err != nil {
			return err
		}
	}
	return nil
}

func (a *Archive) iterateSegment(st *state, si, ri int, fn func(Record) error) error {
	s := st.seg(si)
	f, err := a.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("archive: open %s: %w", s.path, err)
	}
	defer f.Close()
	start := int64(s.recs[ri].off)
	br := bufio.NewReaderSize(io.NewSectionReader(f, start, s.size-start), iterateBufferSize)
	for j := ri; j < len(s.recs); j++ {
		off := int64(s.recs[j].off)
		b := make([]byte, s.frameEnd(j)-off)
		if _, err := io.ReadFull(br, b); err != nil {
			return fmt.Errorf("archive: read %s at offset %d: %w", s.path, off, err)
		}
		r, err := verify(st, si, j, b)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Close waits for an append or Sync in progress, makes every record
// appended so far durable (as Sync), closes the files and releases the
// directory lock. It closes and unlocks even when that fsync fails, and
// returns the failure. Every later call returns ErrClosed.
func (a *Archive) Close() error {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Swap(true) {
		return ErrClosed
	}
	var err error
	switch {
	case a.synced == a.state.Load().last():
	case a.broken != nil:
		// After a failed fsync a retry can succeed without the data
		// being on disk: do not claim it.
		err = fmt.Errorf("archive: close: records appended since the last sync may not be durable: %w", a.broken)
	default:
		if ferr := a.flushLocked(); ferr != nil {
			err = fmt.Errorf("archive: close: %w", ferr)
		} else {
			a.synced = a.state.Load().last()
		}
	}
	if a.activeFile != nil {
		if cerr := a.activeFile.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("archive: close %s: %w", a.state.Load().active.path, cerr)
		}
		a.activeFile = nil
	}
	if uerr := a.unlock(); uerr != nil && err == nil {
		err = fmt.Errorf("archive: release lock: %w", uerr)
	}
	a.buf = nil
	return err
}
