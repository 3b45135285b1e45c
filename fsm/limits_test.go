package fsm

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// The dedup window keeps digests, not values, and bounds each caller's
// share: a caller at its quota is refused without evicting anyone; a
// retried read answers with the current value.
func TestDedupWindowBoundedPerCaller(t *testing.T) {
	g := authorityLedger(t, ProtocolAuthority)
	root := testRootToken[:]
	mustPermitted(t, "a", g.grantAs(root, "a", false, []string{"kv.put", "kv.get"}, []string{"*"}, 0, 0))
	mustPermitted(t, "b", g.grantAs(root, "b", false, []string{"kv.put", "kv.get"}, []string{"*"}, 0, 0))
	g.refuse("limits from an agent", ReasonForbidden, tokenHash("a"), CmdLimitsSet, &LimitsSet{DedupPerCaller: 3})
	mustPermitted(t, "limits", g.as(root, CmdLimitsSet, &LimitsSet{DedupPerCaller: 3}))
	if got := g.State().EffectiveLimits(); got.DedupPerCaller != 3 || got.KVBytes != DefaultKVBytes {
		t.Fatalf("limits %+v", got)
	}
	call := func(who, rid, op, key, val string) Applied {
		return g.rec(env(CmdSyscall, rid, tokenHash(who), g.tick(), &Syscall{Op: op, Resource: key, Args: []byte(val)}))
	}
	mustPermitted(t, "b's put", call("b", "b-1", "kv.put", "k", "v1"))
	for i := 1; i <= 3; i++ {
		mustPermitted(t, "a's read", call("a", fmt.Sprint("a-", i), "kv.get", "k", ""))
	}
	before := wholeState(g.Ledger)
	full := call("a", "a-4", "kv.get", "k", "")
	if full.Event == nil || full.Result.Decision != DecisionDeny || full.Result.Reason != ReasonQuotaExceeded || wholeState(g.Ledger) != before {
		t.Fatalf("a's fourth request id: %+v (state changed: %v)", full.Result, wholeState(g.Ledger) != before)
	}
	// b's entry was not evicted: its retry is still deduplicated.
	if r := call("b", "b-1", "kv.put", "k", "v1"); !r.Result.Duplicate || r.Event != nil {
		t.Fatalf("b's retry: %+v", r.Result)
	}
	// The window holds a digest of a's read, not the value; a retry gets
	// the current value, marked retried.
	mustPermitted(t, "b's second put", call("b", "b-2", "kv.put", "k", "v2"))
	for i := 0; i < g.State().DedupLen(); i++ {
		if e := g.State().dedupQueue.at(i); e.Result.Value != nil || e.Digest == nil {
			t.Fatalf("dedup entry %s keeps %q (digest %x)", e.RequestID, e.Result.Value, e.Digest)
		}
	}
	r := call("a", "a-1", "kv.get", "k", "")
	if !r.Result.Duplicate || !r.Result.Retried || string(r.Result.Value) != "v2" || r.Result.Decision != DecisionPermit {
		t.Fatalf("a's retried read: %+v", r.Result)
	}
	// Calls without a request id are not in the window and not limited.
	mustPermitted(t, "a's read without an id", call("a", "", "kv.get", "k", ""))
	checkReplayOf(t, g)
}

