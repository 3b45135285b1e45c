package fsm

import (
	"crypto/sha256"
	"testing"
)

var (
	testCanon     = sha256.Sum256([]byte("test canon"))
	testRootToken = sha256.Sum256([]byte("root token"))
	otherToken    = sha256.Sum256([]byte("other token"))
)

const t0 = int64(1_700_000_000_000_000_000)

func env(t CommandType, rid string, auth []byte, ts int64, payload any) []byte {
	e := Envelope{Type: t, RequestID: rid, Auth: auth, Time: ts}
	if payload != nil {
		e.Payload = Encode(payload)
	}
	return Encode(&e)
}

func genesisEntry(ts int64) []byte {
	return env(CmdGenesis, "", nil, ts, &Genesis{
		KernelID: "k1", CanonHash: testCanon[:], Protocol: ProtocolVersion,
		RootTokenHash: testRootToken[:], DedupWindowNs: 60e9,
	})
}

// testLedger is a ledger past genesis with a raft index counter.
type testLedger struct {
	*Ledger
	index uint64
}

func newTestLedger(t *testing.T) *testLedger {
	t.Helper()
	tl := &testLedger{Ledger: New()}
	a := tl.apply(genesisEntry(t0))
	if a.Event == nil || a.Result.Decision != DecisionPermit {
		t.Fatalf("genesis: %+v", a.Result)
	}
	return tl
}

func (tl *testLedger) apply(data []byte) Applied {
	tl.index++
	return tl.Ledger.Apply(tl.index, data)
}

func (tl *testLedger) put(rid, key, val string, ts int64) Applied {
	return tl.apply(env(CmdKVPut, rid, testRootToken[:], ts, &KVPut{Key: key, Value: []byte(val)}))
}

func (tl *testLedger) get(rid, key string, ts int64) Applied {
	return tl.apply(env(CmdKVGet, rid, testRootToken[:], ts, &KVKey{Key: key}))
}
