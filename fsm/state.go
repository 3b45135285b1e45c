package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/dominus-kernel/dominus/sense"
	"github.com/dominus-kernel/dominus/temporal"
)

// Bounds on replicated tables. Eviction is deterministic (oldest first).
const (
	MaxDedupEntries    = 100_000
	MaxCheckpoints     = 1024
	DefaultDedupWindow = int64(10 * 60 * 1e9) // 10 minutes of ledger time
	MaxDedupWindow     = int64(24 * 3600 * 1e9)
	MinDedupWindow     = int64(1e9)
)

// HeadRef names a point of the chain.
type HeadRef struct {
	Seq  uint64 `codec:"seq"`
	Hash []byte `codec:"hash"`
}

func (h HeadRef) String() string { return fmt.Sprintf("%d:%s", h.Seq, hex.EncodeToString(h.Hash)) }

// Meta is sealed at genesis, but for the protocol in force: Protocol is
// the version genesis sealed until a protocol upgrade moves it forward,
// and ProtocolHistory lists every such move.
type Meta struct {
	KernelID      string `codec:"kernel_id"`
	CanonHash     []byte `codec:"canon_hash"`
	Protocol      uint16 `codec:"protocol"`
	GenesisTime   int64  `codec:"genesis_time"`
	DedupWindowNs int64  `codec:"dedup_window_ns"`
	Domain        string `codec:"domain"`
	Role          string `codec:"role,omitempty"` // federation role; "" = standalone
	SenseWindowNs int64  `codec:"sense_window_ns,omitempty"`
	// ProtocolHistory records each protocol upgrade, oldest first.
	ProtocolHistory []ProtocolChange `codec:"protocol_history,omitempty"`
	// JoinSecretHash is the hash of the kernel's join secret (members.go).
	JoinSecretHash []byte `codec:"join_secret_hash,omitempty"`
}

// KVEntry is one key's value. Version is the seq of the event that last
// wrote it; Created the seq that created it.
type KVEntry struct {
	Value   []byte `codec:"value"`
	Version uint64 `codec:"version"`
	Created uint64 `codec:"created"`
}

// StoredResult is what a deduplicated retry gets back.
type StoredResult struct {
	Seq      uint64   `codec:"seq"`
	Decision Decision `codec:"decision"`
	Reason   Reason   `codec:"reason"`
	Value    []byte   `codec:"value"`
	Found    bool     `codec:"found"`
	Version  uint64   `codec:"version"`
	ID       string   `codec:"id"`
}

type dedupKey struct {
	caller    string // hex token hash
	requestID string
}

// DedupEntry remembers one request id's first result until its window
// passes (judged at ledger time).
type DedupEntry struct {
	Caller    string       `codec:"caller"`
	RequestID string       `codec:"rid"`
	Time      int64        `codec:"time"`
	Result    StoredResult `codec:"result"`
	// Digest binds the request id to its command and payload (protocol 4,
	// requestDigest).
	Digest []byte `codec:"digest,omitempty"`
}

// State is the whole replicated state. It is only changed by Ledger.Apply
// and Ledger.Restore.
type State struct {
	Initialized   bool
	Meta          Meta
	Seq           uint64
	Head          [32]byte
	Time          int64 // ledger time of the last event, unix ns
	Epoch         uint64
	KV            map[string]*KVEntry
	Caps          map[string]*Capability // by id
	capByToken    map[string]string      // hex token hash -> id (derived)
	Policies      map[string]*PolicyRecord
	PolicyVersion uint64 // seq of the last policy change
	Approvals     map[string]*Approval
	approvalQ     []string           // approval ids in creation order (bounded)
	Halts         map[string]*Halt   // by entity; "" = whole kernel
	Effects       map[uint64]*Effect // external effects by syscall seq (pending and recent)
	effectQ       []uint64           // effect seqs in creation order (bounded)
	dedup         map[dedupKey]int   // absolute position: dedupQueue[pos-dedupBase]
	dedupQueue    dedupRing          // ordered by ledger time (append order)
	dedupBase     int
	Checkpoints   []HeadRef          // oldest first
	Fed           *FedState          // federation state; nil on a standalone kernel
	Sense         *sense.Sensor      // baselines, trust and posture; nil until the first sensed event
	Activity      *temporal.Book     // per-entity activity counters, context.history (protocol 7, temporal.go); nil until the first
	members       map[string]*Member // this kernel's nodes (members.go)
	Limits        *Limits            // replicated limits (limits.go); nil: the defaults
	Staging       *RestoreStaging    // the snapshot a restore is staging (restore.go); nil: none
	Evolve        *EvolveState       // evolutions and policy versions (evolve.go, protocol 8); nil: none yet
	kvBytes       int64              // bytes the kv store holds (derived)
	dedupCount    map[string]int     // dedup entries per caller (derived)
}

