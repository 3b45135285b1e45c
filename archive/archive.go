package archive

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Defaults and bounds of Options.
const (
	DefaultSegmentBytes   int64 = 64 << 20
	DefaultMaxRecordBytes       = 16 << 20
	MinSegmentBytes       int64 = 256
	MaxSegmentBytes       int64 = math.MaxUint32
)

const (
	segmentSuffix    = ".seg"
	segmentDigits    = 20
	lockFileName     = "LOCK"
	keepBufferMax    = 8 << 20 // Append keeps its encode buffer up to this size between calls
	segmentFilePerm  = 0o640
	archiveDirPerm   = 0o750
	segmentOpenFlags = os.O_RDWR | os.O_CREATE | os.O_EXCL
)

// Options configures an Archive. The zero value selects the defaults.
type Options struct {
	// SegmentBytes is the size at which a segment rolls over: a record
	// that would take the segment past it starts a new segment (a record
	// larger than SegmentBytes gets a segment of its own). 0 selects
	// DefaultSegmentBytes; otherwise it lies in [MinSegmentBytes,
	// MaxSegmentBytes].
	SegmentBytes int64
	// MaxRecordBytes bounds Record.Data on Append. 0 selects
	// DefaultMaxRecordBytes; otherwise it lies in [1,
	// MaxRecordBytesLimit]. Records already archived are read whatever
	// their size, so lowering it never makes an archive unreadable.
	MaxRecordBytes int
	// Logger receives warnings (a torn tail truncated at Open) and
	// lifecycle messages. nil discards them.
	Logger *slog.Logger
	// NoSync skips every fsync. It is UNSAFE: an acknowledged Append can be
	// lost, or leave a non-tail segment torn, after a machine crash. For
	// tests and benchmarks only.
	NoSync bool

	// fs replaces the file system in tests that inject faults.
	fs fileSystem
}

