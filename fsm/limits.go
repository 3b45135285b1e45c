package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"strconv"
)

// Bounded replicated state (protocol 4): one caller can neither exhaust
// nor evict another's share.
//
//   - A request id binds to its command and payload (requestDigest): a
//     reuse with another command or payload is DENY request_id_reused.
//   - The dedup window keeps each answer without its value (a read's
//     version names the value); a retry of a read answers the first
//     decision with the current value, marked Retried when it changed.
//   - Each caller's entries in the window are bounded
//     (Limits.DedupPerCaller); a caller at its quota, or any caller when
//     the window holds MaxDedupEntries, is refused quota_exceeded instead
//     of evicting anyone's entries (they leave by age only).
//   - The kv store's bytes (keys and values) are bounded (Limits.KVBytes);
//     a write beyond is DENY quota_exceeded before it consumes a use.
//   - The limits are replicated values set by governance (limits.set:
//     operator.manage on "limits"), never per-node flags; so are the
//     per-entity rates the edge enforces before Raft.

// Defaults of the replicated limits.
const (
	DefaultDedupPerCaller = 10_000
	DefaultKVBytes        = int64(512 << 20)
	MaxRateLimits         = 1024
	// OperatorLimits is the resource of limits.set in operator.manage.
	OperatorLimits = "limits"
)

func init() {
	registerTyped(CmdLimitsSet, typedSpec[LimitsSet]{
		proposer: proposerCaller, op: OpOperatorManage, since: (*Ledger).authority,
		subject: func(*Ledger, *LimitsSet) string { return OperatorLimits },
		run:     applyLimitsSet,
	})
}

// Limits are the replicated bounds (zero fields take the defaults).
type Limits struct {
	DedupPerCaller int64        `codec:"dedup_per_caller,omitempty"`
	KVBytes        int64        `codec:"kv_bytes,omitempty"`
	Rates          []EntityRate `codec:"rates,omitempty"` // by entity, sorted
	// EvolveAutoPromote is the kind of evolution governance lets the
	// kernel promote without a human (protocol 8): "" none (every
	// promotion waits for a human), AutoPromoteTightening a candidate
	// that relaxed no decision, in shadow or its backtest.
	EvolveAutoPromote string `codec:"evolve_auto_promote,omitempty"`
}

// Kinds of change governance may let the kernel promote (limits.set
// --evolve-auto-promote).
const (
	AutoPromoteNever      = "never"
	AutoPromoteTightening = "tightening"
)

// EntityRate is the syscall rate an entity may reach at the edge.
type EntityRate struct {
	Entity    string `codec:"entity"`
	PerSecond int64  `codec:"per_second"`
}

// LimitsSet changes limits: a positive field sets it; a rate with
// PerSecond 0 removes that entity's.
type LimitsSet struct {
	DedupPerCaller int64        `codec:"dedup_per_caller,omitempty"`
	KVBytes        int64        `codec:"kv_bytes,omitempty"`
	Rates          []EntityRate `codec:"rates,omitempty"`
	// EvolveAutoPromote: "" keeps it, AutoPromoteNever or
	// AutoPromoteTightening sets it (protocol 8).
	EvolveAutoPromote string `codec:"evolve_auto_promote,omitempty"`
}

// EffectiveLimits are the limits in force, defaults filled in.
func (s *State) EffectiveLimits() Limits {
	out := Limits{DedupPerCaller: DefaultDedupPerCaller, KVBytes: DefaultKVBytes}
	if s.Limits != nil {
		if s.Limits.DedupPerCaller > 0 {
			out.DedupPerCaller = s.Limits.DedupPerCaller
		}
		if s.Limits.KVBytes > 0 {
			out.KVBytes = s.Limits.KVBytes
		}
		out.EvolveAutoPromote = s.Limits.EvolveAutoPromote
		out.Rates = append([]EntityRate(nil), s.Limits.Rates...)
	}
	return out
}

// RateOf is an entity's replicated rate limit (0: none set).
func (s *State) RateOf(entity string) int64 {
	if s.Limits == nil {
		return 0
	}
	rs := s.Limits.Rates
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Entity >= entity })
	if i < len(rs) && rs[i].Entity == entity {
		return rs[i].PerSecond
	}
	return 0
}

// KVBytes is what the kv store holds (keys and values).
func (s *State) KVBytes() int64 { return s.kvBytes }

