package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// testMaster is the sovereign master secret of the pure tests.
var testMaster = bytes.Repeat([]byte{0x5a}, 32)

// linkKeys holds the keys of a set of directed links, as one kernel would.
type linkKeys map[[2]string][]byte

func (k linkKeys) lookup(from, to string) ([]byte, bool) {
	key, ok := k[[2]string{from, to}]
	return key, ok
}

func mustLinkKey(t testing.TB, master []byte, from, to string) []byte {
	t.Helper()
	key, err := DeriveLinkKey(master, from, to)
	if err != nil {
		t.Fatalf("DeriveLinkKey(%s, %s): %v", from, to, err)
	}
	return key
}

// keysFor returns the link keys kernel self holds: both directions of its
// link with each of peers.
func keysFor(t testing.TB, master []byte, self string, peers ...string) linkKeys {
	t.Helper()
	k := linkKeys{}
	for _, p := range peers {
		k[[2]string{self, p}] = mustLinkKey(t, master, self, p)
		k[[2]string{p, self}] = mustLinkKey(t, master, p, self)
	}
	return k
}

func sampleFrame() Frame {
	return Frame{
		Version:     FrameVersion,
		Origin:      "acme",
		OriginNode:  "acme-1",
		Destination: "glob",
		Seq:         42,
		PassportID:  "pp-acme-7",
		Type:        "kv.put",
		SentAtNs:    1_700_000_000_123_456_789,
		Payload:     []byte("hello, federation"),
	}
}

func mustEncode(t testing.TB, f Frame, key []byte) []byte {
	t.Helper()
	b, err := Encode(f, key)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// referenceEncode builds the documented event layout independently of
// Encode, with a bytes.Buffer and encoding/binary.Write.
func referenceEncode(f Frame, key []byte) []byte {
	var buf bytes.Buffer
	buf.WriteByte(f.Version)
	buf.WriteByte(1)
	for _, s := range []string{f.Origin, f.OriginNode, f.Destination} {
		buf.WriteByte(byte(len(s)))
		buf.WriteString(s)
	}
	_ = binary.Write(&buf, binary.BigEndian, f.Seq)
	for _, s := range []string{f.PassportID, f.Type} {
		buf.WriteByte(byte(len(s)))
		buf.WriteString(s)
	}
	_ = binary.Write(&buf, binary.BigEndian, f.SentAtNs)
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(f.Payload)))
	buf.Write(f.Payload)
	m := hmac.New(sha256.New, key)
	m.Write(buf.Bytes())
	buf.Write(m.Sum(nil))
	return buf.Bytes()
}

// goldenFrameHex is sampleFrame sealed with key 0x01*32, FrameVersion 1.
// The encoding is protocol: a change here breaks every deployed peer.
const goldenFrameHex = "01010461636d650661636d652d3104676c6f62000000000000002a0970702d61636d652d37066b762e70757417979cfe3d85cd150000001168656c6c6f2c2066656465726174696f6e" +
	"63efed0b24fc1645bc33240eacaca66037d6ed303600dd543950840f15157503"

