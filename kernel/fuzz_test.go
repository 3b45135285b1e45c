package kernel

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

// FuzzRPCFrame feeds arbitrary bytes to the node RPC frame decoder: it
// must return an error or a request, never panic or over-allocate.
func FuzzRPCFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, &rpcRequest{Method: rpcApply, Body: fsm.Encode(&applyRequest{Envelope: []byte{1, 2, 3}})})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req rpcRequest
		if err := readFrame(bytes.NewReader(data), &req); err == nil {
			var again bytes.Buffer
			if err := writeFrame(&again, &req); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzRaftSnapshotRestore feeds arbitrary bytes to the FSM's snapshot
// restore path: it must refuse them with an error and keep its state.
func FuzzRaftSnapshotRestore(f *testing.F) {
	l := fsm.New()
	f.Add(fsm.Encode(&raftSnapshot{Index: 3, Ledger: l.Snapshot()}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		arch, err := archive.Open(t.TempDir(), archive.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer arch.Close()
		lf := newLedgerFSM(arch, slog.New(slog.NewTextHandler(io.Discard, nil)))
		before := lf.ledger.Digest()
		if err := lf.Restore(io.NopCloser(bytes.NewReader(data))); err != nil && lf.ledger.Digest() != before {
			t.Fatal("a refused snapshot changed the ledger")
		}
	})
}
