package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// layout is where each record of a closed archive lives on disk.
type layout struct {
	files []string  // segment paths, in order
	recs  [][]frame // recs[i] are the frames of files[i]
}

type frame struct {
	rec        Record
	start, end int64
}

// layoutOf reads the positions of every record from a's index and pairs
// them with the model.
func layoutOf(t testing.TB, a *Archive, model []Record) layout {
	t.Helper()
	st := a.state.Load()
	var l layout
	n := 0
	for si := range st.nseg() {
		s := st.seg(si)
		var fs []frame
		for ri := range s.recs {
			fs = append(fs, frame{rec: model[n], start: int64(s.recs[ri].off), end: s.frameEnd(ri)})
			n++
		}
		l.files = append(l.files, s.path)
		l.recs = append(l.recs, fs)
	}
	if n != len(model) {
		t.Fatalf("index holds %d records, model %d", n, len(model))
	}
	return l
}

// buildArchive appends single records from g to a fresh archive in dir until
// it has at least minSegs segments and the last one holds at least
// minLastRecs records, closes it, and returns the model and the layout.
func buildArchive(t testing.TB, dir string, opts Options, g *gen, minSegs, minLastRecs int) ([]Record, layout) {
	t.Helper()
	a := openT(t, dir, opts)
	defer closeT(t, a)
	var model []Record
	for range 10000 {
		st := a.state.Load()
		if st.nseg() >= minSegs && len(st.active.recs) >= minLastRecs {
			return model, layoutOf(t, a, model)
		}
		r := g.next()
		if err := a.Append([]Record{r}); err != nil {
			t.Fatal(err)
		}
		model = append(model, r)
	}
	t.Fatal("archive did not reach the wanted shape")
	return nil, layout{}
}

func truncateFile(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

func hasLog(logs []string, level, fragment string) bool {
	for _, l := range logs {
		if strings.HasPrefix(l, level+" ") && strings.Contains(l, fragment) {
			return true
		}
	}
	return false
}

// checkRecovered opens dir, expecting a torn tail to be cut so that the
// archive holds exactly want, whose last frame ends at wantSize in
// lastFile (or lastFile is gone when wantGone). It then appends a
// continuation, reopens, and checks that the second Open is clean.
func checkRecovered(t *testing.T, dir string, opts Options, want []Record, lastFile string, wantSize int64, wantGone bool, rng *rand.Rand) {
	t.Helper()
	logger, logs := newTestLogger(t)
	opts.Logger = logger
	a := openT(t, dir, opts)
	if !hasLog(logs(), "WARN", "torn tail") && !hasLog(logs(), "WARN", "removed empty last segment") {
		t.Fatalf("Open recovered a torn tail without a warning; logs %q", logs())
	}
	if _, err := os.Stat(lastFile); wantGone != errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after recovery, stat %s: %v; want the file gone = %v", lastFile, err, wantGone)
	}
	if !wantGone {
		if got := fileSize(t, lastFile); got != wantSize {
			t.Fatalf("after recovery %s is %d bytes, want %d (the end of the last complete record)", lastFile, got, wantSize)
		}
	}
	checkArchive(t, a, want, rng)

	// Appends continue from the last intact record.
	g := &gen{rng: rng, maxData: 40}
	if len(want) > 0 {
		g.pos = position{have: true, index: want[len(want)-1].Index, seq: want[len(want)-1].Seq}
	}
	more := g.batch(3)
	if err := a.Append(more); err != nil {
		t.Fatalf("Append after recovery: %v", err)
	}
	want = append(slices.Clone(want), more...)
	checkArchive(t, a, want, rng)
	closeT(t, a)

	// A second Open finds nothing to repair and changes nothing.
	before := snapshotDir(t, dir)
	logger, logs = newTestLogger(t)
	opts.Logger = logger
	a = openT(t, dir, opts)
	defer closeT(t, a)
	if hasLog(logs(), "WARN", "") {
		t.Fatalf("second Open after recovery warned: %q", logs())
	}
	requireSameDir(t, "second Open after recovery", snapshotDir(t, dir), before)
	checkArchive(t, a, want, rng)
}

