package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestGenesisSealsMetaAndRoot(t *testing.T) {
	tl := newTestLedger(t)
	st := tl.State()
	if !st.Initialized || st.Seq != 1 || st.Meta.KernelID != "k1" || !bytes.Equal(st.Meta.CanonHash, testCanon[:]) || st.Meta.Protocol != ProtocolVersion {
		t.Fatalf("genesis state: %+v", st.Meta)
	}
	if st.Meta.GenesisTime != t0 {
		t.Fatalf("genesis time %d, want the stamped %d", st.Meta.GenesisTime, t0)
	}
	// A second genesis is denied and changes nothing but its own event.
	before := tl.State().Meta
	a := tl.apply(genesisEntry(t0 + 5))
	if a.Result.Decision != DecisionDeny || a.Result.Reason != ReasonAlreadyInitialized {
		t.Fatalf("second genesis: %+v", a.Result)
	}
	if tl.State().Meta.GenesisTime != before.GenesisTime || len(tl.State().Caps) != 1 {
		t.Fatal("second genesis changed state")
	}
}

func TestBeforeGenesisEverythingIsANoop(t *testing.T) {
	l := New()
	a := l.Apply(1, env(CmdKVPut, "r", testRootToken[:], t0, &KVPut{Key: "a", Value: []byte("b")}))
	if !a.Result.Noop || a.Result.Reason != ReasonNotInitialized || a.Event != nil || l.State().Seq != 0 || len(l.State().KV) != 0 {
		t.Fatalf("put before genesis: %+v", a.Result)
	}
}

func TestKVPutGetDeleteCAS(t *testing.T) {
	tl := newTestLedger(t)
	if a := tl.put("1", "k", "v1", t0+1); a.Result.Decision != DecisionPermit || a.Result.Version != 2 {
		t.Fatalf("put: %+v", a.Result)
	}
	if a := tl.get("2", "k", t0+2); !a.Result.Found || string(a.Result.Value) != "v1" || a.Event == nil {
		t.Fatalf("get: %+v", a.Result)
	}
	if a := tl.get("3", "missing", t0+3); a.Result.Found || a.Result.Reason != ReasonNotFound || a.Result.Decision != DecisionPermit {
		t.Fatalf("get missing: %+v", a.Result)
	}
	cas := func(rid string, exists bool, expect, val string) Applied {
		return tl.apply(env(CmdKVCAS, rid, testRootToken[:], t0, &KVCAS{Key: "k", ExpectExists: exists, Expect: []byte(expect), Value: []byte(val)}))
	}
	if a := cas("4", true, "nope", "v2"); a.Result.Reason != ReasonCASMismatch || string(a.Result.Value) != "v1" {
		t.Fatalf("cas mismatch: %+v", a.Result)
	}
	if string(tl.State().KV["k"].Value) != "v1" {
		t.Fatal("failed cas changed the value")
	}
	if a := cas("5", false, "", "v2"); a.Result.Reason != ReasonCASMismatch {
		t.Fatalf("cas expecting absence on a present key: %+v", a.Result)
	}
	if a := cas("6", true, "v1", "v2"); a.Result.Reason != ReasonOK || string(tl.State().KV["k"].Value) != "v2" {
		t.Fatalf("cas: %+v", a.Result)
	}
	if a := tl.apply(env(CmdKVDelete, "7", testRootToken[:], t0, &KVKey{Key: "k"})); !a.Result.Found {
		t.Fatalf("delete: %+v", a.Result)
	}
	if _, ok := tl.State().KV["k"]; ok {
		t.Fatal("delete left the key")
	}
	if a := cas("8", false, "", "v3"); a.Result.Reason != ReasonOK || string(tl.State().KV["k"].Value) != "v3" {
		t.Fatalf("cas on absent key: %+v", a.Result)
	}
}

func TestLedgerTimeStrictlyIncreasing(t *testing.T) {
	tl := newTestLedger(t)
	stamps := []int64{t0 + 100, t0 + 100, t0 + 50, t0 + 1000, 0}
	prev := tl.State().Time
	for i, ts := range stamps {
		a := tl.put("", "k", "v", ts)
		if a.Event.Time <= prev {
			t.Fatalf("stamp %d: ledger time %d not after %d", i, a.Event.Time, prev)
		}
		if ts > prev && a.Event.Time != ts {
			t.Fatalf("stamp %d ahead of ledger time must be taken as is, got %d", ts, a.Event.Time)
		}
		prev = a.Event.Time
	}
}

