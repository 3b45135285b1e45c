package transparency

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/audit"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/kernel/kerneltest"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

func start(t *testing.T, ip, dataDir string) (*kernel.Node, *Service) {
	t.Helper()
	cfg := DefaultConfig(dataDir)
	cfg.CheckpointEvery = time.Hour // the test signs on demand
	cfg.Logger = kerneltest.Logger()
	s := New(cfg)
	n := kerneltest.SingleNode(t, ip, func(c *kernel.Config) { c.DataDir = dataDir }, s)
	return n, s
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// One node, a random ledger: every seq proves against a signed
// checkpoint, offline; any flipped byte, another size or another key
// fails; every pair of a growing ledger's checkpoints is consistent; the
// tree rebuilt from the archive after a restart has the same roots.
func TestProofsOverAGrowingLedger(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	n, s := start(t, "127.0.160.1", dir)
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	c, _ := client.New(client.Config{Addr: srv.URL, Token: token})

	var checkpoints []*api.Checkpoint
	for round := range 4 {
		for i := range 5 + r.IntN(15) {
			if _, err := c.KVPut(ctx, fmt.Sprintf("k%d-%d", round, i), fmt.Sprint(r.Uint64())); err != nil {
				t.Fatal(err)
			}
		}
		cp, err := c.SignCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkpoints = append(checkpoints, cp)
	}
	keys, err := c.CheckpointKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kk, err := tlog.ParseKeys(keys.Text)
	if err != nil {
		t.Fatal(err)
	}
	latest := checkpoints[len(checkpoints)-1]
	if got, err := c.Checkpoint(ctx); err != nil || got.TreeSize < latest.TreeSize {
		t.Fatalf("latest checkpoint: %v %+v", err, got)
	}
	other, _ := tlog.ParseKeys(otherKey(t, keys.KeyName))
	checkEveryInclusion(t, r, c, checkpoints, kk, other)
	for i, a := range checkpoints {
		for _, b := range checkpoints[i:] {
			p, err := c.ProveConsistency(ctx, a.TreeSize, b.TreeSize)
			if err != nil {
				t.Fatal(err)
			}
			if v := audit.VerifyProof(mustJSON(t, p), []byte(a.Note), kk, nil); !v.OK {
				t.Fatalf("%d..%d: %+v", a.TreeSize, b.TreeSize, v)
			}
		}
	}
	restartMatches(t, s, n, dir, token, checkpoints)
}

// checkEveryInclusion proves every seq against the latest checkpoint and
// checks that a flipped byte, another size or another key fails.
func checkEveryInclusion(t *testing.T, r *rand.Rand, c *client.Client, checkpoints []*api.Checkpoint, kk, other tlog.Keys) {
	ctx := context.Background()
	latest := checkpoints[len(checkpoints)-1]
	for seq := uint64(1); seq <= latest.TreeSize; seq++ {
		p, err := c.ProveInclusion(ctx, seq, latest.TreeSize)
		if err != nil {
			t.Fatal(err)
		}
		pj := mustJSON(t, p)
		if v := audit.VerifyProof(pj, []byte(latest.Note), kk, nil); !v.OK || v.Event == nil || v.Event.Seq != seq {
			t.Fatalf("seq %d: %+v", seq, v)
		}
		if v := audit.VerifyProof(pj, []byte(latest.Note), other, nil); v.OK {
			t.Fatalf("seq %d verified with another kernel key", seq)
		}
		if v := audit.VerifyProof(pj, []byte(checkpoints[0].Note), kk, nil); v.OK {
			t.Fatalf("seq %d verified against a checkpoint of another size", seq)
		}
		// Flip one byte of a hash, of the event hash, of the record.
		bad := *p
		bad.EventHash = flipHex(r, p.EventHash)
		if v := audit.VerifyProof(mustJSON(t, &bad), []byte(latest.Note), kk, nil); v.OK {
			t.Fatalf("seq %d: a flipped event hash verified", seq)
		}
		if len(p.Proof) > 0 {
			bad = *p
			bad.Proof = append([]string(nil), p.Proof...)
			k := r.IntN(len(bad.Proof))
			bad.Proof[k] = flipHex(r, bad.Proof[k])
			if v := audit.VerifyProof(mustJSON(t, &bad), []byte(latest.Note), kk, nil); v.OK {
				t.Fatalf("seq %d: a flipped proof hash verified", seq)
			}
		}
		bad = *p
		bad.TreeSize++
		if v := audit.VerifyProof(mustJSON(t, &bad), []byte(latest.Note), kk, nil); v.OK {
			t.Fatalf("seq %d: a wrong tree size verified", seq)
		}
	}
	note := []byte(latest.Note)
	for i := range note {
		b := bytes.Clone(note)
		b[i] ^= 1 << r.IntN(8)
		p, _ := c.ProveInclusion(ctx, 1, latest.TreeSize)
		if v := audit.VerifyProof(mustJSON(t, p), b, kk, nil); v.OK {
			t.Fatalf("a checkpoint with byte %d flipped verified", i)
		}
	}
}

// restartMatches restarts the node on its data dir: the tree rebuilt
// from the archive has every checkpoint's root; then audit replay checks
// the checkpoints.
func restartMatches(t *testing.T, s *Service, n *kernel.Node, dir, token string, checkpoints []*api.Checkpoint) {
	ctx := context.Background()
	latest := checkpoints[len(checkpoints)-1]
	roots := map[uint64][]byte{}
	for _, cp := range checkpoints {
		roots[cp.TreeSize], _ = s.Tree().Root(cp.TreeSize)
	}
	n.Close()
	n2, s2 := start(t, "127.0.160.2", dir)
	srv2 := httptest.NewServer(n2.Handler())
	defer srv2.Close()
	if err := s2.waitSize(ctx, latest.TreeSize); err != nil {
		t.Fatal(err)
	}
	for size, want := range roots {
		if got, err := s2.Tree().Root(size); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("after restart, root of %d is %x (%v), was %x", size, got, err, want)
		}
	}
	c2, _ := client.New(client.Config{Addr: srv2.URL, Token: token})
	if got, err := c2.Checkpoint(ctx); err != nil || got.TreeSize < latest.TreeSize {
		t.Fatalf("latest checkpoint after restart: %v", err)
	}
	n2.Close()
	replayChecksCheckpoints(t, dir, checkpoints)
}