func TestEncodeMatchesReferenceAndGolden(t *testing.T) {
	key := bytes.Repeat([]byte{0x01}, 32)
	f := sampleFrame()
	got := mustEncode(t, f, key)
	if want := referenceEncode(f, key); !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from the reference layout:\n got %x\nwant %x", got, want)
	}
	if hex.EncodeToString(got) != goldenFrameHex {
		t.Fatalf("Encode differs from the golden fixture:\n got %x\nwant %s", got, goldenFrameHex)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	keys := keysFor(t, testMaster, "glob", "acme")
	key := keys[[2]string{"acme", "glob"}]
	cases := map[string]func(*Frame){
		"sample":        func(*Frame) {},
		"empty payload": func(f *Frame) { f.Payload = nil },
		"max payload":   func(f *Frame) { f.Payload = bytes.Repeat([]byte{0xee}, MaxPayloadBytes) },
		"max strings": func(f *Frame) {
			f.OriginNode = strings.Repeat("n", NodeNameLengthMax)
			f.PassportID = strings.Repeat("p", PassportIDLengthMax)
			f.Type = strings.Repeat("t", TypeLengthMax)
		},
		"max seq, negative time": func(f *Frame) { f.Seq = ^uint64(0); f.SentAtNs = -1 },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			f := sampleFrame()
			mod(&f)
			b := mustEncode(t, f, key)
			if len(b) > MaxFrameBytes {
				t.Fatalf("encoding of %d bytes exceeds MaxFrameBytes %d", len(b), MaxFrameBytes)
			}
			got, err := Decode(b, keys.lookup)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(f.Payload) == 0 {
				f.Payload = got.Payload // nil and empty are the same encoding
			}
			if !reflect.DeepEqual(got, f) {
				t.Fatalf("Decode(Encode(f)) = %+v, want %+v", got, f)
			}
			if len(got.Payload) > 0 {
				b[len(b)-MACSize-1] ^= 0xff // last payload byte
				if got.Payload[len(got.Payload)-1] == b[len(b)-MACSize-1] {
					t.Fatal("decoded payload aliases the input")
				}
			}
		})
	}
}

// fieldOffsets returns the offset of one byte inside each field of an
// encoded event, computed from the documented layout.
func fieldOffsets(b []byte) map[string]int {
	off := map[string]int{"version": 0, "kind": 1}
	i := 2
	str := func(name string) {
		off[name+" length"] = i
		off[name] = i + 1
		i += 1 + int(b[i])
	}
	str("origin")
	str("origin node")
	str("destination")
	off["seq"] = i + 7
	i += 8
	str("passport id")
	str("type")
	off["sent at"] = i + 7
	i += 8
	off["payload length"] = i + 3
	off["payload"] = i + 4
	off["mac"] = len(b) - 1
	return off
}