// TestTornTailIsTruncated cuts the last segment at every byte inside its
// last record (inside the header, at its end, inside the data and inside the
// checksum): Open drops exactly that record with a warning, every earlier
// record reads back intact, and appends continue.
func TestTornTailIsTruncated(t *testing.T) {
	rng := newRand(t)
	opts := Options{SegmentBytes: 512, MaxRecordBytes: 400}
	tmpl := t.TempDir()
	model, l := buildArchive(t, tmpl, opts, &gen{rng: rng, maxData: 60}, 3, 3)
	lastSeg := l.recs[len(l.recs)-1]
	last := lastSeg[len(lastSeg)-1]
	lastFile := filepath.Base(l.files[len(l.files)-1])
	t.Logf("%d records in %d segments; last record %s at [%d, %d) of %s",
		len(model), len(l.files), describe(last.rec), last.start, last.end, lastFile)
	if size := fileSize(t, l.files[len(l.files)-1]); size != last.end {
		t.Fatalf("last segment is %d bytes, its last frame ends at %d", size, last.end)
	}
	for cut := last.start + 1; cut < last.end; cut++ {
		dir := t.TempDir()
		copyDir(t, tmpl, dir)
		path := filepath.Join(dir, lastFile)
		truncateFile(t, path, cut)
		t.Logf("cut at %d (%d bytes into the last record)", cut, cut-last.start)
		checkRecovered(t, dir, opts, model[:len(model)-1], path, last.start, false, rng)
		if t.Failed() {
			return
		}
	}
}

