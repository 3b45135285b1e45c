package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math"
)

// Hand-written canonical encoders for the types every entry passes
// through (the envelope, the kv payloads, the syscall payload and its
// detail record, the chain record and the archive wrapper) and for the
// large tables of the state body (kv entries, the dedup window). They produce exactly the bytes the
// reflection codec produces under handle — struct fields as a map keyed
// by codec tag in sorted order, integers in their smallest form (signed
// types in the signed formats), strings as str, byte slices as bin with
// nil as nil — and Encode uses them instead of reflection. A property
// test (canonenc_test.go) holds them to the codec byte for byte on
// random and boundary values, so the bytes in the log, the chain and the
// archive do not depend on which encoder wrote them.

// canonicalAppender is a type with a hand-written canonical encoder.
type canonicalAppender interface {
	appendCanonical(b []byte) []byte
}

func mpNil(b []byte) []byte { return append(b, 0xc0) }

func mpBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// mpMap writes a map header of n entries.
func mpMap(b []byte, n int) []byte {
	if n <= 15 {
		return append(b, 0x80|byte(n))
	}
	return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
}

func mpUint(b []byte, v uint64) []byte {
	switch {
	case v <= 127:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func mpInt(b []byte, v int64) []byte {
	switch {
	case v > math.MaxInt8:
		switch {
		case v <= math.MaxInt16:
			return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
		case v <= math.MaxInt32:
			return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func mpStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// mpBin writes a byte slice; nil is nil, an empty slice a zero-length bin.
func mpBin(b []byte, v []byte) []byte {
	if v == nil {
		return mpNil(b)
	}
	return append(mpBinHeader(b, len(v)), v...)
}

// mpBinHeader writes the header of a bin of n bytes.
func mpBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
}

// Keys are written as fixstr (every tag below is at most 31 bytes).

func (e *Envelope) appendCanonical(b []byte) []byte {
	if e == nil {
		return mpNil(b)
	}
	n := 5
	if e.Node != "" { // omitempty
		n++
	}
	if len(e.NodeSig) > 0 { // omitempty
		n++
	}
	b = mpMap(b, n)
	b = mpBin(mpStr(b, "auth"), e.Auth)
	if e.Node != "" {
		b = mpStr(mpStr(b, "node"), e.Node)
	}
	if len(e.NodeSig) > 0 {
		b = mpBin(mpStr(b, "nsig"), e.NodeSig)
	}
	b = mpBin(mpStr(b, "p"), e.Payload)
	b = mpStr(mpStr(b, "rid"), e.RequestID)
	b = mpInt(mpStr(b, "ts"), e.Time)
	return mpUint(mpStr(b, "type"), uint64(e.Type))
}

func (p *KVPut) appendCanonical(b []byte) []byte {
	if p == nil {
		return mpNil(b)
	}
	b = mpMap(b, 2)
	b = mpStr(mpStr(b, "key"), p.Key)
	return mpBin(mpStr(b, "value"), p.Value)
}

func (k *KVKey) appendCanonical(b []byte) []byte {
	if k == nil {
		return mpNil(b)
	}
	if k.AsOf != 0 { // omitempty
		return mpStr(mpStr(mpUint(mpStr(mpMap(b, 2), "as_of"), k.AsOf), "key"), k.Key)
	}
	return mpStr(mpStr(mpMap(b, 1), "key"), k.Key)
}

func (s *Syscall) appendCanonical(b []byte) []byte {
	if s == nil {
		return mpNil(b)
	}
	n := 5
	if len(s.RemoteTokenHash) == 0 { // omitempty
		n = 4
	}
	b = mpMap(b, n)
	b = mpStr(mpStr(b, "approval_id"), s.ApprovalID)
	b = mpBin(mpStr(b, "args"), s.Args)
	b = mpStr(mpStr(b, "op"), s.Op)
	if n == 5 {
		b = mpBin(mpStr(b, "remote_token_hash"), s.RemoteTokenHash)
	}
	return mpStr(mpStr(b, "resource"), s.Resource)
}

func (e *Event) appendCanonical(b []byte) []byte {
	if e == nil {
		return mpNil(b)
	}
	b = mpMap(b, 13)
	b = mpStr(mpStr(b, "actor"), e.Actor)
	b = mpUint(mpStr(b, "decision"), uint64(e.Decision))
	b = mpBin(mpStr(b, "detail"), e.Detail)
	b = mpUint(mpStr(b, "epoch"), e.Epoch)
	b = mpUint(mpStr(b, "index"), e.Index)
	b = mpBin(mpStr(b, "payload_hash"), e.PayloadHash)
	b = mpBin(mpStr(b, "prev"), e.Prev)
	b = mpUint(mpStr(b, "reason"), uint64(e.Reason))
	b = mpStr(mpStr(b, "rid"), e.RequestID)
	b = mpUint(mpStr(b, "seq"), e.Seq)
	b = mpStr(mpStr(b, "subject"), e.Subject)
	b = mpInt(mpStr(b, "time"), e.Time)
	return mpUint(mpStr(b, "type"), uint64(e.Type))
}

func (a *ArchivedEntry) appendCanonical(b []byte) []byte {
	if a == nil {
		return mpNil(b)
	}
	b = mpMap(b, 3)
	b = mpBin(mpStr(b, "entry"), a.Entry)
	b = a.Event.appendCanonical(mpStr(b, "event"))
	return mpBin(mpStr(b, "head"), a.Head)
}

// mpStrs writes a string slice; nil is nil, an empty slice an empty array.
func mpStrs(b []byte, v []string) []byte {
	if v == nil {
		return mpNil(b)
	}
	b = mpArray(b, len(v))
	for _, s := range v {
		b = mpStr(b, s)
	}
	return b
}

func mpArray(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func (d *SyscallDetail) appendCanonical(b []byte) []byte {
	if d == nil {
		return mpNil(b)
	}
	n := 11
	if d.AsOf != 0 {
		n++
	}
	b = mpMap(b, n)
	b = mpStr(mpStr(b, "approval_id"), d.ApprovalID)
	b = mpStr(mpStr(b, "args_digest"), d.ArgsDigest)
	if d.AsOf != 0 { // omitempty
		b = mpUint(mpStr(b, "as_of"), d.AsOf)
	}
	b = mpStr(mpStr(b, "cap_id"), d.CapID)
	b = mpBool(mpStr(b, "judged"), d.Judged)
	b = mpStr(mpStr(b, "op"), d.Op)
	b = d.Policy.appendCanonical(mpStr(b, "policy"))
	b = mpUint(mpStr(b, "policy_version"), d.PolicyVersion)
	b = d.Request.appendCanonical(mpStr(b, "request"))
	b = mpStr(mpStr(b, "resource"), d.Resource)
	b = mpStr(b, "shadow")
	if d.Shadow == nil {
		b = mpNil(b)
	} else {
		b = mpArray(b, len(d.Shadow))
		for i := range d.Shadow {
			b = d.Shadow[i].appendCanonical(b)
		}
	}
	return mpInt(mpStr(b, "uses_left"), d.UsesLeft)
}

func (r *CedarRequest) appendCanonical(b []byte) []byte {
	if r == nil {
		return mpNil(b)
	}
	n := 9
	if r.History != nil {
		n++
	}
	if r.Cohort != "" {
		n++
	}
	b = mpMap(b, n)
	b = mpStr(mpStr(b, "action"), r.Action)
	if r.Cohort != "" { // omitempty
		b = mpStr(mpStr(b, "cohort"), r.Cohort)
	}
	b = mpInt(mpStr(b, "deviation"), r.Deviation)
	b = mpStr(mpStr(b, "domain"), r.Domain)
	if r.History != nil { // omitempty
		b = r.History.appendCanonical(mpStr(b, "history"))
	}
	b = mpInt(mpStr(b, "ledger_time"), r.LedgerTime)
	b = mpStr(mpStr(b, "posture"), r.Posture)
	b = mpStr(mpStr(b, "principal"), r.Principal)
	b = mpStr(mpStr(b, "resource"), r.Resource)
	b = mpStr(mpStr(b, "tier"), r.Tier)
	return mpInt(mpStr(b, "trust"), r.Trust)
}

func (h *HistoryContext) appendCanonical(b []byte) []byte {
	if h == nil {
		return mpNil(b)
	}
	b = mpMap(b, 10)
	b = mpInt(mpStr(b, "calls_1h"), h.Calls1h)
	b = mpInt(mpStr(b, "calls_24h"), h.Calls24h)
	b = mpInt(mpStr(b, "denials_1h"), h.Denials1h)
	b = mpInt(mpStr(b, "denials_24h"), h.Denials24h)
	b = mpInt(mpStr(b, "distinct_resources_1h"), h.DistinctResources1h)
	b = mpInt(mpStr(b, "errors_1h"), h.Errors1h)
	b = mpInt(mpStr(b, "escalations_24h"), h.Escalations24h)
	b = mpInt(mpStr(b, "first_seen_s"), h.FirstSeenS)
	b = mpInt(mpStr(b, "op_calls_1h"), h.OpCalls1h)
	return mpInt(mpStr(b, "op_calls_24h"), h.OpCalls24h)
}

func (o *PolicyOutcome) appendCanonical(b []byte) []byte {
	if o == nil {
		return mpNil(b)
	}
	b = mpMap(b, 5)
	b = mpUint(mpStr(b, "decision"), uint64(o.Decision))
	b = mpStrs(mpStr(b, "errors"), o.Errors)
	b = mpStrs(mpStr(b, "matched"), o.Matched)
	b = mpUint(mpStr(b, "reason"), uint64(o.Reason))
	return mpStr(mpStr(b, "why"), o.Why)
}

func (s *ShadowOutcome) appendCanonical(b []byte) []byte {
	if s == nil {
		return mpNil(b)
	}
	b = mpMap(b, 2)
	b = s.Outcome.appendCanonical(mpStr(b, "outcome"))
	return mpStr(mpStr(b, "set"), s.Set)
}

func (e *KVEntry) appendCanonical(b []byte) []byte {
	if e == nil {
		return mpNil(b)
	}
	b = mpMap(b, 3)
	b = mpUint(mpStr(b, "created"), e.Created)
	b = mpBin(mpStr(b, "value"), e.Value)
	return mpUint(mpStr(b, "version"), e.Version)
}

func (k *kvItem) appendCanonical(b []byte) []byte {
	if k == nil {
		return mpNil(b)
	}
	b = k.Entry.appendCanonical(mpStr(mpMap(b, 2), "entry"))
	return mpStr(mpStr(b, "key"), k.Key)
}

func (r *StoredResult) appendCanonical(b []byte) []byte {
	if r == nil {
		return mpNil(b)
	}
	b = mpMap(b, 7)
	b = mpUint(mpStr(b, "decision"), uint64(r.Decision))
	b = mpBool(mpStr(b, "found"), r.Found)
	b = mpStr(mpStr(b, "id"), r.ID)
	b = mpUint(mpStr(b, "reason"), uint64(r.Reason))
	b = mpUint(mpStr(b, "seq"), r.Seq)
	b = mpBin(mpStr(b, "value"), r.Value)
	return mpUint(mpStr(b, "version"), r.Version)
}

func (d *DedupEntry) appendCanonical(b []byte) []byte {
	if d == nil {
		return mpNil(b)
	}
	n := 4
	if len(d.Digest) > 0 {
		n++
	}
	b = mpMap(b, n)
	b = mpStr(mpStr(b, "caller"), d.Caller)
	if len(d.Digest) > 0 { // omitempty
		b = mpBin(mpStr(b, "digest"), d.Digest)
	}
	b = d.Result.appendCanonical(mpStr(b, "result"))
	b = mpStr(mpStr(b, "rid"), d.RequestID)
	return mpInt(mpStr(b, "time"), d.Time)
}

// appendCanonical writes the state body (the state digest's and the
// snapshots' bytes). The large tables (kv and the dedup window) are
// written by hand; the small ones go through the reflection codec one
// field at a time, which writes a field's value exactly as it would
// inside the struct.
func (s *stateBody) appendCanonical(b []byte) []byte { return s.encode(b, nil) }

// bodyFlushBytes is how much of the body encode holds before it hands it
// to its sink.
const bodyFlushBytes = 1 << 20

// encode appends the body to b or, with a sink, writes it to the sink
// as it goes (holding about bodyFlushBytes at a time) and returns what
// is left for the caller to write: hashing the state needs no copy of it.
func (s *stateBody) encode(b []byte, sink io.Writer) []byte {
	if s == nil {
		return mpNil(b)
	}
	flush := func(b []byte) []byte {
		if sink == nil || len(b) < bodyFlushBytes {
			return b
		}
		_, _ = sink.Write(b) // a hash or a counter: it does not fail
		return b[:0]
	}
	n := 16
	if s.Fed != nil {
		n++
	}
	if s.Evolve != nil {
		n++
	}
	if len(s.Members) > 0 {
		n++
	}
	if s.Limits != nil {
		n++
	}
	if len(s.Sense) > 0 {
		n++
	}
	if len(s.History) > 0 {
		n++
	}
	if s.Staging != nil {
		n++
	}
	b = mpMap(b, n)
	b = append(mpStr(b, "approvals"), encodeReflect(s.Approvals)...)
	b = append(mpStr(b, "caps"), encodeReflect(s.Caps)...)
	b = append(mpStr(b, "checkpoints"), encodeReflect(s.Checkpoints)...)
	b = mpStr(b, "dedup")
	if s.Dedup == nil {
		b = mpNil(b)
	} else {
		b = mpArray(b, len(s.Dedup))
		for i := range s.Dedup {
			b = flush(s.Dedup[i].appendCanonical(b))
		}
	}
	b = append(mpStr(b, "effects"), encodeReflect(s.Effects)...)
	b = mpUint(mpStr(b, "epoch"), s.Epoch)
	if s.Evolve != nil { // omitempty
		b = append(mpStr(b, "evolve"), encodeReflect(s.Evolve)...)
	}
	if s.Fed != nil { // omitempty
		b = append(mpStr(b, "fed"), encodeReflect(s.Fed)...)
	}
	b = mpUint(mpStr(b, "format"), uint64(s.Format))
	b = append(mpStr(b, "halts"), encodeReflect(s.Halts)...)
	b = mpBin(mpStr(b, "head"), s.Head)
	if len(s.History) > 0 { // omitempty
		b = mpBin(mpStr(b, "history"), s.History)
	}
	b = mpBool(mpStr(b, "initialized"), s.Initialized)
	b = mpStr(b, "kv")
	if s.KV == nil {
		b = mpNil(b)
	} else {
		b = mpArray(b, len(s.KV))
		for i := range s.KV {
			b = flush(s.KV[i].appendCanonical(b))
		}
	}
	if s.Limits != nil { // omitempty
		b = append(mpStr(b, "limits"), encodeReflect(s.Limits)...)
	}
	if len(s.Members) > 0 { // omitempty
		b = append(mpStr(b, "members"), encodeReflect(s.Members)...)
	}
	b = append(mpStr(b, "meta"), encodeReflect(&s.Meta)...)
	b = append(mpStr(b, "policies"), encodeReflect(s.Policies)...)
	b = mpUint(mpStr(b, "policy_version"), s.PolicyVersion)
	if len(s.Sense) > 0 { // omitempty
		b = mpBin(mpStr(b, "sense"), s.Sense)
	}
	b = mpUint(mpStr(b, "seq"), s.Seq)
	if s.Staging != nil { // omitempty
		b = s.Staging.encode(mpStr(b, "staging"), sink)
	}
	return mpInt(mpStr(b, "time"), s.Time)
}

// sizeHint is about the size of the body's encoding, rarely less: what
// a buffer for it is allocated with.
func (s *stateBody) sizeHint() int {
	n := 64 << 10
	for i := range s.KV {
		n += len(s.KV[i].Key) + len(s.KV[i].Entry.Value) + 64
	}
	for i := range s.Dedup {
		d := &s.Dedup[i]
		n += len(d.Caller) + len(d.RequestID) + len(d.Digest) + len(d.Result.Value) + len(d.Result.ID) + 128
	}
	n += len(s.Caps)*512 + len(s.Approvals)*1024 + len(s.Effects)*256 + len(s.Sense) + len(s.History)
	for i := range s.Policies {
		n += len(s.Policies[i].Text) + 256
	}
	if s.Staging != nil {
		n += len(s.Staging.Data) + 256
	}
	if s.Evolve != nil {
		for i := range s.Evolve.Evolutions {
			n += len(s.Evolve.Evolutions[i].Text) + 4096
		}
		for i := range s.Evolve.History {
			for j := range s.Evolve.History[i].Versions {
				n += len(s.Evolve.History[i].Versions[j].Text) + 128
			}
		}
	}
	return n
}

// digest is the SHA-256 of the body's encoding, computed without holding it.
func (s *stateBody) digest() [32]byte {
	h := sha256.New()
	h.Write(s.encode(make([]byte, 0, 2*bodyFlushBytes), h))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

var (
	_ canonicalAppender = (*KVEntry)(nil)
	_ canonicalAppender = (*kvItem)(nil)
	_ canonicalAppender = (*StoredResult)(nil)
	_ canonicalAppender = (*DedupEntry)(nil)
	_ canonicalAppender = (*stateBody)(nil)
	_ canonicalAppender = (*SyscallDetail)(nil)
	_ canonicalAppender = (*CedarRequest)(nil)
	_ canonicalAppender = (*HistoryContext)(nil)
	_ canonicalAppender = (*PolicyOutcome)(nil)
	_ canonicalAppender = (*ShadowOutcome)(nil)
	_ canonicalAppender = (*Envelope)(nil)
	_ canonicalAppender = (*KVPut)(nil)
	_ canonicalAppender = (*KVKey)(nil)
	_ canonicalAppender = (*Syscall)(nil)
	_ canonicalAppender = (*Event)(nil)
	_ canonicalAppender = (*ArchivedEntry)(nil)
)
