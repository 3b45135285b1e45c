package fsm

import (
	"encoding/binary"
	"math"
)

// Hand-written decoders for the types every entry passes through (the
// envelope and the kv and syscall payloads) and for the archive wrapper
// and chain record a replay reads. They accept only the
// canonical encoding — the exact bytes the encoders of canonenc.go
// write: every header and integer in its smallest form, the fields as a
// map in sorted key order, nothing after the value — and report false
// for anything else, which Decode then hands to the reflection codec
// and its canonical check, so every error and every decision stays
// theirs. Since only the one byte form of a value is accepted, the
// result is the value the codec would decode and re-encoding it gives
// the same bytes (canondec_test.go checks both on random and mutated
// input), so Decode skips its re-encoding check for them; decodeTrusted
// (archived records, verified against the chain instead) tries them
// first too.

// canonicalDecoder is a type with a strict hand-written decoder. It sets
// the fields the bytes carry only when it returns true.
type canonicalDecoder interface {
	decodeCanonical(b []byte) bool
}

// canonReader reads canonical msgpack; any deviation sets bad.
type canonReader struct {
	b   []byte
	off int
	bad bool
}

func (r *canonReader) byte1() byte {
	if r.bad || r.off >= len(r.b) {
		r.bad = true
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *canonReader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b)-r.off {
		r.bad = true
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *canonReader) u16() uint64 { return uint64(binary.BigEndian.Uint16(r.pad(2))) }
func (r *canonReader) u32() uint64 { return uint64(binary.BigEndian.Uint32(r.pad(4))) }
func (r *canonReader) u64() uint64 { return binary.BigEndian.Uint64(r.pad(8)) }

// pad is take(n), or n zero bytes once the reader is bad.
func (r *canonReader) pad(n int) []byte {
	if s := r.take(n); s != nil {
		return s
	}
	return make([]byte, n)
}

// end reports whether every byte was read canonically.
func (r *canonReader) end() bool { return !r.bad && r.off == len(r.b) }

// mapOf requires a map header of exactly n entries (n <= 15: fixmap).
func (r *canonReader) mapOf(n int) {
	if r.byte1() != 0x80|byte(n) {
		r.bad = true
	}
}

// key requires the fixstr k.
func (r *canonReader) key(k string) {
	if r.byte1() != 0xa0|byte(len(k)) || string(r.take(len(k))) != k {
		r.bad = true
	}
}

func (r *canonReader) uint(max uint64) uint64 {
	c := r.byte1()
	var v, min uint64
	switch {
	case c <= 0x7f:
		v, min = uint64(c), 0
	case c == 0xcc:
		v, min = uint64(r.byte1()), 128
	case c == 0xcd:
		v, min = r.u16(), math.MaxUint8+1
	case c == 0xce:
		v, min = r.u32(), math.MaxUint16+1
	case c == 0xcf:
		v, min = r.u64(), math.MaxUint32+1
	default:
		r.bad = true
	}
	if v < min || v > max {
		r.bad = true
	}
	return v
}

func (r *canonReader) int() int64 {
	c := r.byte1()
	var v int64
	ok := false
	switch {
	case c <= 0x7f || c >= 0xe0:
		v, ok = int64(int8(c)), true
	case c == 0xd0:
		v = int64(int8(r.byte1()))
		ok = v < -32
	case c == 0xd1:
		v = int64(int16(r.u16()))
		ok = v < math.MinInt8 || v > math.MaxInt8
	case c == 0xd2:
		v = int64(int32(r.u32()))
		ok = v < math.MinInt16 || v > math.MaxInt16
	case c == 0xd3:
		v = int64(r.u64())
		ok = v < math.MinInt32 || v > math.MaxInt32
	}
	if !ok {
		r.bad = true
	}
	return v
}

// strLen reads a str header in its smallest form.
func (r *canonReader) strLen() int {
	c := r.byte1()
	var n, min int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return int(c & 0x1f)
	case c == 0xd9:
		n, min = int(r.byte1()), 32
	case c == 0xda:
		n, min = int(r.u16()), math.MaxUint8+1
	case c == 0xdb:
		n, min = int(r.u32()), math.MaxUint16+1
	default:
		r.bad = true
	}
	if n < min {
		r.bad = true
	}
	return n
}

func (r *canonReader) str() string { return string(r.take(r.strLen())) }

// bin reads a byte slice (nil for nil) into a new slice.
func (r *canonReader) bin() []byte {
	s := r.binView()
	if s == nil {
		return nil
	}
	return append(make([]byte, 0, len(s)), s...)
}

// binView reads a byte slice (nil for nil) that shares the reader's bytes.
func (r *canonReader) binView() []byte {
	c := r.byte1()
	var n, min int
	switch c {
	case 0xc0:
		return nil
	case 0xc4:
		n, min = int(r.byte1()), 0
	case 0xc5:
		n, min = int(r.u16()), math.MaxUint8+1
	case 0xc6:
		n, min = int(r.u32()), math.MaxUint16+1
	default:
		r.bad = true
	}
	if n < min {
		r.bad = true
	}
	s := r.take(n)
	if r.bad {
		return nil
	}
	return s
}

