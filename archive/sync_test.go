package archive

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// crashFS is the real file system plus a model of what a machine crash
// keeps, independent of the archive's own bookkeeping: a file keeps the
// bytes it had at its last fsync, followed either by any prefix of what
// was written after, or by zeros where the new size reached the disk but
// none of the new data did; a directory entry created after the
// directory's last fsync may be lost along with its file. (A crash that
// keeps a new size with only part of the new data, leaving zeros inside a
// frame, is outside the model: Open reports it as corruption, as it did
// for a crash during a fsynced Append; ext4's default data=ordered mode
// does not produce it for appends.)
type crashFS struct {
	osFS
	mu           sync.Mutex
	durableSize  map[string]int64 // size at the file's last fsync
	durableNames map[string]bool  // entries present at the directory's last fsync
}

func newCrashFS() *crashFS {
	return &crashFS{durableSize: map[string]int64{}, durableNames: map[string]bool{}}
}

func (c *crashFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &crashFile{File: f, fs: c}, nil
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.osFS.SyncDir(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.durableNames)
	for _, e := range entries {
		c.durableNames[filepath.Join(dir, e.Name())] = true
	}
	return nil
}

type crashFile struct {
	*os.File
	fs *crashFS
}

func (f *crashFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	info, err := f.File.Stat()
	if err != nil {
		return err
	}
	f.fs.mu.Lock()
	f.fs.durableSize[f.Name()] = info.Size()
	f.fs.mu.Unlock()
	return nil
}

