package fsm

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// restoreWorld is a protocol-4 ledger with a snapshot of a checkpointed
// head, whose kv store has changed since.
type restoreWorld struct {
	*recordingGate
	snap   []byte
	digest []byte
	kv     map[string]string // what the snapshot holds
}

func newRestoreWorld(t *testing.T, protocol uint16) *restoreWorld {
	t.Helper()
	g := authorityLedger(t, protocol)
	root := testRootToken[:]
	w := &restoreWorld{recordingGate: g, kv: map[string]string{}}
	for i := 0; i < 8; i++ {
		k, v := fmt.Sprint("k", i), string(bytes.Repeat([]byte{byte('a' + i)}, 20_000))
		mustPermitted(t, "put "+k, g.as(root, CmdKVPut, &KVPut{Key: k, Value: []byte(v)}))
		w.kv[k] = v
	}
	w.snap = g.Snapshot()
	sum := sha256.Sum256(w.snap)
	w.digest = sum[:]
	h := g.Head()
	mustPermitted(t, "checkpoint", g.as(root, CmdCheckpoint, &Checkpoint{Seq: h.Seq, Hash: h.Hash}))
	mustPermitted(t, "change k0", g.as(root, CmdKVPut, &KVPut{Key: "k0", Value: []byte("changed")}))
	mustPermitted(t, "delete k7", g.as(root, CmdKVDelete, &KVKey{Key: "k7"}))
	mustPermitted(t, "add extra", g.as(root, CmdKVPut, &KVPut{Key: "extra", Value: []byte("x")}))
	return w
}

func (w *restoreWorld) chunk(token []byte, p EpochChunk) Applied {
	return w.as(token, CmdEpochChunk, &p)
}

// stage stages snap[from:to] in chunks of size bytes into the staging id
// ("" opens one); it returns the staging's id.
func (w *restoreWorld) stage(token []byte, id string, from, to, size int) string {
	w.t.Helper()
	for off := from; off < to; off += size {
		end := min(off+size, to)
		p := EpochChunk{Restore: id, Offset: int64(off), Data: w.snap[off:end]}
		if id == "" {
			p.Size, p.Digest = int64(len(w.snap)), w.digest
		}
		a := w.chunk(token, p)
		if a.Event == nil || a.Result.Decision != DecisionPermit || a.Result.ID == "" {
			w.t.Fatalf("chunk at %d: %s %s", off, a.Result.Decision, a.Result.Reason)
		}
		id = a.Result.ID
	}
	return id
}

func (w *restoreWorld) epoch(token []byte, id string, digest []byte) Applied {
	return w.as(token, CmdEpoch, &Epoch{Restore: id, Digest: digest})
}

// requireRestored checks the kv store is exactly the snapshot's.
func (w *restoreWorld) requireRestored(l *Ledger) {
	w.t.Helper()
	st := l.State()
	if len(st.KV) != len(w.kv) || st.Staging != nil {
		w.t.Fatalf("after the epoch: %d keys (want %d), staging %v", len(st.KV), len(w.kv), st.Staging != nil)
	}
	for k, v := range w.kv { // test code: every key is checked, order does not matter
		if e := st.KV[k]; e == nil || string(e.Value) != v {
			w.t.Fatalf("key %s not restored", k)
		}
	}
}

// A snapshot staged in chunks and named by an epoch replaces the kv
// store, clears the staging and moves the epoch on; the stream replays
// to the same head and digest.
func TestStagedRestoreInstallsTheSnapshot(t *testing.T) {
	w := newRestoreWorld(t, ProtocolAuthority)
	root := testRootToken[:]
	chunks := (len(w.snap) + 16<<10 - 1) / (16 << 10)
	id := w.stage(root, "", 0, len(w.snap), 16<<10)
	t.Logf("snapshot of %d bytes staged in %d chunks as %s", len(w.snap), chunks, id)
	if sid, staged, size, ok := w.State().Staged(); !ok || sid != id || staged != size || size != int64(len(w.snap)) {
		t.Fatalf("staging %s %d/%d %v", sid, staged, size, ok)
	}
	before := w.State().Epoch
	a := w.epoch(root, id, w.digest)
	mustPermitted(t, "epoch", a)
	if w.State().Epoch != before+1 || a.Event.Epoch != before+1 {
		t.Fatalf("epoch %d after %d (event %d)", w.State().Epoch, before, a.Event.Epoch)
	}
	w.requireRestored(w.Ledger)
	checkReplayOf(t, w.recordingGate)
}

