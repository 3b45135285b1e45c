package passport

import "encoding/binary"

// Version 1 byte form of a passport (all integers big-endian):
//
//	magic      "DPP" 0x01                   4 bytes: format and version
//	id         u32 length, bytes
//	domain     u32 length, bytes
//	issuer     u32 length, bytes
//	issued_by  u32 length, bytes
//	serial     u64
//	not_before i64 (two's complement)
//	expires    i64
//	scopes     u32 count, then each: u32 length, bytes
//	node_keys  u32 count, then each: u32 length, bytes
//	key_id     u32 length, bytes
//	-- end of the signed body --
//	signature  u32 length, bytes            0 or 64 bytes
//
// Encode writes every field; SigningBytes is signingContext followed by
// the body without the signature. The writer takes any value (lengths are
// prefixed, so the form stays injective even for malformed passports);
// Decode accepts only well-formed passports whose encoding is exactly the
// input.
const magic = "DPP\x01"

// signingContext separates passport signatures from anything else a
// sovereign key signs.
const signingContext = "dominus/passport/v1 signature\x00"

// maxEncodedBytes bounds a well-formed passport's encoding; Decode refuses
// anything longer before reading it.
const maxEncodedBytes = len(magic) + 5*(4+MaxNameBytes) + 3*8 +
	4 + MaxScopes*(4+MaxScopeBytes) + 4 + MaxNodeKeys*(4+32) + 4 + 64

// Encode returns p's byte form, signature included. It never fails: any
// value has an encoding, well-formed or not.
func (p Passport) Encode() []byte {
	b := make([]byte, 0, p.encodedLen())
	b = p.appendBody(b)
	return appendBytes(b, p.Signature)
}

// SigningBytes returns the bytes a passport signature covers: a context
// string unique to passports, then every field but Signature in the byte
// form of Encode.
func (p Passport) SigningBytes() []byte {
	b := make([]byte, 0, len(signingContext)+p.encodedLen())
	b = append(b, signingContext...)
	return p.appendBody(b)
}

func (p Passport) encodedLen() int {
	n := len(magic) + 4*5 + len(p.ID) + len(p.Domain) + len(p.Issuer) + len(p.IssuedBy) + len(p.KeyID) +
		3*8 + 4 + 4 + 4 + len(p.Signature)
	for _, s := range p.Scopes {
		n += 4 + len(s)
	}
	for _, k := range p.NodeKeys {
		n += 4 + len(k)
	}
	return n
}

func (p Passport) appendBody(b []byte) []byte {
	b = append(b, magic...)
	b = appendString(b, p.ID)
	b = appendString(b, p.Domain)
	b = appendString(b, p.Issuer)
	b = appendString(b, p.IssuedBy)
	b = binary.BigEndian.AppendUint64(b, p.Serial)
	b = binary.BigEndian.AppendUint64(b, uint64(p.NotBefore))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Expires))
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Scopes)))
	for _, s := range p.Scopes {
		b = appendString(b, s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.NodeKeys)))
	for _, k := range p.NodeKeys {
		b = appendBytes(b, k)
	}
	return appendString(b, p.KeyID)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// Decode parses a passport from its byte form. It returns an error
// wrapping ErrMalformed unless b is exactly Encode of a well-formed
// passport (Validate); it never panics and allocates no more than len(b)
// plus small overhead. The result shares no memory with b.
func Decode(b []byte) (Passport, error) {
	if len(b) > maxEncodedBytes {
		return Passport{}, malformed("encoding has %d bytes, max %d", len(b), maxEncodedBytes)
	}
	r := reader{b: b}
	if string(r.take(len(magic), "magic")) != magic {
		if r.err != nil {
			return Passport{}, r.err
		}
		return Passport{}, malformed("bad magic or version %x", b[:len(magic)])
	}
	var p Passport
	p.ID = r.str("id", MaxNameBytes)
	p.Domain = r.str("domain", MaxNameBytes)
	p.Issuer = r.str("issuer", MaxNameBytes)
	p.IssuedBy = r.str("issued_by", MaxNameBytes)
	p.Serial = r.u64("serial")
	p.NotBefore = int64(r.u64("not_before"))
	p.Expires = int64(r.u64("expires"))
	if n := r.count("scopes", MaxScopes); n > 0 {
		p.Scopes = make([]string, n)
		for i := range p.Scopes {
			p.Scopes[i] = r.str("scope", MaxScopeBytes)
		}
	}
	if n := r.count("node_keys", MaxNodeKeys); n > 0 {
		p.NodeKeys = make([][]byte, n)
		for i := range p.NodeKeys {
			p.NodeKeys[i] = r.bytes("node key", 32)
		}
	}
	p.KeyID = r.str("key_id", MaxNameBytes)
	p.Signature = r.bytes("signature", 64)
	if r.err != nil {
		return Passport{}, r.err
	}
	if len(r.b) != 0 {
		return Passport{}, malformed("%d trailing bytes", len(r.b))
	}
	if err := p.Validate(); err != nil {
		return Passport{}, err
	}
	return p, nil
}

// reader consumes b front to back; the first error sticks and every later
// read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = malformed("truncated at %s: need %d bytes, have %d", field, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32(field string) uint32 {
	v := r.take(4, field)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) u64(field string) uint64 {
	v := r.take(8, field)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// length reads a u32 length or count and refuses one above max before
// anything is allocated for it.
func (r *reader) length(field string, max int) int {
	n := r.u32(field)
	if r.err == nil && n > uint32(max) {
		r.err = malformed("%s: length %d exceeds %d", field, n, max)
		return 0
	}
	return int(n)
}

func (r *reader) count(field string, max int) int { return r.length(field, max) }

func (r *reader) str(field string, max int) string {
	return string(r.take(r.length(field, max), field))
}

func (r *reader) bytes(field string, max int) []byte {
	n := r.length(field, max)
	v := r.take(n, field)
	if v == nil || n == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, v)
	return out
}
