package tlog

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// HashSize is the size of every hash in the tree.
const HashSize = sha256.Size

// hasher is RFC 6962's SHA-256 hasher.
var hasher = rfc6962.DefaultHasher

// ErrBeyondTree is returned for a size or index past the tree's leaves.
var ErrBeyondTree = errors.New("tlog: beyond the tree")

// LeafHash is the leaf hash of an event hash: SHA-256(0x00 ‖ eventHash).
func LeafHash(eventHash []byte) []byte { return hasher.HashLeaf(eventHash) }

// EmptyRoot is the root of the tree of size 0.
func EmptyRoot() []byte { return hasher.EmptyRoot() }

// Tree is an append-only RFC 6962 tree that keeps every complete node:
// level l holds the hashes of the perfect subtrees of 2^l leaves, left to
// right, so a proof is a few lookups and any earlier size's root is at
// most log2(N) hashes. Memory is about 64 bytes per leaf. Safe for one
// appender and many readers.
type Tree struct {
	mu     sync.RWMutex
	levels [][]byte // levels[l]: complete nodes at level l, HashSize bytes each
	size   uint64
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{levels: [][]byte{nil}} }

// Size is the number of leaves.
func (t *Tree) Size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.size
}

// Append adds the leaf of an event hash.
func (t *Tree) Append(eventHash []byte) {
	t.AppendLeafHash(LeafHash(eventHash))
}

// AppendLeafHash adds a leaf by its leaf hash, and every node it
// completes.
func (t *Tree) AppendLeafHash(leafHash []byte) {
	if len(leafHash) != HashSize {
		panic(fmt.Sprintf("tlog: leaf hash of %d bytes", len(leafHash)))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.levels[0] = append(t.levels[0], leafHash...)
	t.size++
	// A node at level l completes when its level then holds an even count.
	for l := 0; t.count(l)%2 == 0; l++ {
		n := t.count(l)
		right := t.levels[l][(n-1)*HashSize : n*HashSize]
		left := t.levels[l][(n-2)*HashSize : (n-1)*HashSize]
		if l+1 == len(t.levels) {
			t.levels = append(t.levels, nil)
		}
		t.levels[l+1] = append(t.levels[l+1], hasher.HashChildren(left, right)...)
	}
}

func (t *Tree) count(l int) uint64 { return uint64(len(t.levels[l]) / HashSize) }

// node returns the hash of a complete node; the caller holds the lock.
func (t *Tree) node(id compact.NodeID) ([]byte, error) {
	if int(id.Level) >= len(t.levels) || id.Index >= t.count(int(id.Level)) {
		return nil, fmt.Errorf("%w: node %d/%d of a tree of %d", ErrBeyondTree, id.Level, id.Index, t.size)
	}
	b := t.levels[id.Level][id.Index*HashSize : (id.Index+1)*HashSize]
	return append([]byte(nil), b...), nil
}

// Root is the root of the tree's first size leaves.
func (t *Tree) Root(size uint64) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size > t.size {
		return nil, fmt.Errorf("%w: root of size %d, tree has %d", ErrBeyondTree, size, t.size)
	}
	if size == 0 {
		return EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	root, err := t.node(ids[len(ids)-1])
	if err != nil {
		return nil, err
	}
	for i := len(ids) - 2; i >= 0; i-- {
		left, err := t.node(ids[i])
		if err != nil {
			return nil, err
		}
		root = hasher.HashChildren(left, root)
	}
	return root, nil
}

// InclusionProof proves leaf index in the tree of size leaves.
func (t *Tree) InclusionProof(index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d of a tree of size %d", ErrBeyondTree, index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return t.rehash(nodes, size)
}

// ConsistencyProof proves that the tree of size1 leaves is a prefix of
// the tree of size2.
func (t *Tree) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("tlog: consistency from size %d to a smaller %d", size1, size2)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return t.rehash(nodes, size2)
}

func (t *Tree) rehash(nodes proof.Nodes, size uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size > t.size {
		return nil, fmt.Errorf("%w: proof at size %d, tree has %d", ErrBeyondTree, size, t.size)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := t.node(id)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// VerifyInclusion checks that eventHash is leaf index of the tree of
// size leaves whose root is root.
func VerifyInclusion(index, size uint64, eventHash []byte, p [][]byte, root []byte) error {
	return proof.VerifyInclusion(hasher, index, size, LeafHash(eventHash), p, root)
}

// VerifyConsistency checks that the tree of size1 leaves with root1 is a
// prefix of the tree of size2 leaves with root2.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	return proof.VerifyConsistency(hasher, size1, size2, p, root1, root2)
}
