package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Export stream layout (version 1), all integers big-endian:
//
//	header   "DOMINUS-LEDGER-EXPORT" (21 bytes) | version u16 | FromSeq u64 |
//	         meta length u32 | meta | CRC-32C over the header's bytes before it
//	records  one record frame each, exactly as in a segment (see frame.go);
//	         the frame's version byte 0xD1 doubles as its tag
//	trailer  tag 0xE5 | record count u64 | last Index u64 | last Seq u64 |
//	         CRC-32C over every byte of the stream before this field
//
// The stream checksum covers the order and number of frames, so a dropped,
// duplicated or reordered frame is detected even when each frame is intact.
// Given a header and records the encoding is unique.
const (
	// ExportMagic opens every export.
	ExportMagic = "DOMINUS-LEDGER-EXPORT"
	// ExportVersion is the version this package writes and reads.
	ExportVersion uint16 = 1
	// MaxExportMetaBytes bounds ExportHeader.Meta.
	MaxExportMetaBytes = 1 << 20

	exportTrailerTag  byte = 0xE5
	exportFixedHeader      = len(ExportMagic) + 2 + 8 + 4
	exportTrailerSize      = 1 + 8 + 8 + 8 + 4
	exportReadStep         = 1 << 20 // allocation step for lengths read from the stream
)

// ExportHeader opens an export.
type ExportHeader struct {
	// Version is the format version. NewExportWriter accepts 0 (meaning
	// ExportVersion) or ExportVersion; NewExportReader returns the version
	// read.
	Version uint16
	// FromSeq is the seq the export was asked to start at: every record has
	// Seq >= FromSeq.
	FromSeq uint64
	// Meta is opaque to this package (the kernel describes the chain and
	// the cluster in it); at most MaxExportMetaBytes.
	Meta []byte
}

// ExportWriter writes an export stream. It is not safe for concurrent use.
type ExportWriter struct {
	w       *bufio.Writer
	crc     uint32
	fromSeq uint64
	pos     position
	count   uint64
	buf     []byte
	err     error // sticky: the first write error, or ErrClosed after Close
}

// NewExportWriter writes header to w and returns a writer for the records.
// Output is buffered: nothing is guaranteed to reach w before Close, which
// does not close w.
func NewExportWriter(w io.Writer, header ExportHeader) (*ExportWriter, error) {
	if header.Version != 0 && header.Version != ExportVersion {
		return nil, fmt.Errorf("archive: export: header version %d: this package writes version %d", header.Version, ExportVersion)
	}
	if len(header.Meta) > MaxExportMetaBytes {
		return nil, fmt.Errorf("archive: export: header meta of %d bytes exceeds MaxExportMetaBytes %d", len(header.Meta), MaxExportMetaBytes)
	}
	e := &ExportWriter{w: bufio.NewWriterSize(w, 64<<10), fromSeq: header.FromSeq}
	b := make([]byte, 0, exportFixedHeader+len(header.Meta)+4)
	b = append(b, ExportMagic...)
	b = binary.BigEndian.AppendUint16(b, ExportVersion)
	b = binary.BigEndian.AppendUint64(b, header.FromSeq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(header.Meta)))
	b = append(b, header.Meta...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := e.write(b); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *ExportWriter) write(b []byte) error {
	if e.err != nil {
		return e.err
	}
	if _, err := e.w.Write(b); err != nil {
		e.err = fmt.Errorf("archive: export: write: %w", err)
		return e.err
	}
	e.crc = crc32.Update(e.crc, castagnoli, b)
	return nil
}

// Write appends r. Records must follow the archive's ordering rules (see
// Record) and have Seq >= the header's FromSeq; a record that does not is
// refused with an error wrapping ErrInvalidRecord and nothing is written.
func (e *ExportWriter) Write(r Record) error {
	if e.err != nil {
		return e.err
	}
	reason := e.pos.check(r)
	switch {
	case reason != "":
	case r.Seq < e.fromSeq:
		reason = fmt.Sprintf("seq %d is below the export's FromSeq %d", r.Seq, e.fromSeq)
	case len(r.Data) > MaxRecordBytesLimit:
		reason = fmt.Sprintf("data of %d bytes exceeds MaxRecordBytesLimit %d", len(r.Data), MaxRecordBytesLimit)
	}
	if reason != "" {
		return fmt.Errorf("%w: export record %d (index %d, seq %d, %s): %s", ErrInvalidRecord, e.count, r.Index, r.Seq, r.Kind, reason)
	}
	e.buf = appendFrame(e.buf[:0], r)
	if err := e.write(e.buf); err != nil {
		return err
	}
	if cap(e.buf) > keepBufferMax {
		e.buf = nil
	}
	e.pos = e.pos.advance(r)
	e.count++
	return nil
}

