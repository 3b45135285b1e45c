package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// handle is the one msgpack configuration for every replicated byte.
// Canonical sorts map keys; structs encode as maps keyed by their codec
// tags in declaration order, so the same value always yields the same bytes.
var handle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.Canonical = true
	h.WriteExt = true
	h.ErrorIfNoField = true
	return h
}()

type pooledEncoder struct {
	buf bytes.Buffer
	enc *codec.Encoder
}

var encPool = sync.Pool{New: func() any {
	pe := &pooledEncoder{}
	pe.enc = codec.NewEncoder(&pe.buf, handle)
	return pe
}}

var decPool = sync.Pool{New: func() any { return codec.NewDecoderBytes(nil, handle) }}

// Encode returns the canonical msgpack encoding of v. It panics if v cannot
// be encoded: every replicated type is a plain struct, so a failure is a
// programming error, not an input error.
func Encode(v any) []byte {
	if a, ok := v.(canonicalAppender); ok {
		sb := scratchPool.Get().(*[]byte)
		b := a.appendCanonical((*sb)[:0])
		if cap(b) > 1<<20 {
			// b outgrew every pooled buffer (the pool keeps none this
			// large): it is this call's own, and copying a state body
			// would only double its memory.
			scratchPool.Put(sb)
			return b[:len(b):len(b)]
		}
		out := make([]byte, len(b))
		copy(out, b)
		*sb = b
		scratchPool.Put(sb)
		return out
	}
	return encodeReflect(v)
}

// scratchPool holds the buffers the hand-written encoders append to.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// encodeReflect is Encode through the reflection codec (canonicalAppender
// types too: the tests compare the two).
func encodeReflect(v any) []byte {
	pe := encPool.Get().(*pooledEncoder)
	pe.buf.Reset()
	pe.enc.Reset(&pe.buf)
	if err := pe.enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fsm: encode %T: %v", v, err))
	}
	if pe.buf.Cap() > 1<<20 {
		b := pe.buf.Bytes() // the encoder is not pooled again: its buffer is this call's own
		return b[:len(b):len(b)]
	}
	out := make([]byte, pe.buf.Len())
	copy(out, pe.buf.Bytes())
	encPool.Put(pe)
	return out
}

func decodeBytes(b []byte, v any) error {
	d := decPool.Get().(*codec.Decoder)
	d.ResetBytes(b)
	err := d.Decode(v)
	d.ResetBytes(nil)
	decPool.Put(d)
	return err
}

// ErrNonCanonical is returned by Decode for bytes that decode but are not
// the canonical encoding of the value they carry (trailing bytes, unsorted
// maps, alternative integer widths, unknown fields).
var ErrNonCanonical = errors.New("fsm: non-canonical encoding")

// Decode decodes b into v and requires b to be exactly the canonical
// encoding of the result, so one value has one byte form in the log.
func Decode(b []byte, v any) (err error) {
	if d, ok := v.(canonicalDecoder); ok && d.decodeCanonical(b) {
		return nil // canonical by construction (canondec.go)
	}
	defer func() {
		// The codec may panic on hostile input; report it as an error.
		if r := recover(); r != nil {
			err = fmt.Errorf("fsm: decode %T: %v", v, r)
		}
	}()
	if err := decodeBytes(b, v); err != nil {
		return fmt.Errorf("fsm: decode %T: %w", v, err)
	}
	if !bytes.Equal(Encode(v), b) {
		return fmt.Errorf("decode %T: %w", v, ErrNonCanonical)
	}
	return nil
}

// decodeTrusted decodes b into v without the canonical re-encoding check:
// for bytes whose integrity the caller verifies another way (archived
// records are checked against the chain).
func decodeTrusted(b []byte, v any) (err error) {
	if d, ok := v.(canonicalDecoder); ok && d.decodeCanonical(b) {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fsm: decode %T: %v", v, r)
		}
	}()
	if err := decodeBytes(b, v); err != nil {
		return fmt.Errorf("fsm: decode %T: %w", v, err)
	}
	return nil
}
