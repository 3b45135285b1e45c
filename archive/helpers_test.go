package archive

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("archive.seed", 0, "seed for randomized archive tests (0 picks one from the clock)")

// newRand returns a seeded source and logs the seed, so that a failure can
// be replayed with -archive.seed.
func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -archive.seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x61726368))
}

// logHandler forwards slog records to t.Log and remembers them.
type logHandler struct {
	t       testing.TB
	mu      *sync.Mutex
	records *[]string // "LEVEL message"
	attrs   []slog.Attr
}

func newTestLogger(t testing.TB) (*slog.Logger, func() []string) {
	h := &logHandler{t: t, mu: &sync.Mutex{}, records: new([]string)}
	return slog.New(h), func() []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Clone(*h.records)
	}
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	*h.records = append(*h.records, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	h.t.Log(b.String())
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clone(h.attrs), attrs...)
	return &c
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

func openT(t testing.TB, dir string, opts Options) *Archive {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger, _ = newTestLogger(t)
	}
	a, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return a
}

func closeT(t testing.TB, a *Archive) {
	t.Helper()
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// gen produces records that follow the ordering rules from a position.
type gen struct {
	rng     *rand.Rand
	pos     position
	maxData int
}

// next returns one record: index gaps of 0-3, a noop one time in four, and
// data of 0..maxData bytes whose content names the record.
func (g *gen) next() Record {
	r := Record{Index: g.pos.index + 1 + uint64(g.rng.IntN(4)), Kind: KindEvent, Seq: g.pos.seq + 1}
	if g.pos.have && g.rng.IntN(4) == 0 {
		r.Kind, r.Seq = KindNoop, g.pos.seq
	}
	n := 0
	if g.maxData > 0 {
		n = g.rng.IntN(g.maxData + 1)
	}
	r.Data = make([]byte, n)
	for i := range r.Data {
		r.Data[i] = byte(r.Index*31 + uint64(i))
	}
	g.pos = g.pos.advance(r)
	return r
}

func (g *gen) batch(n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = g.next()
	}
	return out
}

func sameRecord(a, b Record) bool {
	return a.Index == b.Index && a.Seq == b.Seq && a.Kind == b.Kind && bytes.Equal(a.Data, b.Data)
}

func describe(r Record) string {
	return fmt.Sprintf("{index %d seq %d %s %d bytes}", r.Index, r.Seq, r.Kind, len(r.Data))
}

func collect(t testing.TB, iter func(uint64, func(Record) error) error, from uint64) []Record {
	t.Helper()
	var out []Record
	if err := iter(from, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("iterate from %d: %v", from, err)
	}
	return out
}

func requireRecords(t testing.TB, what string, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !sameRecord(got[i], want[i]) {
			t.Fatalf("%s: record %d is %s, want %s", what, i, describe(got[i]), describe(want[i]))
		}
	}
}

// checkArchive compares every read path of a with the model want.
func checkArchive(t testing.TB, a *Archive, want []Record, rng *rand.Rand) {
	t.Helper()
	var wantFirst, wantLast Record
	if len(want) > 0 {
		wantFirst, wantLast = want[0], want[len(want)-1]
	}
	if i, s := a.Last(); i != wantLast.Index || s != wantLast.Seq {
		t.Fatalf("Last() = %d, %d; want %d, %d", i, s, wantLast.Index, wantLast.Seq)
	}
	if i, s := a.First(); i != wantFirst.Index || s != wantFirst.Seq {
		t.Fatalf("First() = %d, %d; want %d, %d", i, s, wantFirst.Index, wantFirst.Seq)
	}
	requireRecords(t, "Iterate(0)", collect(t, a.Iterate, 0), want)
	requireRecords(t, "IterateIndex(0)", collect(t, a.IterateIndex, 0), want)
	missing := []uint64{0}
	for i, r := range want {
		if i > 0 {
			for m := want[i-1].Index + 1; m < r.Index && m < want[i-1].Index+4; m++ {
				missing = append(missing, m) // a gap
			}
		}
		got, err := a.ReadIndex(r.Index)
		if err != nil || !sameRecord(got, r) {
			t.Fatalf("ReadIndex(%d) = %s, %v; want %s", r.Index, describe(got), err, describe(r))
		}
		if r.Kind == KindEvent {
			got, err := a.ReadSeq(r.Seq)
			if err != nil || !sameRecord(got, r) {
				t.Fatalf("ReadSeq(%d) = %s, %v; want %s", r.Seq, describe(got), err, describe(r))
			}
		}
	}
	if wantLast.Index < math.MaxUint64 {
		missing = append(missing, wantLast.Index+1)
	}
	for _, i := range missing {
		if _, err := a.ReadIndex(i); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ReadIndex(%d) of a missing index: err = %v, want ErrNotFound", i, err)
		}
	}
	if _, err := a.ReadSeq(wantLast.Seq + 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadSeq(%d) past the end: err = %v, want ErrNotFound", wantLast.Seq+1, err)
	}
	if len(want) == 0 {
		return
	}
	// Iterate from a few places, including seqs shared by noops.
	for range 8 {
		from := want[rng.IntN(len(want))]
		var wantFrom []Record
		for _, r := range want {
			if r.Seq >= from.Seq {
				wantFrom = append(wantFrom, r)
			}
		}
		requireRecords(t, fmt.Sprintf("Iterate(%d)", from.Seq), collect(t, a.Iterate, from.Seq), wantFrom)
		wantFrom = wantFrom[:0]
		for _, r := range want {
			if r.Index >= from.Index {
				wantFrom = append(wantFrom, r)
			}
		}
		requireRecords(t, fmt.Sprintf("IterateIndex(%d)", from.Index), collect(t, a.IterateIndex, from.Index), wantFrom)
	}
}

