package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"
)

const benchEvents = 1 << 20 // 1,048,576 events

var (
	benchOnce sync.Once
	benchTree *Tree
)

func eventHash(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	h := sha256.Sum256(b[:])
	return h[:]
}

func millionTree(b *testing.B) *Tree {
	benchOnce.Do(func() {
		benchTree = NewTree()
		for i := range uint64(benchEvents) {
			benchTree.Append(eventHash(i))
		}
	})
	return benchTree
}

// BenchmarkAppend is the tree's cost per event (a leaf hash and, on
// average, one interior hash).
func BenchmarkAppend(b *testing.B) {
	t := NewTree()
	h := eventHash(1)
	for b.Loop() {
		t.Append(h)
	}
}

func BenchmarkInclusionProof1M(b *testing.B) {
	t := millionTree(b)
	var size int
	i := uint64(0)
	for b.Loop() {
		p, err := t.InclusionProof(i%benchEvents, benchEvents)
		if err != nil {
			b.Fatal(err)
		}
		size = len(p) * HashSize
		i += 7919
	}
	b.ReportMetric(float64(size), "proof-bytes")
}

func BenchmarkVerifyInclusion1M(b *testing.B) {
	t := millionTree(b)
	root, _ := t.Root(benchEvents)
	const idx = 123457
	p, _ := t.InclusionProof(idx, benchEvents)
	h := eventHash(idx)
	for b.Loop() {
		if err := VerifyInclusion(idx, benchEvents, h, p, root); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsistencyProof1M(b *testing.B) {
	t := millionTree(b)
	var size int
	from := uint64(1000003)
	for b.Loop() {
		p, err := t.ConsistencyProof(from, benchEvents)
		if err != nil {
			b.Fatal(err)
		}
		size = len(p) * HashSize
	}
	b.ReportMetric(float64(size), "proof-bytes")
}

func BenchmarkVerifyConsistency1M(b *testing.B) {
	t := millionTree(b)
	const from = 1000003
	r1, _ := t.Root(from)
	r2, _ := t.Root(benchEvents)
	p, _ := t.ConsistencyProof(from, benchEvents)
	for b.Loop() {
		if err := VerifyConsistency(from, benchEvents, p, r1, r2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckpoint1M is a checkpoint's cost at 1M events: the root of
// the tree's size and an Ed25519 signature over the note.
func BenchmarkCheckpoint1M(b *testing.B) {
	t := millionTree(b)
	_, key, _ := ed25519.GenerateKey(nil)
	s := NewSigner(KeyName("k"), key)
	var n int
	for b.Loop() {
		root, err := t.Root(benchEvents - 1)
		if err != nil {
			b.Fatal(err)
		}
		note, err := Sign(Checkpoint{KernelID: "k", Size: benchEvents - 1, Root: root, Head: root, Time: 1}, s)
		if err != nil {
			b.Fatal(err)
		}
		n = len(note)
	}
	b.ReportMetric(float64(n), "note-bytes")
}

// BenchmarkCountersign1M is the sovereign's work per checkpoint of a
// domain at 1M events: open the domain's note (one Ed25519 verification),
// verify a consistency proof from the last countersigned size (1000
// events before), countersign (one Ed25519 signature).
func BenchmarkCountersign1M(b *testing.B) {
	t := millionTree(b)
	dpub, dkey, _ := ed25519.GenerateKey(nil)
	_, skey, _ := ed25519.GenerateKey(nil)
	vk, _ := VerifierKey(KeyName("d"), dpub)
	keys, _ := ParseKeys(vk)
	const from = benchEvents - 1000
	r1, _ := t.Root(from)
	r2, _ := t.Root(benchEvents)
	p, _ := t.ConsistencyProof(from, benchEvents)
	note, _ := Sign(Checkpoint{KernelID: "d", Size: benchEvents, Root: r2, Head: r2, Time: 1}, NewSigner(KeyName("d"), dkey))
	sov := NewSigner(KeyName("s"), skey)
	for b.Loop() {
		c, err := Open(note, keys)
		if err != nil {
			b.Fatal(err)
		}
		if err := VerifyConsistency(from, c.Size, p, r1, c.Root); err != nil {
			b.Fatal(err)
		}
		if _, err := Countersign(note, sov); err != nil {
			b.Fatal(err)
		}
	}
}
