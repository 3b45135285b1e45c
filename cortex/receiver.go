package cortex

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Verifier returns the Ed25519 public key that signs node's signals in
// domain under the passport passportID, and false if it knows none (an
// unknown node, an unknown, expired or revoked passport, or a node key the
// passport does not list). The kernel binds node keys to passports; the
// cortex only asks. It is called from memberlist's receive loop for every
// signal that is not an exact re-delivery, so it must be fast and must not
// block.
type Verifier func(domain, node, passportID string) (ed25519.PublicKey, bool)

// DropReason names why a receiver dropped a signal message.
type DropReason string

// Drop reasons, in the order the receiver checks them.
const (
	// DropOversized: the message is longer than MaxMessageBytes.
	DropOversized DropReason = "oversized"
	// DropMalformed: the message is not the canonical encoding of a
	// well-formed signal (Decode fails).
	DropMalformed DropReason = "malformed"
	// DropOutOfRange: the value is outside its kind's bounds.
	DropOutOfRange DropReason = "out_of_range"
	// DropDuplicate: the message is byte for byte the latest signal already
	// accepted for its (domain, node, kind). Epidemic gossip delivers each
	// signal several times; this counts the redundancy and is not an attack.
	DropDuplicate DropReason = "duplicate"
	// DropUnknownKey: the Verifier knows no key for (domain, node,
	// passport).
	DropUnknownKey DropReason = "unknown_key"
	// DropBadSignature: the signature does not verify under that key
	// (forged, altered or unsigned).
	DropBadSignature DropReason = "bad_signature"
	// DropStale: the window ended more than MaxAge before the receiver's
	// clock.
	DropStale DropReason = "stale"
	// DropFuture: the window ends more than MaxFutureSkew after the
	// receiver's clock.
	DropFuture DropReason = "future"
	// DropReplay: Seq is not above the Seq of the latest signal accepted
	// for the same (domain, node, kind), and the message is not that
	// signal's exact bytes.
	DropReplay DropReason = "replay"
	// DropCapacity: the signal opens a new (domain, node, kind) slot while
	// MaxTracked are held and none of them is stale.
	DropCapacity DropReason = "capacity"
)

// dropReasons lists every reason; counters are indexed by position.
var dropReasons = [...]DropReason{
	DropOversized, DropMalformed, DropOutOfRange, DropDuplicate, DropUnknownKey,
	DropBadSignature, DropStale, DropFuture, DropReplay, DropCapacity,
}

// DropReasons returns every drop reason in the order the receiver checks
// them.
func DropReasons() []DropReason { return slices.Clone(dropReasons[:]) }

func dropIndex(r DropReason) int {
	for i, d := range dropReasons {
		if d == r {
			return i
		}
	}
	panic(fmt.Sprintf("cortex: unknown drop reason %q", r))
}

// signalKey identifies the slot a signal supersedes.
type signalKey struct {
	domain, node string
	kind         Kind
}

func keyOf(s Signal) signalKey { return signalKey{s.Domain, s.Node, s.Kind} }

// name is the broadcast name of the slot: a newer signal for the same slot
// replaces an older one still waiting in the broadcast queue. NUL appears
// in no name, so distinct slots have distinct names.
func (k signalKey) name() string {
	return k.domain + "\x00" + k.node + "\x00" + strconv.Itoa(int(k.kind))
}

// entry is an accepted signal and the exact bytes it arrived in.
type entry struct {
	sig  Signal
	wire []byte
}

// receiverConfig is what the receive path needs; Pool fills it from Config.
type receiverConfig struct {
	verifier      Verifier
	clock         func() int64
	maxAge        time.Duration
	maxFutureSkew time.Duration
	maxTracked    int
}

// receiver checks incoming signal messages and keeps the latest accepted
// signal per (domain, node, kind). It does no I/O; Pool feeds it from
// memberlist and relays what it accepts.
type receiver struct {
	cfg receiverConfig

	mu     sync.Mutex
	latest map[signalKey]entry

	accepted atomic.Uint64
	dropped  [len(dropReasons)]atomic.Uint64
}

func newReceiver(cfg receiverConfig) *receiver {
	return &receiver{cfg: cfg, latest: make(map[signalKey]entry)}
}

// errDropped carries the reason a message was dropped.
type errDropped struct {
	reason DropReason
	err    error
}

func (e *errDropped) Error() string { return fmt.Sprintf("cortex: dropped (%s): %v", e.reason, e.err) }
func (e *errDropped) Unwrap() error { return e.err }

// ReasonOf returns the drop reason an error from the receive path carries,
// or "" if it carries none.
func ReasonOf(err error) DropReason {
	var d *errDropped
	if errors.As(err, &d) {
		return d.reason
	}
	return ""
}

func (r *receiver) drop(reason DropReason, err error) error {
	r.dropped[dropIndex(reason)].Add(1)
	return &errDropped{reason: reason, err: err}
}

