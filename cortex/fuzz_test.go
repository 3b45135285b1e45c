package cortex

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode checks the decoder on arbitrary bytes: it never panics, never
// accepts more than MaxMessageBytes, accepts only canonical encodings
// (re-encoding reproduces the input), and the receiver accepts a message
// only if its signature verifies under the one key it knows.
func FuzzDecode(f *testing.F) {
	key := nodeKey("acme/acme-1")
	if b, err := os.ReadFile(filepath.Join("testdata", "signal_v1.hex")); err == nil {
		if raw, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
			f.Add(raw)
		}
	}
	for _, k := range Kinds() {
		s := sampleSignal()
		s.Kind, s.Value = k, 0
		if b, err := Seal(s, key); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte(magic))
	f.Add(make([]byte, MaxMessageBytes+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		s, sig, err := Decode(b)
		if !bytes.Equal(in, b) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			return
		}
		if len(b) > MaxMessageBytes {
			t.Fatalf("accepted %d bytes, limit %d", len(b), MaxMessageBytes)
		}
		if err := s.CheckForm(); err != nil {
			t.Fatalf("decoded signal fails CheckForm: %v", err)
		}
		again, err := Encode(s, sig)
		if err != nil {
			t.Fatalf("Encode of a decoded signal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("non-canonical input accepted:\n in %x\nout %x", b, again)
		}
		r, _ := newTestReceiver(16)
		if _, err := r.receive(b); err == nil && !Verify(s, sig, nodeKey(s.Domain+"/"+s.Node).Public().(ed25519.PublicKey)) {
			t.Fatal("receiver accepted a signal whose signature does not verify under its node's key")
		}
	})
}

// FuzzDecodeState checks the push/pull state framing on arbitrary bytes:
// no panics, bounded output, and only canonical framings accepted.
func FuzzDecodeState(f *testing.F) {
	key := nodeKey("acme/acme-1")
	s := sampleSignal()
	if b, err := Seal(s, key); err == nil {
		f.Add(encodeState([][]byte{b}))
		f.Add(encodeState([][]byte{b, b}))
	}
	f.Add(encodeState(nil))
	f.Add([]byte(stateMagic + "\x00\x01\x00\x01x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := decodeState(b)
		if err != nil {
			return
		}
		if len(msgs) > MaxStateSignals {
			t.Fatalf("accepted %d signals, limit %d", len(msgs), MaxStateSignals)
		}
		for _, m := range msgs {
			if len(m) < 1 || len(m) > MaxMessageBytes {
				t.Fatalf("accepted a %d-byte signal", len(m))
			}
		}
		if again := encodeState(msgs); !bytes.Equal(again, b) {
			t.Fatalf("non-canonical state accepted:\n in %x\nout %x", b, again)
		}
	})
}