// DedupLen is the number of entries in the dedup window.
func (s *State) DedupLen() int { return s.dedupQueue.len() }

func newState() *State {
	return &State{
		KV:         map[string]*KVEntry{},
		Caps:       map[string]*Capability{},
		capByToken: map[string]string{},
		Policies:   map[string]*PolicyRecord{},
		Approvals:  map[string]*Approval{},
		Halts:      map[string]*Halt{},
		Effects:    map[uint64]*Effect{},
		dedup:      map[dedupKey]int{},
		members:    map[string]*Member{},
		dedupCount: map[string]int{},
	}
}

// stateBody is the canonical, map-free form of State: snapshots and the
// state digest are computed over its encoding.
type stateBody struct {
	Format        uint16          `codec:"format"`
	Initialized   bool            `codec:"initialized"`
	Meta          Meta            `codec:"meta"`
	Seq           uint64          `codec:"seq"`
	Head          []byte          `codec:"head"`
	Time          int64           `codec:"time"`
	Epoch         uint64          `codec:"epoch"`
	KV            []kvItem        `codec:"kv"`
	Caps          []Capability    `codec:"caps"`
	Policies      []PolicyRecord  `codec:"policies"`
	PolicyVersion uint64          `codec:"policy_version"`
	Approvals     []Approval      `codec:"approvals"` // creation order
	Halts         []Halt          `codec:"halts"`
	Effects       []Effect        `codec:"effects"` // creation order
	Dedup         []DedupEntry    `codec:"dedup"`
	Checkpoints   []HeadRef       `codec:"checkpoints"`
	Fed           *FedState       `codec:"fed,omitempty"`
	Limits        *Limits         `codec:"limits,omitempty"`
	Members       []Member        `codec:"members,omitempty"` // name order
	Sense         []byte          `codec:"sense,omitempty"`   // sense.Sensor.Encode
	History       []byte          `codec:"history,omitempty"` // temporal.Book.Encode
	Staging       *RestoreStaging `codec:"staging,omitempty"` // restore.go
	Evolve        *EvolveState    `codec:"evolve,omitempty"`  // evolve.go
}

type kvItem struct {
	Key   string  `codec:"key"`
	Entry KVEntry `codec:"entry"`
}

const stateFormat = 1

func (s *State) body() stateBody {
	b := stateBody{
		Format:        stateFormat,
		Initialized:   s.Initialized,
		Meta:          s.Meta,
		Seq:           s.Seq,
		Head:          append([]byte(nil), s.Head[:]...),
		Time:          s.Time,
		Epoch:         s.Epoch,
		KV:            make([]kvItem, 0, len(s.KV)),
		Caps:          make([]Capability, 0, len(s.Caps)),
		Policies:      make([]PolicyRecord, 0, len(s.Policies)),
		PolicyVersion: s.PolicyVersion,
		Approvals:     make([]Approval, 0, len(s.approvalQ)),
		Halts:         make([]Halt, 0, len(s.Halts)),
		Effects:       make([]Effect, 0, len(s.effectQ)),
		Dedup:         s.dedupQueue.slice(),
		Checkpoints:   append([]HeadRef(nil), s.Checkpoints...),
		Fed:           s.Fed,
		Limits:        s.Limits,
		Evolve:        s.Evolve,
	}
	if s.Sense != nil {
		b.Sense = s.Sense.Encode()
	}
	if s.Activity != nil {
		b.History = s.Activity.Encode()
	}
	if s.Staging != nil {
		// A copy: Apply replaces the record's slices or appends beyond
		// what this body holds, never writes inside it.
		sg := *s.Staging
		b.Staging = &sg
	}
	for _, m := range s.SortedMembers() {
		b.Members = append(b.Members, *m)
	}
	for k, e := range s.KV { // detcheck:ordered sorted below before use
		b.KV = append(b.KV, kvItem{Key: k, Entry: *e})
	}
	sort.Slice(b.KV, func(i, j int) bool { return b.KV[i].Key < b.KV[j].Key })
	for _, c := range s.Caps { // detcheck:ordered sorted below before use
		b.Caps = append(b.Caps, *c)
	}
	sort.Slice(b.Caps, func(i, j int) bool { return b.Caps[i].ID < b.Caps[j].ID })
	for _, p := range s.Policies { // detcheck:ordered sorted below before use
		b.Policies = append(b.Policies, *p)
	}
	sort.Slice(b.Policies, func(i, j int) bool { return b.Policies[i].Name < b.Policies[j].Name })
	for _, id := range s.approvalQ {
		b.Approvals = append(b.Approvals, *s.Approvals[id])
	}
	for _, seq := range s.effectQ {
		b.Effects = append(b.Effects, *s.Effects[seq])
	}
	for _, h := range s.Halts { // detcheck:ordered sorted below before use
		b.Halts = append(b.Halts, *h)
	}
	sort.Slice(b.Halts, func(i, j int) bool { return b.Halts[i].Entity < b.Halts[j].Entity })
	return b
}

