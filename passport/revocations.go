package passport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxRevocations bounds a revocation list. Entries leave the list once
// their passports can no longer be honoured anywhere (Prune), so the list
// holds at most the revocations of RevocationBound of ledger time.
const MaxRevocations = 4096

// ErrRevocationsFull is returned by Add when the list holds MaxRevocations
// entries that are all still needed. A revocation is never dropped to make
// room: the caller must refuse the revocation it was recording, or stop
// the domain another way (a federation halt), and say so.
var ErrRevocationsFull = errors.New("passport: revocation list full")

// Revocation is one revoked passport: its id and the Expires of the
// passport, which says when the entry may be forgotten.
type Revocation struct {
	ID      string
	Expires int64
}

// Revocations is a bounded set of revoked passport ids, kept sorted by id
// so that its encoding is a function of its contents. The zero value is
// an empty list; a nil *Revocations is an empty list for Contains and Len.
//
// Eviction: an entry whose passport's standing deadline at the largest
// slack, deadline(Expires, MaxRenewalSlack), has passed is no longer
// needed: Verify rejects the passport as expired before it asks about
// revocation, and Fresh fails for every peer holding it. Prune removes
// exactly those entries, Add prunes first, and nothing else removes an
// entry.
type Revocations struct {
	entries []Revocation // sorted by ID, unique, len <= MaxRevocations
}

// revocationsMagic starts the byte form of a revocation list, version 1:
//
//	magic  "DRL" 0x01
//	count  u32
//	each:  u32 length, id bytes, i64 expires   (sorted by id, unique)
const revocationsMagic = "DRL\x01"

// Contains reports whether passport id is revoked. Its method value
// (r.Contains) is the revoked argument of Verify.
func (r *Revocations) Contains(id string) bool {
	if r == nil {
		return false
	}
	_, ok := r.find(id)
	return ok
}

// Len is the number of entries.
func (r *Revocations) Len() int {
	if r == nil {
		return 0
	}
	return len(r.entries)
}

// Entries returns a copy of the entries, sorted by id.
func (r *Revocations) Entries() []Revocation {
	if r == nil {
		return nil
	}
	return slices.Clone(r.entries)
}

// Add records that the passport id, which expires at expires, is revoked,
// at ledger time now. It first prunes entries no longer needed at now. A
// passport whose deadline has already passed needs no entry and is not
// added. Adding an id again keeps the later expiry. It returns an error
// wrapping ErrMalformed for an invalid id or a non-positive expiry, and
// ErrRevocationsFull if a new entry does not fit; the list is then
// unchanged apart from the pruning.
func (r *Revocations) Add(id string, expires, now int64) error {
	if err := checkName("revoked id", id); err != nil {
		return err
	}
	if expires <= 0 {
		return malformed("revocation of %q: expires %d is not positive", id, expires)
	}
	r.Prune(now)
	if deadline(expires, MaxRenewalSlack) <= now {
		return nil
	}
	i, ok := r.find(id)
	if ok {
		r.entries[i].Expires = max(r.entries[i].Expires, expires)
		return nil
	}
	if len(r.entries) >= MaxRevocations {
		return fmt.Errorf("%w: cannot revoke %q: %d entries, none prunable at %d",
			ErrRevocationsFull, id, len(r.entries), now)
	}
	r.entries = slices.Insert(r.entries, i, Revocation{ID: id, Expires: expires})
	return nil
}

// Prune removes the entries whose passports can no longer be honoured at
// ledger time now (deadline(Expires, MaxRenewalSlack) <= now) and returns
// how many it removed.
func (r *Revocations) Prune(now int64) int {
	n := len(r.entries)
	r.entries = slices.DeleteFunc(r.entries, func(e Revocation) bool {
		return deadline(e.Expires, MaxRenewalSlack) <= now
	})
	return n - len(r.entries)
}

func (r *Revocations) find(id string) (int, bool) {
	return slices.BinarySearchFunc(r.entries, id, func(e Revocation, id string) int {
		return strings.Compare(e.ID, id)
	})
}

// Encode returns the list's byte form; equal lists give equal bytes.
func (r *Revocations) Encode() []byte {
	n := len(revocationsMagic) + 4
	for _, e := range r.entries {
		n += 4 + len(e.ID) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, revocationsMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.entries)))
	for _, e := range r.entries {
		b = appendString(b, e.ID)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Expires))
	}
	return b
}

// DecodeRevocations parses a revocation list. It returns an error wrapping
// ErrMalformed unless b is exactly the Encode of a list Add could build:
// at most MaxRevocations entries with valid ids, sorted and unique, and
// positive expiries. It never panics. It does not prune; call Prune with
// the current ledger time.
func DecodeRevocations(b []byte) (*Revocations, error) {
	r := reader{b: b}
	if string(r.take(len(revocationsMagic), "magic")) != revocationsMagic {
		if r.err != nil {
			return nil, r.err
		}
		return nil, malformed("revocations: bad magic or version %x", b[:len(revocationsMagic)])
	}
	n := r.count("revocations", MaxRevocations)
	// Each entry takes at least 4+1+8 bytes: refuse a count the input
	// cannot hold before allocating for it.
	if r.err == nil && n > len(r.b)/13 {
		return nil, malformed("revocations: count %d does not fit in %d bytes", n, len(r.b))
	}
	out := &Revocations{}
	if n > 0 {
		out.entries = make([]Revocation, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		e := Revocation{ID: r.str("revoked id", MaxNameBytes), Expires: int64(r.u64("expires"))}
		if r.err != nil {
			break
		}
		if err := checkName("revoked id", e.ID); err != nil {
			return nil, err
		}
		if e.Expires <= 0 {
			return nil, malformed("revocation of %q: expires %d is not positive", e.ID, e.Expires)
		}
		if i > 0 && out.entries[i-1].ID >= e.ID {
			return nil, malformed("revocations not sorted and unique at %d: %q after %q", i, e.ID, out.entries[i-1].ID)
		}
		out.entries = append(out.entries, e)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, malformed("revocations: %d trailing bytes", len(r.b))
	}
	return out, nil
}
