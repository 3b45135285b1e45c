package transport

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// FrameVersion is the only wire version this package writes and accepts. It
// is the first byte of every frame and ack and is covered by the MAC.
const FrameVersion uint8 = 1

// Frame kinds, the second byte of every encoding. They are covered by the MAC,
// so an ack can never be replayed as an event under the same link key.
// Hand-numbered and append-only.
const (
	kindEvent uint8 = 1
	kindAck   uint8 = 2
)

// Limits on every field. A frame that exceeds one is never built by Encode
// and never accepted by Decode.
const (
	// MaxPayloadBytes bounds an event's payload.
	MaxPayloadBytes = 1 << 20
	// KernelIDLengthMax bounds a kernel id or destination scope.
	KernelIDLengthMax = 64
	// NodeNameLengthMax bounds the sending node's name; it equals the
	// certificate CN limit because OriginNode is compared with the CN.
	NodeNameLengthMax = tlsutil.NodeNameLengthMax
	// PassportIDLengthMax bounds a passport id.
	PassportIDLengthMax = 128
	// TypeLengthMax bounds an event type.
	TypeLengthMax = 64
	// MaxAckResultBytes bounds the receiver's answer an ack carries.
	MaxAckResultBytes = 64 << 10
	// MACSize is the size of the HMAC-SHA256 tag closing every frame and ack.
	MACSize = sha256.Size
	// DigestSize is the size of a frame digest (DigestFrame).
	DigestSize = sha256.Size
	// LinkKeyBytesMin is the shortest link key Encode and Decode accept, and
	// the length DeriveLinkKey returns.
	LinkKeyBytesMin = 32
	// MasterKeyBytesMin is the shortest master secret DeriveLinkKey accepts.
	MasterKeyBytesMin = 32
)

// Derived sizes of the encodings.
const (
	// FrameOverheadMax is the largest encoding of everything in an event
	// frame except its payload.
	FrameOverheadMax = 2 + // version, kind
		(1 + KernelIDLengthMax) + // origin
		(1 + NodeNameLengthMax) + // origin node
		(1 + KernelIDLengthMax) + // destination
		8 + // seq
		(1 + PassportIDLengthMax) + // passport id
		(1 + TypeLengthMax) + // type
		8 + // sent at
		4 + // payload length
		MACSize
	// MaxFrameBytes bounds an encoded event frame.
	MaxFrameBytes = FrameOverheadMax + MaxPayloadBytes
	// MaxAckBytes bounds an encoded ack.
	MaxAckBytes = 2 + // version, kind
		(1 + KernelIDLengthMax) + // origin
		(1 + KernelIDLengthMax) + // responder
		8 + // seq
		1 + // status
		DigestSize + // event digest
		4 + MaxAckResultBytes + // result
		MACSize
	// frameLengthMin is the shortest possible event encoding: every string
	// one byte long and an empty payload.
	frameLengthMin = 2 + 5*(1+1) + 8 + 8 + 4 + MACSize
	// ackLengthMin is the shortest possible ack encoding.
	ackLengthMin = 2 + 2*(1+1) + 8 + 1 + DigestSize + 4 + MACSize
)

// Verification errors. Decode and DecodeAck return them wrapped with detail;
// test with errors.Is. Window returns ErrReplay and ErrTooOld.
var (
	// ErrMalformed: the bytes are not a well-formed encoding (bad length
	// prefix, bad character, unknown kind or status, trailing bytes).
	ErrMalformed = errors.New("transport: malformed frame")
	// ErrTooLarge: the frame, its payload or a length prefix exceeds its limit.
	ErrTooLarge = errors.New("transport: frame too large")
	// ErrVersion: the version byte is not FrameVersion.
	ErrVersion = errors.New("transport: unsupported frame version")
	// ErrUnknownLink: there is no key for the directed link the frame names.
	ErrUnknownLink = errors.New("transport: unknown link")
	// ErrBadMAC: the MAC does not match the link key: forged, tampered or
	// sealed with another link's key.
	ErrBadMAC = errors.New("transport: bad frame MAC")
)

// LinkKeyFunc returns the HMAC key of the directed link from → to, and false
// if this kernel holds no key for it. The sovereign gives the key of link
// A→B only to A and B, so a frame that verifies under it was sealed by A or
// B, and its direction names which.
type LinkKeyFunc func(from, to string) ([]byte, bool)

