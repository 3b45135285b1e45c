package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
)

// watchedBody is a request body that records whether anyone read it.
type watchedBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func (b *watchedBody) Close() error { return nil }

// restoreRequest serves one POST /v1/snapshot/restore with body (length
// -1: not declared) through the node's handler.
func restoreRequest(n *Node, token string, body *watchedBody, length int64) (int, api.ErrorBody, []byte) {
	req := httptest.NewRequest(http.MethodPost, "/v1/snapshot/restore", nil)
	req.Body, req.ContentLength = body, length
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	var eb api.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	return rec.Code, eb, rec.Body.Bytes()
}

// grantToken grants a fresh token the ops on "*" as the root operator.
func grantToken(t *testing.T, n *Node, root, name string, operator bool, ops ...string) string {
	t.Helper()
	token := "dmt_" + name
	res, err := n.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdCapGrant, Auth: TokenHash(root), Payload: fsm.Encode(&fsm.CapGrant{
		TokenHash: TokenHash(token), Entity: name, Operator: operator, Ops: ops, Resources: []string{"*"}})})
	if err != nil || res.Decision != fsm.DecisionPermit {
		t.Fatalf("grant %s: %v %s", name, err, res.Reason)
	}
	return token
}

// saveSnapshot saves a snapshot through the handler (recording its head
// as a checkpoint).
func saveSnapshot(t *testing.T, n *Node, token string) []byte {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/snapshot/save", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("snapshot save: %d %s", rec.Code, rec.Body.Bytes())
	}
	return rec.Body.Bytes()
}

// A token without snapshot.manage is refused before the handler reads a
// byte of its body; so is an unknown token. The root operator's body is
// read (the watch works).
func TestSnapshotRestoreChecksScopeBeforeTheBody(t *testing.T) {
	n, _ := singleNodeAt(t, "127.0.0.130", nil)
	root, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	agent := grantToken(t, n, root, "agent", false, "*")
	auditor := grantToken(t, n, root, "auditor", true, fsm.OpAuditRead, fsm.OpCapGrant)
	big := bytes.Repeat([]byte("s"), 8<<20)
	before, _ := n.Head()
	for _, c := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"an agent's wildcard", agent, http.StatusForbidden, api.CodeForbidden},
		{"an operator without snapshot.manage", auditor, http.StatusForbidden, api.CodeForbidden},
		{"an unknown token", "dmt_nobody", http.StatusUnauthorized, api.CodeUnauthorized},
	} {
		body := &watchedBody{r: bytes.NewReader(big)}
		status, eb, _ := restoreRequest(n, c.token, body, int64(len(big)))
		if status != c.status || eb.Error.Code != c.code {
			t.Errorf("%s: %d %q (%s), want %d %q", c.name, status, eb.Error.Code, eb.Error.Message, c.status, c.code)
		}
		if body.read.Load() {
			t.Errorf("%s: the handler read the body of a caller it refuses", c.name)
		}
	}
	if after, _ := n.Head(); after.Seq != before.Seq {
		t.Fatalf("refused restores reached the ledger: seq %d -> %d", before.Seq, after.Seq)
	}
	body := &watchedBody{r: bytes.NewReader([]byte("not a snapshot"))}
	if status, eb, _ := restoreRequest(n, root, body, 14); status != http.StatusConflict || eb.Error.Code != api.CodeVerifyFailed || !body.read.Load() {
		t.Fatalf("the root operator's garbage: %d %q, read %v", status, eb.Error.Code, body.read.Load())
	}
}

// A snapshot above the node's restore limit is 413 too_large with the
// limit named: before a byte is read when Content-Length declares it, at
// the limit when the body streams undeclared. Nothing reaches the ledger
// and no spool file is left.
func TestSnapshotRestoreAboveTheLimit(t *testing.T) {
	n, cfg := singleNodeAt(t, "127.0.0.131", func(c *Config) { c.MaxRestoreBytes = 1 << 20 })
	root, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		put(t, n, root, fmt.Sprint("k", i), strings.Repeat("v", 700_000))
	}
	snap := saveSnapshot(t, n, root)
	if len(snap) <= 1<<20 {
		t.Fatalf("snapshot of %d bytes is within the limit", len(snap))
	}
	before, _ := n.Head()
	for _, declared := range []bool{true, false} {
		body := &watchedBody{r: bytes.NewReader(snap)}
		length := int64(-1)
		if declared {
			length = int64(len(snap))
		}
		status, eb, _ := restoreRequest(n, root, body, length)
		if status != http.StatusRequestEntityTooLarge || eb.Error.Code != api.CodeTooLarge || !strings.Contains(eb.Error.Message, "restore limit of 1048576 bytes") {
			t.Fatalf("declared %v: %d %q %q", declared, status, eb.Error.Code, eb.Error.Message)
		}
		if declared && body.read.Load() {
			t.Fatal("a body declared above the limit was read")
		}
	}
	if after, _ := n.Head(); after.Seq != before.Seq {
		t.Fatalf("refused restores reached the ledger: seq %d -> %d", before.Seq, after.Seq)
	}
	if left, _ := filepath.Glob(filepath.Join(cfg.DataDir, restoreSpoolPrefix+"*")); len(left) > 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

