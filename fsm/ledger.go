package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
)

// Result is what one applied entry answers to its proposer.
type Result struct {
	Seq       uint64
	Head      [32]byte
	Time      int64
	Type      CommandType
	Decision  Decision
	Reason    Reason
	Value     []byte
	Found     bool
	Version   uint64
	Duplicate bool // a retry within the dedup window: nothing changed
	// Retried marks a retry answered with the current value of what it
	// read, the window keeping only the first answer's digest (protocol 4).
	Retried bool
	Noop    bool // no event was appended
	// ID names what the event created: a capability id for grants and
	// delegations, an approval id for escalations.
	ID string
	// UsesLeft is the caller's capability's remaining uses after a
	// syscall (-1 unlimited).
	UsesLeft int64
}

// Applied describes what Apply did, for the archive.
type Applied struct {
	Result Result
	Event  *Event // nil for a noop
	Head   [32]byte
}

// Ledger is the deterministic state machine. It is not safe for concurrent
// use; the kernel serializes calls (Raft applies one entry at a time).
type Ledger struct {
	st *State

	digestSeq   uint64
	digestEpoch uint64
	digest      [32]byte
	digestOK    bool

	// policies caches compiled Cedar sets by name; derived from
	// State.Policies and rebuilt when a version changes.
	policies    map[string]*CompiledSet
	setsOK      bool
	setsVersion uint64
	activeSets  []*CompiledSet
	shadowSets  []*CompiledSet

	// evSets caches the sets a canary cohort is judged by (evolvegate.go):
	// derived from the evolution evSetsID and the policies at
	// evSetsVersion.
	evSets        []*CompiledSet
	evSetsID      string
	evSetsVersion uint64
	evSetsOK      bool
}

// New returns an empty, uninitialized ledger.
func New() *Ledger { return &Ledger{st: newState()} }

// State exposes the current state for read-only use by the caller's
// goroutine that serializes Apply. Callers must not modify it.
func (l *Ledger) State() *State { return l.st }

// Head returns the current head.
func (l *Ledger) Head() HeadRef {
	return HeadRef{Seq: l.st.Seq, Hash: append([]byte(nil), l.st.Head[:]...)}
}

// call is one decoded entry on its way through a handler.
type call struct {
	env     Envelope
	raw     []byte
	index   uint64
	now     int64
	caller  string      // hex token hash, "" for unauthenticated commands
	cap     *Capability // the caller's capability (nil if unknown)
	actor   string      // who the event is attributed to
	subject string
	detail  []byte // canonical encoding of the event's detail record
	// remoteToken is a cross-domain call's grant token hash (syscall).
	remoteToken []byte
	// viaBus marks a syscall a peer kernel sent over the bus.
	viaBus bool
	// gateway is the capability of the gateway relaying a syscall
	// (syscall.gateway, protocol 5).
	gateway *Capability
	// argsDigest is the digest of the args the gate judges, when the
	// entry prepared it (a syscall entry); "" computes it.
	argsDigest string
	// pre is what the entry's bytes alone determine.
	pre *entryPrep
	// asOf is the seq an as-of kv.get reads at (protocol 7); 0 = now.
	asOf uint64
}

// entryPrep is what applying an entry computes from its bytes alone,
// never from the ledger: Apply prepares it inline, a replay ahead of the
// ledger on another goroutine (PrepareRecord).
type entryPrep struct {
	env    Envelope
	envErr error
	sum    [32]byte // SHA-256 of the entry: the event's PayloadHash
	caller string   // hex of env.Auth
	// For a syscall entry: its payload, decoded (sysOK false when it
	// does not decode), and the digest of its arguments.
	sys        Syscall
	sysOK      bool
	argsDigest string
}

func prepareEntry(data []byte) *entryPrep {
	p := &entryPrep{sum: sha256.Sum256(data)}
	if p.env, p.envErr = DecodeEnvelope(data); p.envErr != nil {
		return p
	}
	p.caller = hex.EncodeToString(p.env.Auth)
	if p.env.Type == CmdSyscall && Decode(p.env.Payload, &p.sys) == nil {
		p.sysOK = true
		p.argsDigest = argsDigest(p.sys.Args)
	}
	return p
}

