package fsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
)

// The snapshot file's own encoding. A snapshot holds the whole state, so
// it is written once into a buffer of its exact size, read without
// copying its body, and verified from a stream without holding it.

func (f *SnapshotFile) appendCanonical(b []byte) []byte {
	if f == nil {
		return mpNil(b)
	}
	b = mpMap(b, 5)
	return f.appendTail(mpBin(mpStr(b, "body"), f.Body))
}

// snapshotBodyAt is where the body of a snapshot of more than 64 KiB
// starts: after the map header, the key and a bin 32 header.
const snapshotBodyAt = 11

// snapshotBin32Header is what precedes a body of n > 65535 bytes.
func snapshotBin32Header(n int) []byte {
	return []byte{0x85, 0xa4, 'b', 'o', 'd', 'y', 0xc6, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// appendTail writes what follows the body.
func (f *SnapshotFile) appendTail(b []byte) []byte {
	b = mpBin(mpStr(b, "digest"), f.Digest)
	b = mpUint(mpStr(b, "epoch"), f.Epoch)
	b = mpUint(mpStr(b, "format"), uint64(f.Format))
	b = mpMap(mpStr(b, "head"), 2)
	b = mpBin(mpStr(b, "hash"), f.Head.Hash)
	return mpUint(mpStr(b, "seq"), f.Head.Seq)
}

var _ canonicalAppender = (*SnapshotFile)(nil)

// snapshotTailMax bounds what follows a snapshot's body (digest, epoch,
// format, head: about 150 bytes).
const snapshotTailMax = 4096

// encodeSnapshotFile writes f into a buffer of its exact size.
func encodeSnapshotFile(f *SnapshotFile) []byte {
	return f.appendCanonical(make([]byte, 0, len(f.Body)+len(f.Digest)+len(f.Head.Hash)+128))
}

// parseSnapshotFile reads the canonical encoding of a SnapshotFile whose
// body is not nil; the Body it returns shares b. ok is false for any
// other bytes (DecodeSnapshot then hands them to the codec, whose
// errors are the ones reported).
func parseSnapshotFile(b []byte) (f SnapshotFile, ok bool) {
	r := canonReader{b: b}
	r.mapOf(5)
	r.key("body")
	body := r.binView()
	readSnapshotTail(&r, &f)
	if !r.end() || body == nil {
		return SnapshotFile{}, false
	}
	f.Body = body
	return f, true
}

// readSnapshotTail reads the fields that follow a snapshot's body.
func readSnapshotTail(r *canonReader, f *SnapshotFile) {
	r.key("digest")
	f.Digest = r.bin()
	r.key("epoch")
	f.Epoch = r.uint(math.MaxUint64)
	r.key("format")
	f.Format = uint16(r.uint(math.MaxUint16))
	r.key("head")
	r.mapOf(2)
	r.key("hash")
	f.Head.Hash = r.bin()
	r.key("seq")
	f.Head.Seq = r.uint(math.MaxUint64)
}

// SnapshotStreamInfo is what VerifySnapshotStream learns of a snapshot.
type SnapshotStreamInfo struct {
	Head   HeadRef
	Epoch  uint64
	Digest []byte // the state digest the snapshot carries: SHA-256 of its body, verified
	Bytes  int64  // the snapshot's length
}

// Errors of VerifySnapshotStream, besides ErrSnapshotDigest; any other
// error is the reader's own.
var (
	// ErrSnapshotEncoding: the bytes are not the canonical encoding of
	// one snapshot file (cut short, run on, or another form).
	ErrSnapshotEncoding = errors.New("snapshot: not the canonical encoding of a snapshot file")
	// ErrSnapshotFormat: a snapshot file of a format this binary lacks.
	ErrSnapshotFormat = errors.New("snapshot: format not supported")
)

// encodingErr is ErrSnapshotEncoding for a read cut short, else the
// reader's error.
func encodingErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s", ErrSnapshotEncoding, what)
	}
	return err
}

// VerifySnapshotStream reads r to its end without holding the snapshot
// it carries: r must hold exactly the canonical encoding of one
// SnapshotFile of a supported format whose body hashes to the digest it
// carries. The body itself is not decoded and its head not compared with
// the header's: DecodeSnapshot does that (the ledger, at epoch), so a
// snapshot that passes here may still be refused there.
func VerifySnapshotStream(r io.Reader) (SnapshotStreamInfo, error) {
	var info SnapshotStreamInfo
	cr := &countReader{r: r}
	var pre [11]byte // fixmap 5, fixstr "body", a bin header of up to 5 bytes
	if _, err := io.ReadFull(cr, pre[:7]); err != nil {
		return info, encodingErr(err, fmt.Sprintf("%d bytes", cr.n))
	}
	if pre[0] != 0x85 || string(pre[1:6]) != "\xa4body" {
		return info, ErrSnapshotEncoding
	}
	var width int
	var min int64
	switch pre[6] { // bin 8, 16, 32, each only beyond the one before
	case 0xc4:
		width, min = 1, 0
	case 0xc5:
		width, min = 2, math.MaxUint8+1
	case 0xc6:
		width, min = 4, math.MaxUint16+1
	default:
		return info, ErrSnapshotEncoding
	}
	if _, err := io.ReadFull(cr, pre[7:7+width]); err != nil {
		return info, encodingErr(err, "no body")
	}
	var n int64
	for _, c := range pre[7 : 7+width] {
		n = n<<8 | int64(c)
	}
	if n < min {
		return info, ErrSnapshotEncoding
	}
	h := sha256.New()
	if got, err := io.CopyN(h, cr, n); err != nil {
		return info, encodingErr(err, fmt.Sprintf("its body of %d bytes ends after %d", n, got))
	}
	tail, err := io.ReadAll(io.LimitReader(cr, snapshotTailMax+1))
	if err != nil {
		return info, err
	}
	var f SnapshotFile
	tr := canonReader{b: tail}
	readSnapshotTail(&tr, &f)
	if len(tail) > snapshotTailMax || !tr.end() {
		return info, fmt.Errorf("%w: after its body", ErrSnapshotEncoding)
	}
	if f.Format != stateFormat {
		return info, fmt.Errorf("%w: %d", ErrSnapshotFormat, f.Format)
	}
	if sum := h.Sum(nil); !bytes.Equal(sum, f.Digest) {
		return info, fmt.Errorf("snapshot: %w: carries %x, body hashes to %x", ErrSnapshotDigest, f.Digest, sum)
	}
	info.Head, info.Epoch, info.Digest, info.Bytes = f.Head, f.Epoch, f.Digest, cr.n
	return info, nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