// waitHead waits until n has applied up to head, and requires head there.
func waitHead(t *testing.T, n *Node, head fsm.HeadRef, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var h fsm.HeadRef
		n.fsm.read(func(l *fsm.Ledger, _ uint64) { h = l.Head() })
		if h.Seq >= head.Seq {
			if h.Seq != head.Seq || !bytes.Equal(h.Hash, head.Hash) {
				t.Fatalf("head %s, want %s", h, head)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("head %s after %s, want %s", h, timeout, head)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zeroBodySnapshot streams a snapshot file of about size bytes whose body
// is zeros and whose header names head: it verifies as a stream (the
// digest is the body's), not as a state. It returns the stream and its
// exact size.
func zeroBodySnapshot(head fsm.HeadRef, epoch uint64, size int64) (io.Reader, int64) {
	tailOf := func(digest []byte) []byte {
		one := fsm.Encode(&fsm.SnapshotFile{Format: 1, Head: head, Epoch: epoch, Digest: digest, Body: []byte{0}})
		return one[9:] // 0x85, "body" (5 bytes), a bin 8 of one byte (3)
	}
	body := size - int64(len(tailOf(make([]byte, 32)))) - 11
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(zeros{}, body))
	prefix := []byte{0x85, 0xa4, 'b', 'o', 'd', 'y', 0xc6, byte(body >> 24), byte(body >> 16), byte(body >> 8), byte(body)}
	tail := tailOf(h.Sum(nil))
	return io.MultiReader(bytes.NewReader(prefix), io.LimitReader(zeros{}, body), bytes.NewReader(tail)), int64(len(prefix)) + body + int64(len(tail))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// From protocol 4 a restore sent to a follower is staged in epoch.chunk
// entries of at most 1 MiB, installed by one epoch, and every replica
// ends at the same head with the snapshot's values and no staging. A
// snapshot whose body verifies but does not decode is staged, refused
// by the epoch (snapshot_invalid, the answer) and its staging aborted.
func TestSnapshotRestoreStagedThroughAFollower(t *testing.T) {
	tc := startClusterAt(t, []string{"127.0.0.130", "127.0.0.131", "127.0.0.132"})
	leader := tc.leader(10 * time.Second)
	root, _, err := leader.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var follower *Node
	for _, n := range tc.nodes {
		if n != leader {
			follower = n
		}
	}
	value := strings.Repeat("v", 700_000)
	for i := 0; i < 4; i++ {
		put(t, leader, root, fmt.Sprint("k", i), value)
	}
	snap := saveSnapshot(t, leader, root)
	put(t, leader, root, "k0", "changed")
	put(t, leader, root, "extra", "x")
	tc.requireSameHead(10 * time.Second)

	status, _, out := restoreRequest(follower, root, &watchedBody{r: bytes.NewReader(snap)}, int64(len(snap)))
	var r api.SnapshotRestoreResponse
	want := (len(snap) + fsm.MaxEpochChunkBytes - 1) / fsm.MaxEpochChunkBytes
	if err := json.Unmarshal(out, &r); err != nil || status != http.StatusOK || r.Decision != "permit" || r.Chunks != want || r.Epoch != 1 {
		t.Fatalf("staged restore of %d bytes (want %d chunks): %d %s", len(snap), want, status, out)
	}
	tc.requireSameHead(10 * time.Second)
	for _, n := range tc.nodes {
		n.fsm.read(func(l *fsm.Ledger, _ uint64) {
			st := l.State()
			if e := st.KV["k0"]; e == nil || string(e.Value) != value || st.KV["extra"] != nil || st.Staging != nil {
				t.Errorf("%s after the restore: k0 %v, extra %v, staging %v", n.Name(), e != nil, st.KV["extra"] != nil, st.Staging != nil)
			}
		})
	}
	chunks := 0
	if err := leader.Events(1, func(ev api.Event) error {
		if ev.Type == fsm.CmdEpochChunk.String() && ev.Decision == "permit" {
			chunks++
		}
		return nil
	}); err != nil || chunks != want {
		t.Fatalf("%d epoch.chunk events in the ledger (%v), want %d", chunks, err, want)
	}
	if v := follower.VerifyArchive(); !v.OK {
		t.Fatalf("follower archive: %+v", v)
	}

	sf, _, err := fsm.DecodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	bogus, size := zeroBodySnapshot(sf.Head, sf.Epoch, 2<<20+5)
	status, _, out = restoreRequest(follower, root, &watchedBody{r: bogus}, size)
	r = api.SnapshotRestoreResponse{}
	if err := json.Unmarshal(out, &r); err != nil || status != http.StatusOK || r.Decision != "deny" || r.Reason != "snapshot_invalid" || r.Chunks != 3 {
		t.Fatalf("a snapshot whose body does not decode: %d %s", status, out)
	}
	tc.requireSameHead(10 * time.Second)
	for _, n := range tc.nodes {
		n.fsm.read(func(l *fsm.Ledger, _ uint64) {
			if st := l.State(); st.Staging != nil || st.Epoch != 1 || st.KV["k0"] == nil {
				t.Errorf("%s after the refused epoch: staging %v, epoch %d", n.Name(), st.Staging != nil, st.Epoch)
			}
		})
	}
}