// outcome is what a handler decided. Handlers change state only after all
// their preconditions hold, and only for a permitted decision.
type outcome struct {
	decision Decision
	reason   Reason
	value    []byte
	found    bool
	version  uint64
	id       string
	usesLeft int64
	// noop: the command is answered (with value) but records no event
	// and changes nothing, like a deduplicated retry.
	noop bool
}

func deny(r Reason) outcome { return outcome{decision: DecisionDeny, reason: r} }

// UnknownCommandError is the panic value when an entry names a command
// this binary does not implement and that is not marked ignorable: the
// node must stop rather than diverge from replicas that know it.
type UnknownCommandError struct {
	Index uint64
	Type  CommandType
}

func (e UnknownCommandError) Error() string {
	return fmt.Sprintf("fsm: entry %d has unknown command type %d; this node must be upgraded before it can apply it", e.Index, uint16(e.Type))
}

// DecodeEnvelope decodes and bounds-checks one entry.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxEpochBytes+1024 {
		return env, fmt.Errorf("entry of %d bytes exceeds the limit", len(data))
	}
	if err := Decode(data, &env); err != nil {
		return env, err
	}
	if len(env.RequestID) > MaxRequestIDBytes {
		return env, fmt.Errorf("request id of %d bytes exceeds %d", len(env.RequestID), MaxRequestIDBytes)
	}
	if env.Auth != nil && len(env.Auth) != sha256.Size {
		return env, fmt.Errorf("auth is %d bytes, want %d", len(env.Auth), sha256.Size)
	}
	if len(env.Node) > 64 || len(env.NodeSig) > 64 {
		return env, fmt.Errorf("member evidence of %d and %d bytes exceeds 64", len(env.Node), len(env.NodeSig))
	}
	return env, nil
}

// Apply applies one Raft entry's data at the given log index. It reads
// nothing but the state and its arguments.
func (l *Ledger) Apply(index uint64, data []byte) Applied {
	return l.apply(index, data, prepareEntry(data))
}

// apply is Apply of an entry whose bytes p was prepared from.
func (l *Ledger) apply(index uint64, data []byte, p *entryPrep) Applied {
	st := l.st
	env, err := p.env, p.envErr
	if err != nil {
		if !st.Initialized {
			return l.noop(CommandType(0), ReasonNotInitialized)
		}
		return l.appendEvent(&call{raw: data, index: index, now: l.nextTime(0), pre: p}, outcome{decision: DecisionDeny, reason: ReasonMalformed})
	}
	spec, known := handlers[env.Type]
	if !known {
		if env.Type&IgnoreUnknownFlag != 0 {
			return l.noop(env.Type, ReasonOK)
		}
		panic(UnknownCommandError{Index: index, Type: env.Type})
	}
	if !st.Initialized && env.Type != CmdGenesis {
		return l.noop(env.Type, ReasonNotInitialized)
	}
	c := &call{env: env, raw: data, index: index, pre: p}
	var refused Reason // a request id's own refusal (protocol 4), before any handler
	var digest []byte
	caller := spec.proposer == proposerCaller
	if caller {
		c.caller = p.caller
		if id, ok := st.capByToken[c.caller]; ok {
			c.cap = st.Caps[id]
			c.actor = c.cap.Entity
		}
		if c.cap != nil && env.RequestID != "" {
			if l.authority() {
				digest = requestDigest(&env)
			}
			if i, ok := st.dedup[dedupKey{c.caller, env.RequestID}]; ok {
				e := st.dedupQueue.at(i - st.dedupBase)
				if e.Digest == nil || bytes.Equal(e.Digest, digest) {
					return l.duplicate(&env, e.Result, e.Digest != nil)
				}
				refused = ReasonRequestIDReused
			} else if digest != nil && !l.dedupRoom(c.caller) {
				refused = ReasonQuotaExceeded
			}
		}
	}
	c.now = l.nextTime(env.Time)
	var out outcome
	switch {
	case caller && c.cap == nil:
		out = deny(ReasonUnknownToken)
	case refused != ReasonOK:
		c.subject = env.RequestID
		return l.appendEvent(c, deny(refused)) // not remembered: the first answer stands
	case spec.proposer == proposerInternal && l.authority():
		if r := l.memberEvidence(c); r != ReasonOK {
			c.actor, c.subject = "kernel", "member "+env.Node
			out = deny(r)
		} else {
			out = spec.run(l, c)
		}
	default:
		out = spec.run(l, c)
	}
	if out.noop {
		a := l.noop(env.Type, out.reason)
		a.Result.Duplicate = true
		a.Result.Value = out.value
		a.Result.ID = out.id
		return a
	}
	applied := l.appendEvent(c, out)
	if caller && c.cap != nil && env.RequestID != "" {
		l.remember(c, applied.Result, digest)
	}
	return applied
}