// receive checks msg and, if it passes every check, records it as the
// latest signal of its slot and returns it. The checks run in the order of
// dropReasons; authenticity (key, signature) is established before time
// and sequence are judged, except that an exact re-delivery of the
// accepted bytes is recognised first and costs no signature check. msg is
// not retained: an accepted message is copied.
func (r *receiver) receive(msg []byte) (Signal, error) {
	if len(msg) > MaxMessageBytes {
		return Signal{}, r.drop(DropOversized, fmt.Errorf("%w: %d bytes", ErrOversized, len(msg)))
	}
	s, sig, err := Decode(msg)
	if err != nil {
		return Signal{}, r.drop(DropMalformed, err)
	}
	lo, hi, _ := s.Kind.Bounds()
	if s.Value < lo || s.Value > hi {
		return Signal{}, r.drop(DropOutOfRange, fmt.Errorf("%w: %s value %d outside %d..%d", ErrOutOfRange, s.Kind, s.Value, lo, hi))
	}
	k := keyOf(s)
	r.mu.Lock()
	prev, have := r.latest[k]
	r.mu.Unlock()
	if have && s.Seq == prev.sig.Seq && bytes.Equal(msg, prev.wire) {
		return Signal{}, r.drop(DropDuplicate, fmt.Errorf("seq %d of %s/%s %s already accepted", s.Seq, s.Domain, s.Node, s.Kind))
	}
	pub, ok := r.cfg.verifier(s.Domain, s.Node, s.PassportID)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return Signal{}, r.drop(DropUnknownKey, fmt.Errorf("no key for node %s/%s under passport %s", s.Domain, s.Node, s.PassportID))
	}
	if !ed25519.Verify(pub, SigningBytes(s), sig) {
		return Signal{}, r.drop(DropBadSignature, fmt.Errorf("signature of %s/%s seq %d does not verify", s.Domain, s.Node, s.Seq))
	}
	now := r.cfg.clock()
	if s.Window < satSub(now, int64(r.cfg.maxAge)) {
		return Signal{}, r.drop(DropStale, fmt.Errorf("window %d ended more than %s before %d", s.Window, r.cfg.maxAge, now))
	}
	if s.Window > satAdd(now, int64(r.cfg.maxFutureSkew)) {
		return Signal{}, r.drop(DropFuture, fmt.Errorf("window %d ends more than %s after %d", s.Window, r.cfg.maxFutureSkew, now))
	}
	return s, r.record(s, msg, now)
}

// record stores s (arrived as msg) as its slot's latest if its Seq is above
// the slot's current one. A new slot when MaxTracked are held takes the
// place of the slot with the oldest window if that one is stale at now;
// otherwise the signal is dropped.
func (r *receiver) record(s Signal, msg []byte, now int64) error {
	k := keyOf(s)
	r.mu.Lock()
	prev, have := r.latest[k]
	switch {
	case have && s.Seq == prev.sig.Seq && bytes.Equal(msg, prev.wire):
		r.mu.Unlock()
		return r.drop(DropDuplicate, fmt.Errorf("seq %d of %s/%s %s already accepted", s.Seq, s.Domain, s.Node, s.Kind))
	case have && s.Seq <= prev.sig.Seq:
		r.mu.Unlock()
		return r.drop(DropReplay, fmt.Errorf("seq %d of %s/%s %s is not above accepted seq %d", s.Seq, s.Domain, s.Node, s.Kind, prev.sig.Seq))
	case !have && len(r.latest) >= r.cfg.maxTracked && !r.evictStaleLocked(now):
		r.mu.Unlock()
		return r.drop(DropCapacity, fmt.Errorf("already tracking %d signals, none stale", r.cfg.maxTracked))
	}
	r.latest[k] = entry{sig: s, wire: slices.Clone(msg)}
	r.mu.Unlock()
	r.accepted.Add(1)
	return nil
}

// evictStaleLocked removes the slot with the oldest window (the first by
// domain, node, kind among equals) if that window ended more than MaxAge
// before now, and reports whether it did. The slot's replay floor goes
// with it: a signal of that slot is accepted again only if it is signed
// by its node and its own window is fresh. r.mu must be held.
func (r *receiver) evictStaleLocked(now int64) bool {
	var oldest *Signal
	for _, e := range r.latest {
		if oldest == nil || e.sig.Window < oldest.Window || (e.sig.Window == oldest.Window && compareSignals(e.sig, *oldest) < 0) {
			oldest = &e.sig
		}
	}
	if oldest == nil || oldest.Window >= satSub(now, int64(r.cfg.maxAge)) {
		return false
	}
	delete(r.latest, keyOf(*oldest))
	return true
}

// snapshot returns the latest accepted signals sorted by domain, node and
// kind.
func (r *receiver) snapshot() []Signal {
	r.mu.Lock()
	out := make([]Signal, 0, len(r.latest))
	for _, e := range r.latest {
		out = append(out, e.sig)
	}
	r.mu.Unlock()
	slices.SortFunc(out, compareSignals)
	return out
}

func compareSignals(a, b Signal) int {
	if c := strings.Compare(a.Domain, b.Domain); c != 0 {
		return c
	}
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return int(a.Kind) - int(b.Kind)
}

func (r *receiver) tracked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.latest)
}

func (r *receiver) droppedCounts() map[DropReason]uint64 {
	m := make(map[DropReason]uint64, len(dropReasons))
	for i, d := range dropReasons {
		m[d] = r.dropped[i].Load()
	}
	return m
}

func satSub(a, b int64) int64 {
	if b > 0 && a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
