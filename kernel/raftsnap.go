package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// The Raft snapshot container is the canonical encoding of raftSnapshot:
// a map of index and ledger, the ledger snapshot being one msgpack bin.
// It is written and read here as a stream, so the ledger snapshot (the
// whole state, beyond 512 MiB when the kv bound allows it) is neither
// copied into a second buffer nor cut at any size: Restore reads exactly
// the bytes the container declares, and a container that ends early or
// runs on is an error.

// maxRaftSnapshotLedger is the largest ledger snapshot the container
// carries (a msgpack bin 32).
const maxRaftSnapshotLedger = math.MaxUint32

// raftSnapshotHeader is the encoding of raftSnapshot{index, ledger} up to
// the ledger's bytes: fsm.Encode(&raftSnapshot{...}) is the header
// followed by the ledger.
func raftSnapshotHeader(index uint64, ledgerLen int) []byte {
	b := append(make([]byte, 0, 32), 0x82, 0xa5, 'i', 'n', 'd', 'e', 'x')
	switch {
	case index <= 0x7f:
		b = append(b, byte(index))
	case index <= math.MaxUint8:
		b = append(b, 0xcc, byte(index))
	case index <= math.MaxUint16:
		b = append(b, 0xcd, byte(index>>8), byte(index))
	case index <= math.MaxUint32:
		b = append(b, 0xce, byte(index>>24), byte(index>>16), byte(index>>8), byte(index))
	default:
		b = append(b, 0xcf, byte(index>>56), byte(index>>48), byte(index>>40), byte(index>>32),
			byte(index>>24), byte(index>>16), byte(index>>8), byte(index))
	}
	b = append(b, 0xa6, 'l', 'e', 'd', 'g', 'e', 'r')
	n := uint64(ledgerLen)
	switch {
	case n <= math.MaxUint8:
		return append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xc5, byte(n>>8), byte(n))
	}
	return append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// errRaftSnapshotContainer is wrapped by readRaftSnapshot's errors about
// the container's own bytes.
var errRaftSnapshotContainer = errors.New("raft snapshot container")

// raftSnapshotFirstRead is how much of a declared ledger is allocated
// before any of it arrives: a container that claims gigabytes and holds
// little costs no more than this.
const raftSnapshotFirstRead = 1 << 20

// readRaftSnapshot reads one container from r, which must end with it.
func readRaftSnapshot(r io.Reader) (raftSnapshot, error) {
	var rs raftSnapshot
	br := bufio.NewReaderSize(r, 64<<10)
	bad := func(what string) error { return fmt.Errorf("%w: %s", errRaftSnapshotContainer, what) }
	head := make([]byte, 7)
	if _, err := io.ReadFull(br, head); err != nil || string(head) != "\x82\xa5index" {
		return rs, bad("no index")
	}
	index, err := readCanonicalUint(br)
	if err != nil {
		return rs, bad("index: " + err.Error())
	}
	if _, err := io.ReadFull(br, head); err != nil || string(head) != "\xa6ledger" {
		return rs, bad("no ledger")
	}
	n, err := readBinLen(br)
	if err != nil {
		return rs, bad("ledger: " + err.Error())
	}
	ledger := make([]byte, min(n, raftSnapshotFirstRead))
	got, err := io.ReadFull(br, ledger)
	if err == nil && n > int64(len(ledger)) {
		first := len(ledger)
		ledger = slices.Grow(ledger, int(n)-first)[:n]
		var more int
		more, err = io.ReadFull(br, ledger[first:])
		got += more
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return rs, bad(fmt.Sprintf("it declares a ledger snapshot of %d bytes and ends after %d", n, got))
	}
	if err != nil {
		return rs, fmt.Errorf("read raft snapshot: %w", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err == nil {
			return rs, bad("bytes after the ledger snapshot")
		}
		return rs, fmt.Errorf("read raft snapshot: %w", err)
	}
	rs.Index, rs.Ledger = index, ledger
	return rs, nil
}

// readCanonicalUint reads a msgpack unsigned integer in its smallest form.
func readCanonicalUint(br *bufio.Reader) (uint64, error) {
	c, err := br.ReadByte()
	if err != nil {
		return 0, err
	}
	if c <= 0x7f {
		return uint64(c), nil
	}
	var width int
	var min uint64
	switch c {
	case 0xcc:
		width, min = 1, 0x80
	case 0xcd:
		width, min = 2, math.MaxUint8+1
	case 0xce:
		width, min = 4, math.MaxUint16+1
	case 0xcf:
		width, min = 8, math.MaxUint32+1
	default:
		return 0, errors.New("not an unsigned integer")
	}
	v, err := readBigEndian(br, width)
	if err != nil {
		return 0, err
	}
	if v < min {
		return 0, errors.New("integer not in its smallest form")
	}
	return v, nil
}

// readBinLen reads a msgpack bin header in its smallest form.
func readBinLen(br *bufio.Reader) (int64, error) {
	c, err := br.ReadByte()
	if err != nil {
		return 0, err
	}
	var width int
	var min uint64
	switch c {
	case 0xc4:
		width = 1
	case 0xc5:
		width, min = 2, math.MaxUint8+1
	case 0xc6:
		width, min = 4, math.MaxUint16+1
	default:
		return 0, errors.New("not a bin")
	}
	v, err := readBigEndian(br, width)
	if err != nil {
		return 0, err
	}
	if v < min {
		return 0, errors.New("bin header not in its smallest form")
	}
	return int64(v), nil
}

func readBigEndian(br *bufio.Reader, width int) (uint64, error) {
	var v uint64
	for i := 0; i < width; i++ {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		v = v<<8 | uint64(c)
	}
	return v, nil
}