// crashImage writes into dst what a machine crash could leave of the
// segments of dir now, choosing with rng among the states the model
// allows, and describes what it chose.
func (c *crashFS) crashImage(t testing.TB, dir, dst string, rng *rand.Rand) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(dst, 0o750); err != nil {
		t.Fatal(err)
	}
	var chose []string
	for _, name := range segmentNames(t, dir) {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !c.durableNames[path] && rng.IntN(2) == 0 {
			chose = append(chose, name+": entry lost")
			continue
		}
		durable := min(c.durableSize[path], int64(len(b)))
		cut := durable + rng.Int64N(int64(len(b))-durable+1)
		out := b[:cut:cut]
		how := "cut"
		if cut > durable && rng.IntN(4) == 0 {
			// The new size reached the disk, the new data did not.
			out = append(b[:durable:durable], make([]byte, cut-durable)...)
			how = "zero-filled"
		}
		if durable < int64(len(b)) || !c.durableNames[path] {
			chose = append(chose, fmt.Sprintf("%s: %s at %d of %d (durable %d, entry durable %v)", name, how, cut, len(b), durable, c.durableNames[path]))
		}
		if err := os.WriteFile(filepath.Join(dst, name), out, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return chose
}

// TestCrashLosesOnlyTheUnsyncedTail appends with AppendNoSync, Sync and
// Append in a seeded random mix (small segments, so batches roll over),
// and at random moments takes the image a machine crash could leave
// (crashFS: every byte written since a file's last fsync may be lost from
// any point on, or turn to zeros; a directory entry created since the
// directory's last fsync may be lost). Open of every image must succeed
// and recover a prefix of what was appended that holds at least every
// record a returned Sync or Append made durable, and at least what
// Synced reported; the recovered archive must then take appends.
func TestCrashLosesOnlyTheUnsyncedTail(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	cfs := newCrashFS()
	opts := Options{SegmentBytes: 1024, MaxRecordBytes: 400, fs: cfs}
	a := openT(t, dir, opts)
	defer closeT(t, a)
	g := &gen{rng: rng, maxData: 300}
	var model []Record
	durable := 0 // records made durable by a returned Sync or Append
	images := 0
	for step := range 600 {
		switch n := rng.IntN(10); {
		case n < 6:
			batch := g.batch(1 + rng.IntN(6))
			if err := a.AppendNoSync(batch); err != nil {
				t.Fatalf("step %d: AppendNoSync: %v", step, err)
			}
			model = append(model, batch...)
		case n < 8:
			if err := a.Sync(); err != nil {
				t.Fatalf("step %d: Sync: %v", step, err)
			}
			durable = len(model)
		default:
			batch := g.batch(1 + rng.IntN(3))
			if err := a.Append(batch); err != nil {
				t.Fatalf("step %d: Append: %v", step, err)
			}
			model = append(model, batch...)
			durable = len(model)
		}
		if step%20 != 19 {
			continue
		}
		syncedIndex, _ := a.Synced()
		img := filepath.Join(t.TempDir(), "crash")
		chose := cfs.crashImage(t, dir, img, rng)
		images++
		b, err := Open(img, Options{SegmentBytes: 1024, MaxRecordBytes: 400, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("step %d: Open of the crash image (%v) failed: %v", step, chose, err)
		}
		got := collect(t, b.IterateIndex, 0)
		if len(got) > len(model) {
			t.Fatalf("step %d: recovered %d records, only %d were appended", step, len(got), len(model))
		}
		requireRecords(t, "recovered prefix", got, model[:len(got)])
		if len(got) < durable {
			t.Fatalf("step %d: crash image %v recovered %d records; %d were made durable by Sync or Append", step, chose, len(got), durable)
		}
		if lastIndex, _ := b.Last(); lastIndex < syncedIndex {
			t.Fatalf("step %d: recovered up to index %d; Synced said %d", step, lastIndex, syncedIndex)
		}
		// The recovered archive takes appends after its last record.
		cont := &gen{rng: rng, pos: lastPos(got), maxData: 50}
		more := cont.batch(3)
		if err := b.AppendNoSync(more); err != nil {
			t.Fatalf("step %d: append to the recovered archive: %v", step, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b = openT(t, img, Options{SegmentBytes: 1024, Logger: slog.New(slog.DiscardHandler)})
		requireRecords(t, "recovered and continued", collect(t, b.IterateIndex, 0), append(slices.Clone(got), more...))
		closeT(t, b)
		t.Logf("step %d: %d appended, %d durable, recovered %d: %v", step, len(model), durable, len(got), chose)
	}
	if images == 0 {
		t.Fatal("no crash image taken")
	}
}

// TestAppendNoSyncDurabilityOrder checks through the operations performed
// that AppendNoSync writes without fsync, that a rollover still makes
// everything before a new segment durable before creating it, that Sync
// fsyncs what is pending (and the directory when the active segment is
// new) and nothing when nothing is, and that Append and Close make
// pending records durable.
func TestAppendNoSyncDurabilityOrder(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	a := openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs})
	model := fixedRecords(position{}, 2, 40)
	if err := a.Append(model); err != nil {
		t.Fatal(err)
	}
	step := func(what string, fn func() error, want ...string) {
		t.Helper()
		ffs.arm()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := ffs.log(); !slices.Equal(got, want) {
			t.Fatalf("%s: operations %v, want %v", what, got, want)
		}
	}
	requireSynced := func(what string, want []Record) {
		t.Helper()
		var wi, ws uint64
		if len(want) > 0 {
			wi, ws = want[len(want)-1].Index, want[len(want)-1].Seq
		}
		if i, s := a.Synced(); i != wi || s != ws {
			t.Fatalf("%s: Synced() = %d, %d; want %d, %d", what, i, s, wi, ws)
		}
	}
	requireSynced("after Append", model)

	batch := fixedRecords(lastPos(model), fitsRecords, fitsData)
	step("AppendNoSync in the active segment", func() error { return a.AppendNoSync(batch) }, "write")
	requireSynced("after AppendNoSync", model)
	model = append(model, batch...)
	checkArchive(t, a, model, newRand(t)) // readers see it at once
	step("Sync", a.Sync, "sync")
	requireSynced("after Sync", model)
	step("Sync with nothing pending", a.Sync)

	// 180-byte frames: one more fits the active segment, then two per new
	// segment; the last new segment is left pending, directory entry too.
	before := model
	batch = fixedRecords(lastPos(model), 7, 150)
	step("AppendNoSync that rolls over", func() error { return a.AppendNoSync(batch) },
		"write", "sync",
		"create", "write", "sync", "syncdir",
		"create", "write", "sync", "syncdir",
		"create", "write")
	model = append(model, batch...)
	requireSynced("after a rollover", before)
	step("Sync of a new segment", a.Sync, "sync", "syncdir")
	requireSynced("after Sync", model)

	batch = fixedRecords(lastPos(model), 1, 40) // 70 bytes: 430 in the active segment
	step("AppendNoSync", func() error { return a.AppendNoSync(batch) }, "write")
	model = append(model, batch...)
	batch = fixedRecords(lastPos(model), 1, 20) // 50 bytes: 480
	step("Append after AppendNoSync", func() error { return a.Append(batch) }, "write", "sync")
	model = append(model, batch...)
	requireSynced("after Append", model)

	batch = fixedRecords(lastPos(model), 2, 150) // 360 bytes: a new segment, nothing pending before it
	step("AppendNoSync into a new segment", func() error { return a.AppendNoSync(batch) },
		"create", "write")
	model = append(model, batch...)
	batch = fixedRecords(lastPos(model), 1, 10)
	step("Append into that segment", func() error { return a.Append(batch) }, "write", "sync", "syncdir")
	model = append(model, batch...)

	batch = fixedRecords(lastPos(model), 1, 10)
	step("AppendNoSync", func() error { return a.AppendNoSync(batch) }, "write")
	model = append(model, batch...)
	step("Close", a.Close, "sync")

	a = openT(t, dir, Options{SegmentBytes: faultSegmentBytes})
	defer closeT(t, a)
	checkArchive(t, a, model, newRand(t))
	requireSynced("after Open", model)
}

// TestFailedSyncRefusesAppends: after a failed fsync the file system may
// have dropped the data, so the archive refuses every later append and
// Sync, and Close reports that records may not be durable; a reopen
// recovers what is on disk.
func TestFailedSyncRefusesAppends(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule faultRule
		new  bool // the pending records are in a new segment
	}{
		{"file fsync", faultRule{op: "sync", nth: 1, err: syscall.EIO}, false},
		{"directory fsync", faultRule{op: "syncdir", nth: 1, err: syscall.EIO}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			a := openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs})
			model := fixedRecords(position{}, 2, 40)
			if err := a.Append(model); err != nil {
				t.Fatal(err)
			}
			batch := fixedRecords(lastPos(model), fitsRecords, fitsData)
			if tc.new {
				batch = fixedRecords(lastPos(model), 2, 300)
			}
			if err := a.AppendNoSync(batch); err != nil {
				t.Fatal(err)
			}
			ffs.arm(tc.rule)
			if err := a.Sync(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Sync = %v, want EIO", err)
			}
			ffs.arm()
			more := fixedRecords(lastPos(append(slices.Clone(model), batch...)), 1, 10)
			for what, fn := range map[string]func() error{
				"AppendNoSync": func() error { return a.AppendNoSync(more) },
				"Append":       func() error { return a.Append(more) },
				"Sync":         a.Sync,
			} {
				if err := fn(); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "reopened") {
					t.Fatalf("%s after a failed Sync = %v; want a refusal wrapping EIO", what, err)
				}
			}
			if got := ffs.log(); len(got) != 0 {
				t.Fatalf("refused calls touched the disk: %v", got)
			}
			if i, _ := a.Synced(); i != model[len(model)-1].Index {
				t.Fatalf("Synced() = %d after a failed Sync, want %d", i, model[len(model)-1].Index)
			}
			if err := a.Close(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close = %v, want an error wrapping EIO", err)
			}
			// The data did reach the page cache; a reopen finds it all.
			a = openT(t, dir, Options{SegmentBytes: faultSegmentBytes})
			defer closeT(t, a)
			checkArchive(t, a, append(model, batch...), newRand(t))
		})
	}
}

