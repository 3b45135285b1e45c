package cortex

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden fixtures in testdata")

func sampleSignal() Signal {
	return Signal{
		Domain:     "acme",
		Node:       "acme-1",
		Kind:       DenyRate,
		Value:      250,
		Window:     baseTime,
		Seq:        42,
		PassportID: "pp-acme",
	}
}

func TestSealDecodeRoundTrip(t *testing.T) {
	key := nodeKey("acme/acme-1")
	long := strings.Repeat("x", MaxNameBytes)
	cases := []Signal{sampleSignal()}
	for _, k := range Kinds() {
		lo, hi, _ := k.Bounds()
		for _, v := range []int64{lo, hi} {
			s := sampleSignal()
			s.Kind, s.Value = k, v
			cases = append(cases, s)
		}
	}
	big := Signal{Domain: long, Node: long, Kind: TrustVelocity, Value: -1000, Window: -1, Seq: ^uint64(0), PassportID: long}
	cases = append(cases, big)
	for _, s := range cases {
		wire, err := Seal(s, key)
		if err != nil {
			t.Fatalf("Seal(%+v): %v", s, err)
		}
		if len(wire) > MaxMessageBytes {
			t.Fatalf("Seal(%+v) is %d bytes, limit %d", s, len(wire), MaxMessageBytes)
		}
		got, sig, err := Decode(wire)
		if err != nil {
			t.Fatalf("Decode(Seal(%+v)): %v", s, err)
		}
		if got != s {
			t.Fatalf("round trip: got %+v, want %+v", got, s)
		}
		if !Verify(got, sig, key.Public().(ed25519.PublicKey)) {
			t.Fatalf("signature of %+v does not verify", s)
		}
	}
	wire, _ := Seal(big, key)
	if len(wire) != maxEncodedBytes {
		t.Fatalf("largest signal encodes to %d bytes, want maxEncodedBytes %d", len(wire), maxEncodedBytes)
	}
}

func TestValidateBounds(t *testing.T) {
	key := nodeKey("acme/acme-1")
	for _, k := range Kinds() {
		lo, hi, ok := k.Bounds()
		if !ok || lo > hi {
			t.Fatalf("kind %s bounds %d..%d ok=%v", k, lo, hi, ok)
		}
		for _, v := range []int64{lo - 1, hi + 1} {
			s := sampleSignal()
			s.Kind, s.Value = k, v
			if err := s.Validate(); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("%s value %d: Validate = %v, want ErrOutOfRange", k, v, err)
			}
			if _, err := Seal(s, key); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("%s value %d: Seal = %v, want ErrOutOfRange", k, v, err)
			}
			if err := s.CheckForm(); err != nil {
				t.Errorf("%s value %d: CheckForm = %v, want nil (bounds are not form)", k, v, err)
			}
		}
	}
	for _, k := range []Kind{0, Kind(len(kindTable)), 255} {
		s := sampleSignal()
		s.Kind = k
		if err := s.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("kind %d: Validate = %v, want ErrMalformed", k, err)
		}
	}
}

func TestCheckFormRejects(t *testing.T) {
	cases := map[string]func(*Signal){
		"empty domain":       func(s *Signal) { s.Domain = "" },
		"long node":          func(s *Signal) { s.Node = strings.Repeat("n", MaxNameBytes+1) },
		"space in passport":  func(s *Signal) { s.PassportID = "pp acme" },
		"non-ascii domain":   func(s *Signal) { s.Domain = "acmé" },
		"NUL in node":        func(s *Signal) { s.Node = "a\x00b" },
		"seq zero":           func(s *Signal) { s.Seq = 0 },
		"kind zero":          func(s *Signal) { s.Kind = 0 },
		"kind past the last": func(s *Signal) { s.Kind = Kind(len(kindTable)) },
	}
	for name, mutate := range cases {
		s := sampleSignal()
		mutate(&s)
		if err := s.CheckForm(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: CheckForm = %v, want ErrMalformed", name, err)
		}
		if _, err := Encode(s, make([]byte, SignatureBytes)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Encode = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Encode(sampleSignal(), make([]byte, SignatureBytes-1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("short signature: Encode = %v, want ErrMalformed", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	wire, err := Seal(sampleSignal(), nodeKey("acme/acme-1"))
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(wire)) }
	domainLen := len(magic)
	nodeLen := domainLen + 1 + len("acme")
	kindAt := nodeLen + 1 + len("acme-1")
	seqAt := kindAt + 1 + 16
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated by one", wire[:len(wire)-1], ErrMalformed},
		{"no signature", wire[:len(wire)-SignatureBytes], ErrMalformed},
		{"trailing byte", append(bytes.Clone(wire), 0), ErrMalformed},
		{"bad magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMalformed},
		{"version 2", mut(func(b []byte) []byte { b[3] = 2; return b }), ErrMalformed},
		{"domain length 0", mut(func(b []byte) []byte { b[domainLen] = 0; return b }), ErrMalformed},
		{"domain length too long", mut(func(b []byte) []byte { b[domainLen] = 200; return b }), ErrMalformed},
		{"node length shifted", mut(func(b []byte) []byte { b[nodeLen]++; return b }), ErrMalformed},
		{"bad byte in node", mut(func(b []byte) []byte { b[nodeLen+1] = ' '; return b }), ErrMalformed},
		{"kind 0", mut(func(b []byte) []byte { b[kindAt] = 0; return b }), ErrMalformed},
		{"kind 200", mut(func(b []byte) []byte { b[kindAt] = 200; return b }), ErrMalformed},
		{"seq 0", mut(func(b []byte) []byte { clear(b[seqAt : seqAt+8]); return b }), ErrMalformed},
		{"oversized", make([]byte, MaxMessageBytes+1), ErrOversized},
		{"oversized valid prefix", append(bytes.Clone(wire), make([]byte, MaxMessageBytes)...), ErrOversized},
	}
	for _, c := range cases {
		if _, _, err := Decode(c.msg); !errors.Is(err, c.want) {
			t.Errorf("%s: Decode = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestSignatureCoversEveryField changes each field of a sealed signal and
// checks that the original signature no longer verifies.
func TestSignatureCoversEveryField(t *testing.T) {
	key := nodeKey("acme/acme-1")
	pub := key.Public().(ed25519.PublicKey)
	s := sampleSignal()
	wire, _ := Seal(s, key)
	_, sig, _ := Decode(wire)
	mutations := map[string]func(*Signal){
		"domain":   func(s *Signal) { s.Domain = "acmf" },
		"node":     func(s *Signal) { s.Node = "acme-2" },
		"kind":     func(s *Signal) { s.Kind = ResourcePressure },
		"value":    func(s *Signal) { s.Value++ },
		"window":   func(s *Signal) { s.Window++ },
		"seq":      func(s *Signal) { s.Seq++ },
		"passport": func(s *Signal) { s.PassportID = "pp-acmf" },
	}
	if !Verify(s, sig, pub) {
		t.Fatal("unchanged signal does not verify")
	}
	for name, m := range mutations {
		c := s
		m(&c)
		if Verify(c, sig, pub) {
			t.Errorf("signature still verifies after changing %s", name)
		}
	}
	// The context string is part of what is signed.
	body := SigningBytes(s)[len(signingContext):]
	if ed25519.Verify(pub, body, sig) {
		t.Error("signature verifies over the body without the context string")
	}
}

// TestGoldenEncoding pins the wire form: the fixture is protocol, and a
// change in its bytes needs a new version byte. Run with -rewrite to
// regenerate after a deliberate format change.
func TestGoldenEncoding(t *testing.T) {
	wire, err := Seal(sampleSignal(), nodeKey("acme/acme-1"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "signal_v1.hex")
	got := hex.EncodeToString(wire) + "\n"
	if *rewrite {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read fixture (run with -rewrite to create it): %v", err)
	}
	if got != string(want) {
		t.Fatalf("encoding changed:\n got %s\nwant %s", got, want)
	}
	raw, _ := hex.DecodeString(strings.TrimSpace(string(want)))
	s, _, err := Decode(raw)
	if err != nil || s != sampleSignal() {
		t.Fatalf("fixture decodes to %+v, %v; want %+v", s, err, sampleSignal())
	}
}

func TestKindNames(t *testing.T) {
	want := map[Kind]string{TrustVelocity: "trust_velocity", AnomalyIndicator: "anomaly_indicator", OperationalTempo: "operational_tempo", ResourcePressure: "resource_pressure", DenyRate: "deny_rate"}
	if len(Kinds()) != len(want) {
		t.Fatalf("Kinds() = %v, want %d kinds", Kinds(), len(want))
	}
	for k, name := range want {
		if k.String() != name || !k.Known() {
			t.Errorf("kind %d: String %q Known %v, want %q true", uint8(k), k.String(), k.Known(), name)
		}
	}
	if Kind(0).Known() || Kind(6).Known() {
		t.Error("kinds 0 and 6 must be unknown")
	}
}