// Close writes the trailer (record count, last Index and Seq, stream
// checksum) and flushes. It does not close the underlying writer. Later
// calls to Write or Close return ErrClosed.
func (e *ExportWriter) Close() error {
	if e.err != nil {
		return e.err
	}
	b := make([]byte, 0, exportTrailerSize)
	b = append(b, exportTrailerTag)
	b = binary.BigEndian.AppendUint64(b, e.count)
	b = binary.BigEndian.AppendUint64(b, e.pos.index)
	b = binary.BigEndian.AppendUint64(b, e.pos.seq)
	b = binary.BigEndian.AppendUint32(b, crc32.Update(e.crc, castagnoli, b))
	if err := e.write(b); err != nil {
		return err
	}
	if err := e.w.Flush(); err != nil {
		e.err = fmt.Errorf("archive: export: flush: %w", err)
		return e.err
	}
	e.err = ErrClosed
	return nil
}

// ExportReader reads an export stream, checking every checksum and the
// ordering rules. It is not safe for concurrent use.
type ExportReader struct {
	r       *bufio.Reader
	crc     uint32 // over every byte consumed
	off     int64  // bytes consumed
	fromSeq uint64
	pos     position
	count   uint64
	err     error // sticky: io.EOF after the trailer, or the first error
}

// NewExportReader reads and checks the header of the export in r. An input
// that does not begin with ExportMagic returns an error wrapping
// ErrNotExport; a header whose checksum fails returns *CorruptError.
func NewExportReader(r io.Reader) (*ExportReader, ExportHeader, error) {
	e := &ExportReader{r: bufio.NewReaderSize(r, 64<<10)}
	magic := make([]byte, len(ExportMagic))
	n, err := io.ReadFull(e.r, magic)
	if string(magic[:n]) != ExportMagic[:n] {
		return nil, ExportHeader{}, fmt.Errorf("%w: input starts with %q", ErrNotExport, magic[:n])
	}
	if err != nil {
		return nil, ExportHeader{}, e.truncated(err, "header")
	}
	e.sum(magic)
	var fixed [exportFixedHeader - len(ExportMagic)]byte
	if err := e.readFull(fixed[:]); err != nil {
		return nil, ExportHeader{}, e.truncated(err, "header")
	}
	h := ExportHeader{
		Version: binary.BigEndian.Uint16(fixed[0:2]),
		FromSeq: binary.BigEndian.Uint64(fixed[2:10]),
	}
	metaLen := binary.BigEndian.Uint32(fixed[10:14])
	if metaLen > MaxExportMetaBytes {
		return nil, ExportHeader{}, &CorruptError{Reason: fmt.Sprintf("header meta length %d exceeds MaxExportMetaBytes %d", metaLen, MaxExportMetaBytes)}
	}
	if h.Meta, err = e.readN(int(metaLen)); err != nil {
		return nil, ExportHeader{}, e.truncated(err, "header")
	}
	want, computed, err := e.readChecksum()
	if err != nil {
		return nil, ExportHeader{}, e.truncated(err, "header")
	}
	if want != computed {
		return nil, ExportHeader{}, &CorruptError{Reason: fmt.Sprintf("header checksum mismatch (stored %08x, computed %08x)", want, computed)}
	}
	if h.Version != ExportVersion {
		return nil, ExportHeader{}, fmt.Errorf("archive: export version %d is not supported (this build reads version %d)", h.Version, ExportVersion)
	}
	e.fromSeq = h.FromSeq
	if h.FromSeq > 0 {
		e.pos.seq = h.FromSeq - 1 // AfterSeq for a bad first record; pos.have stays false
	}
	return e, h, nil
}

// sum folds consumed bytes into the stream checksum.
func (e *ExportReader) sum(b []byte) {
	e.crc = crc32.Update(e.crc, castagnoli, b)
	e.off += int64(len(b))
}

func (e *ExportReader) readFull(b []byte) error {
	if _, err := io.ReadFull(e.r, b); err != nil {
		return err
	}
	e.sum(b)
	return nil
}

// readChecksum reads a stored checksum field. It returns the field and the
// stream checksum of every byte before it, then folds the field into the
// stream checksum like any other byte.
func (e *ExportReader) readChecksum() (stored, before uint32, err error) {
	var b [4]byte
	before = e.crc
	if err := e.readFull(b[:]); err != nil {
		return 0, 0, err
	}
	return binary.BigEndian.Uint32(b[:]), before, nil
}

