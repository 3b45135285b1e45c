package fsm

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
)

var (
	testCanon     = sha256.Sum256([]byte("test canon"))
	testRootToken = sha256.Sum256([]byte("root token"))
	otherToken    = sha256.Sum256([]byte("other token"))
)

const t0 = int64(1_700_000_000_000_000_000)

// testMemberNode is the member node every test ledger's genesis seals
// (unless the test names its own members), and testMemberKey its node
// key: the test harnesses sign internal commands with it, as a kernel's
// node does (protocol 4 refuses them unsigned).
const testMemberNode = "n0"

var testMemberKey = ed25519.NewKeyFromSeed(func() []byte { s := sha256.Sum256([]byte("test member")); return s[:] }())

// memberSigned returns the entry data with the test member's evidence
// for ledger l when it is an internal command without any; other
// entries are returned as they are.
func memberSigned(l *Ledger, data []byte) []byte {
	return memberSignedAs(l, data, testMemberNode, testMemberKey)
}

// memberSignedAs is memberSigned as member node with key.
func memberSignedAs(l *Ledger, data []byte, node string, key ed25519.PrivateKey) []byte {
	e, err := DecodeEnvelope(data)
	if err != nil || !IsInternal(e.Type) || e.Node != "" || len(e.Auth) != 0 || !l.State().Initialized {
		return data
	}
	SignMember(&e, l.State().Meta.KernelID, node, key)
	return Encode(&e)
}

func env(t CommandType, rid string, auth []byte, ts int64, payload any) []byte {
	e := Envelope{Type: t, RequestID: rid, Auth: auth, Time: ts}
	if g, ok := payload.(*Genesis); ok && t == CmdGenesis && g.Members == nil {
		c := *g
		c.Members = []GenesisMember{{Node: testMemberNode, PubKey: testMemberKey.Public().(ed25519.PublicKey)}}
		payload = &c
	}
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
	// member and memberKey sign internal commands ("" and nil: the
	// test member).
	member    string
	memberKey ed25519.PrivateKey
}

// sign adds the member evidence tl's member gives an internal command.
func (tl *testLedger) sign(data []byte) []byte {
	if tl.member != "" {
		return memberSignedAs(tl.Ledger, data, tl.member, tl.memberKey)
	}
	return memberSigned(tl.Ledger, data)
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
	return tl.Ledger.Apply(tl.index, tl.sign(data))
}

func (tl *testLedger) put(rid, key, val string, ts int64) Applied {
	return tl.apply(env(CmdKVPut, rid, testRootToken[:], ts, &KVPut{Key: key, Value: []byte(val)}))
}

func (tl *testLedger) get(rid, key string, ts int64) Applied {
	return tl.apply(env(CmdKVGet, rid, testRootToken[:], ts, &KVKey{Key: key}))
}
