package archive

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// fixedRecords returns n records after pos, each with size bytes of data.
func fixedRecords(pos position, n, size int) []Record {
	out := make([]Record, n)
	for i := range out {
		r := Record{Index: pos.index + 1, Seq: pos.seq + 1, Kind: KindEvent, Data: make([]byte, size)}
		if i%3 == 2 {
			r.Kind, r.Seq = KindNoop, pos.seq
		}
		for j := range r.Data {
			r.Data[j] = byte(r.Index + uint64(j))
		}
		out[i] = r
		pos = pos.advance(r)
	}
	return out
}

func lastPos(model []Record) position {
	if len(model) == 0 {
		return position{}
	}
	r := model[len(model)-1]
	return position{have: true, index: r.Index, seq: r.Seq}
}

// Batches for SegmentBytes 512 after a 140-byte prefix: "fits" stays in
// the active segment; "rollover" fills it and creates two new segments.
const (
	faultSegmentBytes = 512
	fitsRecords       = 3
	fitsData          = 20
	rolloverRecords   = 5
	rolloverData      = 200
)

// TestAppendFailureRollsBack injects a failure into each step of Append
// (create, write, fsync, directory fsync), including a full disk: Append
// returns an error wrapping the injected one, the archive is exactly as
// before (Last, every read, every file byte), a later Append succeeds once
// the fault clears, and a reopen sees exactly the successful records.
func TestAppendFailureRollsBack(t *testing.T) {
	enospc, eio := syscall.ENOSPC, syscall.EIO
	cases := []struct {
		name     string
		empty    bool // no records before the failing batch
		rollover bool
		rules    []faultRule
		want     error
	}{
		{"active segment write, disk full after a partial write", false, false,
			[]faultRule{{op: "write", nth: 1, partial: 37, err: enospc}}, enospc},
		{"active segment write, disk full before any byte", false, false,
			[]faultRule{{op: "write", nth: 1, err: enospc}}, enospc},
		{"active segment fsync, I/O error", false, false,
			[]faultRule{{op: "sync", nth: 1, err: eio}}, eio},
		{"active segment fsync, disk full", false, false,
			[]faultRule{{op: "sync", nth: 1, err: enospc}}, enospc},
		{"first segment of an empty archive, disk full", true, false,
			[]faultRule{{op: "write", nth: 1, partial: 10, err: enospc}}, enospc},
		{"first segment of an empty archive, create fails", true, false,
			[]faultRule{{op: "create", nth: 1, err: enospc}}, enospc},
		{"rollover, create of the first new segment fails", false, true,
			[]faultRule{{op: "create", nth: 1, err: enospc}}, enospc},
		{"rollover, create of the second new segment fails", false, true,
			[]faultRule{{op: "create", nth: 2, err: enospc}}, enospc},
		{"rollover, write to a new segment, disk full", false, true,
			[]faultRule{{op: "write", nth: 2, partial: 100, err: enospc}}, enospc},
		{"rollover, write to the last new segment, disk full", false, true,
			[]faultRule{{op: "write", nth: 3, partial: 250, err: enospc}}, enospc},
		{"rollover, fsync of the last new segment", false, true,
			[]faultRule{{op: "sync", nth: 3, err: eio}}, eio},
		{"rollover, first directory fsync", false, true,
			[]faultRule{{op: "syncdir", nth: 1, err: eio}}, eio},
		{"disk stays full", false, true,
			[]faultRule{{op: "write", nth: 1, sticky: true, partial: 11, err: enospc}}, enospc},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := newRand(t)
			dir := t.TempDir()
			ffs := &faultFS{}
			opts := Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs}
			a := openT(t, dir, opts)
			defer func() { _ = a.Close() }()
			var model []Record
			if !tc.empty {
				model = fixedRecords(position{}, 2, 40)
				if err := a.Append(model); err != nil {
					t.Fatal(err)
				}
			}
			batch := fixedRecords(lastPos(model), fitsRecords, fitsData)
			if tc.rollover {
				batch = fixedRecords(lastPos(model), rolloverRecords, rolloverData)
			}
			before := snapshotDir(t, dir)
			beforeSegs := a.state.Load().nseg()
			// A disk that stays full fails every attempt the same way.
			attempts := 1
			if tc.rules[0].sticky {
				attempts = 3
			}
			ffs.arm(tc.rules...)
			for attempt := range attempts {
				err := a.Append(batch)
				if !errors.Is(err, tc.want) {
					t.Fatalf("attempt %d: Append = %v; want an error wrapping %v", attempt, err, tc.want)
				}
				t.Logf("attempt %d: %v (operations %v)", attempt, err, ffs.log())
				if strings.Contains(err.Error(), "rollback failed") {
					t.Fatalf("rollback failed: %v", err)
				}
				requireSameDir(t, "after a failed Append", snapshotDir(t, dir), before)
				checkArchive(t, a, model, rng)
				if n := a.state.Load().nseg(); n != beforeSegs {
					t.Fatalf("index has %d segments after a failed Append, had %d", n, beforeSegs)
				}
			}

			ffs.arm() // the fault clears
			if err := a.Append(batch); err != nil {
				t.Fatalf("Append after the fault cleared: %v", err)
			}
			model = append(model, batch...)
			if tc.rollover && a.state.Load().nseg() != beforeSegs+2 {
				t.Fatalf("rollover batch left %d segments, want %d", a.state.Load().nseg(), beforeSegs+2)
			}
			checkArchive(t, a, model, rng)
			closeT(t, a)

			a = openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400})
			checkArchive(t, a, model, rng)
		})
	}
}