func stateFromBody(b stateBody) (*State, error) {
	if b.Format != stateFormat {
		return nil, fmt.Errorf("state format %d not supported", b.Format)
	}
	if len(b.Head) != 32 {
		return nil, fmt.Errorf("state head is %d bytes, want 32", len(b.Head))
	}
	s := newState()
	s.Initialized = b.Initialized
	s.Meta = b.Meta
	s.Seq = b.Seq
	copy(s.Head[:], b.Head)
	s.Time = b.Time
	s.Epoch = b.Epoch
	for i, it := range b.KV {
		if i > 0 && b.KV[i-1].Key >= it.Key {
			return nil, fmt.Errorf("state kv keys not strictly sorted at %q", it.Key)
		}
		e := it.Entry
		s.KV[it.Key] = &e
		s.kvBytes += kvSize(it.Key, e.Value)
	}
	for i := range b.Caps {
		c := b.Caps[i]
		if i > 0 && b.Caps[i-1].ID >= c.ID {
			return nil, fmt.Errorf("state capabilities not strictly sorted")
		}
		if _, dup := s.capByToken[c.TokenHash]; dup {
			return nil, fmt.Errorf("state capability token repeated")
		}
		s.Caps[c.ID] = &c
		s.capByToken[c.TokenHash] = c.ID
	}
	for i := range b.Policies {
		p := b.Policies[i]
		if i > 0 && b.Policies[i-1].Name >= p.Name {
			return nil, fmt.Errorf("state policies not strictly sorted")
		}
		s.Policies[p.Name] = &p
	}
	s.PolicyVersion = b.PolicyVersion
	for i := range b.Approvals {
		a := b.Approvals[i]
		if _, dup := s.Approvals[a.ID]; dup {
			return nil, fmt.Errorf("state approval repeated")
		}
		s.Approvals[a.ID] = &a
		s.approvalQ = append(s.approvalQ, a.ID)
	}
	for i := range b.Effects {
		e := b.Effects[i]
		if i > 0 && b.Effects[i-1].Seq >= e.Seq {
			return nil, fmt.Errorf("state effects out of order")
		}
		s.Effects[e.Seq] = &e
		s.effectQ = append(s.effectQ, e.Seq)
	}
	for i := range b.Halts {
		h := b.Halts[i]
		if i > 0 && b.Halts[i-1].Entity >= h.Entity {
			return nil, fmt.Errorf("state halts not strictly sorted")
		}
		s.Halts[h.Entity] = &h
	}
	for i, d := range b.Dedup {
		if i > 0 && b.Dedup[i-1].Time > d.Time {
			return nil, fmt.Errorf("state dedup entries out of time order")
		}
		k := dedupKey{d.Caller, d.RequestID}
		if _, dup := s.dedup[k]; dup {
			return nil, fmt.Errorf("state dedup entry repeated")
		}
		s.dedup[k] = i
		s.dedupCount[d.Caller]++
	}
	s.dedupQueue = newDedupRing(b.Dedup)
	s.Checkpoints = append([]HeadRef(nil), b.Checkpoints...)
	if b.Limits != nil {
		lim := *b.Limits
		s.Limits = &lim
		if len(lim.Rates) > MaxRateLimits {
			return nil, fmt.Errorf("state rate limits exceed their bound")
		}
	}
	for i := range b.Members {
		m := b.Members[i]
		if i > 0 && b.Members[i-1].Node >= m.Node {
			return nil, fmt.Errorf("state members not strictly sorted")
		}
		s.members[m.Node] = &m
	}
	if len(b.Members) > 2*MaxMembers {
		return nil, fmt.Errorf("state member table exceeds its bound")
	}
	if len(b.Sense) > 0 {
		sn, err := sense.Decode(b.Sense)
		if err != nil {
			return nil, fmt.Errorf("state sensing: %w", err)
		}
		s.Sense = sn
	}
	if len(b.History) > 0 {
		h, err := temporal.Decode(b.History)
		if err != nil {
			return nil, fmt.Errorf("state history counters: %w", err)
		}
		s.Activity = h
	}
	if b.Staging != nil {
		sg := *b.Staging
		if !validStaging(&sg) {
			return nil, fmt.Errorf("state restore staging is inconsistent")
		}
		s.Staging = &sg
	}
	if b.Evolve != nil {
		if !validEvolveState(b.Evolve) {
			return nil, fmt.Errorf("state evolution tables exceed their bounds or are out of order")
		}
		s.Evolve = b.Evolve
	}
	if b.Fed != nil {
		if b.Meta.Role == RoleStandalone {
			return nil, fmt.Errorf("standalone state carries federation state")
		}
		s.Fed = b.Fed
		s.Fed.ensureMaps()
	}
	if len(s.Checkpoints) > MaxCheckpoints || s.dedupQueue.len() > MaxDedupEntries || len(s.approvalQ) > MaxApprovals || len(s.effectQ) > MaxEffects || len(s.Policies) > MaxPolicySets {
		return nil, fmt.Errorf("state tables exceed their bounds")
	}
	return s, nil
}