func TestRequestIDDeduplicatedWithinWindow(t *testing.T) {
	for _, protocol := range []uint16{3, ProtocolAuthority} {
		tl := &testLedger{Ledger: New()}
		tl.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: protocol, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
		first := tl.put("req-1", "k", "v1", t0+1e9)
		seq, head := tl.State().Seq, tl.State().Head
		retry := tl.apply(env(CmdKVPut, "req-1", testRootToken[:], t0+2e9, &KVPut{Key: "k", Value: []byte("v1")}))
		if !retry.Result.Duplicate || retry.Event != nil || retry.Result.Seq != first.Result.Seq || retry.Result.Version != first.Result.Version {
			t.Fatalf("protocol %d: retry: %+v", protocol, retry.Result)
		}
		if tl.State().Seq != seq || tl.State().Head != head || string(tl.State().KV["k"].Value) != "v1" {
			t.Fatalf("protocol %d: retry changed state", protocol)
		}
		// The same id with another payload: under protocol 3 the first
		// answer again; from protocol 4 a refusal that changes nothing else.
		before := wholeState(tl.Ledger)
		other := tl.apply(env(CmdKVPut, "req-1", testRootToken[:], t0+3e9, &KVPut{Key: "k", Value: []byte("other")}))
		switch {
		case protocol < ProtocolAuthority && (!other.Result.Duplicate || other.Event != nil):
			t.Fatalf("protocol 3: reuse with another payload: %+v", other.Result)
		case protocol >= ProtocolAuthority && (other.Event == nil || other.Result.Decision != DecisionDeny || other.Result.Reason != ReasonRequestIDReused):
			t.Fatalf("protocol 4: reuse with another payload: %+v", other.Result)
		case wholeState(tl.Ledger) != before || string(tl.State().KV["k"].Value) != "v1":
			t.Fatalf("protocol %d: a reused request id changed the state", protocol)
		}
		if protocol >= ProtocolAuthority {
			get := tl.apply(env(CmdKVGet, "req-1", testRootToken[:], t0+4e9, &KVKey{Key: "k"}))
			if get.Result.Reason != ReasonRequestIDReused {
				t.Fatalf("the id reused for another command: %+v", get.Result)
			}
		}
		// After the window (60 s of ledger time) the id is forgotten.
		tl.put("", "x", "y", t0+62e9)
		again := tl.put("req-1", "k", "v3", t0+63e9)
		if again.Result.Duplicate || again.Event == nil {
			t.Fatalf("protocol %d: request id still deduplicated after its window: %+v", protocol, again.Result)
		}
	}
}

func TestUnknownTokenDeniedAndRecorded(t *testing.T) {
	tl := newTestLedger(t)
	a := tl.apply(env(CmdKVPut, "r", otherToken[:], t0, &KVPut{Key: "k", Value: []byte("v")}))
	if a.Result.Decision != DecisionDeny || a.Result.Reason != ReasonUnknownToken || a.Event.Actor != "" {
		t.Fatalf("unknown token: %+v", a.Result)
	}
	if len(tl.State().KV) != 0 {
		t.Fatal("denied put changed the store")
	}
}

func TestMalformedEntryIsADeterministicDenial(t *testing.T) {
	tl := newTestLedger(t)
	kv := len(tl.State().KV)
	a := tl.apply([]byte{0xc1, 0x00, 0x01})
	if a.Event == nil || a.Result.Reason != ReasonMalformed || a.Result.Decision != DecisionDeny {
		t.Fatalf("malformed entry: %+v", a.Result)
	}
	if len(tl.State().KV) != kv {
		t.Fatal("malformed entry changed the store")
	}
	// A put whose payload does not decode is denied too.
	bad := Encode(&Envelope{Type: CmdKVPut, Auth: testRootToken[:], Payload: []byte{0x93}})
	if a := tl.apply(bad); a.Result.Reason != ReasonMalformed {
		t.Fatalf("bad payload: %+v", a.Result)
	}
}

func TestUnknownCommandStopsTheNode(t *testing.T) {
	tl := newTestLedger(t)
	defer func() {
		r := recover()
		var uc UnknownCommandError
		if err, ok := r.(error); !ok || !errors.As(err, &uc) || uc.Type != 99 {
			t.Fatalf("recovered %v, want UnknownCommandError", r)
		}
	}()
	tl.apply(env(99, "", testRootToken[:], t0, nil))
	t.Fatal("unknown command applied")
}

