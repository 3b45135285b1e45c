package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// Source is the node's archive as the history reads it (kernel.Node
// provides it; tests use an archive directly).
type Source interface {
	ArchivedRecords(fromIndex uint64, fn func(rec archive.Record) error) error
	ArchivedRecord(seq uint64) (archive.Record, error)
	ArchiveFirst() (index, seq uint64)
	ArchivedSeq() uint64
}

// Config configures a History.
type Config struct {
	Dir   string // where checkpoints live (DATA/history)
	Every uint64 // events between checkpoints; 0 keeps none (every as-of read replays from genesis)
	// MaxReads bounds the as-of reads replaying at once (each holds a
	// copy of the state); more wait. 0 = 2.
	MaxReads int
	Logger   *slog.Logger
}

// DefaultEvery is the default checkpoint interval: an as-of read replays
// at most this many events (about 50 ms at the replay rate of
// BENCHMARKS.md).
const DefaultEvery = 10_000

// History answers reads at any seq from the archive and checkpoints
// (kernel.History).
type History struct {
	src Source
	cfg Config
	log *slog.Logger
	sem chan struct{}

	mu    sync.Mutex
	ckpts []checkpoint // on disk, oldest first; verified when used

	// The builder's own replay (build; one goroutine).
	cur      *fsm.Ledger
	curIndex uint64
	blocked  string // why the builder cannot start, logged once
}