// Frame is one federation event on the wire. Every field, the version and
// the payload are covered by the MAC.
type Frame struct {
	Version     uint8  // must be FrameVersion
	Origin      string // sending kernel id
	OriginNode  string // sending node; a receiver compares it with the TLS peer's CN
	Destination string // receiving kernel id or scope
	Seq         uint64 // per-origin sequence number, from 1
	PassportID  string // the origin's passport the event is sent under
	Type        string // event type
	SentAtNs    int64  // sender's wall clock, Unix ns; informational, never trusted for ordering
	Payload     []byte // at most MaxPayloadBytes; Decode returns a copy the caller owns
}

// AckStatus is the receiver's verdict on an event. Hand-numbered and
// append-only; zero is never valid.
type AckStatus uint8

// Ack statuses.
const (
	// AckApplied: the event was applied to the receiver's ledger now.
	AckApplied AckStatus = 1
	// AckDuplicate: the event (origin, seq) had been applied before; the
	// sender records it delivered.
	AckDuplicate AckStatus = 2
	// AckRejected: the receiver's gate refused the event for good; retrying
	// the same event will not change the answer.
	AckRejected AckStatus = 3
	// AckUnavailable: the receiver cannot decide now (not leader, halted,
	// overloaded); the sender retries later.
	AckUnavailable AckStatus = 4

	ackStatusMax = AckUnavailable
)

// String returns the status name.
func (s AckStatus) String() string {
	switch s {
	case AckApplied:
		return "applied"
	case AckDuplicate:
		return "duplicate"
	case AckRejected:
		return "rejected"
	case AckUnavailable:
		return "unavailable"
	}
	return fmt.Sprintf("AckStatus(%d)", uint8(s))
}

// Ack answers one event frame: Responder tells Origin what became of
// event Seq. It is sealed with the key of the reverse link Responder →
// Origin, so only the kernel the event was addressed to can produce it.
type Ack struct {
	Version     uint8            // must be FrameVersion
	Origin      string           // kernel that sent the event
	Responder   string           // kernel that received the event and seals this ack
	Seq         uint64           // the event's sequence number
	Status      AckStatus        // the verdict
	EventDigest [DigestSize]byte // DigestFrame of the exact event bytes acknowledged
	Result      []byte           // the receiver's answer (its encoding is the kernels' business); at most MaxAckResultBytes
}

// DigestFrame returns the SHA-256 of an encoded event frame, which an Ack
// carries so the sender can match it to the bytes it sent.
func DigestFrame(encoded []byte) [DigestSize]byte {
	return sha256.Sum256(encoded)
}

// Validate checks every field against its limit and character set. It
// returns ErrVersion, ErrTooLarge or ErrMalformed, wrapped with detail.
func (f *Frame) Validate() error {
	if f.Version != FrameVersion {
		return fmt.Errorf("%w: frame version %d, want %d", ErrVersion, f.Version, FrameVersion)
	}
	if len(f.Payload) > MaxPayloadBytes {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrTooLarge, len(f.Payload), MaxPayloadBytes)
	}
	if err := validateToken("origin", f.Origin, KernelIDLengthMax); err != nil {
		return err
	}
	if err := validateNodeName(f.OriginNode); err != nil {
		return err
	}
	if err := validateToken("destination", f.Destination, KernelIDLengthMax); err != nil {
		return err
	}
	if f.Origin == f.Destination {
		return fmt.Errorf("%w: origin and destination are both %q", ErrMalformed, f.Origin)
	}
	if f.Seq == 0 {
		return fmt.Errorf("%w: seq 0; sequence numbers start at 1", ErrMalformed)
	}
	if err := validateToken("passport id", f.PassportID, PassportIDLengthMax); err != nil {
		return err
	}
	return validateToken("type", f.Type, TypeLengthMax)
}

// Validate checks every field of an ack. It returns ErrVersion or
// ErrMalformed, wrapped with detail.
func (a *Ack) Validate() error {
	if a.Version != FrameVersion {
		return fmt.Errorf("%w: ack version %d, want %d", ErrVersion, a.Version, FrameVersion)
	}
	if err := validateToken("origin", a.Origin, KernelIDLengthMax); err != nil {
		return err
	}
	if err := validateToken("responder", a.Responder, KernelIDLengthMax); err != nil {
		return err
	}
	if a.Origin == a.Responder {
		return fmt.Errorf("%w: origin and responder are both %q", ErrMalformed, a.Origin)
	}
	if a.Seq == 0 {
		return fmt.Errorf("%w: seq 0; sequence numbers start at 1", ErrMalformed)
	}
	if a.Status == 0 || a.Status > ackStatusMax {
		return fmt.Errorf("%w: ack status %d is unknown", ErrMalformed, uint8(a.Status))
	}
	if len(a.Result) > MaxAckResultBytes {
		return fmt.Errorf("%w: ack result of %d bytes exceeds %d", ErrTooLarge, len(a.Result), MaxAckResultBytes)
	}
	return nil
}