// readN reads n bytes, allocating as they arrive so that a corrupt length
// cannot make the reader allocate more than the input holds (plus one step).
func (e *ExportReader) readN(n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, exportReadStep))
	for len(buf) < n {
		k := min(n-len(buf), exportReadStep)
		buf = append(buf, make([]byte, k)...)
		if _, err := io.ReadFull(e.r, buf[len(buf)-k:]); err != nil {
			return nil, err
		}
	}
	e.sum(buf)
	return buf, nil
}

// truncated turns a short read into the error for a stream that ends early.
func (e *ExportReader) truncated(err error, what string) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("archive: export truncated in %s at offset %d (after seq %d, no trailer): %w", what, e.off, e.pos.seq, err)
}

func (e *ExportReader) corrupt(off int64, reason string) error {
	return &CorruptError{Offset: off, AfterSeq: e.pos.seq, Reason: reason}
}

// Next returns the next record. After the trailer has been read and
// checked it returns io.EOF. A stream that ends before its trailer returns
// an error wrapping io.ErrUnexpectedEOF; a checksum mismatch, an impossible
// order, a trailer that does not match the records, or bytes after the
// trailer return *CorruptError whose AfterSeq is the last good record's seq.
// Errors are sticky. The caller owns the returned Data.
func (e *ExportReader) Next() (Record, error) {
	if e.err != nil {
		return Record{}, e.err
	}
	r, err := e.next()
	if err != nil {
		e.err = err
		return Record{}, err
	}
	return r, nil
}

func (e *ExportReader) next() (Record, error) {
	start := e.off
	var tag [1]byte
	if err := e.readFull(tag[:]); err != nil {
		return Record{}, e.truncated(err, "record stream")
	}
	switch tag[0] {
	case frameMagic:
		return e.nextRecord(start)
	case exportTrailerTag:
		return Record{}, e.trailer(start)
	default:
		return Record{}, e.corrupt(start, fmt.Sprintf("unknown tag byte 0x%02x (want a record 0x%02x or the trailer 0x%02x)", tag[0], frameMagic, exportTrailerTag))
	}
}

func (e *ExportReader) nextRecord(start int64) (Record, error) {
	var hdr [frameHeaderSize]byte
	hdr[0] = frameMagic
	if err := e.readFull(hdr[1:]); err != nil {
		return Record{}, e.truncated(err, "record header")
	}
	h, reason := parseFrameHeader(&hdr)
	if reason != "" {
		return Record{}, e.corrupt(start, reason)
	}
	data, err := e.readN(int(h.dataLen))
	if err != nil {
		return Record{}, e.truncated(err, "record data")
	}
	want, _, err := e.readChecksum()
	if err != nil {
		return Record{}, e.truncated(err, "record checksum")
	}
	if got := crc32.Update(crc32.Checksum(hdr[:], castagnoli), castagnoli, data); got != want {
		return Record{}, e.corrupt(start, fmt.Sprintf("record checksum mismatch (index %d, seq %d; stored %08x, computed %08x)", h.index, h.seq, want, got))
	}
	r := Record{Index: h.index, Seq: h.seq, Kind: h.kind, Data: data}
	if reason := e.pos.check(r); reason != "" {
		return Record{}, e.corrupt(start, "impossible ordering: "+reason)
	}
	if r.Seq < e.fromSeq {
		return Record{}, e.corrupt(start, fmt.Sprintf("impossible ordering: seq %d is below the header's FromSeq %d", r.Seq, e.fromSeq))
	}
	e.pos = e.pos.advance(r)
	e.count++
	return r, nil
}

func (e *ExportReader) trailer(start int64) error {
	var b [exportTrailerSize - 1 - 4]byte
	if err := e.readFull(b[:]); err != nil {
		return e.truncated(err, "trailer")
	}
	want, computed, err := e.readChecksum()
	if err != nil {
		return e.truncated(err, "trailer")
	}
	if want != computed {
		return e.corrupt(start, fmt.Sprintf("stream checksum mismatch (stored %08x, computed %08x)", want, computed))
	}
	count := binary.BigEndian.Uint64(b[0:8])
	lastIndex := binary.BigEndian.Uint64(b[8:16])
	lastSeq := binary.BigEndian.Uint64(b[16:24])
	var gotIndex, gotSeq uint64
	if e.pos.have {
		gotIndex, gotSeq = e.pos.index, e.pos.seq
	}
	if count != e.count || lastIndex != gotIndex || lastSeq != gotSeq {
		return e.corrupt(start, fmt.Sprintf("trailer says %d records ending at index %d, seq %d; the stream holds %d ending at index %d, seq %d",
			count, lastIndex, lastSeq, e.count, gotIndex, gotSeq))
	}
	if _, err := e.r.ReadByte(); err == nil {
		return e.corrupt(e.off, "bytes follow the trailer")
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("archive: export: read after trailer: %w", err)
	}
	return io.EOF
}