func (o Options) withDefaults() (Options, error) {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < MinSegmentBytes || o.SegmentBytes > MaxSegmentBytes {
		return o, fmt.Errorf("archive: Options.SegmentBytes = %d: must lie in [%d, %d], or be 0 for the default %d",
			o.SegmentBytes, MinSegmentBytes, MaxSegmentBytes, DefaultSegmentBytes)
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.MaxRecordBytes < 1 || o.MaxRecordBytes > MaxRecordBytesLimit {
		return o, fmt.Errorf("archive: Options.MaxRecordBytes = %d: must lie in [1, %d], or be 0 for the default %d",
			o.MaxRecordBytes, MaxRecordBytesLimit, DefaultMaxRecordBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.fs == nil {
		o.fs = osFS{}
	}
	return o, nil
}

// Archive is an open archive directory. Append, AppendNoSync and Close
// are serialised with each other; Sync is serialised with Close and with
// other Syncs, and waits for an Append only around its fsync, never during
// it. Reads never wait for any of them and see the archive as of the last
// completed append. All methods are safe for concurrent use.
type Archive struct {
	dir  string
	opts Options
	fs   fileSystem
	log  *slog.Logger

	state  atomic.Pointer[state]
	closed atomic.Bool

	// syncMu serialises Sync and Close. It is taken before mu, never
	// while holding it.
	syncMu sync.Mutex

	mu         sync.Mutex // serialises appends and Close; guards the fields below
	activeFile file       // open read-write on the active segment; nil when empty
	buf        []byte     // encode buffer reused across Appends
	broken     error      // set when a failed Append could not be rolled back, an fsync with records pending failed, or a Sync failed
	unlock     func() error

	// Durability bookkeeping. Every record up to synced is durable. Writes
	// not yet fsynced can only be in the active segment (dirtyFile, at
	// dirtyPath): a new segment is created only once everything before it
	// is durable. dirtyDir is set while the directory entry of the active
	// segment is not yet durable.
	synced    position
	dirtyFile file
	dirtyPath string
	dirtyDir  bool
	// syncing is the file a Sync is fsyncing outside mu (nil when none);
	// a sealed segment that is syncing is closed by that Sync when it
	// ends (closeLater) instead of under its feet.
	syncing    file
	closeLater []file
}

// Open opens (creating if needed) the archive in dir, scans every segment,
// and rebuilds the in-memory index. A torn tail of the last segment is
// truncated away with a warning; any other damage returns *CorruptError and
// nothing is changed on disk. Only one Archive may have dir open at a time
// (ErrLocked).
func Open(dir string, opts Options) (*Archive, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, archiveDirPerm); err != nil {
		return nil, fmt.Errorf("archive: create %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	a := &Archive{dir: dir, opts: opts, fs: opts.fs, log: opts.Logger.With("archive_dir", dir), unlock: unlock}
	if err := a.recover(); err != nil {
		_ = unlock()
		return nil, err
	}
	lastIndex, lastSeq := a.Last()
	a.log.Info("archive opened", "segments", a.state.Load().nseg(), "last_index", lastIndex, "last_seq", lastSeq)
	return a, nil
}

type segName struct {
	name  string
	index uint64
}

// listSegments returns dir's segment files in index order.
func listSegments(dir string, log *slog.Logger) ([]segName, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: list %s: %w", dir, err)
	}
	var segs []segName
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		digits := strings.TrimSuffix(name, segmentSuffix)
		index, perr := strconv.ParseUint(digits, 10, 64)
		if len(digits) != segmentDigits || perr != nil || !e.Type().IsRegular() {
			log.Warn("archive: ignoring file that is not a segment", "file", name)
			continue
		}
		segs = append(segs, segName{name: name, index: index})
	}
	slices.SortFunc(segs, func(x, y segName) int { return strings.Compare(x.name, y.name) })
	return segs, nil
}

func segmentFileName(firstIndex uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, firstIndex, segmentSuffix)
}

// recover scans every segment and publishes the initial state. Disk is
// changed only when the scan found nothing but a torn tail: the tail is
// truncated, and a last segment left empty is removed.
func (a *Archive) recover() error {
	names, err := listSegments(a.dir, a.log)
	if err != nil {
		return err
	}
	var segs []*segment
	var pos position
	for i, sn := range names {
		last := i == len(names)-1
		path := filepath.Join(a.dir, sn.name)
		f, err := a.fs.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("archive: open %s: %w", path, err)
		}
		info, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("archive: stat %s: %w", path, err)
		}
		res, err := scanSegment(io.NewSectionReader(f, 0, info.Size()), info.Size(), path, sn.index, last, pos)
		_ = f.Close()
		if err != nil {
			return err
		}
		if res.valid == 0 && !last {
			return &CorruptError{Path: path, AfterSeq: pos.seq, Reason: "segment is empty but is not the last one"}
		}
		pos = res.end
		if last {
			if res.torn != "" {
				if err := a.truncateTail(path, res, info.Size()); err != nil {
					return err
				}
			}
			if res.valid == 0 {
				if err := a.removeEmpty(path); err != nil {
					return err
				}
				break
			}
		}
		segs = append(segs, res.seg)
	}
	st := &state{}
	if len(segs) > 0 {
		st.sealed = segs[:len(segs)-1]
		st.active = segs[len(segs)-1]
		f, err := a.fs.OpenFile(st.active.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("archive: open active segment %s: %w", st.active.path, err)
		}
		a.activeFile = f
		// The last writer may have stopped (a killed process) with records
		// written but not fsynced: they are in the page cache, so the scan
		// saw them, but they are not durable yet. Make them durable before
		// Synced reports them. (Sealed segments were made durable before
		// their successor was created.)
		if err := a.syncFile(f); err != nil {
			_ = f.Close()
			a.activeFile = nil
			return fmt.Errorf("archive: fsync active segment %s: %w", st.active.path, err)
		}
		if err := a.syncDir(); err != nil {
			_ = f.Close()
			a.activeFile = nil
			return fmt.Errorf("archive: fsync directory %s: %w", a.dir, err)
		}
	}
	a.state.Store(st)
	a.synced = st.last()
	return nil
}

