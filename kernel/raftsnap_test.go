package kernel

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/dominus-kernel/dominus/fsm"
)

// The streamed container is the codec's encoding of raftSnapshot at every
// integer and bin width, and reads back exactly; a container cut short or
// running on is an error, never a shorter ledger.
func TestRaftSnapshotContainerStreams(t *testing.T) {
	for _, index := range []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		for _, n := range []int{0, 1, 255, 256, 65535, 65536, 1 << 20} {
			ledger := bytes.Repeat([]byte{byte(n)}, n)
			want := fsm.Encode(&raftSnapshot{Index: index, Ledger: ledger})
			got := append(raftSnapshotHeader(index, n), ledger...)
			if !bytes.Equal(got, want) {
				t.Fatalf("index %d, %d-byte ledger: header %x, codec %x", index, n, got[:min(len(got), 24)], want[:min(len(want), 24)])
			}
			rs, err := readRaftSnapshot(bytes.NewReader(want))
			if err != nil || rs.Index != index || !bytes.Equal(rs.Ledger, ledger) {
				t.Fatalf("index %d, %d-byte ledger read back as %d, %d bytes: %v", index, n, rs.Index, len(rs.Ledger), err)
			}
			if n == 0 {
				continue
			}
			if _, err := readRaftSnapshot(bytes.NewReader(want[:len(want)-1])); !errors.Is(err, errRaftSnapshotContainer) {
				t.Fatalf("a container one byte short: %v", err)
			}
			if _, err := readRaftSnapshot(bytes.NewReader(append(want, 0))); !errors.Is(err, errRaftSnapshotContainer) {
				t.Fatalf("a container with a byte after it: %v", err)
			}
		}
	}
	// A header that claims 4 GiB and holds little is an error, not 4 GiB
	// of memory.
	if _, err := readRaftSnapshot(bytes.NewReader(append(raftSnapshotHeader(3, math.MaxUint32), 1, 2, 3))); !errors.Is(err, errRaftSnapshotContainer) {
		t.Fatalf("a container claiming 4 GiB: %v", err)
	}
}