// Every refusal is a DENY with its reason that changes nothing but its
// own event: wrong digest, a missing chunk, a caller without
// snapshot.manage, another operator's staging, oversize chunks and
// declarations, an incomplete staging, a staging that was replaced.
func TestStagedRestoreRefusals(t *testing.T) {
	w := newRestoreWorld(t, ProtocolAuthority)
	root := testRootToken[:]
	mustPermitted(t, "bob", w.grantAs(root, "bob", true, []string{"cap.grant"}, []string{"*"}, 0, time.Hour))
	mustPermitted(t, "carol", w.grantAs(root, "carol", true, []string{OpSnapshot}, []string{"*"}, 0, time.Hour))
	bob, carol := tokenHash("bob"), tokenHash("carol")
	const size = 16 << 10
	half := len(w.snap) / 2 / size * size
	open := EpochChunk{Size: int64(len(w.snap)), Digest: w.digest, Data: w.snap[:size]}

	w.refuse("open without snapshot.manage", ReasonForbidden, bob, CmdEpochChunk, &open)
	w.refuse("open beyond the staging bound", ReasonQuotaExceeded, root, CmdEpochChunk,
		&EpochChunk{Size: w.State().MaxStagedBytes() + 1, Digest: w.digest, Data: w.snap[:size]})
	w.refuse("a chunk beyond MaxEpochChunkBytes", ReasonTooLarge, root, CmdEpochChunk,
		&EpochChunk{Size: MaxEpochChunkBytes + 1, Digest: w.digest, Data: make([]byte, MaxEpochChunkBytes+1)})
	w.refuse("open with a short digest", ReasonInvalidArgument, root, CmdEpochChunk, &EpochChunk{Size: 10, Digest: w.digest[:8], Data: []byte("x")})
	w.refuse("open with no bytes", ReasonInvalidArgument, root, CmdEpochChunk, &EpochChunk{Size: 10, Digest: w.digest})
	w.refuse("a chunk of an unknown staging", ReasonNotFound, root, CmdEpochChunk, &EpochChunk{Restore: "rst-1", Data: []byte("x")})

	id := w.stage(root, "", 0, half, size)
	w.refuse("a chunk without snapshot.manage", ReasonForbidden, bob, CmdEpochChunk, &EpochChunk{Restore: id, Offset: int64(half), Data: w.snap[half : half+size]})
	w.refuse("a chunk of another operator's staging", ReasonForbidden, carol, CmdEpochChunk, &EpochChunk{Restore: id, Offset: int64(half), Data: w.snap[half : half+size]})
	w.refuse("a missing chunk", ReasonSequenceGap, root, CmdEpochChunk, &EpochChunk{Restore: id, Offset: int64(half + size), Data: w.snap[half+size : half+2*size]})
	w.refuse("a repeated chunk", ReasonSequenceGap, root, CmdEpochChunk, &EpochChunk{Restore: id, Offset: int64(half - size), Data: w.snap[half-size : half]})
	w.refuse("a later chunk redeclaring the size", ReasonInvalidArgument, root, CmdEpochChunk, &EpochChunk{Restore: id, Offset: int64(half), Size: 5, Data: w.snap[half : half+size]})
	w.refuse("an epoch of an incomplete staging", ReasonRestoreIncomplete, root, CmdEpoch, &Epoch{Restore: id, Digest: w.digest})
	w.stage(root, id, half, len(w.snap)-1, size)
	w.refuse("a chunk past the declared size", ReasonTooLarge, root, CmdEpochChunk, &EpochChunk{Restore: id, Offset: int64(len(w.snap) - 1), Data: []byte{w.snap[len(w.snap)-1], 0}})
	w.stage(root, id, len(w.snap)-1, len(w.snap), size)

	wrong := sha256.Sum256([]byte("another snapshot"))
	w.refuse("an epoch naming another digest", ReasonSnapshotInvalid, root, CmdEpoch, &Epoch{Restore: id, Digest: wrong[:]})
	w.refuse("an epoch without snapshot.manage", ReasonForbidden, bob, CmdEpoch, &Epoch{Restore: id, Digest: w.digest})
	w.refuse("an epoch of another operator's staging", ReasonForbidden, carol, CmdEpoch, &Epoch{Restore: id, Digest: w.digest})
	w.refuse("an epoch naming no staging", ReasonNotFound, root, CmdEpoch, &Epoch{Restore: "rst-1", Digest: w.digest})
	w.refuse("an epoch both inline and staged", ReasonInvalidArgument, root, CmdEpoch, &Epoch{Snapshot: w.snap, Restore: id, Digest: w.digest})

	// Staged bytes that do not hash to the declared digest are refused at
	// the epoch, even a valid snapshot of a checkpointed head; a new
	// restore replaces the staging before it.
	other := w.Snapshot()
	h := w.Head()
	mustPermitted(t, "checkpoint", w.as(root, CmdCheckpoint, &Checkpoint{Seq: h.Seq, Hash: h.Hash}))
	a := w.chunk(root, EpochChunk{Size: int64(len(other)), Digest: w.digest, Data: other[:size]})
	mustPermitted(t, "open a staging of other bytes", a)
	if a.Result.ID == id || w.State().Staging.ID != a.Result.ID {
		t.Fatalf("the new restore %s did not replace %s", a.Result.ID, id)
	}
	w.refuse("a chunk of the replaced staging", ReasonNotFound, root, CmdEpochChunk, &EpochChunk{Restore: id, Offset: int64(len(w.snap)), Data: []byte("x")})
	for off := size; off < len(other); off += size {
		mustPermitted(t, "chunk", w.chunk(root, EpochChunk{Restore: a.Result.ID, Offset: int64(off), Data: other[off:min(off+size, len(other))]}))
	}
	w.refuse("an epoch of bytes that do not hash to the digest", ReasonSnapshotInvalid, root, CmdEpoch, &Epoch{Restore: a.Result.ID, Digest: w.digest})

	// Abort drops the staging; the kv store is still the changed one.
	w.refuse("an abort by another operator", ReasonForbidden, carol, CmdEpochChunk, &EpochChunk{Restore: a.Result.ID, Abort: true})
	mustPermitted(t, "abort", w.chunk(root, EpochChunk{Restore: a.Result.ID, Abort: true}))
	if w.State().Staging != nil || string(w.State().KV["k0"].Value) != "changed" {
		t.Fatal("abort left a staging or changed the kv store")
	}
	w.refuse("an epoch of an aborted staging", ReasonNotFound, root, CmdEpoch, &Epoch{Restore: a.Result.ID, Digest: w.digest})
	checkReplayOf(t, w.recordingGate)
}

