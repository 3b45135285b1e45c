package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

func seeded(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

func randomHashes(r *rand.Rand, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256([]byte{byte(r.Uint32()), byte(i), byte(i >> 8), byte(r.Uint32())})
		out[i] = h[:]
	}
	return out
}

// referenceRoot computes the root with the library's compact range.
func referenceRoot(t *testing.T, leaves [][]byte) []byte {
	f := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := f.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(LeafHash(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(leaves) == 0 {
		return EmptyRoot()
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func flip(b []byte, bit int) []byte {
	c := append([]byte(nil), b...)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}

func TestInclusionEveryLeaf(t *testing.T) {
	r := seeded(t)
	for _, n := range []int{1, 2, 3, 7, 8, 9, 64, 100 + r.IntN(200)} {
		leaves := randomHashes(r, n)
		tr := NewTree()
		for _, l := range leaves {
			tr.Append(l)
		}
		root, err := tr.Root(uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceRoot(t, leaves); !bytes.Equal(root, want) {
			t.Fatalf("size %d: root %x, compact range says %x", n, root, want)
		}
		for i := range n {
			p, err := tr.InclusionProof(uint64(i), uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(uint64(i), uint64(n), leaves[i], p, root); err != nil {
				t.Fatalf("size %d leaf %d: %v", n, i, err)
			}
			if VerifyInclusion(uint64(i), uint64(n), flip(leaves[i], r.IntN(256)), p, root) == nil {
				t.Fatalf("size %d leaf %d: a flipped leaf verified", n, i)
			}
			if VerifyInclusion(uint64(i), uint64(n), leaves[i], p, flip(root, r.IntN(256))) == nil {
				t.Fatalf("size %d leaf %d: a flipped root verified", n, i)
			}
			if len(p) > 0 {
				q := append([][]byte(nil), p...)
				k := r.IntN(len(q))
				q[k] = flip(q[k], r.IntN(256))
				if VerifyInclusion(uint64(i), uint64(n), leaves[i], q, root) == nil {
					t.Fatalf("size %d leaf %d: a flipped proof hash verified", n, i)
				}
			}
			// The proof against the tree of another size: its root.
			if i < n-1 {
				smaller, _ := tr.Root(uint64(n - 1))
				if VerifyInclusion(uint64(i), uint64(n-1), leaves[i], p, smaller) == nil {
					t.Fatalf("size %d leaf %d: verified against the tree of size %d", n, i, n-1)
				}
			}
		}
	}
}

func TestConsistencyEveryPairOfAGrowingTree(t *testing.T) {
	r := seeded(t)
	leaves := randomHashes(r, 70+r.IntN(60))
	tr := NewTree()
	roots := [][]byte{EmptyRoot()}
	for _, l := range leaves {
		tr.Append(l)
		root, err := tr.Root(tr.Size())
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, root)
	}
	n := uint64(len(leaves))
	for m1 := uint64(1); m1 <= n; m1++ {
		if got, _ := tr.Root(m1); !bytes.Equal(got, roots[m1]) {
			t.Fatalf("root of %d changed as the tree grew", m1)
		}
		for m2 := m1; m2 <= n; m2++ {
			p, err := tr.ConsistencyProof(m1, m2)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(m1, m2, p, roots[m1], roots[m2]); err != nil {
				t.Fatalf("%d..%d: %v", m1, m2, err)
			}
			if m1 < m2 && VerifyConsistency(m1, m2, p, flip(roots[m1], r.IntN(256)), roots[m2]) == nil {
				t.Fatalf("%d..%d: a flipped old root verified", m1, m2)
			}
		}
	}
	if _, err := tr.Root(n + 1); !errors.Is(err, ErrBeyondTree) {
		t.Fatalf("root beyond the tree: %v", err)
	}
}

func TestCheckpointSignOpenCountersign(t *testing.T) {
	r := seeded(t)
	kpub, kpriv, _ := ed25519.GenerateKey(nil)
	spub, spriv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	kname, sname := KeyName("k1"), KeyName("sov")
	kkey, _ := VerifierKey(kname, kpub)
	skey, _ := VerifierKey(sname, spub)
	kernel, err := ParseKeys("# kernel k1\n" + kkey + "\n\n" + kkey + "\n")
	if err != nil || kernel.Len() != 1 {
		t.Fatalf("keys: %v %d", err, kernel.Len())
	}
	sov, _ := ParseKeys(skey)
	h := randomHashes(r, 2)
	c := Checkpoint{KernelID: "k1", Size: 42, Root: h[0], Head: h[1], Time: 1234567890}
	msg, err := Sign(c, NewSigner(kname, kpriv))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(msg, kernel)
	if err != nil || s.Size != 42 || !bytes.Equal(s.Root, h[0]) || s.Time != c.Time {
		t.Fatalf("open: %+v %v", s, err)
	}
	if _, err := OpenCountersigned(msg, kernel, sov); err == nil {
		t.Fatal("a checkpoint without the sovereign's signature opened as countersigned")
	}
	co, err := Countersign(msg, NewSigner(sname, spriv))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := OpenCountersigned(co, kernel, sov); err != nil || len(s.Names) != 2 {
		t.Fatalf("countersigned: %+v %v", s, err)
	}
	// The wrong key, a key under another kernel's name, a flipped byte.
	forged, _ := Sign(c, NewSigner(kname, other))
	if _, err := Open(forged, kernel); err == nil {
		t.Fatal("a checkpoint signed by another key opened")
	}
	if _, err := Open(msg, sov); err == nil {
		t.Fatal("a kernel's checkpoint opened with the sovereign's keys alone")
	}
	for i := range len(msg) {
		bad := append([]byte(nil), msg...)
		bad[i] ^= 0x01
		if s, err := Open(bad, kernel); err == nil && s.Text() == c.Text() && bytes.Equal(bad, msg) {
			t.Fatalf("byte %d flipped and it still opened", i)
		} else if err == nil {
			t.Fatalf("byte %d flipped and it still opened: %q", i, bad)
		}
	}
}

func TestParseCheckpointRefusesNonCanonical(t *testing.T) {
	c := Checkpoint{KernelID: "k", Size: 3, Root: make([]byte, 32), Head: make([]byte, 32), Time: 5}
	if _, err := ParseCheckpoint(c.Text()); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		"", "dominus/k\n03\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nhead " + string(bytes.Repeat([]byte("00"), 32)) + "\ntime 5\n",
		"other/k\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nhead " + string(bytes.Repeat([]byte("00"), 32)) + "\ntime 5\n",
		c.Text() + "extra\n",
	} {
		if _, err := ParseCheckpoint(text); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%q parsed: %v", text, err)
		}
	}
}