// Open opens (creating) the checkpoint directory.
func Open(src Source, cfg Config) (*History, error) {
	if cfg.MaxReads <= 0 {
		cfg.MaxReads = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	cks, err := listCheckpoints(cfg.Dir)
	if err != nil {
		return nil, err
	}
	return &History{src: src, cfg: cfg, log: cfg.Logger.With("component", "history"), sem: make(chan struct{}, cfg.MaxReads), ckpts: cks}, nil
}

// errStop ends an archive iteration early.
var errStop = errors.New("stop")

func unavailable(format string, a ...any) error {
	return &httpedge.Error{Code: api.CodeUnavailable, Msg: fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &httpedge.Error{Code: api.CodeNotFound, Msg: fmt.Sprintf(format, a...)}
}

// event decodes the archived event seq.
func (h *History) event(seq uint64) (*fsm.Event, []byte, uint64, error) {
	rec, err := h.src.ArchivedRecord(seq)
	if err != nil {
		return nil, nil, 0, notFound("seq %d is not in this node's archive: %v", seq, err)
	}
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil || ae.Event == nil {
		return nil, nil, 0, fmt.Errorf("archived seq %d does not decode: %v", seq, err)
	}
	return ae.Event, ae.Head, rec.Index, nil
}

// TimeOf is the ledger time of event seq.
func (h *History) TimeOf(seq uint64) (int64, error) {
	ev, _, _, err := h.event(seq)
	if err != nil {
		return 0, err
	}
	return ev.Time, nil
}

// SeqAt is the last event at or before ledger time t (ledger time only
// grows, so a binary search over seqs finds it).
func (h *History) SeqAt(ctx context.Context, t int64) (uint64, int64, error) {
	_, first := h.src.ArchiveFirst()
	if first == 0 {
		first = 1
	}
	last := h.src.ArchivedSeq()
	if last < first {
		return 0, 0, notFound("the ledger is empty")
	}
	ft, err := h.TimeOf(first)
	if err != nil {
		return 0, 0, err
	}
	if t < ft {
		return 0, 0, notFound("%s is before this node's first event (seq %d at %s)", time.Unix(0, t).UTC().Format(time.RFC3339Nano), first, time.Unix(0, ft).UTC().Format(time.RFC3339Nano))
	}
	lo, hi, at := first, last, ft // invariant: time(lo) <= t
	for lo < hi {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		mid := lo + (hi-lo+1)/2
		mt, err := h.TimeOf(mid)
		if err != nil {
			return 0, 0, err
		}
		if mt <= t {
			lo, at = mid, mt
		} else {
			hi = mid - 1
		}
	}
	return lo, at, nil
}

// base returns the state to replay from for a read at seq: the newest
// checkpoint at or before it that verifies against the chain (one that
// does not is removed and, by the replay, rebuilt), or a fresh ledger at
// the archive's start, and the Raft index to replay from.
func (h *History) base(seq uint64) (*fsm.Ledger, uint64, error) {
	for {
		h.mu.Lock()
		var c *checkpoint
		for i := len(h.ckpts) - 1; i >= 0; i-- {
			if h.ckpts[i].seq <= seq {
				cc := h.ckpts[i]
				c = &cc
				break
			}
		}
		h.mu.Unlock()
		if c == nil {
			break
		}
		l, err := h.verify(c)
		if err == nil {
			return l, c.index + 1, nil
		}
		h.log.Warn("history: refusing a checkpoint; it is removed and will be rebuilt", "seq", c.seq, "err", err)
		h.drop(c.seq)
	}
	firstIndex, firstSeq := h.src.ArchiveFirst()
	if firstSeq > 1 {
		return nil, 0, unavailable("this node's archive starts at seq %d (it joined from a snapshot) and holds no checkpoint at or before seq %d: ask a node whose history reaches back further", firstSeq, seq)
	}
	return fsm.New(), firstIndex, nil
}

// verify loads checkpoint c and checks it against the archive.
func (h *History) verify(c *checkpoint) (*fsm.Ledger, error) {
	_, head, index, err := h.event(c.seq)
	if err != nil {
		return nil, err
	}
	l, err := loadCheckpoint(c, head)
	if err != nil {
		return nil, err
	}
	if c.index != index {
		return nil, fmt.Errorf("%w: %s names raft index %d, the archive %d", errCheckpoint, c.path, c.index, index)
	}
	return l, nil
}

func (h *History) drop(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.ckpts {
		if c.seq == seq {
			_ = os.Remove(c.path)
			h.ckpts = append(h.ckpts[:i], h.ckpts[i+1:]...)
			return
		}
	}
}

func (h *History) has(seq uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.ckpts) - 1; i >= 0; i-- {
		if h.ckpts[i].seq == seq {
			return true
		}
		if h.ckpts[i].seq < seq {
			return false
		}
	}
	return false
}

func (h *History) add(c checkpoint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := len(h.ckpts)
	for i > 0 && h.ckpts[i-1].seq > c.seq {
		i--
	}
	if i > 0 && h.ckpts[i-1].seq == c.seq {
		h.ckpts[i-1] = c
		return
	}
	h.ckpts = append(h.ckpts, checkpoint{})
	copy(h.ckpts[i+1:], h.ckpts[i:])
	h.ckpts[i] = c
}

// replay applies archived records from index fromIndex on to l until the
// next event would pass seq (math.MaxUint64: to the archive's end, or
// until limit records), writing the checkpoints it passes that are
// missing. It returns the index of the last record applied (0: none).
func (h *History) replay(ctx context.Context, l *fsm.Ledger, fromIndex, seq uint64, limit int) (uint64, error) {
	var last uint64
	n := 0
	err := h.src.ArchivedRecords(fromIndex, func(rec archive.Record) error {
		if rec.Kind == archive.KindEvent && rec.Seq > seq || limit > 0 && n >= limit {
			return errStop
		}
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fsm.ReplayStep(l, rec.Index, rec.Seq, rec.Data); err != nil {
			return fmt.Errorf("history: replaying the archive: %w", err)
		}
		last = rec.Index
		if rec.Kind == archive.KindEvent && h.cfg.Every > 0 && rec.Seq%h.cfg.Every == 0 && !h.has(rec.Seq) {
			c, err := writeCheckpoint(h.cfg.Dir, rec.Index, l)
			if err != nil {
				h.log.Warn("history: cannot write a checkpoint", "seq", rec.Seq, "err", err)
			} else {
				h.add(c)
			}
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return last, err
}

// At runs fn on the state right after event seq (kernel.History). The
// state is this read's own: fn may not keep it.
func (h *History) At(ctx context.Context, seq uint64, fn func(l *fsm.Ledger)) error {
	if seq == 0 {
		return notFound("seq 0 is before genesis")
	}
	if last := h.src.ArchivedSeq(); seq > last {
		return notFound("seq %d is beyond this node's ledger (at %d)", seq, last)
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.sem }()
	l, from, err := h.base(seq)
	if err != nil {
		return err
	}
	if l.State().Seq < seq {
		if _, err := h.replay(ctx, l, from, seq, 0); err != nil {
			return err
		}
	}
	if got := l.State().Seq; got != seq {
		return unavailable("history reached seq %d, not %d", got, seq)
	}
	fn(l)
	return nil
}

// Status reports the checkpoints.
func (h *History) Status() api.HistoryStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, first := h.src.ArchiveFirst()
	if first == 0 {
		first = 1
	}
	out := api.HistoryStatus{Every: h.cfg.Every, Checkpoints: len(h.ckpts), FirstSeq: first, ArchivedSeq: h.src.ArchivedSeq()}
	if first > 1 && len(h.ckpts) > 0 {
		out.FirstSeq = h.ckpts[0].seq
	}
	for _, c := range h.ckpts {
		out.Bytes += c.size
		out.LatestSeq = c.seq
	}
	return out
}

// build advances the builder's replay by up to limit records, writing
// the checkpoints it passes (Run calls it periodically).
func (h *History) build(ctx context.Context, limit int) error {
	if h.cfg.Every == 0 {
		return nil
	}
	if h.cur == nil {
		l, from, err := h.base(^uint64(0))
		if err != nil {
			if msg := err.Error(); msg != h.blocked {
				h.blocked = msg
				h.log.Warn("history: checkpoints cannot be built on this node", "err", err)
			}
			return nil
		}
		h.cur, h.curIndex = l, from-1
	}
	last, err := h.replay(ctx, h.cur, h.curIndex+1, ^uint64(0), limit)
	if last != 0 {
		h.curIndex = last
	}
	if err != nil {
		// A replay that fails verification leaves the builder's state
		// unknown: start again from a checkpoint.
		h.cur, h.curIndex = nil, 0
	}
	return err
}

// Run builds checkpoints as the archive grows until ctx ends.
func (h *History) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := h.build(ctx, 200_000); err != nil && ctx.Err() == nil {
			h.log.Warn("history: building checkpoints", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
