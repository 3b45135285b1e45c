package archive

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestRoundTripAcrossSegments appends seeded random batches into small
// segments, checks every read path against the model, reopens, and keeps
// appending.
func TestRoundTripAcrossSegments(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	opts := Options{SegmentBytes: 512, MaxRecordBytes: 400}
	a := openT(t, dir, opts)
	g := &gen{rng: rng, maxData: 120}
	var model []Record
	for round := range 3 {
		for range 40 {
			batch := g.batch(1 + rng.IntN(8))
			if err := a.Append(batch); err != nil {
				t.Fatalf("round %d: Append: %v", round, err)
			}
			model = append(model, batch...)
		}
		checkArchive(t, a, model, rng)
		closeT(t, a)
		a = openT(t, dir, opts)
		checkArchive(t, a, model, rng)
	}
	defer closeT(t, a)

	// Segments rolled over, are named for their first record, and exceed
	// SegmentBytes only when they hold a single record.
	names := segmentNames(t, dir)
	if len(names) < 10 {
		t.Fatalf("%d segments for %d records of up to %d bytes in 512-byte segments; want many rollovers", len(names), len(model), g.maxData)
	}
	st := a.state.Load()
	if st.nseg() != len(names) {
		t.Fatalf("index has %d segments, directory has %d", st.nseg(), len(names))
	}
	for i, name := range names {
		s := st.seg(i)
		if want := segmentFileName(s.firstIndex); name != want {
			t.Fatalf("segment %d is file %s, want %s", i, name, want)
		}
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != s.size {
			t.Fatalf("segment %s is %d bytes on disk, %d in the index", name, info.Size(), s.size)
		}
		if info.Size() > opts.SegmentBytes && len(s.recs) > 1 {
			t.Fatalf("segment %s is %d bytes with %d records, over SegmentBytes %d", name, info.Size(), len(s.recs), opts.SegmentBytes)
		}
	}
}

// TestOversizeRecordGetsItsOwnSegment: a record larger than SegmentBytes is
// archived alone in a segment.
func TestOversizeRecordGetsItsOwnSegment(t *testing.T) {
	dir := t.TempDir()
	a := openT(t, dir, Options{SegmentBytes: 256, MaxRecordBytes: 1000})
	defer closeT(t, a)
	recs := []Record{
		{Index: 1, Seq: 1, Kind: KindEvent, Data: []byte("small")},
		{Index: 2, Seq: 2, Kind: KindEvent, Data: make([]byte, 900)},
		{Index: 3, Seq: 2, Kind: KindNoop, Data: []byte("small")},
	}
	if err := a.Append(recs); err != nil {
		t.Fatal(err)
	}
	if got := segmentNames(t, dir); len(got) != 3 {
		t.Fatalf("segments %v, want three (small, oversize alone, small)", got)
	}
	checkArchive(t, a, recs, newRand(t))
}

func TestAppendRejectsInvalidRecords(t *testing.T) {
	base := []Record{
		{Index: 10, Seq: 5, Kind: KindEvent, Data: []byte("a")},
		{Index: 12, Seq: 5, Kind: KindNoop},
	}
	ok := Record{Index: 13, Seq: 6, Kind: KindEvent}
	cases := []struct {
		name  string
		empty bool // append to an empty archive instead of base
		batch []Record
		bad   Record // the record the error must name
		rule  string // a fragment of the reason
	}{
		{"index equal to last", false, []Record{{Index: 12, Seq: 6, Kind: KindEvent}}, Record{Index: 12, Seq: 6}, "does not exceed the previous index 12"},
		{"index below last", false, []Record{{Index: 3, Seq: 6, Kind: KindEvent}}, Record{Index: 3, Seq: 6}, "does not exceed"},
		{"event skips a seq", false, []Record{{Index: 13, Seq: 7, Kind: KindEvent}}, Record{Index: 13, Seq: 7}, "is not the previous seq 5 + 1"},
		{"event repeats a seq", false, []Record{{Index: 13, Seq: 5, Kind: KindEvent}}, Record{Index: 13, Seq: 5}, "is not the previous seq 5 + 1"},
		{"noop advances the seq", false, []Record{{Index: 13, Seq: 6, Kind: KindNoop}}, Record{Index: 13, Seq: 6}, "noop seq 6 is not the previous seq 5"},
		{"unknown kind", false, []Record{{Index: 13, Seq: 6, Kind: 3}}, Record{Index: 13, Seq: 6}, "kind 3"},
		{"zero kind", false, []Record{{Index: 13, Seq: 6}}, Record{Index: 13, Seq: 6}, "kind 0"},
		{"data over the limit", false, []Record{{Index: 13, Seq: 6, Kind: KindEvent, Data: make([]byte, 65)}}, Record{Index: 13, Seq: 6}, "exceeds Options.MaxRecordBytes 64"},
		{"bad record after good ones", false, []Record{ok, {Index: 14, Seq: 8, Kind: KindEvent}}, Record{Index: 14, Seq: 8}, "is not the previous seq 6 + 1"},
		{"ordering inside the batch", false, []Record{ok, {Index: 13, Seq: 7, Kind: KindEvent}}, Record{Index: 13, Seq: 7}, "does not exceed the previous index 13"},
		{"index zero", true, []Record{{Index: 0, Seq: 1, Kind: KindEvent}}, Record{Index: 0, Seq: 1}, "index 0"},
		{"event seq zero", true, []Record{{Index: 1, Seq: 0, Kind: KindEvent}}, Record{Index: 1, Seq: 0}, "event seq 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := openT(t, dir, Options{SegmentBytes: 256, MaxRecordBytes: 64})
			defer closeT(t, a)
			model := base
			if tc.empty {
				model = nil
			} else if err := a.Append(base); err != nil {
				t.Fatal(err)
			}
			before := snapshotDir(t, dir)
			err := a.Append(tc.batch)
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Append: err = %v, want ErrInvalidRecord", err)
			}
			msg := err.Error()
			if want := fmt.Sprintf("(index %d, seq %d,", tc.bad.Index, tc.bad.Seq); !strings.Contains(msg, want) || !strings.Contains(msg, tc.rule) {
				t.Fatalf("error %q does not name %q and the rule %q", msg, want, tc.rule)
			}
			requireSameDir(t, "after a rejected Append", snapshotDir(t, dir), before)
			checkArchive(t, a, model, newRand(t))
		})
	}
}

