package fsm

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// The hand-written encoders must write exactly what the reflection codec
// writes, for every value: each type is encoded both ways on boundary
// values (integer widths, string and bin header sizes, nil against empty
// slices, omitted fields) and on random ones.
func TestCanonicalEncodersMatchTheCodec(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	g := valueGen{rng}

	check := func(what string, v canonicalAppender) {
		t.Helper()
		want := encodeReflect(v)
		got := v.appendCanonical(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s %+v:\nhand-written %x\ncodec        %x", what, v, got, want)
		}
		if enc := Encode(v); !bytes.Equal(enc, want) {
			t.Fatalf("%s: Encode %x, codec %x", what, enc, want)
		}
	}
	check("nil event", (*Event)(nil))
	check("zero envelope", &Envelope{})
	check("zero event", &Event{})
	check("zero syscall", &Syscall{})
	check("archived noop", &ArchivedEntry{Entry: []byte{1}})
	for i := 0; i < 3000; i++ {
		check("envelope", &Envelope{Type: CommandType(g.uint(16)), RequestID: g.str(), Auth: g.bin(), Time: g.int(), Payload: g.bin()})
		check("kv put", &KVPut{Key: g.str(), Value: g.bin()})
		check("kv key", &KVKey{Key: g.str()})
		check("syscall", &Syscall{Op: g.str(), Resource: g.str(), Args: g.bin(), ApprovalID: g.str(), RemoteTokenHash: g.bin()})
		ev := &Event{Seq: g.uint(64), Time: g.int(), Epoch: g.uint(64), Index: g.uint(64), Type: CommandType(g.uint(16)),
			Actor: g.str(), RequestID: g.str(), Subject: g.str(), PayloadHash: g.bin(), Decision: Decision(g.uint(8)),
			Reason: Reason(g.uint(16)), Prev: g.bin(), Detail: g.bin()}
		check("event", ev)
		outcome := func() PolicyOutcome {
			return PolicyOutcome{Decision: Decision(g.uint(8)), Reason: Reason(g.uint(16)), Matched: g.strs(), Errors: g.strs(), Why: g.str()}
		}
		d := &SyscallDetail{CapID: g.str(), Op: g.str(), Resource: g.str(), ArgsDigest: g.str(), ApprovalID: g.str(),
			PolicyVersion: g.uint(64), Judged: rng.Intn(2) == 0, Policy: outcome(), UsesLeft: g.int(),
			Request: CedarRequest{Principal: g.str(), Tier: g.str(), Trust: g.int(), Action: g.str(), Resource: g.str(),
				Posture: g.str(), Deviation: g.int(), LedgerTime: g.int(), Domain: g.str(), Cohort: g.str()}}
		switch rng.Intn(3) {
		case 0:
		case 1:
			d.Shadow = []ShadowOutcome{}
		default:
			for j := rng.Intn(20); j >= 0; j-- {
				d.Shadow = append(d.Shadow, ShadowOutcome{Set: g.str(), Outcome: outcome()})
			}
		}
		check("syscall detail", d)
		if rng.Intn(4) == 0 {
			ev = nil
		}
		check("archived", &ArchivedEntry{Entry: g.bin(), Event: ev, Head: g.bin()})
	}
}

// valueGen draws values that often sit on an encoding boundary.
type valueGen struct{ rng *rand.Rand }

var lengthEdges = []int{0, 1, 15, 16, 31, 32, 33, 255, 256, 257, 65535, 65536, 70000}

func (g valueGen) length() int {
	if g.rng.Intn(3) == 0 {
		return lengthEdges[g.rng.Intn(len(lengthEdges))]
	}
	return g.rng.Intn(300)
}

func (g valueGen) str() string {
	b := make([]byte, g.length())
	g.rng.Read(b) // arbitrary bytes, not only UTF-8
	return string(b)
}

func (g valueGen) bin() []byte {
	switch g.rng.Intn(6) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, g.length())
	g.rng.Read(b)
	return b
}