// A Raft snapshot taken while a restore is staged carries the staging: a
// replica restored from it takes the remaining chunks and the epoch and
// ends at the same head, digest and snapshot bytes.
func TestSnapshotMidStagingRestoresTheStaging(t *testing.T) {
	w := newRestoreWorld(t, ProtocolAuthority)
	root := testRootToken[:]
	const size = 16 << 10
	half := len(w.snap) / 2 / size * size
	id := w.stage(root, "", 0, half, size)

	mid := w.Snapshot()
	replica := New()
	if _, err := replica.Restore(mid); err != nil {
		t.Fatal(err)
	}
	if replica.Digest() != w.Digest() {
		t.Fatal("the restored replica's digest differs mid-staging")
	}
	if sid, staged, _, ok := replica.State().Staged(); !ok || sid != id || staged != int64(half) {
		t.Fatalf("restored staging %s %d bytes (%v), want %s %d", sid, staged, ok, id, half)
	}
	from := len(w.log)
	w.stage(root, id, half, len(w.snap), size)
	mustPermitted(t, "epoch", w.epoch(root, id, w.digest))
	for i, e := range w.log[from:] {
		replica.Apply(uint64(from+i+1), e)
	}
	if replica.State().Head != w.State().Head || replica.Digest() != w.Digest() || !bytes.Equal(replica.Snapshot(), w.Snapshot()) {
		t.Fatal("the replica restored mid-staging diverged")
	}
	w.requireRestored(replica)
	checkReplayOf(t, w.recordingGate)
}

// Under protocol 3 nothing of a staged restore exists: epoch.chunk is
// unsupported_protocol and an epoch naming a staging is malformed (as
// for a binary that never knew the fields), and the inline epoch works
// as before.
func TestStagedRestoreNeedsProtocol4(t *testing.T) {
	w := newRestoreWorld(t, ProtocolContract)
	root := testRootToken[:]
	w.refuse("epoch.chunk under protocol 3", ReasonUnsupportedProtocol, root, CmdEpochChunk,
		&EpochChunk{Size: int64(len(w.snap)), Digest: w.digest, Data: w.snap[:1024]})
	before := stateFields(w.Ledger)
	a := w.epoch(root, "rst-1", w.digest)
	if a.Event == nil || a.Result.Reason != ReasonMalformed || a.Event.Subject != "" {
		t.Fatalf("a staged epoch under protocol 3: %s %s subject %q", a.Result.Decision, a.Result.Reason, a.Event.Subject)
	}
	if ch := changedFields(before, stateFields(w.Ledger)); len(ch) > 0 {
		t.Fatalf("the refused epoch changed %v", ch)
	}
	mustPermitted(t, "inline epoch", w.as(root, CmdEpoch, &Epoch{Snapshot: w.snap}))
	w.requireRestored(w.Ledger)
	checkReplayOf(t, w.recordingGate)
}

// The staging's encoder writes the codec's bytes, inside the state body
// too.
func TestStagingEncoderMatchesTheCodec(t *testing.T) {
	for _, s := range []*RestoreStaging{
		nil,
		{ID: "rst-3", By: "cap-1", Size: 1, Digest: make([]byte, 32), Data: []byte{}},
		{ID: "rst-300", By: "cap-12", Size: 1 << 33, Digest: make([]byte, 32), Data: bytes.Repeat([]byte("s"), 70_000)},
	} {
		if got, want := s.appendCanonical(nil), encodeReflect(s); !bytes.Equal(got, want) {
			t.Fatalf("staging %+v: %x, codec %x", s, got, want)
		}
	}
	w := newRestoreWorld(t, ProtocolAuthority)
	w.stage(testRootToken[:], "", 0, 40_000, 16<<10)
	b := w.State().body()
	if got, want := b.appendCanonical(nil), encodeReflect(&b); !bytes.Equal(got, want) {
		t.Fatal("a state body with a staging differs from the codec's")
	}
}