// snapshotDir returns every file of dir but LOCK, by name.
func snapshotDir(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.Name() == lockFileName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func requireSameDir(t testing.TB, what string, got, want map[string][]byte) {
	t.Helper()
	for name, b := range want {
		g, ok := got[name]
		if !ok {
			t.Fatalf("%s: file %s disappeared", what, name)
		}
		if !bytes.Equal(g, b) {
			t.Fatalf("%s: file %s changed: %d bytes, was %d", what, name, len(g), len(b))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Fatalf("%s: unexpected new file %s", what, name)
		}
	}
}

func segmentNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), segmentSuffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o750); err != nil {
		t.Fatal(err)
	}
	for name, b := range snapshotDir(t, src) {
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// faultRule fails the nth call (1-based) of op, and every later one when
// sticky. For "write", partial bytes are written before the error.
type faultRule struct {
	op      string // create, write, sync, truncate, remove, syncdir
	nth     int
	sticky  bool
	partial int
	err     error
	during  func() // for sync: runs inside the matched call, before it returns
}

// faultFS is the real file system with injected failures.
type faultFS struct {
	osFS
	mu    sync.Mutex
	rules []faultRule
	calls map[string]int
	ops   []string // every intercepted call, in order, since the last arm
}

func (f *faultFS) arm(rules ...faultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = rules
	f.calls = map[string]int{}
	f.ops = nil
}

// log returns the operations intercepted since the last arm.
func (f *faultFS) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// fault returns the rule that fails this call of op, if any.
func (f *faultFS) fault(op string) (faultRule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	f.ops = append(f.ops, op)
	for _, r := range f.rules {
		if r.op == op && (f.calls[op] == r.nth || r.sticky && f.calls[op] > r.nth) {
			return r, true
		}
	}
	return faultRule{}, false
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	if flag&os.O_CREATE != 0 {
		if r, ok := f.fault("create"); ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: r.err}
		}
	}
	of, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: of, fs: f}, nil
}

func (f *faultFS) Remove(name string) error {
	if r, ok := f.fault("remove"); ok {
		return &fs.PathError{Op: "remove", Path: name, Err: r.err}
	}
	return os.Remove(name)
}

func (f *faultFS) SyncDir(dir string) error {
	if r, ok := f.fault("syncdir"); ok {
		return &fs.PathError{Op: "sync", Path: dir, Err: r.err}
	}
	return f.osFS.SyncDir(dir)
}

type faultFile struct {
	*os.File
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if r, ok := f.fs.fault("write"); ok {
		n, err := f.File.WriteAt(p[:min(r.partial, len(p))], off)
		if err != nil {
			return n, err
		}
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: r.err}
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	if r, ok := f.fs.fault("sync"); ok {
		if r.during != nil {
			r.during()
		}
		if r.err != nil {
			return &fs.PathError{Op: "sync", Path: f.Name(), Err: r.err}
		}
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if r, ok := f.fs.fault("truncate"); ok {
		return &fs.PathError{Op: "truncate", Path: f.Name(), Err: r.err}
	}
	return f.File.Truncate(size)
}
