package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// A kernel that rewrote its history after a countersigned checkpoint
// (a forked archive: the same prefix, then other events, signed with
// the same, valid node key) cannot prove its new checkpoint consistent
// with the one the sovereign countersigned; the honest history can.
func TestForkedHistoryCaughtByTheCountersignedCheckpoint(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	kpub, kpriv, _ := ed25519.GenerateKey(nil)
	spub, spriv, _ := ed25519.GenerateKey(nil)
	kname, sname := tlog.KeyName("acme"), tlog.KeyName("sovereign")
	kv, _ := tlog.VerifierKey(kname, kpub)
	sv, _ := tlog.VerifierKey(sname, spub)
	kernel, _ := tlog.ParseKeys(kv)
	sov, _ := tlog.ParseKeys(sv)
	signer := tlog.NewSigner(kname, kpriv)

	event := func() []byte {
		h := sha256.Sum256([]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		return h[:]
	}
	honest, forked := tlog.NewTree(), tlog.NewTree()
	m := 10 + r.IntN(40)
	var lastHead []byte
	for range m { // the common prefix
		lastHead = event()
		honest.Append(lastHead)
		forked.Append(lastHead)
	}
	signAt := func(tr *tlog.Tree, size uint64, head []byte) []byte {
		root, _ := tr.Root(size)
		note, err := tlog.Sign(tlog.Checkpoint{KernelID: "acme", Size: size, Root: root, Head: head, Time: int64(size)}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return note
	}
	sign := func(tr *tlog.Tree, head []byte) []byte { return signAt(tr, tr.Size(), head) }
	held, err := tlog.Countersign(sign(honest, lastHead), tlog.NewSigner(sname, spriv))
	if err != nil {
		t.Fatal(err)
	}
	// The fork rewrites the last event of the prefix and goes on.
	forked = tlog.NewTree()
	for range m - 1 {
		forked.Append(event())
	}
	var hh, fh []byte
	for range 1 + r.IntN(30) {
		hh, fh = event(), event()
		honest.Append(hh)
		forked.Append(fh)
	}
	for range r.IntN(10) {
		fh = event()
		forked.Append(fh)
	}
	prove := func(tr *tlog.Tree, to []byte) []byte {
		p, err := tr.ConsistencyProof(uint64(m), tr.Size())
		if err != nil {
			t.Fatal(err)
		}
		a, _ := tr.Root(uint64(m))
		b, _ := tr.Root(tr.Size())
		hs := make([]string, len(p))
		for i, h := range p {
			hs[i] = hex.EncodeToString(h)
		}
		from := held
		if tr == forked { // the fork's own checkpoint at the held size
			from = signAt(tr, uint64(m), make([]byte, 32))
		}
		j, _ := json.Marshal(api.ConsistencyProof{FromSize: uint64(m), ToSize: tr.Size(), FromRoot: hex.EncodeToString(a), ToRoot: hex.EncodeToString(b),
			Proof: hs, From: string(from), To: string(to)})
		return j
	}
	good := prove(honest, sign(honest, hh))
	if v := VerifyProof(good, held, kernel, &sov); !v.OK || !v.Countersigned {
		t.Fatalf("the honest history: %+v", v)
	}
	bad := prove(forked, sign(forked, fh))
	if v := VerifyProof(bad, held, kernel, &sov); v.OK {
		t.Fatalf("the forked history verified against the countersigned checkpoint: %+v", v)
	} else {
		t.Logf("caught: %s", v.Message)
	}
	// The fork's proof with the held checkpoint put in as its from end.
	var p api.ConsistencyProof
	_ = json.Unmarshal(bad, &p)
	p.From = string(held)
	b2, _ := json.Marshal(p)
	if v := VerifyProof(b2, held, kernel, &sov); v.OK {
		t.Fatalf("the forked proof verified from the held checkpoint: %+v", v)
	}
	// Without the sovereign's countersignature the held checkpoint is refused
	// when the auditor asks for it.
	if v := VerifyProof(good, sign(honest, hh), kernel, &sov); v.OK {
		t.Fatal("a checkpoint without a countersignature passed with --sovereign-key")
	}
}

// FuzzVerifyProof: arbitrary proof files never verify against a
// checkpoint they were not made for, and never panic.
func FuzzVerifyProof(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	name := tlog.KeyName("k")
	vk, _ := tlog.VerifierKey(name, key.Public().(ed25519.PublicKey))
	keys, _ := tlog.ParseKeys(vk)
	tr := tlog.NewTree()
	for i := range 9 {
		h := sha256.Sum256([]byte{byte(i)})
		tr.Append(h[:])
	}
	root, _ := tr.Root(9)
	note, _ := tlog.Sign(tlog.Checkpoint{KernelID: "k", Size: 9, Root: root, Head: root, Time: 1}, tlog.NewSigner(name, key))
	f.Add([]byte(`{"seq":1,"leaf_index":0,"tree_size":9,"root":"","proof":[],"event_hash":""}`))
	f.Add([]byte(`{"from_size":1,"to_size":9,"proof":[]}`))
	f.Fuzz(func(t *testing.T, proof []byte) {
		if v := VerifyProof(proof, note, keys, nil); v.OK && v.Kind == "consistency" {
			t.Fatalf("a consistency proof verified without the kernel's second checkpoint: %s", proof)
		}
	})
}