func kvSize(key string, value []byte) int64 { return int64(len(key) + len(value)) }

// kvRoom reports whether writing value at key stays within the kv bound
// (protocol 4; always true before).
func (l *Ledger) kvRoom(key string, value []byte) bool {
	if !l.authority() {
		return true
	}
	after := l.st.kvBytes + kvSize(key, value)
	if e := l.st.KV[key]; e != nil {
		after -= kvSize(key, e.Value)
	}
	return after <= l.st.EffectiveLimits().KVBytes
}

// kvWriteRoom reports whether a kv op's write stays within the kv bound
// (a cas is judged as if it matched).
func (l *Ledger) kvWriteRoom(op, key string, args []byte) bool {
	switch op {
	case "kv.put":
		return l.kvRoom(key, args)
	case "kv.cas":
		var p KVCAS
		return Decode(args, &p) != nil || l.kvRoom(key, p.Value)
	}
	return true
}

// requestDigest binds a request id to its command and payload.
func requestDigest(env *Envelope) []byte {
	h := sha256.New()
	var t [2]byte
	binary.BigEndian.PutUint16(t[:], uint16(env.Type))
	h.Write(t[:])
	h.Write(env.Payload)
	return h.Sum(nil)
}

// dedupRoom reports whether caller may add an entry to the window.
func (l *Ledger) dedupRoom(caller string) bool {
	st := l.st
	return st.dedupQueue.len() < MaxDedupEntries && int64(st.dedupCount[caller]) < st.EffectiveLimits().DedupPerCaller
}

func applyLimitsSet(l *Ledger, c *call, p *LimitsSet) outcome {
	st := l.st
	if p.DedupPerCaller < 0 || p.DedupPerCaller > MaxDedupEntries || p.KVBytes < 0 || len(p.Rates) > MaxRateLimits {
		return deny(ReasonInvalidArgument)
	}
	lim := Limits{}
	if st.Limits != nil {
		lim = *st.Limits
		lim.Rates = append([]EntityRate(nil), st.Limits.Rates...)
	}
	if p.DedupPerCaller > 0 {
		lim.DedupPerCaller = p.DedupPerCaller
	}
	switch {
	case p.EvolveAutoPromote == "":
	case st.Meta.Protocol < ProtocolEvolution:
		return deny(ReasonUnsupportedProtocol)
	case p.EvolveAutoPromote == AutoPromoteNever:
		lim.EvolveAutoPromote = ""
	case p.EvolveAutoPromote == AutoPromoteTightening:
		lim.EvolveAutoPromote = p.EvolveAutoPromote
	default:
		return deny(ReasonInvalidArgument)
	}
	if p.KVBytes > 0 {
		lim.KVBytes = p.KVBytes
	}
	for _, r := range p.Rates {
		if !validName(r.Entity) || r.PerSecond < 0 || r.PerSecond > 1_000_000 {
			return deny(ReasonInvalidArgument)
		}
		i := sort.Search(len(lim.Rates), func(i int) bool { return lim.Rates[i].Entity >= r.Entity })
		switch {
		case i < len(lim.Rates) && lim.Rates[i].Entity == r.Entity && r.PerSecond == 0:
			lim.Rates = append(lim.Rates[:i:i], lim.Rates[i+1:]...)
		case i < len(lim.Rates) && lim.Rates[i].Entity == r.Entity:
			lim.Rates[i].PerSecond = r.PerSecond
		case r.PerSecond > 0:
			lim.Rates = append(lim.Rates[:i:i], append([]EntityRate{r}, lim.Rates[i:]...)...)
		}
	}
	if len(lim.Rates) > MaxRateLimits {
		return deny(ReasonTooLarge)
	}
	if len(lim.Rates) == 0 {
		lim.Rates = nil
	}
	st.Limits = &lim
	eff := st.EffectiveLimits()
	c.detail = Encode(&GovernanceDetail{Target: OperatorLimits, Note: "dedup per caller " + strconv.FormatInt(eff.DedupPerCaller, 10) +
		", kv bytes " + strconv.FormatInt(eff.KVBytes, 10) + ", " + strconv.Itoa(len(eff.Rates)) + " entity rates" + autoPromoteNote(eff.EvolveAutoPromote)})
	return outcome{decision: DecisionPermit}
}

func autoPromoteNote(kind string) string {
	if kind == "" {
		return ""
	}
	return ", evolutions promoted automatically: " + kind
}