func (g valueGen) strs() []string {
	switch g.rng.Intn(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	n := g.rng.Intn(20)
	if g.rng.Intn(50) == 0 {
		n = 65536 + g.rng.Intn(3)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a' + g.rng.Intn(26)))
	}
	return out
}

// uint draws an unsigned value of at most bits bits, often a width edge.
func (g valueGen) uint(bits int) uint64 {
	max := uint64(math.MaxUint64) >> (64 - bits)
	edges := []uint64{0, 1, 127, 128, 255, 256, math.MaxUint16, math.MaxUint16 + 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}
	if g.rng.Intn(2) == 0 {
		return edges[g.rng.Intn(len(edges))] & max
	}
	return g.rng.Uint64() >> (64 - g.rng.Intn(bits) - 1)
}

func (g valueGen) int() int64 {
	edges := []int64{0, 1, -1, 31, 32, -32, -33, 127, 128, -128, -129, math.MaxInt16, math.MaxInt16 + 1, math.MinInt16, math.MinInt16 - 1,
		math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1, math.MaxInt64, math.MinInt64}
	if g.rng.Intn(2) == 0 {
		return edges[g.rng.Intn(len(edges))]
	}
	v := int64(g.rng.Uint64() >> g.rng.Intn(64))
	if g.rng.Intn(2) == 0 {
		v = -v
	}
	return v
}

// A hand-encoded value decodes back to itself through the canonical
// check of Decode (the round trip the FSM does on every entry).
func TestCanonicalEncodersRoundTripThroughDecode(t *testing.T) {
	env := &Envelope{Type: CmdSyscall, RequestID: "r-1", Auth: bytes.Repeat([]byte{7}, 32), Time: 1_700_000_000_000_000_000,
		Payload: Encode(&Syscall{Op: "kv.put", Resource: "orders/1", Args: make([]byte, 256), RemoteTokenHash: []byte{1, 2}})}
	var back Envelope
	if err := Decode(Encode(env), &back); err != nil {
		t.Fatal(err)
	}
	var sc Syscall
	if err := Decode(back.Payload, &sc); err != nil || sc.Op != "kv.put" || len(sc.Args) != 256 || !bytes.Equal(sc.RemoteTokenHash, []byte{1, 2}) {
		t.Fatalf("syscall %+v: %v", sc, err)
	}
}

// The hand-written state body encoder writes the codec's bytes for real
// states: a standalone ledger with kv entries and a full dedup window,
// a domain with federation state and an outbox, and a sovereign; and for
// random kv and dedup records.
func TestStateBodyEncoderMatchesTheCodec(t *testing.T) {
	check := func(what string, b stateBody) {
		t.Helper()
		if got, want := b.appendCanonical(nil), encodeReflect(&b); !bytes.Equal(got, want) {
			t.Fatalf("%s: state body differs from the codec's (%d vs %d bytes)", what, len(got), len(want))
		}
	}
	check("empty state", newState().body())
	tl := newTestLedger(t)
	for i := 0; i < 300; i++ {
		tl.put(fmt.Sprint("r", i), fmt.Sprint("k", i%37), strings.Repeat("v", i), t0+int64(i))
	}
	check("standalone ledger", tl.State().body())

	k := newFedKeys(t)
	acme := newDomainLedger(t, "acme").viewsBy(k)
	acme.must("acme view", CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	acme.must("grant agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("acme/agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	acme.must("remote call", CmdSyscall, tokenHash("acme/agent"), &Syscall{Op: "kv.put", Resource: "other:orders/1", Args: []byte("v"),
		RemoteTokenHash: tokenHash("other/grant for acme/agent")})
	check("domain ledger", acme.State().body())
	sov := newSovereign(t, k, threeSovereigns, 2)
	sov.create("acme")
	sov.join("acme")
	check("sovereign ledger", sov.State().body())
	ev, _ := evoToPhase(t, PhaseCanary) // evolutions and policy versions (protocol 8)
	check("evolving ledger", ev.State().body())

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	g := valueGen{rand.New(rand.NewSource(seed))}
	for i := 0; i < 2000; i++ {
		kv := &kvItem{Key: g.str(), Entry: KVEntry{Value: g.bin(), Version: g.uint(64), Created: g.uint(64)}}
		if got, want := kv.appendCanonical(nil), encodeReflect(kv); !bytes.Equal(got, want) {
			t.Fatalf("kv item %+v: %x, codec %x", kv, got, want)
		}
		d := &DedupEntry{Caller: g.str(), RequestID: g.str(), Time: g.int(), Result: StoredResult{Seq: g.uint(64), Decision: Decision(g.uint(8)),
			Reason: Reason(g.uint(16)), Value: g.bin(), Found: g.rng.Intn(2) == 0, Version: g.uint(64), ID: g.str()}}
		if g.rng.Intn(2) == 0 { // protocol 4 entries carry digests
			d.Digest = g.bin()
		}
		if got, want := d.appendCanonical(nil), encodeReflect(d); !bytes.Equal(got, want) {
			t.Fatalf("dedup entry %+v: %x, codec %x", d, got, want)
		}
	}
}
