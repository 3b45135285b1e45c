// Command forge-history is the adversary of the transparency demo
// (scripts/demo-transparency.sh): an operator who holds a stopped node's
// data dir and its node key rewrites the kernel's history to erase one
// event. It re-applies every archived entry but the erased one in a
// fresh ledger, so the forged archive is a valid hash chain that `audit
// replay` accepts on its own; signs checkpoints of the forged Merkle
// tree with the stolen node key; and writes the consistency proof it
// would have to show an auditor who holds an earlier checkpoint. The
// auditor's `audit verify-proof` against that checkpoint catches it.
//
//	forge-history --data-dir D --erase SEQ --out F --held-size N --proof-out P
//
// It is demo tooling, not part of the kernel.
package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

func main() {
	dataDir := flag.String("data-dir", "", "a stopped node's data dir")
	erase := flag.Uint64("erase", 0, "the seq of the event to erase")
	out := flag.String("out", "", "the forged data dir to write (its archive and checkpoints)")
	heldSize := flag.Uint64("held-size", 0, "the size of the checkpoint the auditor holds")
	proofOut := flag.String("proof-out", "", "where to write the forged consistency proof")
	flag.Parse()
	if err := forge(*dataDir, *erase, *out, *heldSize, *proofOut); err != nil {
		fmt.Fprintln(os.Stderr, "forge-history:", err)
		os.Exit(1)
	}
}

func forge(dataDir string, erase uint64, out string, heldSize uint64, proofOut string) error {
	seed, err := os.ReadFile(filepath.Join(dataDir, "node.key"))
	if err != nil {
		return err
	}
	l, tree, lastTime, err := rewrite(dataDir, out, erase)
	if err != nil {
		return err
	}
	f := forger{l: l, tree: tree, out: out, signer: tlog.NewSigner(tlog.KeyName(l.State().Meta.KernelID), ed25519.NewKeyFromSeed(seed))}
	head := l.Head()
	to, err := f.sign(tree.Size(), head.Hash, lastTime)
	if err != nil {
		return err
	}
	from, err := f.signAt(heldSize)
	if err != nil {
		return err
	}
	if err := f.store(map[uint64][]byte{heldSize: from, tree.Size(): to}); err != nil {
		return err
	}
	fmt.Printf("forged: erased seq %d; the forged ledger has %d events, head %x\n", erase, tree.Size(), head.Hash)
	return f.writeProof(proofOut, heldSize, from, to)
}

// rewrite re-applies every archived entry of dataDir but the erased
// event's into a fresh ledger, archiving the result under out.
func rewrite(dataDir, out string, erase uint64) (*fsm.Ledger, *tlog.Tree, int64, error) {
	src, err := archive.Open(filepath.Join(dataDir, "archive"), archive.Options{NoSync: true})
	if err != nil {
		return nil, nil, 0, err
	}
	defer src.Close()
	dst, err := archive.Open(filepath.Join(out, "archive"), archive.Options{MaxRecordBytes: fsm.MaxEpochBytes + 1<<20})
	if err != nil {
		return nil, nil, 0, err
	}
	defer dst.Close()
	l, tree := fsm.New(), tlog.NewTree()
	var lastTime int64
	err = src.Iterate(0, func(rec archive.Record) error {
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil {
			return err
		}
		if ae.Event != nil && ae.Event.Seq == erase {
			return nil // the erased event: its entry never happened
		}
		a := l.Apply(rec.Index, ae.Entry)
		kind := archive.KindNoop
		if a.Event != nil {
			kind = archive.KindEvent
			tree.Append(a.Head[:])
			lastTime = a.Event.Time
		}
		return dst.Append([]archive.Record{{Index: rec.Index, Seq: l.State().Seq, Kind: kind, Data: fsm.EncodeArchived(ae.Entry, a)}})
	})
	return l, tree, lastTime, err
}

// forger signs and writes what the forged history shows.
type forger struct {
	l      *fsm.Ledger
	tree   *tlog.Tree
	out    string
	signer note.Signer
}

func (f *forger) sign(size uint64, head []byte, t int64) ([]byte, error) {
	root, err := f.tree.Root(size)
	if err != nil {
		return nil, err
	}
	return tlog.Sign(tlog.Checkpoint{KernelID: f.l.State().Meta.KernelID, Size: size, Root: root, Head: head, Time: t}, f.signer)
}

// signAt signs the forged tree at an earlier size, with the head and
// time of the forged event there.
func (f *forger) signAt(size uint64) ([]byte, error) {
	dst, err := archive.Open(filepath.Join(f.out, "archive"), archive.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	rec, err := dst.ReadSeq(size)
	if err != nil {
		return nil, err
	}
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil || ae.Event == nil {
		return nil, fmt.Errorf("forged seq %d: %v", size, err)
	}
	return f.sign(size, ae.Head, ae.Event.Time)
}

func (f *forger) store(notes map[uint64][]byte) error {
	dir := filepath.Join(f.out, tlog.CheckpointDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for size, n := range notes {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.note", size)), n, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (f *forger) writeProof(path string, heldSize uint64, from, to []byte) error {
	size := f.tree.Size()
	p, err := f.tree.ConsistencyProof(heldSize, size)
	if err != nil {
		return err
	}
	r1, _ := f.tree.Root(heldSize)
	r2, _ := f.tree.Root(size)
	cp := api.ConsistencyProof{FromSize: heldSize, ToSize: size, FromRoot: hex.EncodeToString(r1), ToRoot: hex.EncodeToString(r2), From: string(from), To: string(to)}
	for _, h := range p {
		cp.Proof = append(cp.Proof, hex.EncodeToString(h))
	}
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}