func (a *Archive) truncateTail(path string, res scanResult, size int64) error {
	f, err := a.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("archive: open %s to truncate torn tail: %w", path, err)
	}
	err = f.Truncate(res.valid)
	if err == nil && !a.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("archive: truncate torn tail of %s at offset %d: %w", path, res.valid, err)
	}
	a.log.Warn("archive: truncated torn tail of the last segment",
		"file", path, "offset", res.valid, "dropped_bytes", size-res.valid,
		"after_index", res.end.index, "after_seq", res.end.seq, "reason", res.torn)
	return nil
}

func (a *Archive) removeEmpty(path string) error {
	if err := a.fs.Remove(path); err != nil {
		return fmt.Errorf("archive: remove empty last segment %s: %w", path, err)
	}
	if err := a.syncDir(); err != nil {
		return fmt.Errorf("archive: sync %s after removing empty segment: %w", a.dir, err)
	}
	a.log.Warn("archive: removed empty last segment", "file", path)
	return nil
}

func (a *Archive) syncDir() error {
	if a.opts.NoSync {
		return nil
	}
	return a.fs.SyncDir(a.dir)
}

func (a *Archive) syncFile(f file) error {
	if a.opts.NoSync {
		return nil
	}
	return f.Sync()
}

// Last returns the Index and Seq of the last archived record, or 0, 0 when
// the archive is empty.
func (a *Archive) Last() (index, seq uint64) {
	p := a.state.Load().last()
	return p.index, p.seq
}

// First returns the Index and Seq of the first archived record, or 0, 0
// when the archive is empty. An archive begins wherever its node's history
// began, not necessarily at seq 1.
func (a *Archive) First() (index, seq uint64) {
	st := a.state.Load()
	if st.nseg() == 0 {
		return 0, 0
	}
	s := st.seg(0)
	return s.firstIndex, s.firstSeq
}

// chunk is the part of one Append batch that goes to one segment.
type chunk struct {
	newSeg     bool
	path       string
	firstIndex uint64
	firstSeq   uint64
	firstKind  Kind
	off        int64 // file offset the chunk is written at
	start, end int   // the chunk's bytes in a.buf
	slots      []slot
}

// Append archives recs, in order, after the last archived record, and
// makes them durable (together with every record appended before them)
// before returning. It checks every record against the ordering rules
// (see Record) and the size limit before writing anything, writes the
// frames, and fsyncs. A batch that fits the active segment costs one write
// and one fsync; a batch that rolls over into new segments writes and
// fsyncs each segment in turn, and fsyncs the directory after creating
// each new one, so that a crash leaves a prefix of the batch with a
// partial record only at the end of the last segment.
//
// On any error the archive is exactly as it was before the call: new
// segment files are removed (newest first), then the active segment is
// truncated back. Errors from the file system are wrapped
// (errors.Is(err, syscall.ENOSPC) reports a full disk). Should the rollback
// itself fail, it stops there, leaving on disk a prefix of the batch; the
// archive refuses every later Append until it is reopened, and Open
// recovers from what is on disk (which may include that prefix).
//
// Append does not retain recs.
func (a *Archive) Append(recs []Record) error {
	return a.append(recs, true)
}

// AppendNoSync is Append without the final fsync: it checks, writes and
// publishes recs exactly as Append does (readers see them at once), and
// leaves them durable only at the next Sync, Append or Close. Everything
// else holds as for Append: all-or-nothing with rollback on error, and a
// batch that rolls over makes every segment before a new one durable
// (fsync of the file and of the directory entry) before creating it, so
// that the records not yet durable are only ever a tail of the active
// segment. A crash therefore loses at most the records appended since the
// last Sync, as a clean prefix plus a torn tail that Open truncates; it
// never leaves a gap or a torn segment in the middle.
//
// A caller that answers on records appended this way must hold them
// durably elsewhere until Sync returns (the kernel keeps them in its
// fsynced Raft log).
func (a *Archive) AppendNoSync(recs []Record) error {
	return a.append(recs, false)
}

