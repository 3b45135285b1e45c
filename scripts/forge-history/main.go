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
	key := ed25519.NewKeyFromSeed(seed)
	src, err := archive.Open(filepath.Join(dataDir, "archive"), archive.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := archive.Open(filepath.Join(out, "archive"), archive.Options{MaxRecordBytes: fsm.MaxEpochBytes + 1<<20})
	if err != nil {
		return err
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
	if err != nil {
		return err
	}
	kid := l.State().Meta.KernelID
	signer := tlog.NewSigner(tlog.KeyName(kid), key)
	sign := func(size uint64, head []byte, t int64) ([]byte, error) {
		root, err := tree.Root(size)
		if err != nil {
			return nil, err
		}
		return tlog.Sign(tlog.Checkpoint{KernelID: kid, Size: size, Root: root, Head: head, Time: t}, signer)
	}
	size := tree.Size()
	head := l.Head()
	to, err := sign(size, head.Hash, lastTime)
	if err != nil {
		return err
	}
	// The forger's own checkpoint at the held size (head and time of its
	// forged event there).
	var heldHead []byte
	var heldTime int64
	_ = dst.Iterate(heldSize, func(rec archive.Record) error {
		ae, err := fsm.DecodeArchived(rec.Data)
		if err == nil && ae.Event != nil && heldHead == nil {
			heldHead, heldTime = ae.Head, ae.Event.Time
		}
		return nil
	})
	from, err := sign(heldSize, heldHead, heldTime)
	if err != nil {
		return err
	}
	ckDir := filepath.Join(out, tlog.CheckpointDir)
	if err := os.MkdirAll(ckDir, 0o700); err != nil {
		return err
	}
	for s, n := range map[uint64][]byte{heldSize: from, size: to} {
		if err := os.WriteFile(filepath.Join(ckDir, fmt.Sprintf("%020d.note", s)), n, 0o600); err != nil {
			return err
		}
	}
	p, err := tree.ConsistencyProof(heldSize, size)
	if err != nil {
		return err
	}
	r1, _ := tree.Root(heldSize)
	r2, _ := tree.Root(size)
	cp := api.ConsistencyProof{FromSize: heldSize, ToSize: size, FromRoot: hex.EncodeToString(r1), ToRoot: hex.EncodeToString(r2), From: string(from), To: string(to)}
	for _, h := range p {
		cp.Proof = append(cp.Proof, hex.EncodeToString(h))
	}
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	fmt.Printf("forged: erased seq %d; the forged ledger has %d events, head %x\n", erase, size, head.Hash)
	return os.WriteFile(proofOut, append(b, '\n'), 0o600)
}