func TestDecodeRejectsTamperingPerField(t *testing.T) {
	// glob holds keys for its links with acme and init, so relabelling the
	// origin acme as init reaches a real key, and acme as acmf does not.
	keys := keysFor(t, testMaster, "glob", "acme", "init")
	key := keys[[2]string{"acme", "glob"}]
	f := sampleFrame()
	b := mustEncode(t, f, key)
	off := fieldOffsets(b)
	set := func(field string, s string) func([]byte) {
		return func(c []byte) { copy(c[off[field]:], s) }
	}
	cases := []struct {
		name   string
		tamper func([]byte)
		want   error
	}{
		{"version", func(c []byte) { c[0] = 2 }, ErrVersion},
		{"kind", func(c []byte) { c[1] = kindAck }, ErrMalformed},
		{"origin to another known kernel", set("origin", "init"), ErrBadMAC},
		{"origin to an unknown kernel", set("origin", "acmf"), ErrUnknownLink},
		{"origin to a bad character", set("origin", "ac>e"), ErrMalformed},
		{"origin node", set("origin node", "acme-2"), ErrBadMAC},
		{"destination", set("destination", "glom"), ErrUnknownLink},
		{"seq", func(c []byte) { c[off["seq"]] ^= 0x01 }, ErrBadMAC},
		{"seq to zero", func(c []byte) { c[off["seq"]] = 0 }, ErrMalformed},
		{"passport id", set("passport id", "pp-acme-8"), ErrBadMAC},
		{"type", set("type", "kv.del"), ErrBadMAC},
		{"sent at", func(c []byte) { c[off["sent at"]] ^= 0x80 }, ErrBadMAC},
		{"payload", func(c []byte) { c[off["payload"]] ^= 0x20 }, ErrBadMAC},
		{"payload length", func(c []byte) { c[off["payload length"]]++ }, ErrMalformed},
		{"payload length huge", func(c []byte) { c[off["payload length"]-3] = 0x7f }, ErrTooLarge},
		{"origin length", func(c []byte) { c[off["origin length"]] = 0 }, ErrMalformed},
		{"mac", func(c []byte) { c[off["mac"]] ^= 0x01 }, ErrBadMAC},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := bytes.Clone(b)
			tc.tamper(c)
			if bytes.Equal(c, b) {
				t.Fatal("tamper changed nothing")
			}
			_, err := Decode(c, keys.lookup)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(tampered %s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

// Every single-byte change anywhere in a frame fails Decode with one of the
// typed errors; none is accepted.
func TestDecodeRejectsEveryByteFlip(t *testing.T) {
	keys := keysFor(t, testMaster, "glob", "acme")
	b := mustEncode(t, sampleFrame(), keys[[2]string{"acme", "glob"}])
	typed := []error{ErrMalformed, ErrTooLarge, ErrVersion, ErrUnknownLink, ErrBadMAC}
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			_, err := Decode(c, keys.lookup)
			if err == nil {
				t.Fatalf("byte %d ^ %#x accepted", i, mask)
			}
			ok := false
			for _, e := range typed {
				ok = ok || errors.Is(err, e)
			}
			if !ok {
				t.Fatalf("byte %d ^ %#x: untyped error %v", i, mask, err)
			}
		}
	}
	for n := range len(b) {
		if _, err := Decode(b[:n], keys.lookup); err == nil {
			t.Fatalf("truncation to %d bytes accepted", n)
		}
	}
	if _, err := Decode(append(bytes.Clone(b), 0), keys.lookup); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadMAC) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestDecodeKeys(t *testing.T) {
	f := sampleFrame()
	aToG := mustLinkKey(t, testMaster, "acme", "glob")
	gToA := mustLinkKey(t, testMaster, "glob", "acme")
	glob := keysFor(t, testMaster, "glob", "acme")

	if _, err := Decode(mustEncode(t, f, gToA), glob.lookup); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("frame acme->glob sealed with the glob->acme key: %v, want ErrBadMAC", err)
	}
	otherMaster := bytes.Repeat([]byte{0x77}, 32)
	if _, err := Decode(mustEncode(t, f, mustLinkKey(t, otherMaster, "acme", "glob")), glob.lookup); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("frame sealed under another master: %v, want ErrBadMAC", err)
	}
	f2 := f
	f2.Origin = "evil"
	if _, err := Decode(mustEncode(t, f2, aToG), glob.lookup); !errors.Is(err, ErrUnknownLink) {
		t.Fatalf("frame from an unknown origin: %v, want ErrUnknownLink", err)
	}
	if _, err := Decode(mustEncode(t, f, aToG), nil); !errors.Is(err, ErrUnknownLink) {
		t.Fatalf("nil key function: %v, want ErrUnknownLink", err)
	}
	short := func(string, string) ([]byte, bool) { return []byte("short"), true }
	if _, err := Decode(mustEncode(t, f, aToG), short); !errors.Is(err, ErrUnknownLink) {
		t.Fatalf("short key: %v, want ErrUnknownLink", err)
	}
	// A forged MAC: right layout, random tag.
	rng := rand.New(rand.NewPCG(1, 2))
	b := mustEncode(t, f, aToG)
	for i := len(b) - MACSize; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
	if _, err := Decode(b, glob.lookup); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("forged MAC: %v, want ErrBadMAC", err)
	}
}

