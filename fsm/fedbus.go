package fsm

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/passport"
)

// The federation bus: a domain's outbox of cross-domain calls
// (remoteCall), the receipt of a peer's event, applied in sequence order
// exactly once per origin (bus.receive), and the record of a peer's
// answer (bus.delivered).
func init() {
	// The actor is the calling entity, qualified by its origin domain.
	registerTyped(CmdBusReceive, typedSpec[BusReceive]{
		proposer: proposerInternal, role: RoleDomain,
		actorOf: func(p *BusReceive) string { return p.Origin + "/" + p.Entity },
		subject: func(_ *Ledger, p *BusReceive) string { return busEventID(p.Origin, p.Seq) },
		run:     applyBusReceive,
	})
	registerTyped(CmdBusDelivered, typedSpec[BusDelivered]{
		proposer: proposerInternal, actor: "kernel", role: RoleDomain,
		subject: func(_ *Ledger, p *BusDelivered) string { return busEventID(p.Dest, p.Seq) },
		run:     applyBusDelivered,
	})
}

// OutEvent is one event in a domain's outbox.
type OutEvent struct {
	ID        string    `codec:"id"` // "<dest>/<seq>"
	Dest      string    `codec:"dest"`
	Seq       uint64    `codec:"seq"`
	Entity    string    `codec:"entity"`
	Op        string    `codec:"op"`
	Resource  string    `codec:"resource"` // the resource in the destination domain
	Args      []byte    `codec:"args"`
	TokenHash []byte    `codec:"token_hash"` // hash of the destination's grant token
	Created   uint64    `codec:"created"`
	Status    string    `codec:"status"` // pending, delivered, rejected, expired
	Remote    BusResult `codec:"remote"`
	Delivered uint64    `codec:"delivered"`
}

// Bus event states.
const (
	BusStatePending   = "pending"
	BusStateDelivered = "delivered"
	BusStateRejected  = "rejected"
)

// BusResult is the receiving kernel's gate decision on a bus event.
type BusResult struct {
	Decision Decision `codec:"decision"`
	Reason   Reason   `codec:"reason"`
	Seq      uint64   `codec:"seq"` // the receiver's ledger seq
	Value    []byte   `codec:"value"`
	Found    bool     `codec:"found"`
}

// InboxLink is a receiver's dedup state for one origin: events are
// applied in sequence order, each exactly once.
type InboxLink struct {
	Origin string      `codec:"origin"`
	Next   uint64      `codec:"next"`   // next sequence number expected
	Recent []BusResult `codec:"recent"` // results of Next-len(Recent) .. Next-1
}

// Stored returns the result recorded for seq when seq was applied and its
// answer is still kept (one of the last MaxInboxRecent); false otherwise,
// including for a seq not applied yet. The receiving kernel answers a
// resent frame with it.
func (in *InboxLink) Stored(seq uint64) (BusResult, bool) {
	if in == nil || seq == 0 || seq >= in.Next {
		return BusResult{}, false
	}
	back := in.Next - seq
	if back > uint64(len(in.Recent)) {
		return BusResult{}, false
	}
	return in.Recent[uint64(len(in.Recent))-back], true
}

