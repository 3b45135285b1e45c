package fsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"testing/iotest"
	"time"
)

// The snapshot file's encoder writes the codec's bytes, its strict parser
// reads them back with the body shared, at every bin header size.
func TestSnapshotFileEncodingMatchesTheCodec(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	g := valueGen{rand.New(rand.NewSource(seed))}
	for _, n := range append(lengthEdges, 1<<20) {
		for i := 0; i < 20; i++ {
			f := &SnapshotFile{Format: uint16(g.uint(16)), Head: HeadRef{Seq: g.uint(64), Hash: g.bin()}, Epoch: g.uint(64), Digest: g.bin(), Body: make([]byte, n)}
			g.rng.Read(f.Body)
			want := encodeReflect(f)
			if got := encodeSnapshotFile(f); !bytes.Equal(got, want) {
				t.Fatalf("snapshot file of a %d-byte body: %x, codec %x", n, got[:min(len(got), 64)], want[:min(len(want), 64)])
			}
			back, ok := parseSnapshotFile(want)
			if !ok || !bytes.Equal(encodeReflect(&back), want) {
				t.Fatalf("the strict parser refused or changed a %d-byte body's file", n)
			}
		}
	}
	if _, ok := parseSnapshotFile(encodeReflect(&SnapshotFile{})); ok {
		t.Fatal("the strict parser took a file without a body")
	}
}

// VerifySnapshotStream learns from a stream what DecodeSnapshot learns
// from the bytes, refuses every truncation, trailing byte and flipped
// body or digest byte, and never accepts what DecodeSnapshot refuses but
// for the header's own head and epoch, which only the body can confirm.
func TestVerifySnapshotStream(t *testing.T) {
	tl := newTestLedger(t)
	for i := 0; i < 40; i++ {
		tl.put(fmt.Sprint("r", i), fmt.Sprint("k", i%9), string(bytes.Repeat([]byte("v"), i*50)), t0+int64(i))
	}
	snap := tl.Snapshot()
	f, _, err := DecodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	info, err := VerifySnapshotStream(iotest.OneByteReader(bytes.NewReader(snap)))
	if err != nil || info.Head.String() != f.Head.String() || info.Epoch != f.Epoch || !bytes.Equal(info.Digest, f.Digest) || info.Bytes != int64(len(snap)) {
		t.Fatalf("stream %+v (%v), file head %s", info, err, f.Head)
	}
	for n := 0; n < len(snap); n++ {
		if _, err := VerifySnapshotStream(bytes.NewReader(snap[:n])); err == nil {
			t.Fatalf("a snapshot cut to %d of %d bytes verified", n, len(snap))
		}
	}
	if _, err := VerifySnapshotStream(bytes.NewReader(append(append([]byte(nil), snap...), 0))); err == nil {
		t.Fatal("a snapshot with a trailing byte verified")
	}
	bodyEnd := len(snap) - len(f.Digest) - 100 // the body and the digest end before the last ~100 bytes
	for i := range snap {
		flipped := append([]byte(nil), snap...)
		flipped[i] ^= 0x01
		_, serr := VerifySnapshotStream(bytes.NewReader(flipped))
		if serr == nil && i < bodyEnd {
			t.Fatalf("a flipped byte %d of the body verified", i)
		}
		if _, _, derr := DecodeSnapshot(flipped); serr == nil && derr == nil {
			t.Fatalf("a flipped byte %d passed both checks", i)
		}
	}
	_, err = VerifySnapshotStream(bytes.NewReader([]byte("not a snapshot at all")))
	if !errors.Is(err, ErrSnapshotEncoding) {
		t.Fatalf("garbage: %v", err)
	}
}

// FuzzSnapshotFile holds the strict parser and the stream verifier to
// the codec: what the parser takes re-encodes to the same bytes, and a
// stream both verify describes the same snapshot.
func FuzzSnapshotFile(f *testing.F) {
	tl := New()
	f.Add(tl.Snapshot())
	f.Add([]byte{0x85, 0xa4, 'b', 'o', 'd', 'y', 0xc4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := parseSnapshotFile(b); ok && !bytes.Equal(encodeReflect(&p), b) {
			t.Fatal("the strict parser took bytes that are not the file's encoding")
		}
		info, serr := VerifySnapshotStream(bytes.NewReader(b))
		sf, _, derr := DecodeSnapshot(b)
		if serr == nil && derr == nil && (info.Head.String() != sf.Head.String() || info.Epoch != sf.Epoch || info.Bytes != int64(len(b))) {
			t.Fatalf("the stream says %+v, the file %+v", info, sf.Head)
		}
		if derr == nil && serr != nil {
			t.Fatalf("DecodeSnapshot took what the stream refused: %v", serr)
		}
	})
}

// The state digest, hashed as the body is encoded, is the SHA-256 of the
// body's bytes; a snapshot written in one buffer is the codec's encoding
// of the snapshot file; both for a small state and for one past the bin
// 16 bound and the flush size, with a staged restore.
func TestStreamedDigestAndSnapshotMatchTheBytes(t *testing.T) {
	check := func(what string, l *Ledger) {
		t.Helper()
		b := l.State().body()
		bytes_ := b.appendCanonical(nil)
		if d := b.digest(); d != sha256.Sum256(bytes_) || l.Digest() != d {
			t.Fatalf("%s: the streamed digest differs from the body's", what)
		}
		digest := sha256.Sum256(bytes_)
		want := encodeReflect(&SnapshotFile{Format: stateFormat, Head: l.Head(), Epoch: l.State().Epoch, Digest: digest[:], Body: bytes_})
		if got := l.Snapshot(); !bytes.Equal(got, want) {
			t.Fatalf("%s: the snapshot (%d bytes) differs from the codec's (%d)", what, len(got), len(want))
		}
		if hint := b.sizeHint(); hint < len(bytes_) {
			t.Logf("%s: size hint %d below the body's %d bytes", what, hint, len(bytes_))
		}
	}
	w := newRestoreWorld(t, ProtocolAuthority)
	check("small state", w.Ledger)
	root := testRootToken[:]
	for i := 0; i < 40; i++ {
		mustPermitted(t, "put", w.as(root, CmdKVPut, &KVPut{Key: fmt.Sprint("big", i), Value: bytes.Repeat([]byte{byte(i)}, 64<<10)}))
	}
	check("a state of 2.6 MB", w.Ledger)
	w.snap = w.Snapshot()
	sum := sha256.Sum256(w.snap)
	w.digest = sum[:]
	w.stage(root, "", 0, len(w.snap)-100, 64<<10)
	check("a state with 5 MB staged", w.Ledger)
}