// A Sync whose fsync succeeds while an append's rollover fsync of the
// same file fails (Linux reports a writeback error to one fsync only)
// must not claim the pending records durable: it fails, and Synced stays.
func TestSyncFailsWhenAConcurrentRolloverFsyncFailed(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	a := openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs})
	model := fixedRecords(position{}, 2, 40)
	if err := a.Append(model); err != nil {
		t.Fatal(err)
	}
	pending := fixedRecords(lastPos(model), fitsRecords, fitsData)
	if err := a.AppendNoSync(pending); err != nil {
		t.Fatal(err)
	}
	rollover := fixedRecords(lastPos(append(slices.Clone(model), pending...)), 2, 300)
	var appendErr error
	ffs.arm(
		// Sync's own fsync: meanwhile an append rolls over, and its fsync
		// of the same segment fails.
		faultRule{op: "sync", nth: 1, during: func() { appendErr = a.AppendNoSync(rollover) }},
		faultRule{op: "sync", nth: 2, err: syscall.EIO},
	)
	err := a.Sync()
	if !errors.Is(appendErr, syscall.EIO) {
		t.Fatalf("the rolling-over append = %v, want EIO (the test did not reach the case)", appendErr)
	}
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync = %v after a concurrent fsync of its file failed, want an error wrapping EIO", err)
	}
	if i, _ := a.Synced(); i != model[len(model)-1].Index {
		t.Fatalf("Synced() = %d, want %d: the pending records may be lost", i, model[len(model)-1].Index)
	}
	_ = a.Close()
}

