package fsm

import (
	"bytes"
	"fmt"
)

// ArchivedEntry is the archive's payload for one applied entry: the exact
// bytes that went through Raft, and, for an event, the chain record and
// the head it produced.
type ArchivedEntry struct {
	Entry []byte `codec:"entry"`
	Event *Event `codec:"event"`
	Head  []byte `codec:"head"`
}

// EncodeArchived returns the archive payload for an applied entry.
func EncodeArchived(data []byte, a Applied) []byte {
	ae := ArchivedEntry{Entry: data, Event: a.Event}
	if a.Event != nil {
		ae.Head = append([]byte(nil), a.Head[:]...)
	}
	return Encode(&ae)
}

// DecodeArchived decodes an archive payload. The wrapper is not required
// to be canonical: what it carries is verified against the chain (the
// record must hash to its head, and a replay must reproduce both).
func DecodeArchived(b []byte) (ArchivedEntry, error) {
	var ae ArchivedEntry
	if err := decodeTrusted(b, &ae); err != nil {
		return ae, err
	}
	if ae.Event != nil && len(ae.Head) != 32 {
		return ae, fmt.Errorf("archived event %d has a %d-byte head", ae.Event.Seq, len(ae.Head))
	}
	return ae, nil
}

// VerifyError names the first seq at which a replay or chain check failed.
type VerifyError struct {
	Seq    uint64
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verification failed at seq %d: %s", e.Seq, e.Reason)
}

// ReplayStep re-applies one archived entry to l and checks that it
// produces exactly the archived record and head. index is the Raft index
// the entry was archived under; seq the ledger seq the archive recorded.
// A noop entry must still be a noop.
func ReplayStep(l *Ledger, index, seq uint64, payload []byte) error {
	p := PrepareRecord(payload)
	return ReplayPrepared(l, index, seq, &p)
}

// PreparedRecord is an archived record decoded, with its chain record
// hashed against its own head and its Raft entry prepared for applying
// (decoded, hashed): the part of a replay step that needs no ledger, so
// a replay can do it ahead of the ledger, on another core.
type PreparedRecord struct {
	ae        ArchivedEntry
	decodeErr error
	hashOK    bool       // ChainHash(Event.Prev, Event) is the archived head
	entry     *entryPrep // what the Raft entry's bytes alone determine
}

// PrepareRecord decodes an archive payload for ReplayPrepared. It never
// fails: a payload that does not decode fails ReplayPrepared instead.
func PrepareRecord(payload []byte) PreparedRecord {
	ae, err := DecodeArchived(payload)
	if err != nil {
		return PreparedRecord{decodeErr: err}
	}
	p := PreparedRecord{ae: ae, entry: prepareEntry(ae.Entry)}
	if ae.Event != nil {
		h := ChainHash(ae.Event.Prev, ae.Event)
		p.hashOK = bytes.Equal(h[:], ae.Head)
	}
	return p
}

// ReplayPrepared is ReplayStep of a record PrepareRecord prepared: the
// same checks, in the same order, with the same errors.
func ReplayPrepared(l *Ledger, index, seq uint64, p *PreparedRecord) (err error) {
	want := l.st.Seq + 1
	if p.decodeErr != nil {
		return &VerifyError{Seq: want, Reason: "archived entry does not decode: " + p.decodeErr.Error()}
	}
	ae := &p.ae
	defer func() {
		if r := recover(); r != nil {
			err = &VerifyError{Seq: want, Reason: fmt.Sprintf("entry cannot be applied: %v", r)}
		}
	}()
	got := l.apply(index, ae.Entry, p.entry)
	switch {
	case ae.Event == nil && got.Event == nil:
		if seq != l.st.Seq {
			return &VerifyError{Seq: want, Reason: fmt.Sprintf("noop archived at seq %d, ledger is at %d", seq, l.st.Seq)}
		}
		return nil
	case ae.Event == nil:
		return &VerifyError{Seq: got.Event.Seq, Reason: "entry produced an event but was archived as a noop"}
	case got.Event == nil:
		return &VerifyError{Seq: ae.Event.Seq, Reason: "archived event, entry replays as a noop"}
	}
	if seq != got.Event.Seq {
		return &VerifyError{Seq: got.Event.Seq, Reason: fmt.Sprintf("archived under seq %d", seq)}
	}
	if !bytes.Equal(ae.Head, got.Head[:]) {
		return &VerifyError{Seq: got.Event.Seq, Reason: fmt.Sprintf("replayed head %x, archived head %x", got.Head, ae.Head)}
	}
	// The replay reproduced the head; the archived record must be the one
	// that hashes to it (one encoding instead of comparing two).
	if !p.hashOK || !bytes.Equal(ae.Event.Prev, got.Event.Prev) {
		return &VerifyError{Seq: got.Event.Seq, Reason: "archived record differs from the replayed record"}
	}
	return nil
}

// VerifyChain checks archived records link by link without applying them
// (cheap; used to verify a backfill). prev is the head before the first.
func VerifyChain(prev HeadRef, payload []byte) (HeadRef, error) {
	ae, err := DecodeArchived(payload)
	if err != nil {
		return prev, &VerifyError{Seq: prev.Seq + 1, Reason: err.Error()}
	}
	if ae.Event == nil {
		return prev, nil
	}
	if err := VerifyLink(prev.Seq, prev.Hash, ae.Event, ae.Head); err != nil {
		return prev, &VerifyError{Seq: prev.Seq + 1, Reason: err.Error()}
	}
	return HeadRef{Seq: ae.Event.Seq, Hash: ae.Head}, nil
}
