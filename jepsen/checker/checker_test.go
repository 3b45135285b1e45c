package checker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

const testdata = "../testdata"

func readHistory(t *testing.T, dir string) []history.Op {
	t.Helper()
	ops, err := history.Read(filepath.Join(testdata, dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

// readLedger loads api.Event lines and the status a node would report for
// them (its head is the last event).
func readLedger(t *testing.T, node, path string) NodeLedger {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := NodeLedger{Node: node}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev api.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		l.Events = append(l.Events, ev)
	}
	last := l.Events[len(l.Events)-1]
	l.Status = &api.Status{Node: node, Head: api.Head{Seq: last.Seq, Hash: last.Hash}, StateDigest: "d"}
	l.Verify = &api.VerifyResponse{OK: true, Head: l.Status.Head, Events: last.Seq}
	return l
}

func check(t *testing.T, c Checker, in *Input) Verdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := c.Check(ctx, in)
	t.Logf("%s: valid=%v %s", c.Name(), v.Valid, v.Summary)
	for _, x := range v.Violations {
		t.Logf("  - %s", x)
	}
	return v
}

func wantViolation(t *testing.T, v Verdict, substrings ...string) {
	t.Helper()
	if v.Valid {
		t.Fatalf("%s: valid, want a violation", v.Checker)
	}
	all := strings.Join(v.Violations, "\n")
	for _, s := range substrings {
		if !strings.Contains(all, s) {
			t.Errorf("%s: no violation mentions %q; got:\n%s", v.Checker, s, all)
		}
	}
}

func TestLinearizableAcceptsValidHistory(t *testing.T) {
	v := check(t, KVLinearizable{Timeout: 10 * time.Second}, &Input{History: readHistory(t, "linearizable")})
	if !v.Valid {
		t.Fatalf("valid history judged invalid: %v", v.Violations)
	}
	// one fail and no info read are left out; the info write is kept
	if v.Stats["left_out"] != 1 || v.Stats["keys"] != 2 {
		t.Errorf("stats %v: want 1 op left out, 2 keys", v.Stats)
	}
}

func TestLinearizableRejectsLostWrite(t *testing.T) {
	dir := t.TempDir()
	v := check(t, KVLinearizable{Timeout: 10 * time.Second}, &Input{History: readHistory(t, "lost-write"), Dir: dir,
		Faults: []Interval{{Name: "isolate n1", Start: 5, End: 45}}})
	wantViolation(t, v, "key a ")
	if v.Stats["illegal_keys"] != 1 {
		t.Errorf("illegal keys %d, want 1 (key b is fine)", v.Stats["illegal_keys"])
	}
	if len(v.Artifacts) != 1 {
		t.Fatalf("artifacts %v: want the visualization", v.Artifacts)
	}
	b, err := os.ReadFile(v.Artifacts[0])
	if err != nil || !strings.Contains(string(b), "<html") {
		t.Fatalf("visualization %s: %v (%d bytes)", v.Artifacts[0], err, len(b))
	}
}

func TestLinearizableRejectsStaleRead(t *testing.T) {
	v := check(t, KVLinearizable{Timeout: 10 * time.Second}, &Input{History: readHistory(t, "stale-read")})
	wantViolation(t, v, "key a ")
}

func TestLinearizableTimeoutIsFailure(t *testing.T) {
	ops := readHistory(t, "linearizable")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time at all: every key is unknown
	v := KVLinearizable{Timeout: time.Nanosecond}.Check(ctx, &Input{History: ops})
	if v.Valid || v.Stats["unknown_keys"] == 0 {
		t.Fatalf("a check without time judged %v (%v); want invalid with unknown keys", v.Valid, v.Stats)
	}
	wantViolation(t, v, "unknown counts as failure")
}

func TestRequestIDs(t *testing.T) {
	types := map[string]string{FWrite: "kv.put"}
	t.Run("broken", func(t *testing.T) {
		in := &Input{History: readHistory(t, "duplicate-request-id"),
			Ledgers: []NodeLedger{readLedger(t, "n1", "duplicate-request-id/ledger.jsonl")}}
		v := check(t, RequestIDs{EventType: types, SubjectIsKey: true}, in)
		wantViolation(t, v,
			"request id w1 appears 2 times in the ledger (seqs [2 5])",
			"acknowledged write a (request id w2, seq 3, op 2) is missing",
			"request id w3 was answered as failed",
		)
		if v.ViolationCount != 3 {
			t.Errorf("%d violations, want exactly 3", v.ViolationCount)
		}
	})
	t.Run("valid", func(t *testing.T) {
		ops := readHistory(t, "duplicate-request-id")
		in := &Input{History: ops[:4], Ledgers: []NodeLedger{readLedger(t, "n1", "duplicate-request-id/ledger-valid.jsonl")}}
		if v := check(t, RequestIDs{EventType: types, SubjectIsKey: true}, in); !v.Valid {
			t.Fatalf("valid ledger judged invalid: %v", v.Violations)
		}
	})
	t.Run("wrong seq and type", func(t *testing.T) {
		ops := readHistory(t, "duplicate-request-id")[:2]
		ops[1].Seq = 3
		in := &Input{History: ops, Ledgers: []NodeLedger{readLedger(t, "n1", "duplicate-request-id/ledger-valid.jsonl")}}
		v := check(t, RequestIDs{EventType: map[string]string{FWrite: "kv.cas"}}, in)
		wantViolation(t, v, "is at seq 2 but its answer named seq 3", "is a kv.put event, want kv.cas")
	})
}

func TestAckOrder(t *testing.T) {
	ops := readHistory(t, "order-violation")
	v := check(t, AckOrder{}, &Input{History: ops})
	wantViolation(t, v, "op 0 (write a, seq 5)", "op 2 (write b)", "lower or equal seq 4")
	if v.ViolationCount != 1 {
		t.Errorf("%d violations, want 1 (op 4 with seq 6 is in order)", v.ViolationCount)
	}
	ops[3].Seq = 7 // b after a: in order
	ops[5].Seq = 8
	if v := check(t, AckOrder{}, &Input{History: ops}); !v.Valid {
		t.Fatalf("ordered history judged invalid: %v", v.Violations)
	}
}

func TestLeaderPerTerm(t *testing.T) {
	claims, err := ReadLeaderLogs([]string{filepath.Join(testdata, "two-leaders/n1.log"), filepath.Join(testdata, "two-leaders/n2.log")})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 4 {
		t.Fatalf("%d claims parsed, want 4: %+v", len(claims), claims)
	}
	v := check(t, LeaderPerTerm{}, &Input{Leaders: claims})
	wantViolation(t, v, "term 5 has 2 leaders: n1 (n1.log:4), n2 (n2.log:3)")
	if v.ViolationCount != 1 {
		t.Errorf("%d violations, want 1", v.ViolationCount)
	}
	if v := check(t, LeaderPerTerm{}, &Input{Leaders: claims[:3]}); !v.Valid {
		t.Fatalf("one leader per term judged invalid: %v", v.Violations)
	}
	if v := check(t, LeaderPerTerm{}, &Input{}); v.Valid {
		t.Fatal("no leadership records at all judged valid")
	}
}

func TestParseLogfmt(t *testing.T) {
	kv := ParseLogfmt(`time=2026-01-01T00:00:00Z level=INFO msg="became leader" node=n1 term=7 note="a \"quoted\" word"`)
	want := map[string]string{"level": "INFO", "msg": "became leader", "node": "n1", "term": "7", "note": `a "quoted" word`}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	if _, err := ParseLeaderLog(strings.NewReader(`level=INFO msg="became leader" node=n1`+"\n"), "x.log"); err == nil {
		t.Error("a leadership line without a term was accepted")
	}
}

func TestLedgerChain(t *testing.T) {
	v := check(t, LedgerChain{}, &Input{Ledgers: []NodeLedger{readLedger(t, "n1", "broken-chain/ledger.jsonl")}})
	wantViolation(t, v, "seq 3: prev", "has seq 6, want 5")
	good := readLedger(t, "n1", "duplicate-request-id/ledger-valid.jsonl")
	if v := check(t, LedgerChain{}, &Input{Ledgers: []NodeLedger{good}}); !v.Valid {
		t.Fatalf("valid chain judged invalid: %v", v.Violations)
	}
	bad := good
	bad.Verify = &api.VerifyResponse{OK: false, BadSeq: 2, Message: "hash mismatch"}
	wantViolation(t, check(t, LedgerChain{}, &Input{Ledgers: []NodeLedger{bad}}), "verify reports a broken chain at seq 2")
	short := good
	short.Status = &api.Status{Head: api.Head{Seq: 9, Hash: good.Status.Head.Hash}}
	wantViolation(t, check(t, LedgerChain{}, &Input{Ledgers: []NodeLedger{short}}), "served 3 events but its head is at seq 9")
}

func TestConvergence(t *testing.T) {
	n1 := readLedger(t, "n1", "diverged/ledger-n1.jsonl")
	n2 := readLedger(t, "n2", "diverged/ledger-n2.jsonl")
	v := check(t, Convergence{}, &Input{Ledgers: []NodeLedger{n1, n2}})
	wantViolation(t, v, "n2 and n1 diverge at seq 3", "n2 head 4:")
	n3 := readLedger(t, "n3", "diverged/ledger-n1.jsonl")
	if v := check(t, Convergence{}, &Input{Ledgers: []NodeLedger{n1, n3}}); !v.Valid {
		t.Fatalf("identical replicas judged diverged: %v", v.Violations)
	}
	n3.Status.StateDigest = "other"
	wantViolation(t, check(t, Convergence{}, &Input{Ledgers: []NodeLedger{n1, n3}}), "state digest")
}

func TestLedgerClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ops := []history.Op{
		{Index: 0, Process: 0, Type: history.Invoke, F: FWrite, Key: "a", Time: 0},
		{Index: 1, Process: 0, Type: history.OK, F: FWrite, Key: "a", Time: int64(time.Second), Seq: 2, LedgerTime: start.Add(time.Second / 2).UnixNano()},
		{Index: 2, Process: 0, Type: history.Invoke, F: FWrite, Key: "a", Time: int64(2 * time.Second)},
		{Index: 3, Process: 0, Type: history.OK, F: FWrite, Key: "a", Time: int64(3 * time.Second), Seq: 3, LedgerTime: start.Add(33 * time.Second).UnixNano()},
	}
	v := check(t, LedgerClock{MaxAhead: 2 * time.Second}, &Input{History: ops, StartWall: start})
	wantViolation(t, v, "op 2 (write a", "30s ahead of the wall clock")
	if v := check(t, LedgerClock{MaxAhead: 2 * time.Second}, &Input{History: ops[:2], StartWall: start}); !v.Valid {
		t.Fatalf("a ledger time behind the wall clock judged invalid: %v", v.Violations)
	}
}

