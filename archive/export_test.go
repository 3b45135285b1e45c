package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// exportBytes encodes an export of recs under h.
func exportBytes(t testing.TB, h ExportHeader, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewExportWriter(&buf, h)
	if err != nil {
		t.Fatalf("NewExportWriter: %v", err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatalf("Write(%s): %v", describe(r), err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// readExport reads an export to its end, returning the header, the records
// read and the error that ended the stream (io.EOF after a good trailer).
// The loop is bounded: every record takes at least frameOverhead bytes.
func readExport(t testing.TB, r io.Reader, size int) (ExportHeader, []Record, error) {
	t.Helper()
	er, h, err := NewExportReader(r)
	if err != nil {
		if er != nil {
			t.Fatalf("NewExportReader returned a reader with the error %v", err)
		}
		return h, nil, err
	}
	var recs []Record
	for range size/frameOverhead + 2 {
		rec, err := er.Next()
		if err != nil {
			if again, err2 := er.Next(); err2 != err || again.Data != nil || again.Index != 0 {
				t.Fatalf("Next after %v returned %s, %v: errors must be sticky", err, describe(again), err2)
			}
			return h, recs, err
		}
		recs = append(recs, rec)
	}
	t.Fatalf("export of %d bytes yielded more than %d records", size, size/frameOverhead+1)
	return h, nil, nil
}

// exportLayout is where each part of an export lies.
type exportLayout struct {
	headerEnd    int64
	metaLenAt    int64 // offset of the meta length field
	records      []frame
	trailerStart int64
}

func layoutExport(h ExportHeader, recs []Record) exportLayout {
	l := exportLayout{metaLenAt: int64(len(ExportMagic) + 2 + 8)}
	l.headerEnd = int64(exportFixedHeader + len(h.Meta) + 4)
	off := l.headerEnd
	for _, r := range recs {
		end := off + frameSize(len(r.Data))
		l.records = append(l.records, frame{rec: r, start: off, end: end})
		off = end
	}
	l.trailerStart = off
	return l
}

// exportFixture is a small export with events and noops, starting at
// FromSeq 7 with a noop.
func exportFixture(rng *rand.Rand) (ExportHeader, []Record) {
	h := ExportHeader{FromSeq: 7, Meta: []byte("cluster=test node=n1")}
	g := &gen{rng: rng, maxData: 40, pos: position{index: 100, seq: 7}}
	first := Record{Index: 101, Seq: 7, Kind: KindNoop, Data: []byte("first")}
	g.pos = g.pos.advance(first)
	return h, append([]Record{first}, g.batch(12)...)
}

func TestExportRoundTrip(t *testing.T) {
	rng := newRand(t)
	g := &gen{rng: rng, maxData: 300}
	many := g.batch(500)
	big := []Record{{Index: 1, Seq: 1, Kind: KindEvent, Data: bytes.Repeat([]byte{0xAB}, 3<<20)}}
	fixH, fix := exportFixture(rng)
	for _, tc := range []struct {
		name string
		h    ExportHeader
		recs []Record
	}{
		{"empty", ExportHeader{}, nil},
		{"no records, from seq 9", ExportHeader{FromSeq: 9, Meta: []byte("m")}, nil},
		{"many records", ExportHeader{Version: ExportVersion, FromSeq: 1, Meta: []byte(`{"chain":"x"}`)}, many},
		{"starts mid-ledger with a noop", fixH, fix},
		{"record larger than the reader's buffers", ExportHeader{FromSeq: 1}, big},
		{"largest meta", ExportHeader{Meta: bytes.Repeat([]byte("m"), MaxExportMetaBytes)}, many[:3]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := exportBytes(t, tc.h, tc.recs)
			readers := map[string]io.Reader{
				"whole":    bytes.NewReader(b),
				"one byte": iotest.OneByteReader(bytes.NewReader(b)),
				"half":     iotest.HalfReader(bytes.NewReader(b)),
				"data+EOF": iotest.DataErrReader(bytes.NewReader(b)),
			}
			for name, r := range readers {
				h, got, err := readExport(t, r, len(b))
				if err != io.EOF {
					t.Fatalf("%s: stream ended with %v, want io.EOF", name, err)
				}
				if h.Version != ExportVersion || h.FromSeq != tc.h.FromSeq || !bytes.Equal(h.Meta, tc.h.Meta) {
					t.Fatalf("%s: header {%d %d %d bytes}, want {%d %d %d bytes}", name, h.Version, h.FromSeq, len(h.Meta), ExportVersion, tc.h.FromSeq, len(tc.h.Meta))
				}
				requireRecords(t, name, got, tc.recs)
			}
			// The encoding is exactly the documented layout.
			l := layoutExport(tc.h, tc.recs)
			if int64(len(b)) != l.trailerStart+exportTrailerSize {
				t.Fatalf("export is %d bytes, the layout says %d", len(b), l.trailerStart+exportTrailerSize)
			}
			for _, fr := range l.records {
				if !bytes.Equal(b[fr.start:fr.end], appendFrame(nil, fr.rec)) {
					t.Fatalf("record %s is not encoded as a segment frame", describe(fr.rec))
				}
			}
		})
	}
}

// TestExportOfArchive exports a whole archive through Iterate and reads it
// back.
func TestExportOfArchive(t *testing.T) {
	rng := newRand(t)
	a := openT(t, t.TempDir(), Options{SegmentBytes: 1024})
	defer closeT(t, a)
	g := &gen{rng: rng, maxData: 100}
	var model []Record
	for range 20 {
		b := g.batch(1 + rng.IntN(6))
		if err := a.Append(b); err != nil {
			t.Fatal(err)
		}
		model = append(model, b...)
	}
	from := model[len(model)/2].Seq
	var buf bytes.Buffer
	w, err := NewExportWriter(&buf, ExportHeader{FromSeq: from})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Iterate(from, w.Write); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, err := readExport(t, &buf, buf.Len())
	if err != io.EOF {
		t.Fatalf("export ended with %v", err)
	}
	var want []Record
	for _, r := range model {
		if r.Seq >= from {
			want = append(want, r)
		}
	}
	requireRecords(t, "export from the archive", got, want)
}

// TestExportEveryFlippedByte flips every byte of an export, one at a time.
// In the magic: ErrNotExport. Elsewhere in the header: *CorruptError after
// seq 0 (or, for the meta length, possibly a truncation error: the length
// can point past the end of the stream). In a record: every earlier record
// is returned intact, then *CorruptError at the record's offset, after the
// seq of the record before it (FromSeq-1 for the first). In the trailer:
// every record, then *CorruptError after the last seq. Never io.EOF.
func TestExportEveryFlippedByte(t *testing.T) {
	rng := newRand(t)
	h, recs := exportFixture(rng)
	b := exportBytes(t, h, recs)
	l := layoutExport(h, recs)
	for off := range int64(len(b)) {
		mask := byte(1 + rng.IntN(255))
		damaged := slices.Clone(b)
		damaged[off] ^= mask
		_, got, err := readExport(t, bytes.NewReader(damaged), len(damaged))
		var ce *CorruptError
		isCorrupt := errors.As(err, &ce)
		where := func() string { return fmt.Sprintf("byte %d ^= %#02x", off, mask) }
		if err == nil || err == io.EOF {
			t.Fatalf("%s: stream ended with %v", where(), err)
		}
		switch {
		case off < int64(len(ExportMagic)):
			if !errors.Is(err, ErrNotExport) {
				t.Fatalf("%s (magic): err = %v, want ErrNotExport", where(), err)
			}
		case off < l.headerEnd:
			metaLen := off >= l.metaLenAt && off < l.metaLenAt+4
			if metaLen && errors.Is(err, io.ErrUnexpectedEOF) {
				continue
			}
			if !isCorrupt || ce.AfterSeq != 0 || ce.Path != "" {
				t.Fatalf("%s (header): err = %v, want *CorruptError after seq 0", where(), err)
			}
		case off < l.trailerStart:
			k := slices.IndexFunc(l.records, func(fr frame) bool { return off >= fr.start && off < fr.end })
			wantAfter := h.FromSeq - 1
			if k > 0 {
				wantAfter = recs[k-1].Seq
			}
			if !isCorrupt || ce.Offset != l.records[k].start || ce.AfterSeq != wantAfter {
				t.Fatalf("%s (record %d at %d): err = %v, want *CorruptError at offset %d after seq %d",
					where(), k, l.records[k].start, err, l.records[k].start, wantAfter)
			}
			requireRecords(t, where(), got, recs[:k])
		default:
			if !isCorrupt || ce.Offset != l.trailerStart || ce.AfterSeq != recs[len(recs)-1].Seq {
				t.Fatalf("%s (trailer): err = %v, want *CorruptError at offset %d after seq %d",
					where(), err, l.trailerStart, recs[len(recs)-1].Seq)
			}
			requireRecords(t, where(), got, recs)
		}
	}
}

// TestExportTruncated cuts the export at every length short of its end:
// every cut is an error wrapping io.ErrUnexpectedEOF — never io.EOF, never
// a corruption — and the records before the cut are returned intact.
func TestExportTruncated(t *testing.T) {
	rng := newRand(t)
	h, recs := exportFixture(rng)
	b := exportBytes(t, h, recs)
	l := layoutExport(h, recs)
	for n := range len(b) {
		_, got, err := readExport(t, bytes.NewReader(b[:n]), n)
		if err == io.EOF || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d of %d: err = %v, want an error wrapping io.ErrUnexpectedEOF", n, len(b), err)
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			t.Fatalf("cut at %d: a truncation reported as corruption: %v", n, err)
		}
		complete := 0
		for _, fr := range l.records {
			if fr.end <= int64(n) {
				complete++
			}
		}
		requireRecords(t, fmt.Sprintf("records before the cut at %d", n), got, recs[:complete])
	}
}

// TestExportDamagedStream covers damage that leaves each frame intact: the
// stream checksum and the ordering checks catch it.
func TestExportDamagedStream(t *testing.T) {
	rng := newRand(t)
	h, recs := exportFixture(rng)
	b := exportBytes(t, h, recs)
	l := layoutExport(h, recs)
	frameBytes := func(k int) []byte { return b[l.records[k].start:l.records[k].end] }
	splice := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	head, tail := b[:l.headerEnd], b[l.trailerStart:]
	var middle [][]byte
	for k := range recs {
		middle = append(middle, frameBytes(k))
	}
	without := func(k int) []byte {
		return splice(head, slices.Concat(slices.Delete(slices.Clone(middle), k, k+1)...), tail)
	}
	swapped := slices.Clone(middle)
	swapped[3], swapped[4] = swapped[4], swapped[3]
	for _, tc := range []struct {
		name     string
		b        []byte
		afterSeq uint64
	}{
		{"last record dropped", without(len(recs) - 1), recs[len(recs)-2].Seq},
		{"middle record dropped", without(5), recs[4].Seq},
		{"record duplicated", splice(head, slices.Concat(middle[:6]...), frameBytes(5), slices.Concat(middle[6:]...), tail), recs[5].Seq},
		{"records swapped", splice(head, slices.Concat(swapped...), tail), recs[2].Seq},
		{"bytes after the trailer", append(slices.Clone(b), 0), recs[len(recs)-1].Seq},
		{"a second trailer", append(slices.Clone(b), tail...), recs[len(recs)-1].Seq},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readExport(t, bytes.NewReader(tc.b), len(tc.b))
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *CorruptError", err)
			}
			// A dropped or swapped frame may pass the ordering checks (index
			// gaps are allowed); the stream checksum then catches it at the
			// trailer, after the last record read.
			if ce.AfterSeq < tc.afterSeq {
				t.Fatalf("AfterSeq %d, want at least %d (the last record before the damage): %v", ce.AfterSeq, tc.afterSeq, err)
			}
		})
	}
}