// Encode returns the canonical encoding of f sealed with linkKey, the key of
// the directed link f.Origin → f.Destination. The encoding is:
//
//	version u8 | kind u8 (1) | origin | origin node | destination |
//	seq u64 | passport id | type | sent-at i64 | payload len u32 | payload |
//	HMAC-SHA256(linkKey, every preceding byte) [32]
//
// where each string is a u8 length followed by its bytes and integers are
// big-endian. The returned slice is newly allocated.
func Encode(f Frame, linkKey []byte) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if len(linkKey) < LinkKeyBytesMin {
		return nil, fmt.Errorf("transport: link key of %d bytes is shorter than %d", len(linkKey), LinkKeyBytesMin)
	}
	n := 2 + 1 + len(f.Origin) + 1 + len(f.OriginNode) + 1 + len(f.Destination) + 8 +
		1 + len(f.PassportID) + 1 + len(f.Type) + 8 + 4 + len(f.Payload) + MACSize
	b := make([]byte, 0, n)
	b = append(b, f.Version, kindEvent)
	b = appendString(b, f.Origin)
	b = appendString(b, f.OriginNode)
	b = appendString(b, f.Destination)
	b = binary.BigEndian.AppendUint64(b, f.Seq)
	b = appendString(b, f.PassportID)
	b = appendString(b, f.Type)
	b = binary.BigEndian.AppendUint64(b, uint64(f.SentAtNs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Payload)))
	b = append(b, f.Payload...)
	return appendMAC(b, linkKey), nil
}

// Decode parses and verifies an event frame. In order it checks the total
// size (ErrTooLarge), the version (ErrVersion), the structure, limits and
// character sets (ErrMalformed, ErrTooLarge for the payload), the key of the
// directed link Origin → Destination (ErrUnknownLink) and the MAC, in
// constant time (ErrBadMAC). A frame Decode accepts re-encodes to exactly b.
// The returned frame shares no memory with b.
func Decode(b []byte, keyFor LinkKeyFunc) (Frame, error) {
	if len(b) > MaxFrameBytes {
		return Frame{}, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrTooLarge, len(b), MaxFrameBytes)
	}
	if len(b) < frameLengthMin {
		return Frame{}, fmt.Errorf("%w: frame of %d bytes is shorter than the minimum %d", ErrMalformed, len(b), frameLengthMin)
	}
	if b[0] != FrameVersion {
		return Frame{}, fmt.Errorf("%w: frame version %d, want %d", ErrVersion, b[0], FrameVersion)
	}
	if b[1] != kindEvent {
		return Frame{}, fmt.Errorf("%w: kind %d is not an event frame", ErrMalformed, b[1])
	}
	body, mac := b[:len(b)-MACSize], b[len(b)-MACSize:]
	r := reader{b: body, off: 2}
	f := Frame{Version: b[0]}
	f.Origin = r.string("origin", KernelIDLengthMax)
	f.OriginNode = r.string("origin node", NodeNameLengthMax)
	f.Destination = r.string("destination", KernelIDLengthMax)
	f.Seq = r.uint64("seq")
	f.PassportID = r.string("passport id", PassportIDLengthMax)
	f.Type = r.string("type", TypeLengthMax)
	f.SentAtNs = int64(r.uint64("sent at"))
	f.Payload = r.payload()
	if r.err == nil && r.off != len(body) {
		r.err = fmt.Errorf("%w: %d unexpected bytes before the MAC", ErrMalformed, len(body)-r.off)
	}
	if r.err != nil {
		return Frame{}, r.err
	}
	if err := f.Validate(); err != nil {
		return Frame{}, err
	}
	if err := verifyMAC(body, mac, keyFor, f.Origin, f.Destination); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// EncodeAck returns the canonical encoding of a sealed with linkKey, the key