// TestTornTailLoneRecord: when the torn record was the only one of the last
// segment, the segment is removed and the previous one becomes active; when
// it was the only record of the archive, the archive is empty.
func TestTornTailLoneRecord(t *testing.T) {
	rng := newRand(t)
	opts := Options{SegmentBytes: 512, MaxRecordBytes: 1000}
	for _, tc := range []struct {
		name  string
		prior int // records before the lone one
	}{
		{"after other segments", 20},
		{"only record", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := t.TempDir()
			g := &gen{rng: rng, maxData: 60}
			a := openT(t, tmpl, opts)
			model := g.batch(tc.prior)
			if err := a.Append(model); err != nil {
				t.Fatal(err)
			}
			lone := g.next()
			lone.Data = make([]byte, 600) // too big to share a segment
			if err := a.Append([]Record{lone}); err != nil {
				t.Fatal(err)
			}
			loneFile := a.state.Load().active.path
			if n := len(a.state.Load().active.recs); n != 1 {
				t.Fatalf("the big record shares its segment with %d others", n-1)
			}
			closeT(t, a)
			size := frameSize(len(lone.Data))
			for _, cut := range []int64{0, 1, frameHeaderSize - 1, frameHeaderSize, frameHeaderSize + 1, size / 2, size - 1} {
				dir := t.TempDir()
				copyDir(t, tmpl, dir)
				path := filepath.Join(dir, filepath.Base(loneFile))
				truncateFile(t, path, cut)
				t.Logf("cut the lone record at %d of %d bytes", cut, size)
				checkRecovered(t, dir, opts, model, path, 0, true, rng)
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestZeroFilledTailIsTruncated: zero bytes after the last record (space a
// file system allocated but never wrote, also longer than the scan buffer)
// are a torn tail.
func TestZeroFilledTailIsTruncated(t *testing.T) {
	rng := newRand(t)
	opts := Options{SegmentBytes: 512}
	tmpl := t.TempDir()
	model, l := buildArchive(t, tmpl, opts, &gen{rng: rng, maxData: 60}, 2, 2)
	lastFile := filepath.Base(l.files[len(l.files)-1])
	lastSeg := l.recs[len(l.recs)-1]
	last := lastSeg[len(lastSeg)-1]
	for _, tc := range []struct {
		name string
		at   int64 // zeros are written from here
		n    int64
		want []Record
	}{
		{"one zero byte", last.end, 1, model},
		{"less than a header", last.end, frameHeaderSize - 1, model},
		{"a header of zeros", last.end, frameHeaderSize, model},
		{"longer than the scan buffer", last.end, 200 << 10, model},
		{"the last record zeroed", last.start, last.end - last.start, model[:len(model)-1]},
		{"the last record zeroed and more", last.start, 5000, model[:len(model)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, tmpl, dir)
			path := filepath.Join(dir, lastFile)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(make([]byte, tc.n), tc.at); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			checkRecovered(t, dir, opts, tc.want, path, tc.at, false, rng)
		})
	}
}

// TestEveryFlippedByteIsCorruption flips every byte of every segment, one
// at a time: Open must fail with *CorruptError naming the file, the start
// of the damaged record and the seq before it, and must leave the
// directory as it was. This covers the header, data and checksum of middle
// records and of the last complete record, which is never mistaken for a
// torn tail.
func TestEveryFlippedByteIsCorruption(t *testing.T) {
	rng := newRand(t)
	opts := Options{SegmentBytes: 384}
	dir := t.TempDir()
	model, l := buildArchive(t, dir, opts, &gen{rng: rng, maxData: 24}, 3, 3)
	t.Logf("%d records in %d segments", len(model), len(l.files))
	before := snapshotDir(t, dir)
	prevSeq := uint64(0)
	flips := 0
	for fi, path := range l.files {
		orig := before[filepath.Base(path)]
		for _, fr := range l.recs[fi] {
			for off := fr.start; off < fr.end; off++ {
				mask := byte(1 + rng.IntN(255))
				damaged := slices.Clone(orig)
				damaged[off] ^= mask
				if err := os.WriteFile(path, damaged, 0o640); err != nil {
					t.Fatal(err)
				}
				a, err := Open(dir, Options{SegmentBytes: opts.SegmentBytes, Logger: openLogger(t)})
				if err == nil {
					_ = a.Close()
					t.Fatalf("%s byte %d ^= %#02x (record %s at %d): Open succeeded", path, off, mask, describe(fr.rec), fr.start)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("%s byte %d ^= %#02x: err = %v, want *CorruptError", path, off, mask, err)
				}
				if ce.Path != path || ce.Offset != fr.start || ce.AfterSeq != prevSeq {
					t.Fatalf("%s byte %d ^= %#02x in record %s at %d: got %+v; want Path %s, Offset %d, AfterSeq %d",
						path, off, mask, describe(fr.rec), fr.start, *ce, path, fr.start, prevSeq)
				}
				if !strings.Contains(ce.Reason, "checksum mismatch") {
					t.Fatalf("byte %d: reason %q does not name the checksum", off, ce.Reason)
				}
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not name the file", err)
				}
				after := snapshotDir(t, dir)
				if !bytes.Equal(after[filepath.Base(path)], damaged) {
					t.Fatalf("byte %d: Open of a corrupt archive changed %s", off, path)
				}
				after[filepath.Base(path)] = orig // the damage is ours
				requireSameDir(t, "Open of a corrupt archive", after, before)
				flips++
			}
			prevSeq = fr.rec.Seq
		}
		if err := os.WriteFile(path, orig, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d single-byte flips, all reported", flips)
	a := openT(t, dir, opts) // restored
	defer closeT(t, a)
	checkArchive(t, a, model, rng)
}

// openLogger logs through t.Log.
func openLogger(t testing.TB) *slog.Logger {
	l, _ := newTestLogger(t)
	return l
}

// crcOf is the big-endian CRC-32C of b, as frames store it.
func crcOf(b []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli))
}

// TestCorruptionIsNotATornTail covers damage that a crash cannot cause:
// each must be *CorruptError naming the file, with nothing changed on disk
// (including a torn tail that a later segment also has).
func TestCorruptionIsNotATornTail(t *testing.T) {
	rng := newRand(t)
	opts := Options{SegmentBytes: 384}
	tmpl := t.TempDir()
	_, l := buildArchive(t, tmpl, opts, &gen{rng: rng, maxData: 24}, 3, 3)
	name := func(i int) string { return filepath.Base(l.files[i]) }
	mid := l.recs[1][1] // a middle record of the middle segment
	lastSeg := l.recs[len(l.recs)-1]
	last := lastSeg[len(lastSeg)-1]
	nlast := len(l.files) - 1

	// rewrite re-encodes record fr of file i as r (valid checksums).
	rewrite := func(t *testing.T, dir string, i int, fr frame, r Record) {
		path := filepath.Join(dir, name(i))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		enc := appendFrame(nil, r)
		if int64(len(enc)) != fr.end-fr.start {
			t.Fatalf("re-encoded record is %d bytes, was %d", len(enc), fr.end-fr.start)
		}
		copy(b[fr.start:], enc)
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		file     int   // segment the error must name
		offset   int64 // offset the error must name
		afterSeq uint64
		reason   string
		damage   func(t *testing.T, dir string)
	}{
		{"partial record in a middle segment", 1, l.recs[1][len(l.recs[1])-1].start, l.recs[1][len(l.recs[1])-2].rec.Seq, "not the last one",
			func(t *testing.T, dir string) {
				fr := l.recs[1][len(l.recs[1])-1]
				truncateFile(t, filepath.Join(dir, name(1)), fr.end-3)
			}},
		{"empty middle segment", 1, 0, l.recs[0][len(l.recs[0])-1].rec.Seq, "empty",
			func(t *testing.T, dir string) { truncateFile(t, filepath.Join(dir, name(1)), 0) }},
		{"zeros after a middle segment", 1, l.recs[1][len(l.recs[1])-1].end, l.recs[1][len(l.recs[1])-1].rec.Seq, "header checksum mismatch",
			func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, name(1)), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.Write(make([]byte, frameHeaderSize)); err != nil {
					t.Fatal(err)
				}
			}},
		{"noop that moves the seq", 1, mid.start, l.recs[1][0].rec.Seq, "impossible ordering",
			func(t *testing.T, dir string) {
				r := mid.rec
				r.Kind, r.Seq = KindNoop, r.Seq+7
				rewrite(t, dir, 1, mid, r)
			}},
		{"index that goes backwards", 1, mid.start, l.recs[1][0].rec.Seq, "impossible ordering",
			func(t *testing.T, dir string) {
				r := mid.rec
				r.Index = l.recs[1][0].rec.Index
				rewrite(t, dir, 1, mid, r)
			}},
		{"unknown kind with a valid checksum", 1, mid.start, l.recs[1][0].rec.Seq, "kind 9",
			func(t *testing.T, dir string) {
				b := appendFrame(nil, mid.rec)
				b[1] = 9
				b = append(b[:22], crcOf(b[:22])...)
				b = append(b, mid.rec.Data...)
				b = append(b, crcOf(b)...)
				path := filepath.Join(dir, name(1))
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt(b, mid.start); err != nil {
					t.Fatal(err)
				}
			}},
		{"segment renamed", 1, 0, l.recs[0][len(l.recs[0])-1].rec.Seq, "named for first index",
			func(t *testing.T, dir string) {
				first := l.recs[1][0].rec.Index
				if err := os.Rename(filepath.Join(dir, name(1)), filepath.Join(dir, segmentFileName(first-1))); err != nil {
					t.Fatal(err)
				}
			}},
		{"header damaged then zeros at the tail", nlast, last.start, lastSeg[len(lastSeg)-2].rec.Seq, "header checksum mismatch",
			func(t *testing.T, dir string) {
				path := filepath.Join(dir, name(nlast))
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				clear(b[last.start+1:])
				if err := os.WriteFile(path, b, 0o640); err != nil {
					t.Fatal(err)
				}
			}},
		{"middle damage and a torn tail", 1, mid.start, l.recs[1][0].rec.Seq, "checksum mismatch",
			func(t *testing.T, dir string) {
				path := filepath.Join(dir, name(1))
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				b[mid.end-1] ^= 0x40
				if err := os.WriteFile(path, b, 0o640); err != nil {
					t.Fatal(err)
				}
				truncateFile(t, filepath.Join(dir, name(nlast)), last.end-5)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, tmpl, dir)
			tc.damage(t, dir)
			before := snapshotDir(t, dir)
			wantPath := filepath.Join(dir, name(tc.file))
			if tc.name == "segment renamed" {
				wantPath = filepath.Join(dir, segmentFileName(l.recs[1][0].rec.Index-1))
			}
			_, err := Open(dir, Options{SegmentBytes: opts.SegmentBytes, Logger: openLogger(t)})
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open: err = %v, want *CorruptError", err)
			}
			if ce.Path != wantPath || ce.Offset != tc.offset || ce.AfterSeq != tc.afterSeq || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("got %+v; want Path %s, Offset %d, AfterSeq %d, a reason containing %q", *ce, wantPath, tc.offset, tc.afterSeq, tc.reason)
			}
			requireSameDir(t, "Open of a corrupt archive", snapshotDir(t, dir), before)
		})
	}
}