func TestExportBadInput(t *testing.T) {
	rng := newRand(t)
	// Garbage: anything that does not start like the magic.
	for i := range 200 {
		g := make([]byte, 1+rng.IntN(200))
		for j := range g {
			g[j] = byte(rng.IntN(256))
		}
		if g[0] == ExportMagic[0] {
			g[0]++
		}
		if _, _, err := NewExportReader(bytes.NewReader(g)); !errors.Is(err, ErrNotExport) {
			t.Fatalf("garbage %d (%x...): err = %v, want ErrNotExport", i, g[:min(8, len(g))], err)
		}
	}
	for _, in := range []string{"{}", "DOMINUS-LEDGER-EXPORX", "dominus-ledger-export", strings.Repeat("\x00", 64)} {
		if _, _, err := NewExportReader(strings.NewReader(in)); !errors.Is(err, ErrNotExport) {
			t.Fatalf("input %q: err = %v, want ErrNotExport", in, err)
		}
	}
	// Empty input and a prefix of the magic are truncated exports.
	for _, in := range []string{"", "D", ExportMagic[:10], ExportMagic} {
		_, _, err := NewExportReader(strings.NewReader(in))
		if err == nil || err == io.EOF || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("input %q: err = %v, want an error wrapping io.ErrUnexpectedEOF", in, err)
		}
	}
	// The magic followed by garbage.
	for i := range 200 {
		g := []byte(ExportMagic)
		for range rng.IntN(100) {
			g = append(g, byte(rng.IntN(256)))
		}
		_, _, err := readExport(t, bytes.NewReader(g), len(g))
		var ce *CorruptError
		if err == nil || err == io.EOF || !(errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("magic + garbage %d: err = %v, want *CorruptError or a truncation", i, err)
		}
	}
	// An intact header of another version.
	hdr := []byte(ExportMagic)
	hdr = binary.BigEndian.AppendUint16(hdr, ExportVersion+1)
	hdr = binary.BigEndian.AppendUint64(hdr, 1)
	hdr = binary.BigEndian.AppendUint32(hdr, 0)
	hdr = binary.BigEndian.AppendUint32(hdr, crc32.Checksum(hdr, castagnoli))
	_, _, err := NewExportReader(bytes.NewReader(hdr))
	var ce *CorruptError
	if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("version %d header: err = %v, want an unsupported-version error", ExportVersion+1, err)
	}
	// A read error is returned wrapped, not mistaken for the end.
	boom := errors.New("disk on fire")
	b := exportBytes(t, ExportHeader{}, (&gen{rng: rng, maxData: 10}).batch(5))
	_, _, err = readExport(t, io.MultiReader(bytes.NewReader(b[:len(b)-3]), iotest.ErrReader(boom)), len(b))
	if !errors.Is(err, boom) {
		t.Fatalf("read error: err = %v, want it wrapped", err)
	}
}