func (e *Envelope) decodeCanonical(b []byte) bool {
	r := canonReader{b: b}
	// The fast path reads a caller's envelope; one with member evidence
	// (both fields) goes through the codec.
	r.mapOf(5)
	r.key("auth")
	auth := r.bin()
	r.key("p")
	payload := r.bin()
	r.key("rid")
	rid := r.str()
	r.key("ts")
	ts := r.int()
	r.key("type")
	typ := r.uint(math.MaxUint16)
	if !r.end() {
		return false
	}
	e.Auth, e.Payload, e.RequestID, e.Time, e.Type = auth, payload, rid, ts, CommandType(typ)
	return true
}

func (p *KVPut) decodeCanonical(b []byte) bool {
	r := canonReader{b: b}
	r.mapOf(2)
	r.key("key")
	key := r.str()
	r.key("value")
	value := r.bin()
	if !r.end() {
		return false
	}
	p.Key, p.Value = key, value
	return true
}

func (k *KVKey) decodeCanonical(b []byte) bool {
	r := canonReader{b: b}
	var asOf uint64
	if len(b) > 0 && b[0] == 0x82 { // as_of present (omitempty)
		r.mapOf(2)
		r.key("as_of")
		if asOf = r.uint(math.MaxUint64); asOf == 0 {
			r.bad = true // a zero value is omitted, never written
		}
	} else {
		r.mapOf(1)
	}
	r.key("key")
	key := r.str()
	if !r.end() {
		return false
	}
	k.Key, k.AsOf = key, asOf
	return true
}

func (s *Syscall) decodeCanonical(b []byte) bool {
	r := canonReader{b: b}
	n := 4 // remote_token_hash omitted (omitempty)
	if len(b) > 0 && b[0] == 0x85 {
		n = 5
	}
	r.mapOf(n)
	r.key("approval_id")
	approval := r.str()
	r.key("args")
	args := r.bin()
	r.key("op")
	op := r.str()
	var remote []byte
	if n == 5 {
		r.key("remote_token_hash")
		if remote = r.bin(); len(remote) == 0 {
			r.bad = true // an empty value is omitted, never written
		}
	}
	r.key("resource")
	resource := r.str()
	if !r.end() {
		return false
	}
	s.ApprovalID, s.Args, s.Op, s.Resource = approval, args, op, resource
	if n == 5 {
		s.RemoteTokenHash = remote
	}
	return true
}

func (e *Event) decodeCanonical(b []byte) bool {
	r := canonReader{b: b}
	var ev Event
	if !ev.read(&r) || !r.end() {
		return false
	}
	*e = ev
	return true
}

// read reads an Event into e; e is changed only when it returns true.
func (e *Event) read(r *canonReader) bool {
	r.mapOf(13)
	r.key("actor")
	actor := r.str()
	r.key("decision")
	decision := r.uint(math.MaxUint8)
	r.key("detail")
	detail := r.bin()
	r.key("epoch")
	epoch := r.uint(math.MaxUint64)
	r.key("index")
	index := r.uint(math.MaxUint64)
	r.key("payload_hash")
	payloadHash := r.bin()
	r.key("prev")
	prev := r.bin()
	r.key("reason")
	reason := r.uint(math.MaxUint16)
	r.key("rid")
	rid := r.str()
	r.key("seq")
	seq := r.uint(math.MaxUint64)
	r.key("subject")
	subject := r.str()
	r.key("time")
	ts := r.int()
	r.key("type")
	typ := r.uint(math.MaxUint16)
	if r.bad {
		return false
	}
	*e = Event{Seq: seq, Time: ts, Epoch: epoch, Index: index, Type: CommandType(typ), Actor: actor, RequestID: rid, Subject: subject,
		PayloadHash: payloadHash, Decision: Decision(decision), Reason: Reason(reason), Prev: prev, Detail: detail}
	return true
}

func (a *ArchivedEntry) decodeCanonical(b []byte) bool {
	r := canonReader{b: b}
	r.mapOf(3)
	r.key("entry")
	entry := r.bin()
	r.key("event")
	var ev *Event
	if len(b) > r.off && b[r.off] == 0xc0 {
		r.off++
	} else {
		ev = &Event{}
		if !ev.read(&r) {
			return false
		}
	}
	r.key("head")
	head := r.bin()
	if !r.end() {
		return false
	}
	a.Entry, a.Event, a.Head = entry, ev, head
	return true
}

var (
	_ canonicalDecoder = (*Event)(nil)
	_ canonicalDecoder = (*ArchivedEntry)(nil)
	_ canonicalDecoder = (*Envelope)(nil)
	_ canonicalDecoder = (*KVPut)(nil)
	_ canonicalDecoder = (*KVKey)(nil)
	_ canonicalDecoder = (*Syscall)(nil)
)
