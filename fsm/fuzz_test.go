package fsm

import (
	"errors"
	"testing"
)

func FuzzDecodeEnvelope(f *testing.F) {
	for ct, p := range goldenPayloads {
		f.Add(Encode(&Envelope{Type: ct, RequestID: "r", Auth: testRootToken[:], Time: t0, Payload: Encode(p)}))
	}
	f.Add([]byte{0xc1})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := DecodeEnvelope(data)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: it re-encodes to the same bytes.
		if string(Encode(&env)) != string(data) {
			t.Fatalf("decoded envelope re-encodes differently")
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	tl := &testLedger{Ledger: New()}
	tl.apply(genesisEntry(t0))
	tl.put("a", "k", "v", t0+1)
	f.Add(tl.Snapshot())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		l := New()
		if _, err := l.Restore(data); err != nil && l.State().Seq != 0 {
			t.Fatal("failed restore changed state")
		}
	})
}

// FuzzApply feeds arbitrary entries to an initialized ledger: it must never
// panic except to stop on an unknown command type, and a denial must never
// change the store.
func FuzzApply(f *testing.F) {
	for ct, p := range goldenPayloads {
		if ct != CmdGenesis {
			f.Add(Encode(&Envelope{Type: ct, RequestID: "r", Auth: testRootToken[:], Time: t0, Payload: Encode(p)}))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tl := &testLedger{Ledger: New()}
		tl.apply(genesisEntry(t0))
		tl.put("", "orders/1", "x", t0)
		before := tl.Digest()
		seq := tl.State().Seq
		defer func() {
			if r := recover(); r != nil {
				var uc UnknownCommandError
				if err, ok := r.(error); !ok || !errors.As(err, &uc) {
					t.Fatalf("panic: %v", r)
				}
			}
		}()
		a := tl.apply(data)
		if a.Event == nil && (tl.State().Seq != seq || tl.Digest() != before) {
			t.Fatal("noop changed state")
		}
		if a.Event != nil && a.Event.Seq != seq+1 {
			t.Fatalf("event seq %d after %d", a.Event.Seq, seq)
		}
		if a.Result.Decision == DecisionDeny && len(tl.State().KV) != 1 {
			t.Fatal("denied entry changed the store")
		}
	})
}