// nextTime is the ledger time of the next event: strictly increasing,
// never behind the leader's stamp.
func (l *Ledger) nextTime(stamped int64) int64 {
	if stamped > l.st.Time {
		return stamped
	}
	return l.st.Time + 1
}

func (l *Ledger) noop(t CommandType, r Reason) Applied {
	return Applied{
		Result: Result{Seq: l.st.Seq, Head: l.st.Head, Time: l.st.Time, Type: t, Reason: r, Noop: true},
		Head:   l.st.Head,
	}
}

func (l *Ledger) duplicate(env *Envelope, r StoredResult, digestOnly bool) Applied {
	a := l.noop(env.Type, r.Reason)
	a.Result.Duplicate = true
	a.Result.Seq = r.Seq
	a.Result.Decision = r.Decision
	a.Result.Value = r.Value
	a.Result.Found = r.Found
	a.Result.Version = r.Version
	a.Result.ID = r.ID
	if digestOnly {
		l.refreshRead(env, &a.Result)
	}
	return a
}

// refreshRead answers a retried read with the key's current value (the
// window keeps the first answer's version, not its bytes), marked Retried
// when the value has changed since.
func (l *Ledger) refreshRead(env *Envelope, r *Result) {
	if r.Decision != DecisionPermit {
		return
	}
	var key string
	switch env.Type {
	case CmdKVGet:
		var p KVKey
		if Decode(env.Payload, &p) != nil || p.AsOf != 0 {
			return // an as-of read's value comes from history, not the store
		}
		key = p.Key
	case CmdSyscall:
		var p Syscall
		if Decode(env.Payload, &p) != nil || p.Op != "kv.get" {
			return
		}
		key = p.Resource
	default:
		return
	}
	found, version := r.Found, r.Version
	r.Value, r.Found, r.Version = nil, false, 0
	if e := l.st.KV[key]; e != nil {
		r.Value, r.Found, r.Version = e.Value, true, e.Version
	}
	r.Retried = r.Found != found || r.Version != version
}

// appendEvent appends the chain record for c's outcome and advances seq,
// head and ledger time: the one place every event passes.
func (l *Ledger) appendEvent(c *call, out outcome) Applied {
	st := l.st
	sum := c.pre.sum
	ev := &Event{
		Seq:         st.Seq + 1,
		Time:        c.now,
		Epoch:       st.Epoch,
		Index:       c.index,
		Type:        c.env.Type,
		RequestID:   c.env.RequestID,
		Subject:     c.subject,
		PayloadHash: sum[:],
		Decision:    out.decision,
		Reason:      out.reason,
		Prev:        append([]byte(nil), st.Head[:]...),
		Actor:       c.actor,
		Detail:      c.detail,
	}
	head := ChainHash(st.Head[:], ev)
	st.Seq = ev.Seq
	st.Head = head
	st.Time = ev.Time
	l.pruneDedup()
	return Applied{
		Result: Result{
			Seq: ev.Seq, Head: head, Time: ev.Time, Type: ev.Type,
			Decision: out.decision, Reason: out.reason,
			Value: out.value, Found: out.found, Version: out.version, ID: out.id, UsesLeft: out.usesLeft,
		},
		Event: ev,
		Head:  head,
	}
}

// remember records a request id's first answer; from protocol 4 with the
// digest of its command and payload, and without the answer's value (a
// read's version names it).
func (l *Ledger) remember(c *call, r Result, digest []byte) {
	st := l.st
	sr := StoredResult{Seq: r.Seq, Decision: r.Decision, Reason: r.Reason, Value: r.Value, Found: r.Found, Version: r.Version, ID: r.ID}
	if digest != nil {
		sr.Value = nil
	}
	st.dedupQueue.push(DedupEntry{Caller: c.caller, RequestID: c.env.RequestID, Time: r.Time, Result: sr, Digest: digest})
	st.dedup[dedupKey{c.caller, c.env.RequestID}] = st.dedupBase + st.dedupQueue.len() - 1
	st.dedupCount[c.caller]++
	l.pruneDedup()
}

