package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// benchTree is a ledger with a capability P whose subtree holds size
// descendants (fan-out under P, then chains up to the depth bound), and the
// token of its deepest leaf.
type benchTree struct {
	l       *testLedger
	parent  string
	leafTok []byte
}

var benchTrees = map[int]*benchTree{}

func tok(i int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	s := sha256.Sum256(b[:])
	return s[:]
}

func buildTree(b *testing.B, size int) *benchTree {
	if t := benchTrees[size]; t != nil {
		return t
	}
	tl := &testLedger{Ledger: New()}
	tl.apply(genesisEntry(t0))
	ts := t0
	next := func() int64 { ts++; return ts }
	g := tl.apply(env(CmdCapGrant, "", testRootToken[:], next(), &CapGrant{TokenHash: tok(0), Entity: "p", Ops: []string{"kv.*"}, Resources: []string{"*"}}))
	if g.Result.Decision != DecisionPermit {
		b.Fatal("grant")
	}
	// Children of P, each the head of a chain of up to 7 more.
	parentOf := func(i int) []byte {
		if i%8 == 1 {
			return tok(0)
		}
		return tok(i - 1)
	}
	for i := 1; i <= size; i++ {
		a := tl.apply(env(CmdCapDelegate, "", parentOf(i), next(), &CapDelegate{TokenHash: tok(i), Entity: fmt.Sprint("c", i), Ops: []string{"kv.put"}, Resources: []string{"*"}}))
		if a.Result.Decision != DecisionPermit {
			b.Fatalf("delegate %d: %s", i, a.Result.Reason)
		}
	}
	leaf := size - (size-1)%8 + 6 // the last full chain's deepest node
	if leaf > size {
		leaf = size
	}
	t := &benchTree{l: tl, parent: g.Result.ID, leafTok: tok(leaf)}
	benchTrees[size] = t
	return t
}

// BenchmarkRevocation shows that revoking a capability and checking a
// descendant cost the same whatever the size of the subtree: revoke sets
// one flag, a check walks at most MaxDelegationDepth ancestors.
func BenchmarkRevocation(b *testing.B) {
	for _, size := range []int{10, 1_000, 100_000} {
		t := buildTree(b, size)
		revoke := env(CmdCapRevoke, "", testRootToken[:], 0, &CapRevoke{ID: t.parent})
		check := env(CmdSyscall, "", t.leafTok, 0, &Syscall{Op: "kv.put", Resource: "k"})
		b.Run(fmt.Sprintf("revoke/subtree=%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if a := t.l.apply(revoke); a.Result.Decision != DecisionPermit {
					b.Fatal(a.Result.Reason)
				}
			}
		})
		b.Run(fmt.Sprintf("check/subtree=%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if a := t.l.apply(check); a.Result.Reason != ReasonRevoked {
					b.Fatal(a.Result.Reason)
				}
			}
		})
	}
}