func TestProcessExits(t *testing.T) {
	in := &Input{Exits: []Exit{{Node: "n1", Status: "signal: killed", Expected: true}, {Node: "n2", Status: "exit status 2"}}}
	wantViolation(t, check(t, ProcessExits{}, in), "n2 exited on its own")
	in.Exits = in.Exits[:1]
	if v := check(t, ProcessExits{}, in); !v.Valid {
		t.Fatal("an exit the nemesis caused judged invalid")
	}
}

func TestRunMarksStuckCheckerInvalid(t *testing.T) {
	defer func(g time.Duration) { runGrace = g }(runGrace)
	runGrace = 10 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	vs := Run(context.Background(), []Checker{stuck{release}}, &Input{}, 10*time.Millisecond)
	if len(vs) != 1 || vs[0].Valid || !strings.Contains(vs[0].Summary, "unknown counts as failure") {
		t.Fatalf("a checker that ignores its deadline: %+v", vs)
	}
}

// stuck ignores its context and would claim success when released.
type stuck struct{ release chan struct{} }

func (stuck) Name() string { return "stuck" }
func (s stuck) Check(ctx context.Context, in *Input) Verdict {
	<-s.release
	return Verdict{Valid: true}
}

func TestLinearizableResolvesUnknownOutcomesFromFinalLedger(t *testing.T) {
	ops := readHistory(t, "linearizable")
	full := readLedger(t, "n1", "linearizable/ledger.jsonl")
	v := check(t, KVLinearizable{Timeout: 10 * time.Second}, &Input{History: ops, LedgerFinal: true, Ledgers: []NodeLedger{full, full}})
	if !v.Valid || v.Stats["resolved_applied"] != 1 || v.Stats["open_unknown"] != 0 {
		t.Fatalf("with the full ledger: valid=%v stats %v; want valid, r3 resolved as applied", v.Valid, v.Stats)
	}
	// The ledger says r3 never happened, but a read saw its value.
	without := readLedger(t, "n1", "linearizable/ledger-without-r3.jsonl")
	v = check(t, KVLinearizable{Timeout: 10 * time.Second}, &Input{History: ops, LedgerFinal: true, Ledgers: []NodeLedger{without}})
	wantViolation(t, v, "key a ")
	if v.Stats["resolved_absent"] != 1 {
		t.Errorf("stats %v: want r3 resolved as never applied", v.Stats)
	}
	// Not final, or replicas that disagree: nothing is resolved.
	for name, in := range map[string]*Input{
		"not final":   {History: ops, Ledgers: []NodeLedger{without}},
		"disagreeing": {History: ops, LedgerFinal: true, Ledgers: []NodeLedger{without, full}},
	} {
		v := check(t, KVLinearizable{Timeout: 10 * time.Second}, in)
		if !v.Valid || v.Stats["open_unknown"] != 1 {
			t.Errorf("%s: valid=%v stats %v; want the unknown write left open", name, v.Valid, v.Stats)
		}
	}
}