// pruneDedup drops entries older than the window and, before protocol 4,
// the oldest beyond the size bound, in queue order (from protocol 4 the
// bound refuses new entries instead: dedupRoom).
func (l *Ledger) pruneDedup() {
	st := l.st
	for st.dedupQueue.len() > 0 {
		e := st.dedupQueue.at(0)
		if st.Time-e.Time <= st.Meta.DedupWindowNs && (st.dedupQueue.len() <= MaxDedupEntries || l.authority()) {
			break
		}
		delete(st.dedup, dedupKey{e.Caller, e.RequestID})
		if st.dedupCount[e.Caller]--; st.dedupCount[e.Caller] <= 0 {
			delete(st.dedupCount, e.Caller)
		}
		st.dedupQueue.drop()
		st.dedupBase++
	}
}

// Digest returns SHA-256 of the canonical state encoding (cached per seq).
func (l *Ledger) Digest() [32]byte {
	if l.digestOK && l.digestSeq == l.st.Seq && l.digestEpoch == l.st.Epoch {
		return l.digest
	}
	body := l.st.body()
	l.digest = body.digest()
	l.digestSeq, l.digestEpoch, l.digestOK = l.st.Seq, l.st.Epoch, true
	return l.digest
}

// DigestLater captures the state and returns a function that computes its
// digest without the ledger: callers holding a lock that blocks Apply can
// release it before the expensive encoding. The result equals Digest() at
// the captured seq, whatever is applied meanwhile.
//
// The tables are captured as copies of their records, taken under the
// caller's lock (the slices inside a record are replaced on change, never
// written in place). The federation state is held by pointer and Apply
// mutates its maps, slices and records in place, so it is deep-copied
// here (it is bounded, unlike the kv table).
func (l *Ledger) DigestLater() (seq, epoch uint64, compute func() [32]byte) {
	if l.digestOK && l.digestSeq == l.st.Seq && l.digestEpoch == l.st.Epoch {
		d := l.digest
		return l.st.Seq, l.st.Epoch, func() [32]byte { return d }
	}
	body := l.st.body()
	if body.Fed != nil {
		body.Fed = body.Fed.clone()
	}
	body.Evolve = body.Evolve.clone() // Apply changes its counters in place
	return l.st.Seq, l.st.Epoch, func() [32]byte { return body.digest() }
}

// Snapshot returns the canonical snapshot bytes of the current state,
// written once into one buffer; nil for a state whose body exceeds the
// 4 GiB - 1 a snapshot file carries.
func (l *Ledger) Snapshot() []byte {
	sb := l.st.body()
	buf := sb.encode(make([]byte, snapshotBodyAt, snapshotBodyAt+sb.sizeHint()+snapshotTailMax), nil)
	body := buf[snapshotBodyAt:]
	if len(body) > math.MaxUint32 {
		return nil
	}
	digest := sha256.Sum256(body)
	f := &SnapshotFile{Format: stateFormat, Head: l.Head(), Epoch: l.st.Epoch, Digest: digest[:]}
	if len(body) <= math.MaxUint16 { // a small state: a shorter bin header
		f.Body = body
		return encodeSnapshotFile(f)
	}
	copy(buf, snapshotBin32Header(len(body)))
	return f.appendTail(buf)
}

// Restore replaces the state with a verified snapshot's.
func (l *Ledger) Restore(snapshot []byte) (*SnapshotFile, error) {
	f, st, err := DecodeSnapshot(snapshot)
	if err != nil {
		return nil, err
	}
	if st.Initialized && st.Meta.Protocol > ProtocolVersion {
		return nil, fmt.Errorf("snapshot: ledger protocol %d is newer than this binary's %d", st.Meta.Protocol, ProtocolVersion)
	}
	l.st = st
	l.digestOK = false
	l.policies, l.setsOK, l.evSetsOK = nil, false, false
	return f, nil
}

// HasCheckpoint reports whether the cluster recorded head h.
func (s *State) HasCheckpoint(h HeadRef) bool {
	for _, c := range s.Checkpoints {
		if c.Seq == h.Seq && bytes.Equal(c.Hash, h.Hash) {
			return true
		}
	}
	return false
}
