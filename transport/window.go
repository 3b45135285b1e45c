package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WindowSize is how many sequence numbers below the highest one seen a
// Window remembers individually.
const WindowSize = 1024

const windowWords = WindowSize / 64

// windowVersion is the first byte of an encoded Window.
const windowVersion uint8 = 1

// EncodedWindowBytes is the size of Window.Encode's output.
const EncodedWindowBytes = 1 + 8 + windowWords*8

// Window errors.
var (
	// ErrReplay: the sequence number was accepted before.
	ErrReplay = errors.New("transport: replayed sequence number")
	// ErrTooOld: the sequence number is below the window (or is 0), so it
	// can no longer be told apart from a replay.
	ErrTooOld = errors.New("transport: sequence number below the replay window")
)

// Window is the anti-replay filter for one origin's sequence numbers, the
// sliding window of IPsec and DTLS: the highest sequence number accepted
// and a bitmap of which of the WindowSize numbers ending at it were
// accepted. Frames may arrive out of order within the window.
//
// The receiving kernel's ledger, which deduplicates on (origin, seq), is
// the authority on whether an event was applied; the Window only rejects
// replays early and cheaply, before a frame costs a Raft round. A receiver
// keeps one Window per origin, calls Check before applying a frame and
// Accept once it is applied, and may persist it with Encode.
//
// Window is pure and deterministic: no clock, randomness or I/O. The zero
// value has accepted nothing. It is not safe for concurrent use.
type Window struct {
	highest uint64 // highest accepted seq; 0 when nothing was accepted
	// bits[i/64] bit i%64 is set when seq highest-i was accepted; bit 0 is
	// highest itself.
	bits [windowWords]uint64
}

// Highest returns the highest sequence number accepted, or 0.
func (w *Window) Highest() uint64 { return w.highest }

// Check reports whether seq may be accepted: nil if it is above the highest
// seen or inside the window and not yet accepted, ErrReplay if it was
// accepted, ErrTooOld if it is 0 or WindowSize or more below the highest.
// It changes nothing.
func (w *Window) Check(seq uint64) error {
	if seq == 0 {
		return fmt.Errorf("%w: seq 0", ErrTooOld)
	}
	if seq > w.highest {
		return nil
	}
	d := w.highest - seq
	if d >= WindowSize {
		return fmt.Errorf("%w: seq %d, highest %d, window %d", ErrTooOld, seq, w.highest, WindowSize)
	}
	if w.bits[d/64]&(1<<(d%64)) != 0 {
		return fmt.Errorf("%w: seq %d", ErrReplay, seq)
	}
	return nil
}

// Accept records seq as accepted if Check allows it, and returns Check's
// error otherwise (recording nothing).
func (w *Window) Accept(seq uint64) error {
	if err := w.Check(seq); err != nil {
		return err
	}
	if seq > w.highest {
		w.shift(seq - w.highest)
		w.highest = seq
		w.bits[0] |= 1
		return nil
	}
	d := w.highest - seq
	w.bits[d/64] |= 1 << (d % 64)
	return nil
}

// AcceptUpTo records every sequence number from 1 through seq as accepted:
// the state of a receiver whose ledger applies an origin's events in
// sequence order and has applied them all through seq. It never lowers
// the highest accepted, and leaves numbers above seq as they were. The
// result is what Accept of 1, 2, ..., seq in turn would leave.
func (w *Window) AcceptUpTo(seq uint64) {
	if seq == 0 {
		return
	}
	if seq > w.highest {
		w.shift(seq - w.highest)
		w.highest = seq
	}
	// Offset d marks seq highest-d; mark seq and everything below it that
	// the window still holds, down to seq 1.
	for d := w.highest - seq; d < WindowSize && d < w.highest; d++ {
		w.bits[d/64] |= 1 << (d % 64)
	}
}

// shift moves every recorded bit n places toward older sequence numbers,
// dropping those that leave the window.
func (w *Window) shift(n uint64) {
	if n >= WindowSize {
		w.bits = [windowWords]uint64{}
		return
	}
	words, bitsN := int(n/64), n%64
	for i := windowWords - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.bits[j] << bitsN
			if bitsN != 0 && j-1 >= 0 {
				v |= w.bits[j-1] >> (64 - bitsN)
			}
		}
		w.bits[i] = v
	}
}

// Encode returns the window's canonical encoding (EncodedWindowBytes):
// version u8 | highest u64 | bitmap as 16 u64, newest word first; big-endian.
func (w *Window) Encode() []byte {
	b := make([]byte, 0, EncodedWindowBytes)
	b = append(b, windowVersion)
	b = binary.BigEndian.AppendUint64(b, w.highest)
	for _, v := range w.bits {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// DecodeWindow parses an encoding made by Encode. It rejects (ErrMalformed,
// ErrVersion) a wrong length or version and any state Accept cannot reach:
// bits set with nothing accepted, the highest not marked, or marks for
// sequence numbers below 1. An accepted encoding re-encodes to exactly b.
func DecodeWindow(b []byte) (Window, error) {
	if len(b) != EncodedWindowBytes {
		return Window{}, fmt.Errorf("%w: window encoding of %d bytes, want %d", ErrMalformed, len(b), EncodedWindowBytes)
	}
	if b[0] != windowVersion {
		return Window{}, fmt.Errorf("%w: window version %d, want %d", ErrVersion, b[0], windowVersion)
	}
	var w Window
	w.highest = binary.BigEndian.Uint64(b[1:])
	for i := range w.bits {
		w.bits[i] = binary.BigEndian.Uint64(b[9+8*i:])
	}
	if w.highest == 0 {
		if w.bits != ([windowWords]uint64{}) {
			return Window{}, fmt.Errorf("%w: window has marks but nothing accepted", ErrMalformed)
		}
		return w, nil
	}
	if w.bits[0]&1 == 0 {
		return Window{}, fmt.Errorf("%w: window highest %d is not marked", ErrMalformed, w.highest)
	}
	// Offset d marks seq highest-d, which must be at least 1: d < highest.
	if w.highest < WindowSize {
		for d := w.highest; d < WindowSize; d++ {
			if w.bits[d/64]&(1<<(d%64)) != 0 {
				return Window{}, fmt.Errorf("%w: window marks seq %d-%d below 1", ErrMalformed, w.highest, d)
			}
		}
	}
	return w, nil
}