// A Sync that made a new segment's directory entry durable does not
// fsync the directory again, even when appends landed during it (so
// records are still pending afterwards).
func TestSyncFsyncsANewSegmentsDirectoryOnce(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	a := openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs})
	defer closeT(t, a)
	model := fixedRecords(position{}, 2, 40)
	if err := a.Append(model); err != nil {
		t.Fatal(err)
	}
	batch := fixedRecords(lastPos(model), 2, 300) // opens a new segment
	if err := a.AppendNoSync(batch); err != nil {
		t.Fatal(err)
	}
	recs := append(slices.Clone(model), batch...)
	more := fixedRecords(lastPos(recs), 1, 10)
	var appendErr error
	ffs.arm(faultRule{op: "sync", nth: 1, during: func() { appendErr = a.AppendNoSync(more) }})
	if err := a.Sync(); err != nil || appendErr != nil {
		t.Fatalf("Sync = %v, append during it = %v", err, appendErr)
	}
	if got := ffs.log(); !slices.Equal(got, []string{"sync", "write", "syncdir"}) {
		t.Fatalf("first Sync (and the append during it) did %v, want [sync write syncdir]", got)
	}
	ffs.arm()
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := ffs.log(); !slices.Equal(got, []string{"sync"}) {
		t.Fatalf("second Sync did %v, want [sync]: the directory entry was already durable", got)
	}
}

// TestSyncRunsAlongsideAppends runs Sync in a loop while another goroutine
// appends with AppendNoSync across many small segments (so sealed
// segments are closed while a Sync may be fsyncing them) and readers
// read. Every Sync succeeds, Synced never goes back and never passes
// Last, and a reopen finds every record.
func TestSyncRunsAlongsideAppends(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	a := openT(t, dir, Options{SegmentBytes: MinSegmentBytes, MaxRecordBytes: 200, Logger: slog.New(slog.DiscardHandler)})
	g := &gen{rng: rng, maxData: 120}
	var batches [][]Record
	for range 400 {
		batches = append(batches, g.batch(1+rng.IntN(4)))
	}
	done := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		var last uint64
		for i := 0; i < 100_000; i++ {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			if err := a.Sync(); err != nil {
				errs <- err
				return
			}
			idx, _ := a.Synced()
			if idx < last {
				errs <- errors.New("Synced went back")
				return
			}
			if li, _ := a.Last(); idx > li {
				errs <- errors.New("Synced passed Last")
				return
			}
			last = idx
		}
		errs <- nil
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 100_000; i++ {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			if li, _ := a.Last(); li > 0 {
				if _, err := a.ReadIndex(li); err != nil {
					errs <- err
					return
				}
			}
		}
		errs <- nil
	}()
	var model []Record
	for _, b := range batches {
		if err := a.AppendNoSync(b); err != nil {
			t.Fatal(err)
		}
		model = append(model, b...)
	}
	close(done)
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	closeT(t, a)
	t.Logf("%d records in %d segments", len(model), len(segmentNames(t, dir)))
	a = openT(t, dir, Options{SegmentBytes: MinSegmentBytes, Logger: slog.New(slog.DiscardHandler)})
	defer closeT(t, a)
	checkArchive(t, a, model, rng)
	if i, _ := a.Synced(); i != model[len(model)-1].Index {
		t.Fatalf("Synced() after Open = %d, want %d", i, model[len(model)-1].Index)
	}
}

