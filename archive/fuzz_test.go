package archive

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExportReader feeds arbitrary bytes to the export reader. It must not
// panic, must end within a bounded number of Next calls, must keep its
// errors sticky, and must never report io.EOF for a stream that is not
// exactly what the writer produces for the header and records it read.
func FuzzExportReader(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	h, recs := exportFixture(rng)
	good := exportBytes(f, h, recs)
	f.Add(good)
	f.Add(exportBytes(f, ExportHeader{}, nil))
	f.Add(exportBytes(f, ExportHeader{FromSeq: 1, Meta: []byte("m")}, (&gen{rng: rng, maxData: 8}).batch(3)))
	f.Add(good[:len(good)/2])
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Add([]byte(ExportMagic))
	f.Add([]byte("not an export"))
	f.Fuzz(func(t *testing.T, in []byte) {
		er, hdr, err := NewExportReader(bytes.NewReader(in))
		if err != nil {
			if er != nil {
				t.Fatalf("NewExportReader returned a reader and %v", err)
			}
			return
		}
		var got []Record
		var end error
		for range len(in)/frameOverhead + 2 {
			r, err := er.Next()
			if err != nil {
				end = err
				break
			}
			got = append(got, r)
		}
		if end == nil {
			t.Fatalf("%d bytes yielded more than %d records", len(in), len(in)/frameOverhead+1)
		}
		if _, err := er.Next(); err != end {
			t.Fatalf("Next after %v returned %v", end, err)
		}
		if end != io.EOF {
			return
		}
		// Accepted: the writer must accept the same header and records and
		// produce the same bytes (the encoding is unique).
		var buf bytes.Buffer
		w, err := NewExportWriter(&buf, hdr)
		if err != nil {
			t.Fatalf("writer refused an accepted header: %v", err)
		}
		for _, r := range got {
			if err := w.Write(r); err != nil {
				t.Fatalf("writer refused an accepted record %s: %v", describe(r), err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), in) {
			t.Fatalf("accepted %d bytes that re-encode to %d different bytes", len(in), buf.Len())
		}
	})
}

// fuzzSegmentIndex is the index a fuzzed segment file is named for.
const fuzzSegmentIndex = 5

// FuzzOpenSegment writes arbitrary bytes as the only segment of an archive
// and opens it. Open must not panic. When it fails, the error is a
// *CorruptError and the file is untouched. When it succeeds, the file is
// now exactly the frames of the records the archive reads back (a torn tail
// cut off, or the file removed if nothing was left), the records obey the
// ordering rules, every read path agrees, appends continue, and a reopen
// finds the same archive.
func FuzzOpenSegment(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	first := Record{Index: fuzzSegmentIndex, Seq: 3, Kind: KindEvent, Data: []byte("first")}
	g := &gen{rng: rng, maxData: 30, pos: position{}.advance(first)}
	seg := appendFrame(nil, first)
	for _, r := range g.batch(6) {
		seg = appendFrame(seg, r)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-7])
	f.Add(seg[:frameHeaderSize+3])
	f.Add(append(append([]byte(nil), seg...), make([]byte, 40)...))
	f.Add(appendFrame(nil, Record{Index: fuzzSegmentIndex, Seq: 0, Kind: KindNoop}))
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte{frameMagic, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, segmentFileName(fuzzSegmentIndex))
		if err := os.WriteFile(path, in, 0o640); err != nil {
			t.Fatal(err)
		}
		opts := Options{NoSync: true, SegmentBytes: MinSegmentBytes, Logger: slog.New(slog.DiscardHandler)}
		a, err := Open(dir, opts)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("Open = %v, want *CorruptError naming %s", err, path)
			}
			if ce.Offset < 0 || ce.Offset >= int64(len(in)) {
				t.Fatalf("CorruptError offset %d outside the %d-byte file", ce.Offset, len(in))
			}
			if b, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(b, in) {
				t.Fatalf("a failed Open changed the segment (%v)", rerr)
			}
			return
		}
		var recs []Record
		var enc []byte
		var pos position
		if err := a.IterateIndex(0, func(r Record) error {
			if reason := pos.check(r); reason != "" {
				t.Fatalf("record %s breaks the ordering rules: %s", describe(r), reason)
			}
			pos = pos.advance(r)
			recs = append(recs, r)
			enc = appendFrame(enc, r)
			return nil
		}); err != nil {
			t.Fatalf("Iterate after a successful Open: %v", err)
		}
		if !bytes.HasPrefix(in, enc) {
			t.Fatalf("records read back are not a prefix of the file")
		}
		b, rerr := os.ReadFile(path)
		switch {
		case len(recs) == 0 && !errors.Is(rerr, os.ErrNotExist):
			t.Fatalf("no records, but the segment remains (%v, %d bytes)", rerr, len(b))
		case len(recs) > 0 && (rerr != nil || !bytes.Equal(b, enc)):
			t.Fatalf("segment is %d bytes after Open (%v); its %d records take %d", len(b), rerr, len(recs), len(enc))
		}
		if len(recs) > 0 && recs[0].Index != fuzzSegmentIndex {
			t.Fatalf("first record has index %d, the segment is named for %d", recs[0].Index, fuzzSegmentIndex)
		}
		checkArchive(t, a, recs, rng)
		more := (&gen{rng: rng, maxData: 20, pos: pos}).batch(2)
		if pos.index > ^uint64(0)-10 || pos.seq > ^uint64(0)-10 {
			more = nil // no room after this archive
		}
		if err := a.Append(more); err != nil {
			t.Fatalf("Append after Open: %v", err)
		}
		recs = append(recs, more...)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		a, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer a.Close()
		checkArchive(t, a, recs, rng)
	})
}