// audit replay recomputes the tree, checks every stored checkpoint, and
// fails on one the history contradicts (signed with the node's own key)
// or one beyond its end.
func replayChecksCheckpoints(t *testing.T, dir string, checkpoints []*api.Checkpoint) {
	latest := checkpoints[len(checkpoints)-1]
	rep, err := audit.ReplayDataDir(dir, nil)
	if err != nil || !rep.OK || rep.Checkpoints < len(checkpoints) || rep.TreeSize < latest.TreeSize {
		t.Fatalf("replay: %v %+v", err, rep)
	}
	seed, err := os.ReadFile(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer := tlog.NewSigner(tlog.KeyName(latest.KernelID), ed25519.NewKeyFromSeed(seed))
	var notes [][]byte
	for _, cp := range checkpoints {
		notes = append(notes, []byte(cp.Note))
	}
	c, _ := tlog.ParseCheckpoint(mustText(t, latest.Note))
	forged := c
	forged.Root = bytes.Repeat([]byte{7}, 32)
	fn, _ := tlog.Sign(forged, signer)
	rep, err = audit.ReplayDataDirCheckpoints(dir, append(notes[:len(notes):len(notes)], fn), nil)
	if err != nil || rep.OK || rep.BadSeq != c.Size || !strings.Contains(rep.Message, "rewritten") {
		t.Fatalf("a checkpoint the history contradicts: %v %+v", err, rep)
	}
	beyond := c
	beyond.Size = rep.Events + 1000
	bn, _ := tlog.Sign(beyond, signer)
	rep, err = audit.ReplayDataDirCheckpoints(dir, append(notes[:len(notes):len(notes)], bn), nil)
	if err != nil || rep.OK || !strings.Contains(rep.Message, "truncated") {
		t.Fatalf("a checkpoint beyond the history: %v %+v", err, rep)
	}
	_, stranger, _ := ed25519.GenerateKey(nil)
	sn, _ := tlog.Sign(c, tlog.NewSigner(tlog.KeyName(latest.KernelID), stranger))
	rep, err = audit.ReplayDataDirCheckpoints(dir, [][]byte{sn}, nil)
	if err != nil || rep.OK || !strings.Contains(rep.Message, "member key") {
		t.Fatalf("a checkpoint signed by a stranger: %v %+v", err, rep)
	}
}

func mustText(t *testing.T, note string) string {
	text, _, err := tlog.SplitNote([]byte(note))
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func flipHex(r *rand.Rand, h string) string {
	b := []byte(h)
	i := r.IntN(len(b))
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

func otherKey(t *testing.T, name string) string {
	k, err := tlog.VerifierKey(name, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