func TestLinearizableManyUnknownWritesResolveQuickly(t *testing.T) {
	// One key, 60 writes with unknown outcomes that never happened,
	// interleaved with acknowledged writes and reads of them.
	var ops []history.Op
	add := func(op history.Op) { op.Index = len(ops); ops = append(ops, op) }
	var ledger []api.Event
	prev := zeroHash
	for i := 0; i < 60; i++ {
		t0 := int64(i * 100)
		ghost := fmt.Sprintf("ghost-%d", i)
		add(history.Op{Process: 100 + i, Type: history.Invoke, F: FWrite, Key: "k", Value: ghost, RequestID: "g" + ghost, Time: t0})
		add(history.Op{Process: 0, Type: history.Invoke, F: FWrite, Key: "k", Value: "v" + ghost, RequestID: "w" + ghost, Time: t0 + 1})
		add(history.Op{Process: 0, Type: history.OK, F: FWrite, Key: "k", Value: "v" + ghost, RequestID: "w" + ghost, Time: t0 + 10})
		add(history.Op{Process: 1, Type: history.Invoke, F: FRead, Key: "k", RequestID: "r" + ghost, Time: t0 + 20})
		add(history.Op{Process: 1, Type: history.OK, F: FRead, Key: "k", RequestID: "r" + ghost, Time: t0 + 30, Found: true, Result: "v" + ghost})
		for _, rid := range []string{"w" + ghost, "r" + ghost} {
			ev := api.Event{Seq: uint64(len(ledger) + 1), RequestID: rid, Prev: prev, Hash: fmtHash(len(ledger))}
			prev = ev.Hash
			ledger = append(ledger, ev)
		}
	}
	for i := 0; i < 60; i++ { // the ghosts time out at the end
		ghost := ops[i*5]
		c := ghost
		c.Type, c.Time = history.Info, 10_000
		add(c)
	}
	last := ledger[len(ledger)-1]
	l := NodeLedger{Node: "n1", Events: ledger, Status: &api.Status{Head: api.Head{Seq: last.Seq, Hash: last.Hash}}}
	start := time.Now()
	v := check(t, KVLinearizable{Timeout: 20 * time.Second}, &Input{History: ops, LedgerFinal: true, Ledgers: []NodeLedger{l}})
	if !v.Valid || v.Stats["resolved_absent"] != 60 {
		t.Fatalf("valid=%v stats %v", v.Valid, v.Stats)
	}
	t.Logf("checked in %s", time.Since(start))
}

func fmtHash(i int) string { return fmt.Sprintf("%064x", i) }