// The kv store's bytes are bounded: a write beyond is refused before it
// consumes a use.
func TestKVBytesBounded(t *testing.T) {
	g := authorityLedger(t, ProtocolAuthority)
	root := testRootToken[:]
	mustPermitted(t, "limits", g.as(root, CmdLimitsSet, &LimitsSet{KVBytes: 100}))
	mustPermitted(t, "agent", g.grantAs(root, "agent", false, []string{"kv.put", "kv.delete", "kv.cas"}, []string{"*"}, 5, time.Hour))
	expect(t, g.call("agent", "kv.put", "k1", bytes.Repeat([]byte("x"), 58)), DecisionPermit, ReasonOK) // 60 bytes
	if g.State().KVBytes() != 60 {
		t.Fatalf("kv bytes %d, want 60", g.State().KVBytes())
	}
	before := wholeState(g.Ledger)
	a := g.call("agent", "kv.put", "k2", bytes.Repeat([]byte("x"), 58))
	if a.Result.Reason != ReasonQuotaExceeded || a.Result.Decision != DecisionDeny || a.Result.UsesLeft != 4 {
		t.Fatalf("a put beyond the bound: %+v", a.Result)
	}
	if g.State().KV["k2"] != nil || g.State().Caps[g.State().CapByToken(hexHash("agent")).ID].Used != 1 {
		t.Fatal("the refused put wrote or consumed a use")
	}
	_ = before
	cas := Encode(&KVCAS{Key: "k1", ExpectExists: true, Expect: bytes.Repeat([]byte("x"), 58), Value: bytes.Repeat([]byte("y"), 120)})
	expect(t, g.call("agent", "kv.cas", "k1", cas), DecisionDeny, ReasonQuotaExceeded)
	// Overwriting within the bound and deleting free room.
	expect(t, g.call("agent", "kv.put", "k1", []byte("small")), DecisionPermit, ReasonOK)
	expect(t, g.call("agent", "kv.put", "k2", bytes.Repeat([]byte("x"), 58)), DecisionPermit, ReasonOK)
	expect(t, g.call("agent", "kv.delete", "k1", nil), DecisionPermit, ReasonOK)
	if g.State().KVBytes() != 60 {
		t.Fatalf("kv bytes %d after delete, want 60", g.State().KVBytes())
	}
	// The figure survives a snapshot.
	s := New()
	if _, err := s.Restore(g.Snapshot()); err != nil || s.State().KVBytes() != 60 {
		t.Fatalf("restored kv bytes %d (%v)", s.State().KVBytes(), err)
	}
	checkReplayOf(t, g)

	// Under protocol 3 there is no bound and limits.set is unknown.
	old := authorityLedger(t, 3)
	old.refuse("limits under protocol 3", ReasonUnsupportedProtocol, root, CmdLimitsSet, &LimitsSet{KVBytes: 100})
}

// One agent issuing 10,000 distinct-request-id reads of a 1 MiB value
// leaves the snapshot within 3 MiB of where it was, 300 bytes a read
// (under protocol 3 each read kept its value: 10 GB), and another
// caller's retry is still deduplicated.
func TestReadsOfALargeValueLeaveTheSnapshotBounded(t *testing.T) {
	g := authorityLedger(t, ProtocolAuthority)
	root := testRootToken[:]
	mustPermitted(t, "reader", g.grantAs(root, "reader", false, []string{"kv.get"}, []string{"*"}, 0, 0))
	mustPermitted(t, "writer", g.grantAs(root, "writer", false, []string{"kv.put"}, []string{"*"}, 0, 0))
	big := bytes.Repeat([]byte("v"), MaxValueBytes)
	mustPermitted(t, "the value", g.as(tokenHash("writer"), CmdSyscall, &Syscall{Op: "kv.put", Resource: "big", Args: big}))
	mustPermitted(t, "the writer's request", g.apply(env(CmdSyscall, "w-1", tokenHash("writer"), g.tick(), &Syscall{Op: "kv.put", Resource: "small", Args: []byte("x")})))
	before := len(g.Snapshot())
	for i := 0; i < DefaultDedupPerCaller; i++ {
		a := g.apply(env(CmdSyscall, fmt.Sprint("r-", i), tokenHash("reader"), g.tick(), &Syscall{Op: "kv.get", Resource: "big"}))
		if a.Result.Decision != DecisionPermit || len(a.Result.Value) != MaxValueBytes {
			t.Fatalf("read %d: %s %s", i, a.Result.Decision, a.Result.Reason)
		}
	}
	after := len(g.Snapshot())
	t.Logf("snapshot %d bytes before 10,000 reads of a 1 MiB value, %d after (%d per read)", before, after, (after-before)/DefaultDedupPerCaller)
	if after-before > 3<<20 {
		t.Fatalf("the snapshot grew by %d bytes", after-before)
	}
	if r := g.apply(env(CmdSyscall, "w-1", tokenHash("writer"), g.tick(), &Syscall{Op: "kv.put", Resource: "small", Args: []byte("x")})); !r.Result.Duplicate {
		t.Fatalf("the writer's retry after the reads: %+v", r.Result)
	}
	if r := g.apply(env(CmdSyscall, "r-10000", tokenHash("reader"), g.tick(), &Syscall{Op: "kv.get", Resource: "big"})); r.Result.Reason != ReasonQuotaExceeded {
		t.Fatalf("the reader past its quota: %+v", r.Result)
	}
}

func hexHash(name string) string { return fmt.Sprintf("%x", tokenHash(name)) }

// checkReplayOf replays g's recorded stream and requires its head and digest.
func checkReplayOf(t *testing.T, g *recordingGate) {
	t.Helper()
	r := New()
	for i, e := range g.log {
		r.Apply(uint64(i+1), e)
	}
	if r.State().Head != g.State().Head || r.Digest() != g.Digest() {
		t.Fatal("a replay of the stream reached another head")
	}
}