// of the directed link a.Responder → a.Origin:
//
//	version u8 | kind u8 (2) | origin | responder | seq u64 | status u8 |
//	event digest [32] | result len u32 | result |
//	HMAC-SHA256(linkKey, every preceding byte) [32]
func EncodeAck(a Ack, linkKey []byte) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if len(linkKey) < LinkKeyBytesMin {
		return nil, fmt.Errorf("transport: link key of %d bytes is shorter than %d", len(linkKey), LinkKeyBytesMin)
	}
	b := make([]byte, 0, 2+1+len(a.Origin)+1+len(a.Responder)+8+1+DigestSize+4+len(a.Result)+MACSize)
	b = append(b, a.Version, kindAck)
	b = appendString(b, a.Origin)
	b = appendString(b, a.Responder)
	b = binary.BigEndian.AppendUint64(b, a.Seq)
	b = append(b, uint8(a.Status))
	b = append(b, a.EventDigest[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Result)))
	b = append(b, a.Result...)
	return appendMAC(b, linkKey), nil
}

// DecodeAck parses and verifies an ack with the key of the directed link
// Responder → Origin, in the same order and with the same errors as Decode.
// An ack DecodeAck accepts re-encodes to exactly b.
func DecodeAck(b []byte, keyFor LinkKeyFunc) (Ack, error) {
	if len(b) > MaxAckBytes {
		return Ack{}, fmt.Errorf("%w: ack of %d bytes exceeds %d", ErrTooLarge, len(b), MaxAckBytes)
	}
	if len(b) < ackLengthMin {
		return Ack{}, fmt.Errorf("%w: ack of %d bytes is shorter than the minimum %d", ErrMalformed, len(b), ackLengthMin)
	}
	if b[0] != FrameVersion {
		return Ack{}, fmt.Errorf("%w: ack version %d, want %d", ErrVersion, b[0], FrameVersion)
	}
	if b[1] != kindAck {
		return Ack{}, fmt.Errorf("%w: kind %d is not an ack", ErrMalformed, b[1])
	}
	body, mac := b[:len(b)-MACSize], b[len(b)-MACSize:]
	r := reader{b: body, off: 2}
	a := Ack{Version: b[0]}
	a.Origin = r.string("origin", KernelIDLengthMax)
	a.Responder = r.string("responder", KernelIDLengthMax)
	a.Seq = r.uint64("seq")
	a.Status = AckStatus(r.byte("status"))
	copy(a.EventDigest[:], r.bytes("event digest", DigestSize))
	if n := r.uint32("result length"); r.err == nil {
		if n > MaxAckResultBytes {
			r.err = fmt.Errorf("%w: ack result of %d bytes exceeds %d", ErrTooLarge, n, MaxAckResultBytes)
		} else if n > 0 {
			a.Result = append([]byte(nil), r.bytes("result", int(n))...)
		}
	}
	if r.err == nil && r.off != len(body) {
		r.err = fmt.Errorf("%w: %d unexpected bytes before the MAC", ErrMalformed, len(body)-r.off)
	}
	if r.err != nil {
		return Ack{}, r.err
	}
	if err := a.Validate(); err != nil {
		return Ack{}, err
	}
	if err := verifyMAC(body, mac, keyFor, a.Responder, a.Origin); err != nil {
		return Ack{}, err
	}
	return a, nil
}

// DeriveLinkKey derives the HMAC key of the directed link from → to from the
// sovereign's master secret: HKDF-SHA256 with no salt and info
// "dominus bus link v1 " + from + "->" + to, 32 bytes. The sovereign gives
// the result only to the kernels from and to.
//
// Kernel ids cannot contain '>', so the info string names exactly one
// link. It returns an error for an invalid id, a link from a kernel to
// itself, or a master secret shorter than MasterKeyBytesMin.
func DeriveLinkKey(master []byte, from, to string) ([]byte, error) {
	if err := checkLink(master, from, to); err != nil {
		return nil, err
	}
	key, err := hkdf.Key(sha256.New, master, nil, "dominus bus link v1 "+from+"->"+to, LinkKeyBytesMin)
	if err != nil {
		return nil, fmt.Errorf("transport: derive link key %s->%s: %w", from, to, err)
	}
	return key, nil
}

