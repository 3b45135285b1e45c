package history

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

// archSource reads an archive directly (what kernel.Node offers).
type archSource struct{ a *archive.Archive }

func (s archSource) ArchivedRecords(from uint64, fn func(archive.Record) error) error {
	return s.a.IterateIndex(from, fn)
}
func (s archSource) ArchivedRecord(seq uint64) (archive.Record, error) { return s.a.ReadSeq(seq) }
func (s archSource) ArchiveFirst() (uint64, uint64)                    { return s.a.First() }
func (s archSource) ArchivedSeq() uint64                               { _, q := s.a.Last(); return q }

var rootToken = sha256.Sum256([]byte("root"))

func entry(t fsm.CommandType, auth []byte, ts int64, payload any) []byte {
	e := fsm.Envelope{Type: t, Auth: auth, Time: ts}
	if payload != nil {
		e.Payload = fsm.Encode(payload)
	}
	return fsm.Encode(&e)
}

// ledgerRun is a random ledger: its entries, archived as a node archives
// them, and each event's ledger time.
type ledgerRun struct {
	entries [][]byte
	src     archSource
	times   map[uint64]int64
}

// buildLedger applies genesis and n random entries (kv writes that
// overwrite each other, reads, deletes, grants, syscalls judged by a
// policy, duplicates that are noops) and archives them.
func buildLedger(t testing.TB, seed int64, n int) *ledgerRun {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	a, err := archive.Open(t.TempDir(), archive.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	run := &ledgerRun{src: archSource{a}, times: map[uint64]int64{}}
	l := fsm.New()
	pub, _, _ := ed25519.GenerateKey(rng)
	canon := sha256.Sum256([]byte("canon"))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var index uint64 = 2 // raft's own entries come first
	apply := func(data []byte) {
		index++
		ap := l.Apply(index, data)
		kind := archive.KindNoop
		if ap.Event != nil {
			kind = archive.KindEvent
			run.times[ap.Event.Seq] = ap.Event.Time
		}
		if err := a.Append([]archive.Record{{Index: index, Seq: l.State().Seq, Kind: kind, Data: fsm.EncodeArchived(data, ap)}}); err != nil {
			t.Fatal(err)
		}
		run.entries = append(run.entries, data)
	}
	apply(entry(fsm.CmdGenesis, nil, now, &fsm.Genesis{KernelID: "k", CanonHash: canon[:], Protocol: fsm.ProtocolVersion, RootTokenHash: rootToken[:],
		DedupWindowNs: 60e9, Members: []fsm.GenesisMember{{Node: "n1", PubKey: pub}}}))
	agent := sha256.Sum256([]byte("agent"))
	now += 1e9
	apply(entry(fsm.CmdCapGrant, rootToken[:], now, &fsm.CapGrant{TokenHash: agent[:], Entity: "agent", Ops: []string{"kv.get", "kv.put", "mail.send"}, Resources: []string{"*"}, Uses: 100000}))
	now += 1e9
	apply(entry(fsm.CmdPolicySet, rootToken[:], now, &fsm.PolicySet{Name: "p", Mode: fsm.PolicyActive, Text: `forbid(principal, action, resource) when { context.history.denials_1h > 3 };`}))
	for i := 0; i < n; i++ {
		now += rng.Int63n(int64(90e9)) + 1
		key := "k" + string(rune('a'+rng.Intn(8)))
		switch r := rng.Intn(10); {
		case r < 4:
			apply(entry(fsm.CmdKVPut, rootToken[:], now, &fsm.KVPut{Key: key, Value: []byte{byte(i), byte(i >> 8)}}))
		case r < 5:
			apply(entry(fsm.CmdKVDelete, rootToken[:], now, &fsm.KVKey{Key: key}))
		case r < 7:
			apply(entry(fsm.CmdKVGet, agent[:], now, &fsm.KVKey{Key: key}))
		case r < 9:
			apply(entry(fsm.CmdSyscall, agent[:], now, &fsm.Syscall{Op: []string{"mail.send", "pay.send"}[rng.Intn(2)], Resource: key}))
		default:
			// A retried request id: deduplicated.
			e := fsm.Envelope{Type: fsm.CmdKVPut, RequestID: "rid-" + key, Auth: rootToken[:], Time: now, Payload: fsm.Encode(&fsm.KVPut{Key: key, Value: []byte("x")})}
			apply(fsm.Encode(&e))
		}
	}
	return run
}

// replayTo is the state a full replay of the entries to seq gives.
func (r *ledgerRun) replayTo(t *testing.T, seq uint64) [32]byte {
	l := fsm.New()
	for i, data := range r.entries {
		if l.State().Seq == seq {
			break
		}
		l.Apply(uint64(i+3), data)
	}
	if l.State().Seq != seq {
		t.Fatalf("replay reached %d, not %d", l.State().Seq, seq)
	}
	return l.Digest()
}

func digestAt(t *testing.T, h *History, seq uint64) [32]byte {
	t.Helper()
	var d [32]byte
	if err := h.At(context.Background(), seq, func(l *fsm.Ledger) { d = l.Digest() }); err != nil {
		t.Fatalf("at %d: %v", seq, err)
	}
	return d
}

// TestAsOfEqualsReplay: the state an as-of read answers from is the
// state a full replay to that seq gives, at random seqs of random
// ledgers, with checkpoints every 50 events, every 7, and none.
func TestAsOfEqualsReplay(t *testing.T) {
	for _, every := range []uint64{50, 7, 0} {
		seed := time.Now().UnixNano()
		t.Logf("every %d: seed %d", every, seed)
		run := buildLedger(t, seed, 600)
		h, err := Open(run.src, Config{Dir: t.TempDir(), Every: every})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.build(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		last := run.src.ArchivedSeq()
		if every > 0 && h.Status().Checkpoints != int(last/every) {
			t.Fatalf("seed %d: %d checkpoints for %d events every %d", seed, h.Status().Checkpoints, last, every)
		}
		rng := rand.New(rand.NewSource(seed))
		for i := 0; i < 25; i++ {
			seq := 1 + uint64(rng.Int63n(int64(last)))
			if i == 0 {
				seq = last
			}
			if got, want := digestAt(t, h, seq), run.replayTo(t, seq); got != want {
				t.Fatalf("seed %d: state at %d differs from a replay to it", seed, seq)
			}
		}
		if err := h.At(context.Background(), last+1, func(*fsm.Ledger) {}); err == nil {
			t.Fatal("a read beyond the ledger answered")
		}
	}
}

// TestBadCheckpointIsRefusedAndRebuilt: a checkpoint whose bytes are
// damaged, or whose state is another seq's, is refused (the read still
// answers correctly, from an earlier base), removed, and rebuilt by the
// replay that passes its seq.
func TestBadCheckpointIsRefusedAndRebuilt(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	run := buildLedger(t, seed, 400)
	dir := t.TempDir()
	h, err := Open(run.src, Config{Dir: dir, Every: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.build(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	p200, p300 := filepath.Join(dir, ckptName(200)), filepath.Join(dir, ckptName(300))
	good300, err := os.ReadFile(p300)
	if err != nil {
		t.Fatal(err)
	}
	// Damage 300: flip a byte in the state body.
	bad := append([]byte(nil), good300...)
	bad[len(bad)/2] ^= 0x40
	if err := os.WriteFile(p300, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := digestAt(t, h, 350), run.replayTo(t, 350); got != want {
		t.Fatal("a read over a damaged checkpoint answered another state")
	}
	if b, err := os.ReadFile(p300); err != nil || string(b) != string(good300) {
		t.Fatalf("the damaged checkpoint was not rebuilt (err %v)", err)
	}
	// Put 200's state under 300's name: well formed, wrong chain point.
	b200, _ := os.ReadFile(p200)
	if err := os.WriteFile(p300, b200, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := digestAt(t, h, 301), run.replayTo(t, 301); got != want {
		t.Fatal("a read over a misplaced checkpoint answered another state")
	}
	if b, _ := os.ReadFile(p300); string(b) != string(good300) {
		t.Fatal("the misplaced checkpoint was not rebuilt")
	}
	// A fresh History over the same directory verifies before use too.
	if err := os.WriteFile(p300, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	h2, err := Open(run.src, Config{Dir: dir, Every: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digestAt(t, h2, 333), run.replayTo(t, 333); got != want {
		t.Fatal("after a restart, a damaged checkpoint was used")
	}
}

// TestSeqAt: a time resolves to the last event at or before it.
func TestSeqAt(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	run := buildLedger(t, seed, 300)
	h, err := Open(run.src, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	last := run.src.ArchivedSeq()
	for i := 0; i < 100; i++ {
		tt := run.times[1] + rng.Int63n(run.times[last]-run.times[1]+int64(100e9))
		want := uint64(0)
		for s := uint64(1); s <= last; s++ {
			if run.times[s] <= tt {
				want = s
			}
		}
		got, at, err := h.SeqAt(context.Background(), tt)
		if err != nil || got != want || at != run.times[want] {
			t.Fatalf("seed %d: SeqAt(%d) = %d at %d (%v), want %d", seed, tt, got, at, err, want)
		}
	}
	if _, _, err := h.SeqAt(context.Background(), run.times[1]-1); err == nil {
		t.Fatal("a time before genesis resolved")
	}
}

// TestEntityHistory lists one entity's decisions with what they were
// judged against, and nothing of others'.
func TestEntityHistory(t *testing.T) {
	run := buildLedger(t, 7, 300)
	h, err := Open(run.src, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	last := run.src.ArchivedSeq()
	all, err := h.EntityHistory(context.Background(), "agent", "", 1, last, MaxHistoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	// Brute force: every event whose detail names the agent's capability.
	want := 0
	for s := uint64(1); s <= last; s++ {
		ev, _, _, _ := h.event(s)
		var d fsm.SyscallDetail
		if syscallTypes[ev.Type] && fsm.Decode(ev.Detail, &d) == nil && d.CapID == "cap-2" {
			want++
		}
	}
	if len(all) != want || want == 0 {
		t.Fatalf("history lists %d decisions, the ledger has %d", len(all), want)
	}
	denied := false
	for i, e := range all {
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Fatal("entries out of order")
		}
		if e.Decision == "deny" && e.Reason == "policy_forbid" {
			denied = true
			if e.History["denials_1h"] <= 3 || e.Tier == "" || e.PolicyVersion == 0 {
				t.Fatalf("a temporal denial without its context: %+v", e)
			}
		}
	}
	if !denied {
		t.Fatal("the temporal policy never denied (the workload should trip it)")
	}
	few, _ := h.EntityHistory(context.Background(), "agent", "mail.send", all[0].Seq, last, 5)
	if len(few) != 5 {
		t.Fatalf("limit 5 gave %d", len(few))
	}
	for _, e := range few {
		if e.Op != "mail.send" {
			t.Fatalf("op filter let %s through", e.Op)
		}
	}
	roots, _ := h.EntityHistory(context.Background(), "root", "", 1, last, 100)
	if len(roots) == 0 {
		t.Fatal("root's own kv calls are not in its history")
	}
	for _, e := range roots {
		if e.CapID == "cap-2" {
			t.Fatal("root's history lists the agent's call")
		}
	}
}