// TestReadsDetectDamageAfterOpen: a record changed on disk after Open is
// reported by ReadIndex, ReadSeq and Iterate as *CorruptError with the seq
// before it; records before it still read.
func TestReadsDetectDamageAfterOpen(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	opts := Options{SegmentBytes: 384}
	model, l := buildArchive(t, dir, opts, &gen{rng: rng, maxData: 24}, 3, 3)
	a := openT(t, dir, opts)
	defer closeT(t, a)
	var victim frame
	var prevSeq uint64
	for _, fr := range l.recs[1] {
		if fr.rec.Kind == KindEvent && fr.start > 0 {
			victim = fr
			break
		}
	}
	if victim.end == 0 {
		t.Skip("middle segment has no event after its first record")
	}
	for i, r := range model {
		if r.Index == victim.rec.Index {
			prevSeq = model[i-1].Seq
		}
	}
	f, err := os.OpenFile(l.files[1], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], victim.end-5); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b[:], victim.end-5); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	check := func(what string, err error) {
		t.Helper()
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Path != l.files[1] || ce.Offset != victim.start || ce.AfterSeq != prevSeq {
			t.Fatalf("%s: err = %v; want *CorruptError at %s offset %d after seq %d", what, err, l.files[1], victim.start, prevSeq)
		}
	}
	_, err = a.ReadIndex(victim.rec.Index)
	check("ReadIndex", err)
	_, err = a.ReadSeq(victim.rec.Seq)
	check("ReadSeq", err)
	var seen []Record
	err = a.Iterate(0, func(r Record) error { seen = append(seen, r); return nil })
	check("Iterate", err)
	for i, r := range seen {
		if !sameRecord(r, model[i]) || r.Index >= victim.rec.Index {
			t.Fatalf("Iterate returned %s before the damage, want %s", describe(r), describe(model[i]))
		}
	}
	if got, err := a.ReadIndex(model[0].Index); err != nil || !sameRecord(got, model[0]) {
		t.Fatalf("ReadIndex of an intact record: %s, %v", describe(got), err)
	}
}