// OutEventByID returns the outbox event with the given id.
func (f *FedState) OutEventByID(id string) *OutEvent {
	for _, e := range f.Outbox {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// BusReceive applies a verified bus event from another kernel.
type BusReceive struct {
	Origin     string `codec:"origin"`
	Seq        uint64 `codec:"seq"`
	PassportID string `codec:"passport_id"`
	Entity     string `codec:"entity"`
	Op         string `codec:"op"`
	Resource   string `codec:"resource"`
	Args       []byte `codec:"args"`
	TokenHash  []byte `codec:"token_hash"`
	SentAt     int64  `codec:"sent_at"` // origin's ledger time of the outbox event
}

// BusDelivered records the receiver's answer to an outbox event.
type BusDelivered struct {
	Dest     string    `codec:"dest"`
	Seq      uint64    `codec:"seq"`
	Rejected bool      `codec:"rejected"`
	Result   BusResult `codec:"result"`
}

// busEventID names the event seq of the bus link to (or from) a kernel.
func busEventID(kernel string, seq uint64) string {
	return kernel + "/" + strconv.FormatUint(seq, 10)
}

// SplitRemote splits a cross-domain resource "DOMAIN:rest"; ok is false
// for a local resource.
func SplitRemote(resource string) (domain, rest string, ok bool) {
	i := strings.IndexByte(resource, ':')
	if i <= 0 || i == len(resource)-1 {
		return "", "", false
	}
	d := resource[:i]
	if !validName(d) || strings.Contains(d, "/") {
		return "", "", false
	}
	return d, resource[i+1:], true
}

// remoteCall records a permitted cross-domain call in the outbox. The
// caller has passed this kernel's gate; the destination's gate decides
// again when the event arrives.
func (l *Ledger) remoteCall(c *call, cp *Capability, dest, resource, op string, args, tokenHash []byte) outcome {
	f := l.st.Fed
	if f == nil || l.st.Meta.Role != RoleDomain {
		return deny(ReasonWrongRole)
	}
	if f.Halt != nil {
		return deny(ReasonHalted)
	}
	if !validTokenHash(tokenHash) {
		return deny(ReasonInvalidArgument)
	}
	peer := f.Peers[dest]
	if peer == nil || dest == SovereignKernel {
		return deny(ReasonNotFound)
	}
	own, r := l.st.VerifyPassport(f.Passport, c.now)
	if r != ReasonOK {
		return deny(ReasonPassportInvalid)
	}
	// A destination without standing (its passport revoked or long
	// expired) would never take the event: refuse it here rather than
	// queue it.
	if pp, err := passport.Decode(peer.Passport); err != nil {
		return deny(ReasonPassportInvalid)
	} else if _, r := l.st.PeerStanding(dest, pp.ID, c.now); r != ReasonOK {
		return deny(ReasonPassportInvalid)
	}
	if !passport.Allows(own, "bus.syscall") {
		return deny(ReasonOutOfScope)
	}
	pending := 0
	for _, e := range f.Outbox {
		if e.Status == BusStatePending {
			pending++
		}
	}
	if pending >= MaxOutbox {
		return deny(ReasonEffectBacklog)
	}
	seq := f.NextOut[dest] + 1
	f.NextOut[dest] = seq
	ev := &OutEvent{
		ID: busEventID(dest, seq), Dest: dest, Seq: seq, Entity: cp.Entity, Op: op, Resource: resource,
		Args: append([]byte(nil), args...), TokenHash: append([]byte(nil), tokenHash...), Created: l.st.Seq + 1, Status: BusStatePending,
	}
	// Keep the outbox bounded: drop the oldest finished events first.
	if len(f.Outbox) >= MaxOutbox {
		for i, e := range f.Outbox {
			if e.Status != BusStatePending {
				f.Outbox = append(f.Outbox[:i:i], f.Outbox[i+1:]...)
				break
			}
		}
	}
	f.Outbox = append(f.Outbox, ev)
	return outcome{decision: DecisionPermit, id: ev.ID}
}

func applyBusReceive(l *Ledger, c *call, p *BusReceive) outcome {
	f := l.st.Fed
	if !validName(p.Origin) || !validName(p.Entity) || p.Seq == 0 || len(p.Args) > MaxArgsBytes {
		return deny(ReasonInvalidArgument)
	}
	in := f.Inbox[p.Origin]
	if in == nil {
		in = &InboxLink{Origin: p.Origin, Next: 1}
	}
	if p.Seq < in.Next {
		// Already applied: the stored answer, no change.
		res, ok := in.Stored(p.Seq)
		if !ok {
			return deny(ReasonTooOld)
		}
		return outcome{noop: true, reason: ReasonDuplicateEvent, value: Encode(&res)}
	}
	if p.Seq > in.Next {
		return deny(ReasonSequenceGap)
	}
	pp, r := l.st.PeerStanding(p.Origin, p.PassportID, c.now)
	if r != ReasonOK {
		return deny(r)
	}
	res := BusResult{Decision: DecisionDeny}
	if !passport.Allows(pp, "bus.syscall") {
		return deny(ReasonOutOfScope)
	}
	// The event is in sequence and its sender has standing: from here it
	// is consumed, whatever this kernel's gate decides.
	out := l.remoteGate(c, p)
	res.Decision, res.Reason, res.Value, res.Found = out.decision, out.reason, out.value, out.found
	res.Seq = l.st.Seq + 1
	in.Next++
	in.Recent = append(in.Recent, res)
	if len(in.Recent) > MaxInboxRecent {
		in.Recent = append([]BusResult(nil), in.Recent[len(in.Recent)-MaxInboxRecent:]...)
	}
	f.Inbox[p.Origin] = in
	out.value = Encode(&res)
	return out
}

// passportSuperseded reports whether an event's passport id names an
// earlier, unrevoked passport of the same domain than the current one
// (events recorded just before a renewal).
func (s *State) passportSuperseded(cur passport.Passport, id string) bool {
	prefix := "pp-" + cur.Domain + "-"
	if !strings.HasPrefix(id, prefix) || s.Fed.IsRevoked(id) {
		return false
	}
	n, err := strconv.ParseUint(id[len(prefix):], 10, 64)
	return err == nil && n < cur.Serial && n+2 >= cur.Serial
}

// remoteGate is the receiving kernel's gate for a cross-domain call: the
// grant token must be one this domain issued to the calling entity,
// qualified by its origin domain.
func (l *Ledger) remoteGate(c *call, p *BusReceive) outcome {
	st := l.st
	if st.Fed.Halt != nil {
		return deny(ReasonHalted)
	}
	cp := st.CapByToken(hex.EncodeToString(p.TokenHash))
	if cp == nil || cp.Operator {
		return deny(ReasonUnknownToken)
	}
	if cp.Entity != p.Origin+"/"+p.Entity {
		return deny(ReasonForbidden)
	}
	c.cap = cp
	c.viaBus = true
	return l.syscall(c, p.Op, p.Resource, p.Args, "")
}

func applyBusDelivered(l *Ledger, c *call, p *BusDelivered) outcome {
	f := l.st.Fed
	id := busEventID(p.Dest, p.Seq)
	ev := f.OutEventByID(id)
	if ev == nil {
		return deny(ReasonNotFound)
	}
	if ev.Status != BusStatePending {
		return outcome{noop: true, reason: ReasonDuplicateEvent, id: id}
	}
	if len(p.Result.Value) > MaxValueBytes {
		return deny(ReasonTooLarge)
	}
	ev.Status = BusStateDelivered
	if p.Rejected {
		ev.Status = BusStateRejected
	}
	ev.Remote = p.Result
	ev.Remote.Value = append([]byte(nil), p.Result.Value...)
	ev.Delivered = l.st.Seq + 1
	fedDetail(c, id, ev.Status+": "+p.Result.Decision.String()+" "+p.Result.Reason.String(), strconv.FormatUint(p.Result.Seq, 10))
	return outcome{decision: DecisionPermit, id: id}
}
