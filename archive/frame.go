package archive

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Frame layout (version 1), all integers big-endian:
//
//	offset  size  field
//	0       1     magic/version byte 0xD1
//	1       1     kind
//	2       4     data length n
//	6       8     Raft index
//	14      8     ledger seq
//	22      4     header CRC-32C over bytes [0, 22)
//	26      n     data
//	26+n    4     frame CRC-32C over bytes [0, 26+n)
//
// The header CRC makes the length trustworthy before the data is read: a
// frame whose header checks out but whose data runs past the end of the file
// is a torn write, not a corrupted length.
const (
	frameMagic       byte = 0xD1
	frameHeaderSize       = 26
	frameTrailerSize      = 4
	frameOverhead         = frameHeaderSize + frameTrailerSize
)

// MaxRecordBytesLimit is the largest Data the format carries, and the
// upper bound of Options.MaxRecordBytes.
const MaxRecordBytesLimit = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type frameHeader struct {
	kind    Kind
	dataLen uint32
	index   uint64
	seq     uint64
}

// frameSize is the encoded size of a frame carrying dataLen bytes.
func frameSize(dataLen int) int64 { return int64(dataLen) + frameOverhead }

// appendFrame appends the frame of r to dst. The caller has checked
// len(r.Data) <= MaxRecordBytesLimit.
func appendFrame(dst []byte, r Record) []byte {
	start := len(dst)
	var hdr [frameHeaderSize]byte
	hdr[0] = frameMagic
	hdr[1] = byte(r.Kind)
	binary.BigEndian.PutUint32(hdr[2:6], uint32(len(r.Data)))
	binary.BigEndian.PutUint64(hdr[6:14], r.Index)
	binary.BigEndian.PutUint64(hdr[14:22], r.Seq)
	binary.BigEndian.PutUint32(hdr[22:26], crc32.Checksum(hdr[:22], castagnoli))
	dst = append(dst, hdr[:]...)
	dst = append(dst, r.Data...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseFrameHeader decodes a frame header, returning the reason it is
// invalid, or "". The header CRC is checked first, so a reason other than a
// checksum mismatch describes a header this format's writer produced under
// another version or rule.
func parseFrameHeader(hdr *[frameHeaderSize]byte) (frameHeader, string) {
	if got, want := crc32.Checksum(hdr[:22], castagnoli), binary.BigEndian.Uint32(hdr[22:26]); got != want {
		return frameHeader{}, fmt.Sprintf("record header checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	if hdr[0] != frameMagic {
		return frameHeader{}, fmt.Sprintf("unsupported record frame version byte 0x%02x (want 0x%02x)", hdr[0], frameMagic)
	}
	h := frameHeader{
		kind:    Kind(hdr[1]),
		dataLen: binary.BigEndian.Uint32(hdr[2:6]),
		index:   binary.BigEndian.Uint64(hdr[6:14]),
		seq:     binary.BigEndian.Uint64(hdr[14:22]),
	}
	if !h.kind.valid() {
		return frameHeader{}, fmt.Sprintf("record kind %d is unknown", uint8(h.kind))
	}
	if h.dataLen > MaxRecordBytesLimit {
		return frameHeader{}, fmt.Sprintf("record data length %d exceeds the format limit %d", h.dataLen, MaxRecordBytesLimit)
	}
	return h, ""
}

// decodeFrame decodes exactly one frame occupying all of b. The returned
// Data aliases b.
func decodeFrame(b []byte) (Record, string) {
	if len(b) < frameOverhead {
		return Record{}, fmt.Sprintf("record frame of %d bytes is shorter than the %d-byte minimum", len(b), frameOverhead)
	}
	h, reason := parseFrameHeader((*[frameHeaderSize]byte)(b[:frameHeaderSize]))
	if reason != "" {
		return Record{}, reason
	}
	if want := frameSize(int(h.dataLen)); int64(len(b)) != want {
		return Record{}, fmt.Sprintf("record frame is %d bytes, its header says %d", len(b), want)
	}
	end := frameHeaderSize + int(h.dataLen)
	if got, want := crc32.Checksum(b[:end], castagnoli), binary.BigEndian.Uint32(b[end:]); got != want {
		return Record{}, fmt.Sprintf("record checksum mismatch (index %d, seq %d; stored %08x, computed %08x)", h.index, h.seq, want, got)
	}
	return Record{Index: h.index, Seq: h.seq, Kind: h.kind, Data: b[frameHeaderSize:end:end]}, ""
}
