package cortex

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Push/pull state: the anti-entropy half of dissemination. Broadcasts are
// sent a bounded number of times to random members, so a member can miss
// one; on every memberlist push/pull (join, and every PushPullInterval with
// one random member) each side also sends its freshest latest signals,
// exactly as they arrived, and the other side runs each through the same
// checks as a broadcast. A missed signal is repaired within a push/pull
// round as long as it is still the latest of its slot and fresh.
//
// Version 1 state (integers big-endian):
//
//	magic    "DCP" 0x01
//	count    u16, 0..MaxStateSignals
//	count ×  u16 length (1..MaxMessageBytes), signal message
//
// The framing is checked as a whole before any message is looked at: a
// state that is not exactly this is dropped (counted once as malformed).
const stateMagic = "DCP\x01"

// MaxStateSignals bounds the signals one push/pull state carries.
const MaxStateSignals = 1024

// maxStateBytes is the longest well-formed state.
const maxStateBytes = len(stateMagic) + 2 + MaxStateSignals*(2+MaxMessageBytes)

// encodeState frames msgs; the caller passes at most MaxStateSignals
// messages of 1..MaxMessageBytes bytes.
func encodeState(msgs [][]byte) []byte {
	n := len(stateMagic) + 2
	for _, m := range msgs {
		n += 2 + len(m)
	}
	b := make([]byte, 0, n)
	b = append(b, stateMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msgs)))
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// decodeState splits a state into its messages, which alias b. It checks
// the framing only; each message is checked by the receiver.
func decodeState(b []byte) ([][]byte, error) {
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("%w: state of %d bytes, limit %d", ErrOversized, len(b), maxStateBytes)
	}
	if len(b) < len(stateMagic)+2 || string(b[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("%w: state has no header", ErrMalformed)
	}
	count := int(binary.BigEndian.Uint16(b[len(stateMagic):]))
	if count > MaxStateSignals {
		return nil, fmt.Errorf("%w: state claims %d signals, limit %d", ErrMalformed, count, MaxStateSignals)
	}
	rest := b[len(stateMagic)+2:]
	msgs := make([][]byte, 0, count)
	for i := range count {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: state truncated at signal %d", ErrMalformed, i)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if n < 1 || n > MaxMessageBytes || n > len(rest) {
			return nil, fmt.Errorf("%w: state signal %d has length %d (%d bytes left, limit %d)", ErrMalformed, i, n, len(rest), MaxMessageBytes)
		}
		msgs = append(msgs, rest[:n:n])
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last state signal", ErrMalformed, len(rest))
	}
	return msgs, nil
}

// freshest returns the wire bytes of at most limit latest signals whose
// window is not stale at now, newest window first (ties by domain, node,
// kind). The slices are the receiver's and must not be modified.
func (r *receiver) freshest(now int64, limit int) [][]byte {
	floor := satSub(now, int64(r.cfg.maxAge))
	r.mu.Lock()
	es := make([]entry, 0, len(r.latest))
	for _, e := range r.latest {
		if e.sig.Window >= floor {
			es = append(es, e)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(es, func(a, b entry) int {
		if a.sig.Window != b.sig.Window {
			if a.sig.Window > b.sig.Window {
				return -1
			}
			return 1
		}
		return compareSignals(a.sig, b.sig)
	})
	es = es[:min(len(es), limit)]
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.wire
	}
	return out
}

// stateSummary describes a merged state for the log.
func stateSummary(accepted int, reasons map[DropReason]int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "accepted=%d", accepted)
	for _, r := range dropReasons {
		if n := reasons[r]; n > 0 {
			fmt.Fprintf(&sb, " %s=%d", r, n)
		}
	}
	return sb.String()
}
