package clustertests

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/audit"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// cosignRequest mirrors the transparency service's checkpoint.cosign
// frame payload.
type cosignRequest struct {
	Note    []byte   `codec:"note"`
	OldSize uint64   `codec:"old_size"`
	Proof   [][]byte `codec:"proof"`
}

// The sovereign countersigns a domain's checkpoints as it witnesses them:
// an auditor verifies a domain's inclusion proof against the domain's and
// the sovereign's keys; a rewritten history, signed with a real node key
// of the domain, gets no countersignature and leaves evidence.
//
// Address block 127.0.163.0/24.
func TestSovereignCountersignsDomainCheckpoints(t *testing.T) {
	w := newFedWorld(t, 163)
	sov := w.startSovereign("s1", 1)
	acme := w.startDomain(sov, "acme", 1, 11, nil)
	leader := acme.leader(20 * time.Second)
	put := func(i int) {
		permit(t, "kv put")(acme.apply(fsm.Envelope{Type: fsm.CmdKVPut, Auth: kernel.TokenHash(acme.root), RequestID: fmt.Sprintf("put-%d", i),
			Payload: fsm.Encode(&fsm.KVPut{Key: fmt.Sprintf("k%d", i), Value: []byte("v")})}))
	}
	keysOf := func(name string) tlog.Keys {
		var ck api.CheckpointKeys
		if code, body := w.do(name, http.MethodGet, "/v1/ledger/checkpoint/keys", "", nil, &ck); code != http.StatusOK {
			t.Fatalf("keys of %s: %d %s", name, code, body)
		}
		k, err := tlog.ParseKeys(ck.Text)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	signAndWait := func() *api.Checkpoint {
		var cp api.Checkpoint
		eventually(t, "a checkpoint signed", 10*time.Second, func() bool { // a stale (503) answer is retried
			code, _ := w.do(leader, http.MethodPost, "/v1/ledger/checkpoint", acme.root, nil, &cp)
			return code == http.StatusOK
		})
		var got api.Checkpoint
		eventually(t, "the sovereign countersigns", 20*time.Second, func() bool {
			code, _ := w.do(leader, http.MethodGet, "/v1/ledger/checkpoint?countersigned=1", acme.root, nil, &got)
			return code == http.StatusOK && got.TreeSize >= cp.TreeSize
		})
		return &got
	}
	for i := range 10 {
		put(i)
	}
	c1 := signAndWait()
	dk, sk := keysOf(leader), keysOf("s1")
	if _, err := tlog.OpenCountersigned([]byte(c1.Note), dk, sk); err != nil {
		t.Fatalf("countersigned checkpoint: %v\n%s", err, c1.Note)
	}
	var proof api.InclusionProof
	if code, body := w.do(leader, http.MethodGet, fmt.Sprintf("/v1/ledger/proof/inclusion/5?tree_size=%d", c1.TreeSize), acme.root, nil, &proof); code != http.StatusOK {
		t.Fatalf("prove: %d %s", code, body)
	}
	pj, _ := json.Marshal(proof)
	if v := audit.VerifyProof(pj, []byte(c1.Note), dk, &sk); !v.OK || !v.Countersigned {
		t.Fatalf("inclusion with the sovereign's key: %+v", v)
	}
	for i := 10; i < 25; i++ {
		put(i)
	}
	c2 := signAndWait()
	if c2.TreeSize <= c1.TreeSize {
		t.Fatalf("second checkpoint %d after %d", c2.TreeSize, c1.TreeSize)
	}

	// A rewritten history: same kernel, a real node key of the domain,
	// another root — at the countersigned size and beyond it.
	seed, err := os.ReadFile(filepath.Join(w.cfg(leader).DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	c2p, _ := tlog.ParseCheckpoint(mustNoteText(t, c2.Note))
	signer := tlog.NewSigner(tlog.KeyName(c2p.KernelID), ed25519.NewKeyFromSeed(seed))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, forged := range []tlog.Checkpoint{
		{KernelID: c2p.KernelID, Size: c2p.Size, Root: bytes.Repeat([]byte{1}, 32), Head: c2p.Head, Time: c2p.Time},
		{KernelID: c2p.KernelID, Size: c2p.Size + 5, Root: bytes.Repeat([]byte{2}, 32), Head: bytes.Repeat([]byte{3}, 32), Time: c2p.Time + 1},
	} {
		note, _ := tlog.Sign(forged, signer)
		req := cosignRequest{Note: note, OldSize: c2p.Size, Proof: [][]byte{bytes.Repeat([]byte{4}, 32)}}
		_, err := w.node(leader).SendToSovereign(ctx, "checkpoint.cosign", fsm.Encode(&req))
		if err == nil || !strings.Contains(err.Error(), "contradicts") {
			t.Fatalf("a forged checkpoint at %d: %v", forged.Size, err)
		}
		ev := filepath.Join(w.cfg("s1").DataDir, "transparency", "witnessed", fmt.Sprintf("acme.conflict-%d.note", forged.Size))
		if _, err := os.Stat(ev); err != nil {
			t.Fatalf("no evidence kept of the forged checkpoint at %d: %v", forged.Size, err)
		}
	}
	// The honest history still is.
	c3 := signAndWait()
	if _, err := tlog.OpenCountersigned([]byte(c3.Note), dk, sk); err != nil {
		t.Fatal(err)
	}
}

func mustNoteText(t *testing.T, note string) string {
	text, _, err := tlog.SplitNote([]byte(note))
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// nodeDo answers one HTTP request from node's handler.
func nodeDo(t *testing.T, n *kernel.Node, method, path, token string, out any) int {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	if rec.Code == http.StatusOK && out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatal(err)
		}
	}
	if rec.Code != http.StatusOK {
		t.Logf("%s %s on %s: %d %s", method, path, n.Name(), rec.Code, rec.Body.String())
	}
	return rec.Code
}

// On a 3-node kernel a checkpoint asked of a follower is signed by the
// leader and reaches every member, each of which checked it against its
// own tree; after the leader is killed, the new leader's checkpoints
// extend the old ones.
//
// Address block 127.0.165.0/24.
func TestCheckpointsReachEveryMember(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 165, size: 3})
	ctx := context.Background()
	for i := range 30 {
		if _, err := c.put(ctx, c.names[i%3], fmt.Sprintf("k%d", i), "v", fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.waitLeader(10 * time.Second)
	follower := c.names[0]
	if follower == leader {
		follower = c.names[1]
	}
	// A loaded machine may answer stale (503) while a read index cannot
	// be confirmed within a second: retry as a client would.
	var cp1 api.Checkpoint
	eventually(t, "a checkpoint signed through a follower", 10*time.Second, func() bool {
		return nodeDo(t, c.node(follower), http.MethodPost, "/v1/ledger/checkpoint", c.token, &cp1) == http.StatusOK
	})
	var keys api.CheckpointKeys
	nodeDo(t, c.node(follower), http.MethodGet, "/v1/ledger/checkpoint/keys", "", &keys)
	if len(keys.Keys) != 3 {
		t.Fatalf("want the 3 members' keys, got %+v", keys)
	}
	kk, _ := tlog.ParseKeys(keys.Text)
	for _, name := range c.names {
		var got api.Checkpoint
		eventually(t, name+" holds the checkpoint", 10*time.Second, func() bool {
			return nodeDo(t, c.node(name), http.MethodGet, "/v1/ledger/checkpoint", c.token, &got) == http.StatusOK && got.TreeSize >= cp1.TreeSize
		})
	}
	c.kill(leader)
	newLeader := c.waitLeaderAmong(slicesWithout(c.names, leader), 20*time.Second)
	for i := range 10 {
		if _, err := c.put(ctx, newLeader, fmt.Sprintf("after%d", i), "v", fmt.Sprintf("a%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var cp2 api.Checkpoint
	eventually(t, "a checkpoint signed by the new leader", 10*time.Second, func() bool {
		return nodeDo(t, c.node(newLeader), http.MethodPost, "/v1/ledger/checkpoint", c.token, &cp2) == http.StatusOK
	})
	var p api.ConsistencyProof
	eventually(t, "a consistency proof", 10*time.Second, func() bool {
		return nodeDo(t, c.node(newLeader), http.MethodGet, fmt.Sprintf("/v1/ledger/proof/consistency?from=%d&to=%d", cp1.TreeSize, cp2.TreeSize), c.token, &p) == http.StatusOK
	})
	p.From, p.To = cp1.Note, cp2.Note
	pj, _ := json.Marshal(p)
	if v := audit.VerifyProof(pj, []byte(cp1.Note), kk, nil); !v.OK {
		t.Fatalf("the new leader's checkpoint does not extend the old leader's: %+v", v)
	}
}

func slicesWithout(names []string, drop string) []string {
	var out []string
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}