// decodeStateBody decodes a snapshot's body b, whose SHA-256 is digest,
// and requires it to be the canonical encoding of what it decodes to:
// its re-encoding hashes to digest too (stateBody.digest, which never
// holds a second copy of the state).
func decodeStateBody(b, digest []byte) (body stateBody, err error) {
	defer func() {
		// The codec may panic on hostile input; report it as an error.
		if r := recover(); r != nil {
			err = fmt.Errorf("fsm: decode %T: %v", &body, r)
		}
	}()
	if err := decodeBytes(b, &body); err != nil {
		return body, fmt.Errorf("fsm: decode %T: %w", &body, err)
	}
	if d := body.digest(); !bytes.Equal(d[:], digest) {
		return body, fmt.Errorf("decode %T: %w", &body, ErrNonCanonical)
	}
	return body, nil
}

// SnapshotFile is the on-disk and over-the-wire form of a snapshot. Body is
// the canonical state encoding; Digest = SHA-256(Body).
type SnapshotFile struct {
	Format uint16  `codec:"format"`
	Head   HeadRef `codec:"head"`
	Epoch  uint64  `codec:"epoch"`
	Digest []byte  `codec:"digest"`
	Body   []byte  `codec:"body"`
}

// ErrSnapshotDigest is wrapped by errors for snapshots whose recomputed
// digest differs from the one they carry.
var ErrSnapshotDigest = fmt.Errorf("snapshot digest mismatch")

// DecodeSnapshot decodes and verifies a snapshot: the digest must match the
// body and the body's head must match the header. The file's Body shares b.
func DecodeSnapshot(b []byte) (*SnapshotFile, *State, error) {
	f, ok := parseSnapshotFile(b)
	if !ok {
		if err := Decode(b, &f); err != nil {
			return nil, nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	if f.Format != stateFormat {
		return nil, nil, fmt.Errorf("snapshot: format %d not supported", f.Format)
	}
	sum := sha256.Sum256(f.Body)
	if !bytes.Equal(sum[:], f.Digest) {
		return nil, nil, fmt.Errorf("snapshot: %w: carries %x, body hashes to %x", ErrSnapshotDigest, f.Digest, sum)
	}
	body, err := decodeStateBody(f.Body, f.Digest)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot body: %w", err)
	}
	st, err := stateFromBody(body)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot body: %w", err)
	}
	if st.Seq != f.Head.Seq || !bytes.Equal(st.Head[:], f.Head.Hash) || st.Epoch != f.Epoch {
		return nil, nil, fmt.Errorf("snapshot: header head %s does not match body head %d:%x", f.Head, st.Seq, st.Head)
	}
	return &f, st, nil
}