// TestFirstRecordMayStartAnywhere: an archive may begin mid-ledger, with an
// event or a noop.
func TestFirstRecordMayStartAnywhere(t *testing.T) {
	for _, first := range []Record{
		{Index: 1000, Seq: 400, Kind: KindEvent},
		{Index: 1000, Seq: 400, Kind: KindNoop},
		{Index: 1, Seq: 0, Kind: KindNoop},
	} {
		a := openT(t, t.TempDir(), Options{})
		recs := []Record{first, {Index: first.Index + 1, Seq: first.Seq + 1, Kind: KindEvent}}
		if err := a.Append(recs); err != nil {
			t.Fatalf("Append starting with %s: %v", describe(first), err)
		}
		checkArchive(t, a, recs, newRand(t))
		_, err := a.ReadSeq(first.Seq)
		if first.Kind == KindNoop && !errors.Is(err, ErrNotFound) {
			t.Fatalf("ReadSeq(%d) when only a noop has that seq: err = %v, want ErrNotFound", first.Seq, err)
		}
		closeT(t, a)
	}
}

// TestReadSeqReturnsTheEventNotItsNoops: noops share their event's seq;
// ReadSeq returns the event, Iterate returns all of them.
func TestReadSeqReturnsTheEventNotItsNoops(t *testing.T) {
	a := openT(t, t.TempDir(), Options{SegmentBytes: 256})
	defer closeT(t, a)
	recs := []Record{
		{Index: 1, Seq: 1, Kind: KindEvent, Data: []byte("e1")},
		{Index: 2, Seq: 1, Kind: KindNoop, Data: []byte("n1")},
		{Index: 5, Seq: 2, Kind: KindEvent, Data: []byte("e2")},
		{Index: 6, Seq: 2, Kind: KindNoop, Data: []byte("n2")},
		{Index: 7, Seq: 2, Kind: KindNoop, Data: []byte("n3")},
		{Index: 9, Seq: 3, Kind: KindEvent, Data: []byte("e3")},
	}
	for _, r := range recs { // one record per Append, across segments
		if err := a.Append([]Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.ReadSeq(2)
	if err != nil || !sameRecord(got, recs[2]) {
		t.Fatalf("ReadSeq(2) = %s, %v; want %s", describe(got), err, describe(recs[2]))
	}
	requireRecords(t, "Iterate(2)", collect(t, a.Iterate, 2), recs[2:])
	requireRecords(t, "IterateIndex(3)", collect(t, a.IterateIndex, 3), recs[2:])
	requireRecords(t, "Iterate(4)", collect(t, a.Iterate, 4), nil)
	checkArchive(t, a, recs, newRand(t))
}

func TestIterateStopsAtCallbackError(t *testing.T) {
	a := openT(t, t.TempDir(), Options{SegmentBytes: 256})
	defer closeT(t, a)
	g := &gen{rng: newRand(t), maxData: 50}
	if err := a.Append(g.batch(30)); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	for _, iter := range []func(uint64, func(Record) error) error{a.Iterate, a.IterateIndex} {
		calls := 0
		err := iter(0, func(Record) error {
			calls++
			if calls == 7 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 7 {
			t.Fatalf("iterate returned %v after %d calls; want the callback's error after 7", err, calls)
		}
	}
}

func TestEmptyArchive(t *testing.T) {
	dir := t.TempDir()
	a := openT(t, dir, Options{})
	checkArchive(t, a, nil, newRand(t))
	if err := a.Append(nil); err != nil {
		t.Fatalf("Append(nil) = %v", err)
	}
	closeT(t, a)
	if names := segmentNames(t, dir); len(names) != 0 {
		t.Fatalf("an empty archive left segments %v", names)
	}
	a = openT(t, dir, Options{})
	defer closeT(t, a)
	checkArchive(t, a, nil, newRand(t))
}

func TestCloseAndLock(t *testing.T) {
	dir := t.TempDir()
	a := openT(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of an open directory: err = %v, want ErrLocked", err)
	}
	rec := Record{Index: 1, Seq: 1, Kind: KindEvent}
	if err := a.Append([]Record{rec}); err != nil {
		t.Fatal(err)
	}
	closeT(t, a)
	if err := a.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	for name, err := range map[string]error{
		"Append":       a.Append([]Record{{Index: 2, Seq: 2, Kind: KindEvent}}),
		"ReadSeq":      func() error { _, err := a.ReadSeq(1); return err }(),
		"ReadIndex":    func() error { _, err := a.ReadIndex(1); return err }(),
		"Iterate":      a.Iterate(0, func(Record) error { return nil }),
		"IterateIndex": a.IterateIndex(0, func(Record) error { return nil }),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	b := openT(t, dir, Options{}) // the lock was released
	defer closeT(t, b)
	checkArchive(t, b, []Record{rec}, newRand(t))
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{SegmentBytes: -1},
		{SegmentBytes: MinSegmentBytes - 1},
		{SegmentBytes: MaxSegmentBytes + 1},
		{MaxRecordBytes: -1},
		{MaxRecordBytes: MaxRecordBytesLimit + 1},
	} {
		_, err := Open(t.TempDir(), o)
		if err == nil {
			t.Fatalf("Open with %+v succeeded", o)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(o.SegmentBytes+int64(o.MaxRecordBytes))) {
			t.Fatalf("error %q does not name the offending value", err)
		}
	}
	a := openT(t, t.TempDir(), Options{})
	defer closeT(t, a)
	if a.opts.SegmentBytes != DefaultSegmentBytes || a.opts.MaxRecordBytes != DefaultMaxRecordBytes {
		t.Fatalf("defaults: %d, %d", a.opts.SegmentBytes, a.opts.MaxRecordBytes)
	}
}

// TestConcurrentReadersSeeAPrefix: while one goroutine appends, readers
// always see a prefix of the model, never a partial batch's garbage.
func TestConcurrentReadersSeeAPrefix(t *testing.T) {
	rng := newRand(t)
	a := openT(t, t.TempDir(), Options{SegmentBytes: 1024, NoSync: true})
	defer closeT(t, a)
	g := &gen{rng: rng, maxData: 100}
	var batches [][]Record
	var model []Record
	for range 200 {
		b := g.batch(1 + rng.IntN(5))
		batches = append(batches, b)
		model = append(model, b...)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for iter := 0; iter < 10000; iter++ {
				select {
				case <-done:
					return
				default:
				}
				n := 0
				err := a.Iterate(0, func(r Record) error {
					if n >= len(model) || !sameRecord(r, model[n]) {
						return fmt.Errorf("record %d: %s is not the model's", n, describe(r))
					}
					n++
					return nil
				})
				if err == nil && n > 0 {
					r, rerr := a.ReadIndex(model[n-1].Index)
					if rerr != nil || !sameRecord(r, model[n-1]) {
						err = fmt.Errorf("ReadIndex(%d) = %v", model[n-1].Index, rerr)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, b := range batches {
		if err := a.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkArchive(t, a, model, rng)
}

// TestSegmentSpanLimits: a segment rolls over before an index delta leaves
// uint32, so huge index gaps archive fine.
func TestSegmentSpanLimits(t *testing.T) {
	dir := t.TempDir()
	a := openT(t, dir, Options{})
	recs := []Record{
		{Index: 1, Seq: 1, Kind: KindEvent},
		{Index: 1 + math.MaxUint32, Seq: 2, Kind: KindEvent},
		{Index: 2 + math.MaxUint32, Seq: 2, Kind: KindNoop},
		{Index: math.MaxUint64, Seq: 3, Kind: KindEvent},
	}
	if err := a.Append(recs); err != nil {
		t.Fatal(err)
	}
	if names := segmentNames(t, dir); len(names) != 3 {
		t.Fatalf("segments %v, want 3", names)
	}
	checkArchive(t, a, recs, newRand(t))
	closeT(t, a)
	a = openT(t, dir, Options{})
	defer closeT(t, a)
	checkArchive(t, a, recs, newRand(t))
	if err := a.Append([]Record{{Index: math.MaxUint64, Seq: 4, Kind: KindEvent}}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Append after index 2^64-1: err = %v, want ErrInvalidRecord", err)
	}
}
