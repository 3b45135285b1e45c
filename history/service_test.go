package history

import (
	"context"
	"fmt"
	"math/rand"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/kernel/kerneltest"
)

// TestAsOfOverHTTP runs a real node (Raft on disk, snapshots every 64
// entries with the log compacted behind them) and checks, over the API:
// kv get --as-of returns each overwritten value at the seq it was
// written; the read is ledgered and judged on the caller's current
// capability (a revoked reader is denied, and the denial is recorded);
// the other as-of reads need audit.read; cap list --as-of shows a
// capability as it was before its revocation; a time resolves like its
// seq; history lists an agent's decisions.
func TestAsOfOverHTTP(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	svc := New(Config{Every: 16})
	n := kerneltest.SingleNode(t, "127.0.46.1", func(c *kernel.Config) {
		c.SnapshotThreshold = 64
		c.TrailingLogs = 8
		c.SnapshotInterval = 100 * time.Millisecond
	}, svc)
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	gr, err := root.Grant(ctx, api.GrantRequest{Entity: "reader", Ops: []string{"kv.get"}, Resources: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	reader, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token})

	written := map[uint64]string{} // seq -> value of "doc" after it
	var seqs []uint64
	for i := 0; i < 300; i++ {
		v := fmt.Sprintf("v%d-%d", i, rng.Intn(1000))
		r, err := root.KVPut(ctx, "doc", v)
		if err != nil || r.Decision != "permit" {
			t.Fatalf("put: %v %+v", err, r)
		}
		written[r.Seq] = v
		seqs = append(seqs, r.Seq)
		if i%3 == 0 {
			if _, err := root.KVPut(ctx, "other", v); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Raft must have snapshotted (and compacted its log) behind the writes.
	deadline := time.Now().Add(10 * time.Second)
	for n.Raft().Stats()["last_snapshot_index"] == "0" {
		if time.Now().After(deadline) {
			t.Fatal("no raft snapshot after 400 writes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 30; i++ {
		s := seqs[rng.Intn(len(seqs))]
		r, err := reader.KVGet(ctx, "doc", client.WithAsOf(strconv.FormatUint(s, 10)))
		if err != nil || r.Decision != "permit" || !r.Found || r.Value != written[s] || r.AsOf == nil || r.AsOf.Seq != s {
			t.Fatalf("seed %d: kv get doc as of %d: %v %+v, want %q", seed, s, err, r, written[s])
		}
		// The same point by its ledger time.
		rt, err := reader.KVGet(ctx, "doc", client.WithAsOf(r.AsOf.Time.Format(time.RFC3339Nano)))
		if err != nil || rt.Value != written[s] || rt.AsOf.Seq != s {
			t.Fatalf("seed %d: kv get doc as of %s: %v %+v", seed, r.AsOf.Time, err, rt)
		}
	}
	// Before the key existed: found false.
	if r, err := reader.KVGet(ctx, "doc", client.WithAsOf("1")); err != nil || r.Found || r.Reason != "not_found" {
		t.Fatalf("as of genesis: %v %+v", err, r)
	}
	// Other as-of reads need audit.read: the reader lacks it.
	if _, err := reader.Caps(ctx, "", client.WithAsOf("5")); !client.IsCode(err, api.CodeForbidden) {
		t.Fatalf("cap list --as-of without audit.read: %v", err)
	}
	if _, err := reader.Policies(ctx, client.WithAsOf("5")); !client.IsCode(err, api.CodeForbidden) {
		t.Fatalf("policy list --as-of without audit.read: %v", err)
	}
	// Revoke the reader: it can read nothing now, not even the past, and
	// the refusal is in the ledger.
	before, _ := root.Caps(ctx, "reader")
	rv, err := root.Revoke(ctx, gr.ID)
	if err != nil || rv.Decision != "permit" {
		t.Fatalf("revoke: %v %+v", err, rv)
	}
	d, err := reader.KVGet(ctx, "doc", client.WithAsOf(strconv.FormatUint(seqs[10], 10)))
	if err == nil && (d.Decision != "deny" || d.Value != "") {
		t.Fatalf("a revoked reader read the past: %+v", d)
	}
	hs, err := root.History(ctx, "reader", client.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	lastH := hs[len(hs)-1]
	if lastH.Decision != "deny" || lastH.Op != "kv.get" || lastH.AsOf != seqs[10] {
		t.Fatalf("the revoked reader's as-of read is not recorded as denied: %+v", lastH)
	}
	if len(hs) != 30*2+2 {
		t.Fatalf("history lists %d reads, the reader made %d", len(hs), 30*2+2)
	}
	// cap list as of before the revocation shows it unrevoked.
	asOf := strconv.FormatUint(rv.Seq-1, 10)
	was, err := root.Caps(ctx, "reader", client.WithAsOf(asOf))
	if err != nil || len(was) != 1 || was[0].Revoked || was[0].AsOf == nil || was[0].AsOf.Seq != rv.Seq-1 || was[0].Used != before[0].Used {
		t.Fatalf("cap list as of %s: %v %+v (before: %+v)", asOf, err, was, before)
	}
	now, _ := root.Caps(ctx, "reader")
	if !now[0].Revoked {
		t.Fatal("the capability is not revoked now")
	}
	if _, err := root.Policies(ctx, client.WithAsOf("999999")); !client.IsCode(err, api.CodeNotFound) {
		t.Fatalf("an as-of beyond the ledger: %v", err)
	}
	if _, err := root.Caps(ctx, "", client.WithAsOf("yesterday")); !client.IsCode(err, api.CodeBadRequest) {
		t.Fatalf("an as-of that is neither seq nor time: %v", err)
	}
	// Across the snapshots and compaction, the state at random seqs is
	// the state a replay of the node's archive to them gives.
	last := n.ArchivedSeq()
	for i := 0; i < 5; i++ {
		seq := 1 + uint64(rng.Int63n(int64(last)))
		var got [32]byte
		if err := svc.History().At(ctx, seq, func(l *fsm.Ledger) { got = l.Digest() }); err != nil {
			t.Fatal(err)
		}
		l := fsm.New()
		first, _ := n.ArchiveFirst()
		err := n.ArchivedRecords(first, func(rec archive.Record) error {
			if rec.Kind == archive.KindEvent && rec.Seq > seq {
				return errStop
			}
			return fsm.ReplayStep(l, rec.Index, rec.Seq, rec.Data)
		})
		if err != nil && err != errStop {
			t.Fatal(err)
		}
		if l.State().Seq != seq || l.Digest() != got {
			t.Fatalf("seed %d: state as of %d differs from a replay of the archive to it", seed, seq)
		}
	}
	st, err := root.HistoryStatus(ctx)
	if err != nil || st.Every != 16 || st.Checkpoints == 0 {
		t.Fatalf("history status: %v %+v", err, st)
	}
}