func TestEncodeRejectsInvalidFrames(t *testing.T) {
	key := mustLinkKey(t, testMaster, "acme", "glob")
	cases := []struct {
		name string
		mod  func(*Frame)
		want error
	}{
		{"version 0", func(f *Frame) { f.Version = 0 }, ErrVersion},
		{"payload over limit", func(f *Frame) { f.Payload = make([]byte, MaxPayloadBytes+1) }, ErrTooLarge},
		{"empty origin", func(f *Frame) { f.Origin = "" }, ErrMalformed},
		{"origin with '>'", func(f *Frame) { f.Origin = "a>b" }, ErrMalformed},
		{"origin too long", func(f *Frame) { f.Origin = strings.Repeat("a", KernelIDLengthMax+1) }, ErrMalformed},
		{"node with '/'", func(f *Frame) { f.OriginNode = "a/b" }, ErrMalformed},
		{"destination with space", func(f *Frame) { f.Destination = "a b" }, ErrMalformed},
		{"seq 0", func(f *Frame) { f.Seq = 0 }, ErrMalformed},
		{"to itself", func(f *Frame) { f.Destination = f.Origin }, ErrMalformed},
		{"empty passport", func(f *Frame) { f.PassportID = "" }, ErrMalformed},
		{"type too long", func(f *Frame) { f.Type = strings.Repeat("t", TypeLengthMax+1) }, ErrMalformed},
	}
	for _, tc := range cases {
		f := sampleFrame()
		tc.mod(&f)
		if _, err := Encode(f, key); !errors.Is(err, tc.want) {
			t.Errorf("%s: Encode = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Encode(sampleFrame(), key[:LinkKeyBytesMin-1]); err == nil {
		t.Error("Encode accepted a short key")
	}
	if _, err := Decode(make([]byte, MaxFrameBytes+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decode of %d bytes: %v, want ErrTooLarge", MaxFrameBytes+1, err)
	}
}

func sampleAck(event []byte) Ack {
	return Ack{Version: FrameVersion, Origin: "acme", Responder: "glob", Seq: 42, Status: AckApplied, EventDigest: DigestFrame(event), Result: []byte("answer")}
}

func TestAckRoundTripAndKeys(t *testing.T) {
	acme := keysFor(t, testMaster, "acme", "glob")
	event := mustEncode(t, sampleFrame(), acme[[2]string{"acme", "glob"}])
	a := sampleAck(event)
	gToA := acme[[2]string{"glob", "acme"}]
	b, err := EncodeAck(a, gToA)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxAckBytes {
		t.Fatalf("ack of %d bytes exceeds MaxAckBytes %d", len(b), MaxAckBytes)
	}
	got, err := DecodeAck(b, acme.lookup)
	if err != nil {
		t.Fatalf("DecodeAck: %v", err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("DecodeAck(EncodeAck(a)) = %+v, want %+v", got, a)
	}
	// Sealed with the forward key instead of the reverse one.
	wrong, _ := EncodeAck(a, acme[[2]string{"acme", "glob"}])
	if _, err := DecodeAck(wrong, acme.lookup); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("ack sealed with the acme->glob key: %v, want ErrBadMAC", err)
	}
	// An ack is never an event, and an event never an ack.
	if _, err := Decode(b, acme.lookup); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode(ack) = %v, want ErrMalformed", err)
	}
	if _, err := DecodeAck(event, acme.lookup); err == nil {
		t.Fatal("DecodeAck accepted an event frame")
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x04
		if _, err := DecodeAck(c, acme.lookup); err == nil {
			t.Fatalf("ack byte %d flipped: accepted", i)
		}
	}
	for _, s := range []AckStatus{0, ackStatusMax + 1} {
		bad := a
		bad.Status = s
		if _, err := EncodeAck(bad, gToA); !errors.Is(err, ErrMalformed) {
			t.Fatalf("status %d: EncodeAck = %v, want ErrMalformed", s, err)
		}
	}
}

// referenceHKDF is RFC 5869 HKDF-SHA256 written out with crypto/hmac.
func referenceHKDF(secret []byte, info string, n int) []byte {
	ext := hmac.New(sha256.New, make([]byte, sha256.Size)) // no salt: HashLen zeros
	ext.Write(secret)
	prk := ext.Sum(nil)
	var out, prev []byte
	for i := byte(1); len(out) < n; i++ {
		exp := hmac.New(sha256.New, prk)
		exp.Write(prev)
		exp.Write([]byte(info))
		exp.Write([]byte{i})
		prev = exp.Sum(nil)
		out = append(out, prev...)
	}
	return out[:n]
}

func TestDeriveLinkKey(t *testing.T) {
	ab := mustLinkKey(t, testMaster, "acme", "glob")
	if len(ab) != LinkKeyBytesMin {
		t.Fatalf("key length %d, want %d", len(ab), LinkKeyBytesMin)
	}
	if want := referenceHKDF(testMaster, "dominus bus link v1 acme->glob", 32); !bytes.Equal(ab, want) {
		t.Fatalf("DeriveLinkKey = %x, want RFC 5869 HKDF %x", ab, want)
	}
	if again := mustLinkKey(t, testMaster, "acme", "glob"); !bytes.Equal(ab, again) {
		t.Fatal("DeriveLinkKey is not deterministic")
	}
	if ba := mustLinkKey(t, testMaster, "glob", "acme"); bytes.Equal(ab, ba) {
		t.Fatal("the two directions of a link share a key")
	}
	if other := mustLinkKey(t, bytes.Repeat([]byte{1}, 32), "acme", "glob"); bytes.Equal(ab, other) {
		t.Fatal("different masters give the same key")
	}
	for _, tc := range []struct {
		master   []byte
		from, to string
	}{
		{testMaster[:31], "acme", "glob"},
		{testMaster, "acme", "acme"},
		{testMaster, "a->b", "c"},
		{testMaster, "", "glob"},
	} {
		if _, err := DeriveLinkKey(tc.master, tc.from, tc.to); err == nil {
			t.Errorf("DeriveLinkKey(%d-byte master, %q, %q) accepted", len(tc.master), tc.from, tc.to)
		}
	}
}

func TestDeriveLinkKeyEpoch(t *testing.T) {
	zero, err := DeriveLinkKeyEpoch(testMaster, "acme", "glob", 0)
	if err != nil || !bytes.Equal(zero, mustLinkKey(t, testMaster, "acme", "glob")) {
		t.Fatalf("epoch 0 = %x %v, want DeriveLinkKey's key", zero, err)
	}
	one, err := DeriveLinkKeyEpoch(testMaster, "acme", "glob", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceHKDF(testMaster, "dominus bus link v1 acme->glob epoch 1", 32); !bytes.Equal(one, want) {
		t.Fatalf("epoch 1 = %x, want RFC 5869 HKDF %x", one, want)
	}
	two, _ := DeriveLinkKeyEpoch(testMaster, "acme", "glob", 2)
	back, _ := DeriveLinkKeyEpoch(testMaster, "glob", "acme", 1)
	if bytes.Equal(one, zero) || bytes.Equal(one, two) || bytes.Equal(one, back) {
		t.Fatal("keys of different epochs or directions coincide")
	}
	// A frame under an earlier epoch's key does not verify under the next.
	f := Frame{Version: FrameVersion, Origin: "acme", OriginNode: "acme-1", Destination: "glob", Seq: 1, PassportID: "pp-acme-1", Type: "syscall", Payload: []byte("x")}
	b, err := Encode(f, zero)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b, linkKeys{{"acme", "glob"}: one}.lookup); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("an epoch-0 frame under the epoch-1 key: %v, want ErrBadMAC", err)
	}
	for _, tc := range []struct {
		master   []byte
		from, to string
	}{
		{testMaster[:31], "acme", "glob"},
		{testMaster, "acme", "acme"},
		{testMaster, "a->b", "c"},
		{testMaster, "acme epoch 1", "glob"},
	} {
		if _, err := DeriveLinkKeyEpoch(tc.master, tc.from, tc.to, 3); err == nil {
			t.Errorf("DeriveLinkKeyEpoch(%d-byte master, %q, %q) accepted", len(tc.master), tc.from, tc.to)
		}
	}
}