// TestFailedRollbackRefusesAppends: when the rollback of a failed Append
// fails too, every later Append is refused (reads still work) until a
// reopen. The rollback stops at its failing step, so what it leaves on disk
// is the archive before the batch plus a prefix of the batch (keep
// records), possibly with a torn tail; a reopen recovers exactly that.
func TestFailedRollbackRefusesAppends(t *testing.T) {
	enospc, eio := syscall.ENOSPC, syscall.EIO
	for _, tc := range []struct {
		name     string
		rollover bool
		rules    []faultRule
		want     error
		keep     int  // batch records a reopen finds
		wantTorn bool // a reopen truncates a torn tail
	}{
		{"truncate of the active segment fails", false,
			[]faultRule{{op: "write", nth: 1, partial: 37, err: enospc}, {op: "truncate", nth: 1, err: eio}}, enospc, 0, true},
		{"removal of a partly written new segment fails", true,
			[]faultRule{{op: "write", nth: 2, partial: 100, err: enospc}, {op: "remove", nth: 1, err: eio}}, enospc, 1, true},
		{"removal of a complete new segment fails", true,
			[]faultRule{{op: "syncdir", nth: 1, err: eio}, {op: "remove", nth: 1, err: eio}}, eio, 3, false},
		{"truncate fails after the new segments are removed", true,
			[]faultRule{{op: "write", nth: 3, partial: 250, err: enospc}, {op: "truncate", nth: 1, err: eio}}, enospc, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := newRand(t)
			dir := t.TempDir()
			ffs := &faultFS{}
			a := openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs})
			model := fixedRecords(position{}, 2, 40)
			if err := a.Append(model); err != nil {
				t.Fatal(err)
			}
			batch := fixedRecords(lastPos(model), fitsRecords, fitsData)
			if tc.rollover {
				batch = fixedRecords(lastPos(model), rolloverRecords, rolloverData)
			}
			ffs.arm(tc.rules...)
			err := a.Append(batch)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "rollback failed") {
				t.Fatalf("Append = %v; want the error %v and the rollback failure", err, tc.want)
			}
			t.Logf("operations %v", ffs.log())
			ffs.arm()
			err = a.Append(batch)
			if err == nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "reopened") {
				t.Fatalf("Append after a failed rollback = %v; want a refusal naming the original error", err)
			}
			checkArchive(t, a, model, rng)
			closeT(t, a)

			logger, logs := newTestLogger(t)
			a = openT(t, dir, Options{SegmentBytes: faultSegmentBytes, Logger: logger})
			defer closeT(t, a)
			if got := hasLog(logs(), "WARN", "torn tail"); got != tc.wantTorn {
				t.Fatalf("reopen truncated a torn tail: %v, want %v; logs %q", got, tc.wantTorn, logs())
			}
			model = append(model, batch[:tc.keep]...)
			checkArchive(t, a, model, rng)
			more := fixedRecords(lastPos(model), rolloverRecords, rolloverData)
			if err := a.Append(more); err != nil {
				t.Fatalf("Append after reopen: %v", err)
			}
			checkArchive(t, a, append(model, more...), rng)
		})
	}
}

// TestAppendSyncOrder checks the durability protocol through the
// operations Append performs: a batch in the active segment is one write
// and one fsync; a batch that rolls over writes and fsyncs each segment
// before creating the next, and makes each new directory entry durable
// before creating the next segment and before returning, so that a crash
// leaves the archive a prefix of the batch.
func TestAppendSyncOrder(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	a := openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs})
	defer closeT(t, a)
	model := fixedRecords(position{}, 2, 40)
	if err := a.Append(model); err != nil {
		t.Fatal(err)
	}

	ffs.arm()
	batch := fixedRecords(lastPos(model), fitsRecords, fitsData)
	if err := a.Append(batch); err != nil {
		t.Fatal(err)
	}
	if got, want := ffs.log(), []string{"write", "sync"}; !slices.Equal(got, want) {
		t.Fatalf("batch in the active segment: operations %v, want %v", got, want)
	}
	model = append(model, batch...)

	ffs.arm()
	// 180-byte frames: one more fits the active segment (290 bytes), then
	// two per new segment.
	batch = fixedRecords(lastPos(model), 7, 150)
	if err := a.Append(batch); err != nil {
		t.Fatal(err)
	}
	got := ffs.log()
	t.Logf("rollover batch: operations %v", got)
	want := []string{
		"write", "sync", // the rest of the active segment
		"create", "write", "sync", "syncdir",
		"create", "write", "sync", "syncdir",
		"create", "write", "sync", "syncdir",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rollover batch: operations\n%v\nwant\n%v", got, want)
	}
	model = append(model, batch...)
	checkArchive(t, a, model, newRand(t))
	if n := a.state.Load().nseg(); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}

	// A rollback undoes newest first and makes each removal durable before
	// the next, so a crash part-way leaves a prefix of the batch.
	before := snapshotDir(t, dir)
	batch = fixedRecords(lastPos(model), 1, 100) // 130 bytes: fits the active segment (360)
	batch = append(batch, fixedRecords(lastPos(batch), 4, 150)...)
	ffs.arm(faultRule{op: "write", nth: 3, err: syscall.ENOSPC})
	if err := a.Append(batch); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append = %v, want ENOSPC", err)
	}
	got = ffs.log()
	t.Logf("failed rollover batch: operations %v", got)
	want = []string{
		"write", "sync",
		"create", "write", "sync", "syncdir",
		"create", "write", // fails
		"remove", "syncdir", "remove", "syncdir", "truncate", "sync",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("failed rollover batch: operations\n%v\nwant\n%v", got, want)
	}
	requireSameDir(t, "after the rollback", snapshotDir(t, dir), before)
	checkArchive(t, a, model, newRand(t))
}
