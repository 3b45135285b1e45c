package archive

import (
	"errors"
	"fmt"
	"math"
)

// Kind says how a record moves the ledger seq. Kinds are hand-numbered and
// stored in every frame; numbers are never reused.
type Kind uint8

const (
	// KindEvent is an applied entry that appended one ledger event: its Seq
	// is the previous record's Seq + 1.
	KindEvent Kind = 1
	// KindNoop is an applied entry that appended no ledger event (for
	// example a deduplicated retry): it is archived with the current Seq.
	KindNoop Kind = 2
)

// String returns "event", "noop", or "kind(N)" for an unknown number.
func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindNoop:
		return "noop"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

func (k Kind) valid() bool { return k == KindEvent || k == KindNoop }

// Record is one applied Raft entry as archived.
type Record struct {
	// Index is the Raft log index. Indexes strictly increase across the
	// archive; gaps are allowed (entries that are not applied to the FSM).
	Index uint64
	// Seq is the ledger seq after this entry: the previous record's Seq + 1
	// for KindEvent, the previous record's Seq for KindNoop.
	Seq uint64
	// Kind says how Seq moves.
	Kind Kind
	// Data is opaque to this package; at most Options.MaxRecordBytes on
	// Append. Records returned by this package carry a fresh Data slice
	// that the caller owns.
	Data []byte
}

// ErrInvalidRecord is wrapped by the error Append returns when a record
// breaks the ordering rules or the size limit. The error text names the
// offending record's position in the batch, its Index and Seq, and the rule.
var ErrInvalidRecord = errors.New("archive: append: invalid record")

// position is the ordering state after the last accepted record. The zero
// value is "no record yet".
type position struct {
	have  bool
	index uint64
	seq   uint64
}

// check returns why r cannot follow p, or "" when it can. The rules:
//   - Kind is KindEvent or KindNoop;
//   - Index is at least 1 (Raft indexes start at 1) and exceeds p.index;
//   - after a record, an event's Seq is p.seq + 1 and a noop's Seq is p.seq;
//   - the first record of an archive or export may start at any Seq, except
//     that an event's Seq is at least 1 (ledger seqs start at 1).
func (p position) check(r Record) string {
	if !r.Kind.valid() {
		return fmt.Sprintf("kind %d is neither event (%d) nor noop (%d)", uint8(r.Kind), KindEvent, KindNoop)
	}
	if r.Index == 0 {
		return "index 0 is not a Raft log index"
	}
	if !p.have {
		if r.Kind == KindEvent && r.Seq == 0 {
			return "event seq 0 is not a ledger seq (seqs start at 1)"
		}
		return ""
	}
	if r.Index <= p.index {
		return fmt.Sprintf("index %d does not exceed the previous index %d", r.Index, p.index)
	}
	switch r.Kind {
	case KindEvent:
		if p.seq == math.MaxUint64 {
			return fmt.Sprintf("event after seq %d would overflow", p.seq)
		}
		if r.Seq != p.seq+1 {
			return fmt.Sprintf("event seq %d is not the previous seq %d + 1", r.Seq, p.seq)
		}
	case KindNoop:
		if r.Seq != p.seq {
			return fmt.Sprintf("noop seq %d is not the previous seq %d", r.Seq, p.seq)
		}
	}
	return ""
}

// advance returns the position after r, which check accepted.
func (p position) advance(r Record) position {
	return position{have: true, index: r.Index, seq: r.Seq}
}