// TestSyncAndClosedArchive: Sync of an empty or NoSync archive succeeds,
// and Sync after Close returns ErrClosed.
func TestSyncAndClosedArchive(t *testing.T) {
	a := openT(t, t.TempDir(), Options{})
	if err := a.Sync(); err != nil {
		t.Fatalf("Sync of an empty archive: %v", err)
	}
	closeT(t, a)
	if err := a.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close = %v, want ErrClosed", err)
	}
	a = openT(t, t.TempDir(), Options{NoSync: true})
	defer closeT(t, a)
	recs := fixedRecords(position{}, 3, 10)
	if err := a.AppendNoSync(recs); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if i, _ := a.Synced(); i != recs[2].Index {
		t.Fatalf("Synced() = %d, want %d", i, recs[2].Index)
	}
}

// TestFailedFsyncWithPendingRecordsRefusesAppends: an Append whose fsync
// fails rolls its batch back, but the fsync also covered records appended
// before it without fsync, which the file system may have dropped: the
// archive refuses appends and Sync until reopened, and a reopen recovers
// what is on disk. Without such records (TestAppendFailureRollsBack) the
// archive stays usable.
func TestFailedFsyncWithPendingRecordsRefusesAppends(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rollover bool
		rule     faultRule
	}{
		{"fsync of the batch", false, faultRule{op: "sync", nth: 1, err: syscall.EIO}},
		{"fsync before a new segment", true, faultRule{op: "sync", nth: 1, err: syscall.EIO}},
		{"directory fsync before a new segment", true, faultRule{op: "syncdir", nth: 1, err: syscall.EIO}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			a := openT(t, dir, Options{SegmentBytes: faultSegmentBytes, MaxRecordBytes: 400, fs: ffs})
			model := fixedRecords(position{}, 2, 40)
			if err := a.Append(model); err != nil {
				t.Fatal(err)
			}
			pending := fixedRecords(lastPos(model), 1, 20)
			if tc.rollover {
				pending = fixedRecords(lastPos(model), 2, 300) // a new segment, its entry not yet durable
			}
			if err := a.AppendNoSync(pending); err != nil {
				t.Fatal(err)
			}
			model = append(model, pending...)
			batch := fixedRecords(lastPos(model), 1, 20)
			if tc.rollover {
				batch = fixedRecords(lastPos(model), 1, 300) // rolls over again
			}
			ffs.arm(tc.rule)
			err := a.Append(batch)
			if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "may be lost") {
				t.Fatalf("Append = %v; want EIO naming the pending records", err)
			}
			t.Logf("operations %v", ffs.log())
			ffs.arm()
			if err := a.AppendNoSync(batch); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "reopened") {
				t.Fatalf("AppendNoSync after the failure = %v; want a refusal", err)
			}
			if err := a.Sync(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Sync after the failure = %v; want a refusal", err)
			}
			checkArchive(t, a, model, newRand(t))
			if err := a.Close(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close = %v; want an error wrapping EIO", err)
			}
			a = openT(t, dir, Options{SegmentBytes: faultSegmentBytes})
			defer closeT(t, a)
			checkArchive(t, a, model, newRand(t))
		})
	}
}
