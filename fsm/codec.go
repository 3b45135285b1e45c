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

var encPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Encode returns the canonical msgpack encoding of v. It panics if v cannot
// be encoded: every replicated type is a plain struct, so a failure is a
// programming error, not an input error.
func Encode(v any) []byte {
	buf := encPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := codec.NewEncoder(buf, handle).Encode(v); err != nil {
		panic(fmt.Sprintf("fsm: encode %T: %v", v, err))
	}
	out := make([]byte, buf.Len())
	copy(out, buf.Bytes())
	if buf.Cap() <= 1<<20 {
		encPool.Put(buf)
	}
	return out
}

// ErrNonCanonical is returned by Decode for bytes that decode but are not
// the canonical encoding of the value they carry (trailing bytes, unsorted
// maps, alternative integer widths, unknown fields).
var ErrNonCanonical = errors.New("fsm: non-canonical encoding")

// Decode decodes b into v and requires b to be exactly the canonical
// encoding of the result, so one value has one byte form in the log.
func Decode(b []byte, v any) (err error) {
	defer func() {
		// The codec may panic on hostile input; report it as an error.
		if r := recover(); r != nil {
			err = fmt.Errorf("fsm: decode %T: %v", v, r)
		}
	}()
	if err := codec.NewDecoderBytes(b, handle).Decode(v); err != nil {
		return fmt.Errorf("fsm: decode %T: %w", v, err)
	}
	if !bytes.Equal(Encode(v), b) {
		return fmt.Errorf("decode %T: %w", v, ErrNonCanonical)
	}
	return nil
}