func TestExportWriterRules(t *testing.T) {
	if _, err := NewExportWriter(io.Discard, ExportHeader{Version: ExportVersion + 1}); err == nil {
		t.Fatal("NewExportWriter accepted another version")
	}
	if _, err := NewExportWriter(io.Discard, ExportHeader{Meta: make([]byte, MaxExportMetaBytes+1)}); err == nil {
		t.Fatal("NewExportWriter accepted oversize meta")
	}
	var buf bytes.Buffer
	w, err := NewExportWriter(&buf, ExportHeader{FromSeq: 5})
	if err != nil {
		t.Fatal(err)
	}
	good := []Record{{Index: 10, Seq: 5, Kind: KindEvent, Data: []byte("a")}, {Index: 11, Seq: 5, Kind: KindNoop}}
	if err := w.Write(Record{Index: 9, Seq: 4, Kind: KindEvent}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("record below FromSeq: err = %v, want ErrInvalidRecord", err)
	}
	for _, r := range good {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []Record{
		{Index: 11, Seq: 6, Kind: KindEvent},
		{Index: 12, Seq: 7, Kind: KindEvent},
		{Index: 12, Seq: 6, Kind: KindNoop},
		{Index: 12, Seq: 6, Kind: 0},
	} {
		if err := w.Write(bad); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("Write(%s) = %v, want ErrInvalidRecord", describe(bad), err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Record{Index: 20, Seq: 6, Kind: KindEvent}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	// Refused records left no trace.
	_, got, err := readExport(t, &buf, buf.Len())
	if err != io.EOF {
		t.Fatalf("export after refused writes ended with %v", err)
	}
	requireRecords(t, "after refused writes", got, good)

	// A failing destination is reported, and stays reported.
	boom := errors.New("pipe closed")
	fw, err := NewExportWriter(errWriter{boom}, ExportHeader{})
	if err != nil {
		t.Fatal(err) // buffered: nothing written yet
	}
	if err := fw.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close to a failing writer = %v, want it wrapped", err)
	}
	if err := fw.Write(Record{Index: 1, Seq: 1, Kind: KindEvent}); !errors.Is(err, boom) {
		t.Fatalf("Write after a failure = %v, want the sticky error", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }
