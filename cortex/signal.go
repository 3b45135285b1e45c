package cortex

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind names what a signal measures. Kinds are hand-numbered and
// append-only: a number once used keeps its meaning and its bounds, and 0
// is never a kind.
type Kind uint8

// Signal kinds.
const (
	// TrustVelocity is the change of an entity's trust score over the
	// window, in trust points (the scale on which fsm.DefaultTrust is 500),
	// -1000..1000.
	TrustVelocity Kind = 1
	// AnomalyIndicator is the anomaly score of the node's traffic over the
	// window, in basis points, 0..10000.
	AnomalyIndicator Kind = 2
	// OperationalTempo is the number of syscalls the node's gate decided in
	// the window, 0..1_000_000_000.
	OperationalTempo Kind = 3
	// ResourcePressure is the share of the node's capacity in use at the
	// end of the window, in basis points, 0..10000.
	ResourcePressure Kind = 4
	// DenyRate is the share of the gate's decisions in the window that were
	// denials, in basis points, 0..10000.
	DenyRate Kind = 5
)

// kindTable holds each kind's name and value bounds (inclusive), indexed by
// Kind. The zero entry is the invalid kind 0.
var kindTable = [...]struct {
	name     string
	min, max int64
}{
	{name: ""},
	TrustVelocity:    {"trust_velocity", -1000, 1000},
	AnomalyIndicator: {"anomaly_indicator", 0, 10000},
	OperationalTempo: {"operational_tempo", 0, 1_000_000_000},
	ResourcePressure: {"resource_pressure", 0, 10000},
	DenyRate:         {"deny_rate", 0, 10000},
}

// Kinds returns every kind in numeric order.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(kindTable)-1)
	for k := 1; k < len(kindTable); k++ {
		ks = append(ks, Kind(k))
	}
	return ks
}

// Known reports whether k is a kind of this schema.
func (k Kind) Known() bool { return k != 0 && int(k) < len(kindTable) }

// String returns the kind's snake_case name, or kind(N) for an unknown one.
func (k Kind) String() string {
	if !k.Known() {
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
	return kindTable[k].name
}

// Bounds returns the inclusive range of values a signal of kind k may
// carry; ok is false for an unknown kind.
func (k Kind) Bounds() (min, max int64, ok bool) {
	if !k.Known() {
		return 0, 0, false
	}
	return kindTable[k].min, kindTable[k].max, true
}

// Signal is one typed measurement a node gossips. Its schema is fixed: a
// node can send nothing else over the cortex.
type Signal struct {
	// Domain is the kernel the measuring node belongs to.
	Domain string
	// Node is the measuring node.
	Node string
	// Kind says what Value measures and bounds it.
	Kind Kind
	// Value is the measurement, within Kind's bounds.
	Value int64
	// Window is the ledger time (unix nanoseconds) at which the
	// measurement window ended.
	Window int64
	// Seq is the node's sequence number for this signal: strictly
	// increasing over all the signals the node publishes, never 0.
	Seq uint64
	// PassportID names the passport that binds Node's signing key.
	PassportID string
}

// Limits of the wire form.
const (
	// MaxNameBytes bounds Domain, Node and PassportID, each 1..MaxNameBytes
	// of [A-Za-z0-9-_./@], the passport name rule.
	MaxNameBytes = 128
	// MaxMessageBytes bounds a signal message on the wire. Receivers drop
	// anything longer (oversized) before reading it.
	MaxMessageBytes = 512
	// SignatureBytes is the size of the Ed25519 signature closing every
	// message.
	SignatureBytes = ed25519.SignatureSize
)

// Version 1 wire form of a signed signal (integers big-endian):
//
//	magic       "DCS" 0x01            4 bytes: format and version
//	domain      u8 length, bytes
//	node        u8 length, bytes
//	kind        u8
//	value       i64 (two's complement)
//	window      i64 (two's complement)
//	seq         u64
//	passport_id u8 length, bytes
//	-- end of the signed body --
//	signature   64 bytes              Ed25519 over SigningBytes
//
// Every field has exactly one encoding and the message ends with the
// signature, so Decode accepts only bytes that Encode of its result
// reproduces.
const magic = "DCS\x01"

// signingContext separates signal signatures from anything else a node key
// signs.
const signingContext = "dominus/cortex/signal/v1 signature\x00"

// maxEncodedBytes is the longest well-formed message.
const maxEncodedBytes = len(magic) + 3*(1+MaxNameBytes) + 1 + 3*8 + SignatureBytes

// minEncodedBytes is the shortest well-formed message.
const minEncodedBytes = len(magic) + 3*(1+1) + 1 + 3*8 + SignatureBytes

var _ = [MaxMessageBytes - maxEncodedBytes]struct{}{} // the largest message fits the limit

// Errors of the wire form. Receivers count them as the drop reasons
// malformed, oversized and out_of_range.
var (
	ErrMalformed  = errors.New("cortex: malformed signal")
	ErrOversized  = errors.New("cortex: signal message exceeds MaxMessageBytes")
	ErrOutOfRange = errors.New("cortex: signal value out of its kind's bounds")
)

// Validate checks that s is a signal a node may publish: CheckForm, and
// Value within Kind's bounds (ErrOutOfRange).
func (s Signal) Validate() error {
	if err := s.CheckForm(); err != nil {
		return err
	}
	lo, hi, _ := s.Kind.Bounds()
	if s.Value < lo || s.Value > hi {
		return fmt.Errorf("%w: %s value %d is outside %d..%d", ErrOutOfRange, s.Kind, s.Value, lo, hi)
	}
	return nil
}

// CheckForm checks everything about s but its value's bounds: names,
// a known kind, and Seq >= 1. Failures wrap ErrMalformed. Decode returns
// only signals that pass it, so a receiver can tell a malformed message
// from an out-of-range value.
func (s Signal) CheckForm() error {
	for _, f := range [...]struct{ field, v string }{{"domain", s.Domain}, {"node", s.Node}, {"passport id", s.PassportID}} {
		if err := checkName(f.v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, f.field, err)
		}
	}
	if !s.Kind.Known() {
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, uint8(s.Kind))
	}
	if s.Seq == 0 {
		return fmt.Errorf("%w: seq is 0", ErrMalformed)
	}
	return nil
}

func checkName(v string) error {
	if len(v) == 0 || len(v) > MaxNameBytes {
		return fmt.Errorf("%d bytes, want 1..%d", len(v), MaxNameBytes)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/' || c == '@') {
			return fmt.Errorf("byte %#x at offset %d is not in [A-Za-z0-9-_./@]", c, i)
		}
	}
	return nil
}

// SigningBytes returns the bytes a signal's signature covers: a context
// string no other Dominus signature uses, then the signed body of the wire
// form.
func SigningBytes(s Signal) []byte {
	b := make([]byte, 0, len(signingContext)+maxEncodedBytes)
	b = append(b, signingContext...)
	return appendBody(b, s)
}

// Seal validates s and returns its wire form signed with key.
func Seal(s Signal, key ed25519.PrivateKey) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("cortex: signing key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	return Encode(s, ed25519.Sign(key, SigningBytes(s)))
}

// Verify reports whether sig is pub's signature of s.
func Verify(s Signal, sig []byte, pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != SignatureBytes {
		return false
	}
	return ed25519.Verify(pub, SigningBytes(s), sig)
}

// Encode returns the wire form of s closed by sig, whatever sig is. It
// refuses a signal that fails CheckForm or a sig that is not SignatureBytes
// long, so everything it returns decodes; it does not check Value's bounds
// (Seal does).
func Encode(s Signal, sig []byte) ([]byte, error) {
	if err := s.CheckForm(); err != nil {
		return nil, err
	}
	if len(sig) != SignatureBytes {
		return nil, fmt.Errorf("%w: signature has %d bytes, want %d", ErrMalformed, len(sig), SignatureBytes)
	}
	b := make([]byte, 0, maxEncodedBytes)
	b = appendBody(b, s)
	return append(b, sig...), nil
}

func appendBody(b []byte, s Signal) []byte {
	b = append(b, magic...)
	b = appendName(b, s.Domain)
	b = appendName(b, s.Node)
	b = append(b, byte(s.Kind))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Value))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Window))
	b = binary.BigEndian.AppendUint64(b, s.Seq)
	return appendName(b, s.PassportID)
}

// appendName writes a u8 length and the bytes; callers pass names that
// passed checkName, so the length fits.
func appendName(b []byte, v string) []byte {
	b = append(b, byte(len(v)))
	return append(b, v...)
}

// Decode parses a wire message. It refuses anything longer than
// MaxMessageBytes before reading it (ErrOversized) and anything that is not
// exactly the encoding of a signal passing CheckForm followed by a
// SignatureBytes signature (ErrMalformed). Value's bounds are not checked:
// the receiver counts those as out_of_range. The returned signature is a
// copy the caller owns; the signature is not verified.
func Decode(b []byte) (Signal, []byte, error) {
	if len(b) > MaxMessageBytes {
		return Signal{}, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrOversized, len(b), MaxMessageBytes)
	}
	if len(b) < minEncodedBytes || len(b) > maxEncodedBytes {
		return Signal{}, nil, fmt.Errorf("%w: %d bytes, want %d..%d", ErrMalformed, len(b), minEncodedBytes, maxEncodedBytes)
	}
	if string(b[:len(magic)]) != magic {
		return Signal{}, nil, fmt.Errorf("%w: bad magic or version %x", ErrMalformed, b[:len(magic)])
	}
	r := reader{b: b[len(magic):]}
	var s Signal
	s.Domain = r.name()
	s.Node = r.name()
	s.Kind = Kind(r.u8())
	s.Value = int64(r.u64())
	s.Window = int64(r.u64())
	s.Seq = r.u64()
	s.PassportID = r.name()
	sig := r.take(SignatureBytes)
	if r.short {
		return Signal{}, nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	if len(r.b) != 0 {
		return Signal{}, nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	if err := s.CheckForm(); err != nil {
		return Signal{}, nil, err
	}
	return s, append([]byte(nil), sig...), nil
}

// reader consumes b front to back; once a read runs past the end, short is
// set and every later read returns zero values.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) take(n int) []byte {
	if r.short || n > len(r.b) {
		r.short = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u64() uint64 {
	v := r.take(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *reader) name() string {
	n := r.u8()
	return string(r.take(int(n)))
}
