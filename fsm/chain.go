package fsm

import (
	"bytes"
	"crypto/sha256"
	"fmt"
)

// Event is the chain record appended for every event-producing entry.
// Head(n) = SHA-256(Head(n-1) ‖ Encode(Event(n))); Event.Prev repeats
// Head(n-1) so a single record can be checked against its neighbour.
type Event struct {
	Seq         uint64      `codec:"seq"`
	Time        int64       `codec:"time"` // ledger time, unix ns
	Epoch       uint64      `codec:"epoch"`
	Index       uint64      `codec:"index"` // raft index of the entry (informational, replay checks it too)
	Type        CommandType `codec:"type"`
	Actor       string      `codec:"actor"`
	RequestID   string      `codec:"rid"`
	Subject     string      `codec:"subject"`
	PayloadHash []byte      `codec:"payload_hash"` // SHA-256 of the Raft entry bytes
	Decision    Decision    `codec:"decision"`
	Reason      Reason      `codec:"reason"`
	Prev        []byte      `codec:"prev"`
	Detail      []byte      `codec:"detail"` // canonical encoding of a type-specific detail record (SyscallDetail, GrantDetail, ...)
}

// ChainHash computes the head that follows prev when ev is appended.
func ChainHash(prev []byte, ev *Event) [32]byte {
	var buf [1024]byte
	b := append(buf[:0], prev...)
	return sha256.Sum256(ev.appendCanonical(b))
}

// ZeroHead is the head before genesis.
var ZeroHead [32]byte

// VerifyLink checks that ev follows prevHead at prevSeq and hashes to head.
func VerifyLink(prevSeq uint64, prevHead []byte, ev *Event, head []byte) error {
	if ev.Seq != prevSeq+1 {
		return fmt.Errorf("seq %d follows %d", ev.Seq, prevSeq)
	}
	if !bytes.Equal(ev.Prev, prevHead) {
		return fmt.Errorf("seq %d: prev %x does not match head %x", ev.Seq, ev.Prev, prevHead)
	}
	if got := ChainHash(prevHead, ev); !bytes.Equal(got[:], head) {
		return fmt.Errorf("seq %d: head %x recorded, record hashes to %x", ev.Seq, head, got)
	}
	return nil
}