func (a *Archive) append(recs []Record, durable bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Load() {
		return ErrClosed
	}
	if a.broken != nil {
		return fmt.Errorf("archive: append refused until the archive is reopened: %w", a.broken)
	}
	if len(recs) == 0 {
		return nil
	}
	st := a.state.Load()
	pos := st.last()
	for i, r := range recs {
		reason := pos.check(r)
		if reason == "" && len(r.Data) > a.opts.MaxRecordBytes {
			reason = fmt.Sprintf("data of %d bytes exceeds Options.MaxRecordBytes %d", len(r.Data), a.opts.MaxRecordBytes)
		}
		if reason != "" {
			return fmt.Errorf("%w: batch record %d of %d (index %d, seq %d, %s): %s", ErrInvalidRecord, i, len(recs), r.Index, r.Seq, r.Kind, reason)
		}
		pos = pos.advance(r)
	}

	chunks := a.plan(st, recs)
	created, err := a.write(st, chunks, durable)
	if err != nil {
		return err
	}
	if len(created) > 0 {
		// Every segment but the last new one is now sealed; its data is
		// already fsynced, so a failing close loses nothing.
		sealed := created[:len(created)-1]
		if a.activeFile != nil {
			sealed = append([]file{a.activeFile}, sealed...)
		}
		for _, f := range sealed {
			a.closeSealed(f)
		}
		a.activeFile = created[len(created)-1]
	}
	a.publish(st, chunks)
	if durable {
		a.synced = pos
	}
	return nil
}

// closeSealed closes a sealed segment's file, or leaves it to the Sync
// that is fsyncing it right now.
func (a *Archive) closeSealed(f file) {
	if f == a.syncing {
		a.closeLater = append(a.closeLater, f)
		return
	}
	if err := f.Close(); err != nil {
		a.log.Warn("archive: close sealed segment", "error", err)
	}
}