func TestIgnorableUnknownCommandIsANoop(t *testing.T) {
	tl := newTestLedger(t)
	seq := tl.State().Seq
	a := tl.apply(env(IgnoreUnknownFlag|99, "", testRootToken[:], t0, nil))
	if !a.Result.Noop || tl.State().Seq != seq {
		t.Fatalf("ignorable unknown command: %+v", a.Result)
	}
}

func TestOversizedValueDenied(t *testing.T) {
	tl := newTestLedger(t)
	a := tl.put("", "k", string(make([]byte, MaxValueBytes+1)), t0)
	if a.Result.Reason != ReasonTooLarge || len(tl.State().KV) != 0 {
		t.Fatalf("oversized value: %+v", a.Result)
	}
}

func TestSnapshotRoundTripAndTamper(t *testing.T) {
	tl := newTestLedger(t)
	for i := 0; i < 20; i++ {
		tl.put("r"+string(rune('a'+i)), "k"+string(rune('a'+i%5)), "v", t0+int64(i))
	}
	snap := tl.Snapshot()
	other := New()
	f, err := other.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if f.Head.Seq != tl.State().Seq || other.Digest() != tl.Digest() || !bytes.Equal(other.Snapshot(), snap) {
		t.Fatal("restored ledger differs")
	}
	for i := range snap {
		tampered := append([]byte(nil), snap...)
		tampered[i] ^= 0x01
		fresh := New()
		if _, err := fresh.Restore(tampered); err == nil {
			t.Fatalf("snapshot with byte %d flipped restored without error", i)
		}
		if fresh.State().Seq != 0 {
			t.Fatal("failed restore changed state")
		}
	}
}

func TestCheckpointAndEpoch(t *testing.T) {
	tl := newTestLedger(t)
	tl.put("", "a", "1", t0+1)
	snap := tl.Snapshot()
	head := tl.Head()
	tl.put("", "a", "2", t0+2)
	tl.put("", "b", "3", t0+3)
	epoch := func() Applied {
		return tl.apply(env(CmdEpoch, "", testRootToken[:], t0+4, &Epoch{Snapshot: snap}))
	}
	// Without a recorded checkpoint the snapshot is refused.
	if a := epoch(); a.Result.Reason != ReasonHeadMismatch || string(tl.State().KV["a"].Value) != "2" {
		t.Fatalf("epoch without checkpoint: %+v", a.Result)
	}
	if a := tl.apply(env(CmdCheckpoint, "", testRootToken[:], t0+5, &Checkpoint{Seq: head.Seq, Hash: head.Hash})); a.Result.Decision != DecisionPermit {
		t.Fatalf("checkpoint: %+v", a.Result)
	}
	oldHead := tl.State().Head
	a := epoch()
	if a.Result.Decision != DecisionPermit || !bytes.Equal(a.Event.Prev, oldHead[:]) || a.Event.Epoch != 1 {
		t.Fatalf("epoch: %+v %+v", a.Result, a.Event)
	}
	if string(tl.State().KV["a"].Value) != "1" || tl.State().KV["b"] != nil {
		t.Fatal("epoch did not restore the snapshot's data")
	}
	// A checkpoint claiming the current seq with another hash is refused.
	bad := tl.apply(env(CmdCheckpoint, "", testRootToken[:], t0+6, &Checkpoint{Seq: tl.State().Seq, Hash: make([]byte, 32)}))
	if bad.Result.Reason != ReasonHeadMismatch {
		t.Fatalf("bad checkpoint: %+v", bad.Result)
	}
}

func TestDigestLaterEqualsDigest(t *testing.T) {
	tl := newTestLedger(t)
	for i := 0; i < 50; i++ {
		tl.put(fmt.Sprint("r", i), fmt.Sprint("k", i%7), "v", t0+int64(i))
	}
	seq, _, compute := tl.DigestLater()
	want := tl.Digest()
	// Later applies must not change the captured digest.
	tl.put("x", "k1", "changed", t0+100)
	if seq != tl.State().Seq-1 || compute() != want {
		t.Fatal("captured digest differs from Digest() at the captured seq")
	}
}
