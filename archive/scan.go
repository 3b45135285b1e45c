package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// scanResult is what scanSegment learned about one segment file.
type scanResult struct {
	seg   *segment // the valid records; seg.size == valid
	valid int64    // length of the valid prefix
	torn  string   // why the bytes after valid are a torn tail; "" if none
	end   position // ordering state after the segment's last valid record
}

// scanSegment reads the frames of one segment file, size bytes from r, in
// order, checking every checksum and the ordering rules from prev on.
//
// A torn tail is accepted only when last is true, and only as the bytes
// after the last valid frame: fewer bytes than a frame header; a header
// that checks out whose frame runs past the end of the file; or a run of
// zero bytes to the end of the file (space the file system allocated but
// never wrote). Anything else wrong — a complete frame with a bad checksum,
// a header with a bad checksum followed by non-zero bytes, an unknown
// version or kind, an ordering violation, a first index that differs from
// the file name, or a torn tail in a segment that is not the last — is a
// *CorruptError. Errors from r are returned wrapped.
func scanSegment(r io.Reader, size int64, path string, nameIndex uint64, last bool, prev position) (scanResult, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	seg := &segment{path: path, firstIndex: nameIndex}
	pos := prev
	var off int64
	corrupt := func(reason string) error {
		return &CorruptError{Path: path, Offset: off, AfterSeq: pos.seq, Reason: reason}
	}
	ioErr := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("file shrank while being read: %w", io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("archive: read %s at offset %d: %w", path, off, err)
	}
	torn := func(reason string) (scanResult, error) {
		if !last {
			return scanResult{}, corrupt("segment is not the last one but ends in a partial record: " + reason)
		}
		seg.size = off
		return scanResult{seg: seg, valid: off, torn: reason, end: pos}, nil
	}
	var hdr [frameHeaderSize]byte
	for off < size {
		rem := size - off
		if rem < frameHeaderSize {
			return torn(fmt.Sprintf("incomplete record header (%d of %d bytes)", rem, frameHeaderSize))
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return scanResult{}, ioErr(err)
		}
		h, reason := parseFrameHeader(&hdr)
		if reason != "" {
			if last && allZero(hdr[:]) {
				zero, err := restIsZero(br)
				if err != nil {
					return scanResult{}, ioErr(err)
				}
				if zero {
					return torn(fmt.Sprintf("zero-filled tail (%d bytes)", rem))
				}
			}
			return scanResult{}, corrupt(reason)
		}
		rec := Record{Index: h.index, Seq: h.seq, Kind: h.kind}
		if len(seg.recs) == 0 && h.index != nameIndex {
			return scanResult{}, corrupt(fmt.Sprintf("segment is named for first index %d but its first record has index %d", nameIndex, h.index))
		}
		if reason := pos.check(rec); reason != "" {
			return scanResult{}, corrupt("impossible ordering: " + reason)
		}
		if len(seg.recs) > 0 && (h.index-seg.firstIndex > math.MaxUint32 || h.seq-seg.firstSeq > math.MaxUint32) || off > math.MaxUint32 {
			return scanResult{}, corrupt("record lies beyond the span one segment may cover (index, seq or offset delta exceeds 2^32-1)")
		}
		fsz := frameSize(int(h.dataLen))
		if fsz > rem {
			return torn(fmt.Sprintf("incomplete record (index %d, seq %d: %d of %d bytes)", h.index, h.seq, rem, fsz))
		}
		crc := crc32.Update(0, castagnoli, hdr[:])
		crc, err := crcSkip(br, crc, int(h.dataLen))
		if err != nil {
			return scanResult{}, ioErr(err)
		}
		var sum [frameTrailerSize]byte
		if _, err := io.ReadFull(br, sum[:]); err != nil {
			return scanResult{}, ioErr(err)
		}
		if want := binary.BigEndian.Uint32(sum[:]); crc != want {
			return scanResult{}, corrupt(fmt.Sprintf("record checksum mismatch (index %d, seq %d; stored %08x, computed %08x)", h.index, h.seq, want, crc))
		}
		if len(seg.recs) == 0 {
			seg.firstSeq = h.seq
			seg.firstKind = h.kind
		}
		seg.recs = append(seg.recs, slot{
			index: uint32(h.index - seg.firstIndex),
			seq:   uint32(h.seq - seg.firstSeq),
			off:   uint32(off),
		})
		pos = pos.advance(rec)
		off += fsz
	}
	seg.size = off
	return scanResult{seg: seg, valid: off, end: pos}, nil
}

// crcSkip consumes n bytes of br, folding them into crc.
func crcSkip(br *bufio.Reader, crc uint32, n int) (uint32, error) {
	for n > 0 {
		b, err := br.Peek(min(n, br.Size()))
		if err != nil {
			return crc, err
		}
		crc = crc32.Update(crc, castagnoli, b)
		n -= len(b)
		if _, err := br.Discard(len(b)); err != nil {
			return crc, err
		}
	}
	return crc, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// restIsZero reports whether every byte left in br is zero.
func restIsZero(br *bufio.Reader) (bool, error) {
	for {
		b, err := br.Peek(br.Size())
		if !allZero(b) {
			return false, nil
		}
		if _, derr := br.Discard(len(b)); derr != nil {
			return false, derr
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return false, err
		}
	}
}