// Sync makes every record appended so far durable: it fsyncs the active
// segment if it holds writes not yet fsynced, and the directory if the
// active segment was created since the last fsync of it. When nothing is
// pending it costs a lock and a comparison. The fsync runs outside the
// lock that appends take, so appends go on while it runs (they are made
// durable by the next Sync).
//
// A failed Sync leaves the archive refusing every later append and Sync
// until it is reopened: after a failed fsync the file system may have
// dropped the written data, so what readers see may not be what a restart
// finds. Open then recovers whatever is on disk.
func (a *Archive) Sync() error {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	a.mu.Lock()
	if a.closed.Load() {
		a.mu.Unlock()
		return ErrClosed
	}
	if a.broken != nil {
		err := a.broken
		a.mu.Unlock()
		return fmt.Errorf("archive: sync refused until the archive is reopened: %w", err)
	}
	target := a.state.Load().last()
	if target == a.synced {
		a.mu.Unlock()
		return nil
	}
	f, path, dir := a.dirtyFile, a.dirtyPath, a.dirtyDir
	a.syncing = f
	a.mu.Unlock()

	var err error
	if f != nil {
		if serr := a.syncFile(f); serr != nil {
			err = fmt.Errorf("archive: sync: fsync %s: %w", path, serr)
		}
	}
	if err == nil && dir {
		if serr := a.syncDir(); serr != nil {
			err = fmt.Errorf("archive: sync: fsync directory %s: %w", a.dir, serr)
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.syncing = nil
	for _, c := range a.closeLater {
		if cerr := c.Close(); cerr != nil {
			a.log.Warn("archive: close sealed segment", "error", cerr)
		}
	}
	a.closeLater = nil
	if err == nil && a.broken != nil {
		// An append's fsync of the same file failed while this one ran
		// (a rollover flushes the active segment): Linux reports a
		// writeback error to one fsync only, so this success may not
		// cover the writes that one lost.
		err = fmt.Errorf("archive: sync: a concurrent fsync failed: %w", a.broken)
	}
	if err != nil {
		if a.broken == nil {
			a.broken = err
		}
		a.log.Error("archive: sync failed; appends refused until reopen", "error", err)
		return err
	}
	// An append that rolled over meanwhile may have made more durable.
	if !a.synced.have || target.index > a.synced.index {
		a.synced = target
	}
	if dir && a.dirtyFile == f {
		a.dirtyDir = false // the active segment's entry is durable now
	}
	if a.synced == a.state.Load().last() {
		a.dirtyFile, a.dirtyPath, a.dirtyDir = nil, "", false
	}
	return nil
}

// Synced returns the Index and Seq of the last record known durable: found
// by Open (which fsyncs what it found), or appended before the last
// successful Append, Sync or the rollover of a segment. 0, 0 when there is
// none.
func (a *Archive) Synced() (index, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.synced.index, a.synced.seq
}

// flushLocked makes the pending writes of the active segment durable: the
// file, then its directory entry if it is new. Called with mu held.
func (a *Archive) flushLocked() error {
	if a.dirtyFile != nil {
		if err := a.syncFile(a.dirtyFile); err != nil {
			return fmt.Errorf("fsync %s: %w", a.dirtyPath, err)
		}
	}
	if a.dirtyDir {
		if err := a.syncDir(); err != nil {
			return fmt.Errorf("fsync directory %s: %w", a.dir, err)
		}
	}
	a.dirtyFile, a.dirtyPath, a.dirtyDir = nil, "", false
	return nil
}

// plan encodes recs into a.buf and splits them into per-segment chunks.
func (a *Archive) plan(st *state, recs []Record) []chunk {
	buf := a.buf[:0]
	var chunks []chunk
	var cur segment // the segment the next record would go to
	have := st.active != nil
	if have {
		cur = *st.active
	}
	for _, r := range recs {
		fsz := frameSize(len(r.Data))
		if !have || (cur.size > 0 && cur.size+fsz > a.opts.SegmentBytes) ||
			r.Index-cur.firstIndex > math.MaxUint32 || r.Seq-cur.firstSeq > math.MaxUint32 {
			have = true
			cur = segment{firstIndex: r.Index, firstSeq: r.Seq, firstKind: r.Kind}
			chunks = append(chunks, chunk{
				newSeg: true, path: filepath.Join(a.dir, segmentFileName(r.Index)),
				firstIndex: r.Index, firstSeq: r.Seq, firstKind: r.Kind, start: len(buf),
			})
		} else if len(chunks) == 0 {
			chunks = append(chunks, chunk{path: cur.path, off: cur.size, start: len(buf)})
		}
		c := &chunks[len(chunks)-1]
		c.slots = append(c.slots, slot{
			index: uint32(r.Index - cur.firstIndex),
			seq:   uint32(r.Seq - cur.firstSeq),
			off:   uint32(cur.size),
		})
		buf = appendFrame(buf, r)
		c.end = len(buf)
		cur.size += fsz
	}
	a.buf = buf
	return chunks
}

// write puts the chunks on disk and returns the files of the new
// segments, in chunk order, open read-write; or it rolls everything back.
// Before it creates a segment, everything written before (earlier chunks
// and earlier appends) is made durable, file and directory entry; with
// durable, so is the whole batch before it returns.
func (a *Archive) write(st *state, chunks []chunk, durable bool) (_ []file, err error) {
	var created []file
	wroteActive := false
	dirtyFile, dirtyPath, dirtyDir := a.dirtyFile, a.dirtyPath, a.dirtyDir
	before := st.last()
	pendingBefore := a.synced != before // records appended earlier, not yet durable
	flushFailed := false
	defer func() {
		if cap(a.buf) > keepBufferMax {
			a.buf = nil
		}
		if err == nil {
			return
		}
		// What was pending before the call still is (or was flushed,
		// which claiming pending again only costs an extra fsync); the
		// batch's new files are gone.
		a.dirtyFile, a.dirtyPath, a.dirtyDir = dirtyFile, dirtyPath, dirtyDir
		if rbErr := a.rollback(chunks, created, wroteActive); rbErr != nil {
			a.broken = fmt.Errorf("%w (rollback failed: %v)", err, rbErr)
			a.log.Error("archive: rollback of a failed append failed; appends refused until reopen",
				"error", err, "rollback_error", rbErr)
			err = a.broken
			return
		}
		if flushFailed && pendingBefore {
			// The failed fsync also covered records appended before this
			// batch without fsync; the file system may have dropped them,
			// and a later fsync could succeed without them. As for a
			// failed Sync, refuse until reopened.
			a.broken = fmt.Errorf("%w (records appended before this batch without fsync may be lost)", err)
			a.log.Error("archive: fsync failed with records pending; appends refused until reopen", "error", err)
			err = a.broken
		}
	}()
	for _, c := range chunks {
		f := a.activeFile
		if c.newSeg {
			// What came before is durable before the next segment exists:
			// a crash must not keep a later segment and lose (part of) an
			// earlier one.
			if err = a.flushLocked(); err != nil {
				flushFailed = true
				return nil, fmt.Errorf("archive: append: %w", err)
			}
			pendingBefore = false
			if a.synced != before {
				a.synced = before
			}
			f, err = a.fs.OpenFile(c.path, segmentOpenFlags, segmentFilePerm)
			if err != nil {
				return nil, fmt.Errorf("archive: append: create segment: %w", err)
			}
			created = append(created, f)
			a.dirtyDir = true
		} else {
			wroteActive = true
		}
		a.dirtyFile, a.dirtyPath = f, c.path
		if _, err = f.WriteAt(a.buf[c.start:c.end], c.off); err != nil {
			return nil, fmt.Errorf("archive: append: write %s at offset %d: %w", c.path, c.off, err)
		}
	}
	if durable {
		if err = a.flushLocked(); err != nil {
			flushFailed = true
			return nil, fmt.Errorf("archive: append: %w", err)
		}
	}
	return created, nil
}

// rollback undoes a failed write, newest first: new segment files are
// removed, last created first, each removal followed by a directory fsync;
// then the active segment is truncated to its old size and fsynced. It stops at the first
// step that fails, so that whatever a failure or a crash part-way leaves on
// disk is the archive before the batch plus a prefix of the batch, with at
// most a torn tail in the last segment — which Open recovers.
func (a *Archive) rollback(chunks []chunk, created []file, wroteActive bool) error {
	var paths []string // of created, in order; creation stops at the first failure
	for _, c := range chunks {
		if c.newSeg && len(paths) < len(created) {
			paths = append(paths, c.path)
		}
	}
	for i, f := range created {
		// The file is about to be removed: a failing close loses nothing.
		if err := f.Close(); err != nil {
			a.log.Warn("archive: close segment of a failed append", "file", paths[i], "error", err)
		}
	}
	// Each removal is made durable before the next, so that a crash never
	// keeps a later segment of the batch and loses an earlier one.
	for i := len(paths) - 1; i >= 0; i-- {
		if err := a.fs.Remove(paths[i]); err != nil {
			return fmt.Errorf("remove %s: %w", paths[i], err)
		}
		if err := a.syncDir(); err != nil {
			return fmt.Errorf("fsync directory %s after removing %s: %w", a.dir, paths[i], err)
		}
	}
	if wroteActive {
		c := chunks[0]
		if err := a.activeFile.Truncate(c.off); err != nil {
			return fmt.Errorf("truncate %s to %d: %w", c.path, c.off, err)
		}
		if err := a.syncFile(a.activeFile); err != nil {
			return fmt.Errorf("fsync %s: %w", c.path, err)
		}
	}
	return nil
}

// publish makes a written batch visible to readers. created files were
// opened by write; the last one becomes the active file.
func (a *Archive) publish(st *state, chunks []chunk) {
	next := &state{sealed: st.sealed, active: st.active}
	for _, c := range chunks {
		if !c.newSeg {
			act := *next.active
			act.recs = append(act.recs, c.slots...)
			act.size += int64(c.end - c.start)
			next.active = &act
			continue
		}
		if next.active != nil {
			next.sealed = append(next.sealed, next.active)
		}
		next.active = &segment{
			path: c.path, firstIndex: c.firstIndex, firstSeq: c.firstSeq, firstKind: c.firstKind,
			size: int64(c.end - c.start), recs: c.slots,
		}
	}
	a.state.Store(next)
}
