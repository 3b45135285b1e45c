package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// fuzzKeys gives every valid link a key derived from testMaster, so fuzzed
// frames reach the MAC check.
func fuzzKeys(from, to string) ([]byte, bool) {
	k, err := DeriveLinkKey(testMaster, from, to)
	return k, err == nil
}

var decodeErrors = []error{ErrMalformed, ErrTooLarge, ErrVersion, ErrUnknownLink, ErrBadMAC}

func isTyped(err error, typed []error) bool {
	for _, e := range typed {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzDecodeFrame: Decode never panics, fails only with a typed error, and
// whatever it accepts re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	key, _ := fuzzKeys("acme", "glob")
	valid, _ := Encode(sampleFrame(), key)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{})
	f.Add([]byte{1, 1})
	empty := sampleFrame()
	empty.Payload = nil
	e, _ := Encode(empty, key)
	f.Add(e)
	ack, _ := EncodeAck(sampleAck(valid), key)
	f.Add(ack)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b, fuzzKeys)
		if err != nil {
			if !isTyped(err, decodeErrors) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		k, ok := fuzzKeys(fr.Origin, fr.Destination)
		if !ok {
			t.Fatalf("accepted a frame on link %s->%s with no key", fr.Origin, fr.Destination)
		}
		again, err := Encode(fr, k)
		if err != nil {
			t.Fatalf("re-encode of an accepted frame: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted encoding is not canonical:\n in %x\nout %x", b, again)
		}
	})
}

// FuzzFrameRoundTrip: any frame Encode accepts decodes to itself.
func FuzzFrameRoundTrip(f *testing.F) {
	s := sampleFrame()
	f.Add(s.Origin, s.OriginNode, s.Destination, s.Seq, s.PassportID, s.Type, s.SentAtNs, s.Payload)
	f.Add("a", "b", "c", uint64(1), "p", "t", int64(-1), []byte{})
	f.Fuzz(func(t *testing.T, origin, node, dest string, seq uint64, passport, typ string, sentAt int64, payload []byte) {
		fr := Frame{Version: FrameVersion, Origin: origin, OriginNode: node, Destination: dest, Seq: seq,
			PassportID: passport, Type: typ, SentAtNs: sentAt, Payload: payload}
		key, ok := fuzzKeys(origin, dest)
		if !ok {
			key = bytes.Repeat([]byte{3}, 32)
		}
		b, err := Encode(fr, key)
		if err != nil {
			if !isTyped(err, []error{ErrMalformed, ErrTooLarge, ErrVersion}) {
				t.Fatalf("untyped Encode error %v", err)
			}
			return
		}
		if !ok {
			t.Fatalf("Encode accepted link %q->%q that DeriveLinkKey refuses", origin, dest)
		}
		got, err := Decode(b, fuzzKeys)
		if err != nil {
			t.Fatalf("Decode(Encode(f)): %v", err)
		}
		if len(fr.Payload) == 0 {
			fr.Payload = got.Payload
		}
		if !reflect.DeepEqual(got, fr) {
			t.Fatalf("round trip: got %+v, want %+v", got, fr)
		}
	})
}

// FuzzDecodeAck: DecodeAck never panics, fails only with a typed error, and
// whatever it accepts re-encodes to the same bytes.
func FuzzDecodeAck(f *testing.F) {
	key, _ := fuzzKeys("glob", "acme")
	valid, _ := EncodeAck(sampleAck([]byte("event")), key)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAck(b, fuzzKeys)
		if err != nil {
			if !isTyped(err, decodeErrors) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		k, _ := fuzzKeys(a.Responder, a.Origin)
		again, err := EncodeAck(a, k)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted ack is not canonical (%v):\n in %x\nout %x", err, b, again)
		}
	})
}

// FuzzWindow drives a Window and the reference model with the same
// sequence numbers, read as deltas from the fuzz input, and checks they
// agree; it also feeds the input to DecodeWindow, which must never panic
// and must re-encode whatever it accepts to the same bytes.
func FuzzWindow(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 2, 0, 1})
	f.Add(bytes.Repeat([]byte{0x83, 0xff}, 40))
	var w Window
	_ = w.Accept(7)
	_ = w.Accept(3)
	f.Add(w.Encode())
	f.Fuzz(func(t *testing.T, in []byte) {
		if back, err := DecodeWindow(in); err == nil {
			if !bytes.Equal(back.Encode(), in) {
				t.Fatalf("DecodeWindow accepted a non-canonical encoding %x", in)
			}
		} else if !isTyped(err, []error{ErrMalformed, ErrVersion}) {
			t.Fatalf("untyped DecodeWindow error %v", err)
		}

		var w Window
		m := &modelWindow{seen: map[uint64]bool{}}
		for i := 0; i+1 < len(in) && i < 4096; i += 2 {
			// Top bit: backwards from highest; next bit: a large jump.
			d := uint64(binary.BigEndian.Uint16(in[i:]))
			var seq uint64
			switch {
			case d&0x8000 != 0:
				seq = m.highest - min(m.highest, d&0x3fff)
			case d&0x4000 != 0:
				seq = m.highest + (d&0x3fff)<<20
			default:
				seq = m.highest + d
			}
			want := m.accept(seq)
			got := w.Accept(seq)
			if (want == nil) != (got == nil) || (want != nil && !errors.Is(got, want)) {
				t.Fatalf("op %d: Accept(%d) = %v, model %v", i/2, seq, got, want)
			}
			if w.Highest() != m.highest {
				t.Fatalf("op %d: highest %d, model %d", i/2, w.Highest(), m.highest)
			}
		}
		back, err := DecodeWindow(w.Encode())
		if err != nil || back != w {
			t.Fatalf("window did not survive Encode/Decode: %v", err)
		}
	})
}