// DeriveLinkKeyEpoch derives the key of the directed link from → to in key
// epoch epoch. Epoch 0 is DeriveLinkKey, the keys of every federation
// before its first rotation; epoch N > 0 adds " epoch N" to the HKDF info
// ("dominus bus link v1 " + from + "->" + to + " epoch " + N). Kernel ids
// cannot contain a space, so the info string names one link in one epoch.
func DeriveLinkKeyEpoch(master []byte, from, to string, epoch uint64) ([]byte, error) {
	if epoch == 0 {
		return DeriveLinkKey(master, from, to)
	}
	if err := checkLink(master, from, to); err != nil {
		return nil, err
	}
	key, err := hkdf.Key(sha256.New, master, nil, "dominus bus link v1 "+from+"->"+to+" epoch "+strconv.FormatUint(epoch, 10), LinkKeyBytesMin)
	if err != nil {
		return nil, fmt.Errorf("transport: derive link key %s->%s epoch %d: %w", from, to, epoch, err)
	}
	return key, nil
}

// checkLink validates the arguments of a link key derivation.
func checkLink(master []byte, from, to string) error {
	if len(master) < MasterKeyBytesMin {
		return fmt.Errorf("transport: master secret of %d bytes is shorter than %d", len(master), MasterKeyBytesMin)
	}
	if err := validateToken("link source", from, KernelIDLengthMax); err != nil {
		return err
	}
	if err := validateToken("link destination", to, KernelIDLengthMax); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("transport: link from %q to itself", from)
	}
	return nil
}

// verifyMAC checks mac over body with the key of link from → to.
func verifyMAC(body, mac []byte, keyFor LinkKeyFunc, from, to string) error {
	if keyFor == nil {
		return fmt.Errorf("%w: %s->%s: no link keys", ErrUnknownLink, from, to)
	}
	key, ok := keyFor(from, to)
	if !ok || len(key) < LinkKeyBytesMin {
		return fmt.Errorf("%w: %s->%s", ErrUnknownLink, from, to)
	}
	h := hmac.New(sha256.New, key)
	h.Write(body)
	if !hmac.Equal(h.Sum(nil), mac) {
		return fmt.Errorf("%w: link %s->%s", ErrBadMAC, from, to)
	}
	return nil
}

func appendMAC(b, key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(b)
}

func appendString(b []byte, s string) []byte {
	b = append(b, uint8(len(s)))
	return append(b, s...)
}

// validateToken checks an id-like field: 1 to max bytes, each a letter, a
// digit or one of "-_.:/@*+". '>' is excluded so "from->to" is unambiguous.
func validateToken(field, s string, max int) error {
	if len(s) == 0 || len(s) > max {
		return fmt.Errorf("%w: %s has %d bytes, want 1 to %d", ErrMalformed, field, len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@' || c == '*' || c == '+'
		if !ok {
			return fmt.Errorf("%w: %s %q has byte 0x%02x at offset %d", ErrMalformed, field, s, c, i)
		}
	}
	return nil
}

func validateNodeName(s string) error {
	if err := tlsutil.ValidateNodeName(s); err != nil {
		return fmt.Errorf("%w: origin node: %v", ErrMalformed, err)
	}
	return nil
}

// reader walks an encoding; the first error sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) need(field string, n int) bool {
	if r.err != nil {
		return false
	}
	if n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: %s needs %d bytes, %d remain", ErrMalformed, field, n, len(r.b)-r.off)
		return false
	}
	return true
}

func (r *reader) byte(field string) uint8 {
	if !r.need(field, 1) {
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(field string, n int) []byte {
	if !r.need(field, n) {
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) uint64(field string) uint64 {
	if !r.need(field, 8) {
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

// string reads a u8 length and that many bytes, checking the length against
// max before reading.
func (r *reader) string(field string, max int) string {
	n := int(r.byte(field + " length"))
	if r.err != nil {
		return ""
	}
	if n == 0 || n > max {
		r.err = fmt.Errorf("%w: %s length %d, want 1 to %d", ErrMalformed, field, n, max)
		return ""
	}
	return string(r.bytes(field, n))
}

// payload reads a u32 length, checked against MaxPayloadBytes before the
// bytes are touched, and copies the payload.
func (r *reader) payload() []byte {
	if !r.need("payload length", 4) {
		return nil
	}
	n := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	if n > MaxPayloadBytes {
		r.err = fmt.Errorf("%w: payload length %d exceeds %d", ErrTooLarge, n, MaxPayloadBytes)
		return nil
	}
	p := r.bytes("payload", int(n))
	if r.err != nil {
		return nil
	}
	return append([]byte{}, p...)
}

func (r *reader) uint32(field string) uint32 {
	if !r.need(field, 4) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}
