package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/passport"
)

// Kernel roles, sealed at genesis. A kernel sealed without a role is a
// standalone kernel: it has no federation state and rejects every
// federation command.
const (
	RoleStandalone = ""
	RoleSovereign  = "sovereign"
	RoleDomain     = "domain"
)

// SovereignKernel is the bus name of the sovereign kernel; domains are
// named by their domain name, which may not be this.
const SovereignKernel = "sovereign"

// Operator authority levels (DESIGN.md §4).
const (
	LevelSovereign       = "sovereign"        // federation-wide; signs amendments, confirms co-operators, can veto
	LevelCoOperator      = "co-operator"      // proposes; a sovereign operator must be among the signers
	LevelDomainSovereign = "domain-sovereign" // full authority within one domain
)

// Governance operations of the federation.
const (
	OpFederationManage = "federation.manage" // create domains, revoke passports
	OpCanonAmend       = "canon.amend"       // propose and veto amendments
	OpFederationHalt   = "federation.halt"
)

// Federation limits. Every table is bounded; eviction is oldest first.
const (
	MaxDomains          = 256
	MaxOperators        = 64
	MaxAmendments       = 64
	MaxCanonBytes       = 256 << 10
	MaxWitnessPerDomain = 1024
	MaxOutbox           = 10_000
	MaxInboxRecent      = 256
	MaxBusAddrs         = 16
	// AmendmentTTL bounds how long a proposal may gather signatures, and
	// AckDeadline how long a ratified amendment waits for a domain's
	// acknowledgement before the domain is suspended.
	AmendmentTTL = int64(24 * 3600 * 1e9)
	AckDeadline  = int64(10 * 60 * 1e9)
	// PassportIssueSkew is how far before the ledger time of issue a
	// passport's NotBefore may lie (the leader signs before it proposes).
	PassportIssueSkew = int64(60 * 1e9)
	// StandingSlack is the renewal slack every kernel applies to a peer's
	// passport (passport.StandingDeadline).
	StandingSlack = int64(30 * 1e9)
)

// Signature contexts: every federation signature covers a context string
// that no other Dominus signature uses.
const (
	ctxAmendment = "dominus-canon-amendment-v1\x00"
	ctxResume    = "dominus-federation-resume-v1\x00"
	ctxWitness   = "dominus-witness-v1\x00"
)

// AmendmentMessage is what an operator signs to ratify amendment id over
// the exact text whose SHA-256 is textHash.
func AmendmentMessage(id string, textHash []byte) []byte {
	return []byte(ctxAmendment + id + "\x00" + hex.EncodeToString(textHash))
}

// ResumeMessage is what an operator signs to resume the federation after
// halt id.
func ResumeMessage(haltID string) []byte { return []byte(ctxResume + haltID) }

// WitnessMessage is what a domain node signs to report its chain head.
func WitnessMessage(domain string, seq uint64, hash []byte) []byte {
	b := []byte(ctxWitness + domain + "\x00")
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, hash...)
}

// OperatorKey is a named human's public key and authority level.
type OperatorKey struct {
	Name    string `codec:"name"`
	PubKey  []byte `codec:"pub_key"`
	Level   string `codec:"level"`
	Revoked bool   `codec:"revoked"`
}

// GenesisOperator is one named operator created at genesis.
type GenesisOperator struct {
	Name      string `codec:"name"`
	TokenHash []byte `codec:"token_hash"`
	PubKey    []byte `codec:"pub_key"`
	Level     string `codec:"level"`
}

// NodeKey is a kernel node's public key.
type NodeKey struct {
	Node   string `codec:"node"`
	PubKey []byte `codec:"pub_key"`
}

// DomainRecord is the sovereign's registry entry for one domain.
type DomainRecord struct {
	Name          string   `codec:"name"`
	JoinTokenHash string   `codec:"join_token_hash"` // hex
	KernelID      string   `codec:"kernel_id"`       // the kernel that redeemed the token; "" until joined
	Scopes        []string `codec:"scopes"`
	CreatedBy     string   `codec:"created_by"`
	Created       uint64   `codec:"created"`
	Passport      []byte   `codec:"passport"` // the latest issued passport (passport.Encode)
	Serial        uint64   `codec:"serial"`
	BusAddrs      []string `codec:"bus_addrs"`
	CanonAck      uint64   `codec:"canon_ack"` // latest canon version the domain acknowledged
	Suspended     bool     `codec:"suspended"`
	SuspendReason string   `codec:"suspend_reason"`
	Revoked       bool     `codec:"revoked"`                // a passport of the domain was revoked: no renewal
	ProtocolAck   uint16   `codec:"protocol_ack,omitempty"` // the protocol the domain last reported running
}

// PassportRecord lists one issued passport.
type PassportRecord struct {
	ID      string `codec:"id"`
	Domain  string `codec:"domain"`
	Serial  uint64 `codec:"serial"`
	Issued  int64  `codec:"issued"`
	Expires int64  `codec:"expires"`
	Revoked bool   `codec:"revoked"`
}

// Amendment is a proposed change of the canon text.
type Amendment struct {
	ID        string   `codec:"id"`
	Text      string   `codec:"text"`
	Hash      []byte   `codec:"hash"`      // SHA-256 of Text
	PrevHash  []byte   `codec:"prev_hash"` // the canon hash it amends
	Version   uint64   `codec:"version"`   // the canon version it becomes
	Proposer  string   `codec:"proposer"`
	Expires   int64    `codec:"expires"`
	Signers   []string `codec:"signers"` // operator names, in signing order
	State     string   `codec:"state"`   // pending, ratified, vetoed, expired, superseded
	Ratified  int64    `codec:"ratified"`
	VetoedBy  string   `codec:"vetoed_by"`
	Proposed  uint64   `codec:"proposed"`
	Signature [][]byte `codec:"signatures"`
}

// Amendment states.
const (
	AmendPending    = "pending"
	AmendRatified   = "ratified"
	AmendVetoed     = "vetoed"
	AmendExpired    = "expired"
	AmendSuperseded = "superseded"
)

// CanonState is the kernel's canon version: 0 is the genesis canon
// compiled into the binary; each ratified amendment adds one.
type CanonState struct {
	Version uint64 `codec:"version"`
	Hash    []byte `codec:"hash"`
	Since   int64  `codec:"since"` // ledger time it took effect here
}

// WitnessRecord is a domain head the sovereign witnessed.
type WitnessRecord struct {
	Domain string `codec:"domain"`
	Seq    uint64 `codec:"seq"`
	Hash   []byte `codec:"hash"`
	Time   int64  `codec:"time"`
	Node   string `codec:"node"`
}

// FedHalt is a federation-wide halt.
type FedHalt struct {
	ID       string   `codec:"id"`
	Reason   string   `codec:"reason"`
	By       string   `codec:"by"`
	Since    int64    `codec:"since"`
	Resumers []string `codec:"resumers"`
}

// PeerRecord is a domain's view of another kernel of the federation.
type PeerRecord struct {
	Kernel   string   `codec:"kernel"`
	Passport []byte   `codec:"passport"` // nil for the sovereign
	BusAddrs []string `codec:"bus_addrs"`
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

// FedState is the federation part of the replicated state. Sovereign
// fields are empty on a domain and the reverse. Maps are encoded in
// canonical (sorted) key order.
type FedState struct {
	Threshold  int                     `codec:"threshold"`
	Operators  map[string]*OperatorKey `codec:"operators"`
	Canon      CanonState              `codec:"canon"`
	Amendments []*Amendment            `codec:"amendments"` // creation order
	Halt       *FedHalt                `codec:"halt"`
	LastHalt   string                  `codec:"last_halt"`

	// Sovereign.
	Domains     map[string]*DomainRecord   `codec:"domains"`
	Passports   []PassportRecord           `codec:"passports"` // issue order, bounded
	Revocations []passport.Revocation      `codec:"revocations"`
	Signers     map[string][]byte          `codec:"signers"` // sovereign node -> passport signing key
	Witness     map[string][]WitnessRecord `codec:"witness"`

	// Domain.
	Passport      []byte                 `codec:"passport"`
	SovereignKeys map[string][]byte      `codec:"sovereign_keys"`
	SovereignID   string                 `codec:"sovereign_id"`
	Peers         map[string]*PeerRecord `codec:"peers"`
	Revoked       []string               `codec:"revoked"` // passport ids, sorted
	// ViewSeq is the sovereign seq of the last view taken (protocol 4).
	ViewSeq uint64                `codec:"view_seq,omitempty"`
	NextOut map[string]uint64     `codec:"next_out"`
	Outbox  []*OutEvent           `codec:"outbox"` // creation order, bounded
	Inbox   map[string]*InboxLink `codec:"inbox"`

	// Sovereign: the master cortex's findings, oldest first, bounded.
	Knowledge []KnowledgeRecord `codec:"knowledge"`

	// Sovereign: the latest protocol upgrade, with the operators'
	// signatures every domain verifies before it takes the version.
	Protocol *ProtocolRatification `codec:"protocol,omitempty"`

	// Sovereign: the epoch of the federation's bus link keys and gossip
	// key (keyepoch.go); nil is epoch 0, the keys of every ledger before
	// its first rotation.
	Keys *KeyEpoch `codec:"keys,omitempty"`

	// own caches the decoded Passport (the gate consults it on every
	// syscall); it is derived from Passport alone and never encoded.
	own struct {
		raw []byte
		p   passport.Passport
		err error
	}
}

// clone returns a deep copy of the encoded fields (the derived cache is
// left empty), through the canonical encoding every snapshot restore
// also goes through.
func (f *FedState) clone() *FedState {
	var c FedState
	if err := decodeTrusted(Encode(f), &c); err != nil {
		panic(fmt.Sprintf("fsm: federation state does not round-trip its own encoding: %v", err))
	}
	return &c
}

// OwnPassport returns this domain's own passport, decoded.
func (f *FedState) OwnPassport() (passport.Passport, error) {
	c := &f.own
	if len(c.raw) != len(f.Passport) || len(c.raw) == 0 || &c.raw[0] != &f.Passport[0] {
		c.raw = f.Passport
		c.p, c.err = passport.Decode(f.Passport)
		if len(f.Passport) == 0 {
			c.err = passport.ErrMalformed
		}
	}
	return c.p, c.err
}

func newFedState() *FedState {
	return &FedState{
		Operators: map[string]*OperatorKey{}, Domains: map[string]*DomainRecord{}, Signers: map[string][]byte{},
		Witness: map[string][]WitnessRecord{}, SovereignKeys: map[string][]byte{}, Peers: map[string]*PeerRecord{},
		NextOut: map[string]uint64{}, Inbox: map[string]*InboxLink{},
	}
}

// ensureMaps restores empty maps after decoding.
func (f *FedState) ensureMaps() {
	if f.Operators == nil {
		f.Operators = map[string]*OperatorKey{}
	}
	if f.Domains == nil {
		f.Domains = map[string]*DomainRecord{}
	}
	if f.Signers == nil {
		f.Signers = map[string][]byte{}
	}
	if f.Witness == nil {
		f.Witness = map[string][]WitnessRecord{}
	}
	if f.SovereignKeys == nil {
		f.SovereignKeys = map[string][]byte{}
	}
	if f.Peers == nil {
		f.Peers = map[string]*PeerRecord{}
	}
	if f.NextOut == nil {
		f.NextOut = map[string]uint64{}
	}
	if f.Inbox == nil {
		f.Inbox = map[string]*InboxLink{}
	}
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

// SortedDomains returns the registry in name order.
func (f *FedState) SortedDomains() []*DomainRecord {
	out := make([]*DomainRecord, 0, len(f.Domains))
	for _, d := range f.Domains { // detcheck:ordered sorted below before use
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SortedPeers returns the peers in kernel-name order.
func (f *FedState) SortedPeers() []*PeerRecord {
	out := make([]*PeerRecord, 0, len(f.Peers))
	for _, p := range f.Peers { // detcheck:ordered sorted below before use
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kernel < out[j].Kernel })
	return out
}

// IsRevoked reports whether a passport id is on this kernel's revocation
// list (sovereign or domain view).
func (f *FedState) IsRevoked(id string) bool {
	for _, r := range f.Revocations {
		if r.ID == id {
			return true
		}
	}
	i := sort.SearchStrings(f.Revoked, id)
	return i < len(f.Revoked) && f.Revoked[i] == id
}

// trustedSigners returns the sovereign passport-signing keys this kernel
// trusts, keyed by node (passport KeyID).
func (f *FedState) trustedSigners(role string) map[string]ed25519.PublicKey {
	src := f.SovereignKeys
	if role == RoleSovereign {
		src = f.Signers
	}
	out := make(map[string]ed25519.PublicKey, len(src))
	for k, v := range src { // detcheck:ordered builds a lookup map; order does not matter
		out[k] = ed25519.PublicKey(v)
	}
	return out
}

// VerifyPassport checks a peer passport's authenticity, validity at now
// and revocation under this kernel's view.
func (s *State) VerifyPassport(b []byte, now int64) (passport.Passport, Reason) {
	p, err := passport.Decode(b)
	if err != nil || s.Fed == nil {
		return p, ReasonMalformed
	}
	return p, passportReason(passport.Verify(p, s.Fed.trustedSigners(s.Meta.Role), now, s.Fed.IsRevoked))
}

// passportReason maps a passport.Verify error to its reason code.
func passportReason(err error) Reason {
	switch {
	case err == nil:
		return ReasonOK
	case errors.Is(err, passport.ErrExpired), errors.Is(err, passport.ErrNotYetValid):
		return ReasonExpired
	case errors.Is(err, passport.ErrRevoked):
		return ReasonRevoked
	case errors.Is(err, passport.ErrBadSignature), errors.Is(err, passport.ErrUnknownIssuerKey):
		return ReasonBadSignature
	}
	return ReasonMalformed
}

// PeerStanding is the one standing rule for events from another kernel of
// the federation, applied by bus receivers before the ledger and by the
// ledger itself: the origin is a kernel this one knows (on the sovereign,
// a joined, unsuspended domain), its latest passport verifies at now or
// expired less than StandingSlack ago, and the event names that passport
// or one of its two predecessors that was not revoked (events recorded
// just before a renewal).
func (s *State) PeerStanding(origin, passportID string, now int64) (passport.Passport, Reason) {
	f := s.Fed
	if f == nil {
		return passport.Passport{}, ReasonWrongRole
	}
	var b []byte
	switch s.Meta.Role {
	case RoleSovereign:
		if d := f.Domains[origin]; d != nil && d.KernelID != "" && !d.Suspended && !d.Revoked {
			b = d.Passport
		}
	case RoleDomain:
		if p := f.Peers[origin]; p != nil {
			b = p.Passport
		}
	}
	if b == nil {
		return passport.Passport{}, ReasonNotFound
	}
	pp, r := s.VerifyPassport(b, now)
	switch {
	case r == ReasonOK:
	case r == ReasonExpired && passport.Fresh(pp, now, StandingSlack) && !f.IsRevoked(pp.ID):
		// Within the renewal slack of an expired passport. Verify reports
		// an expired passport as expired even when it was revoked too, so
		// revocation is checked here: a revoked passport never regains
		// standing.
	default:
		return pp, ReasonPassportInvalid
	}
	if pp.ID != passportID && !s.passportSuperseded(pp, passportID) {
		return pp, ReasonPassportInvalid
	}
	return pp, ReasonOK
}

func init() {
	registerTyped(CmdFedDomainCreate, typedSpec[FedDomainCreate]{
		proposer: proposerCaller, role: RoleSovereign, op: OpFederationManage,
		subject: func(_ *Ledger, p *FedDomainCreate) string { return p.Name },
		run:     applyFedDomainCreate,
	})
	registerTyped(CmdFedJoin, typedSpec[FedJoin]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedJoin) string { return p.Domain },
		run:     applyFedJoin,
	})
	registerTyped(CmdFedPassport, typedSpec[FedPassport]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedPassport) string { return p.Domain },
		run:     applyFedPassport,
	})
	registerTyped(CmdFedPassportRevoke, typedSpec[FedPassportRevoke]{
		proposer: proposerCaller, role: RoleSovereign, op: OpFederationManage,
		subject: func(_ *Ledger, p *FedPassportRevoke) string { return p.ID },
		run:     applyFedPassportRevoke,
	})
	registerTyped(CmdFedSigner, typedSpec[FedSigner]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedSigner) string { return p.Node },
		run:     applyFedSigner,
	})
	registerTyped(CmdFedWitness, typedSpec[FedWitness]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedWitness) string { return p.Domain },
		run:     applyFedWitness,
	})
	// The subject is the amendment the entry creates, named once the
	// kernel is known to be the sovereign.
	registerTyped(CmdFedAmendPropose, typedSpec[FedAmendPropose]{
		proposer: proposerCaller, role: RoleSovereign, roleFirst: true, op: OpCanonAmend,
		subject: func(l *Ledger, _ *FedAmendPropose) string { return l.nextAmendmentID() },
		run:     applyFedAmendPropose,
	})
	// The actor is the operator whose signature the command relays.
	registerTyped(CmdFedAmendSign, typedSpec[FedAmendSign]{
		proposer: proposerInternal, role: RoleSovereign,
		actorOf: func(p *FedAmendSign) string { return p.Operator },
		subject: func(_ *Ledger, p *FedAmendSign) string { return p.ID },
		run:     applyFedAmendSign,
	})
	registerTyped(CmdFedAmendVeto, typedSpec[FedAmendVeto]{
		proposer: proposerCaller, role: RoleSovereign, op: OpCanonAmend,
		subject: func(_ *Ledger, p *FedAmendVeto) string { return p.ID },
		run:     applyFedAmendVeto,
	})
	registerTyped(CmdFedCanonAck, typedSpec[FedCanonAck]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedCanonAck) string { return p.Domain },
		run:     applyFedCanonAck,
	})
	registerTyped(CmdFedUpdate, typedSpec[FedUpdate]{
		proposer: proposerInternal, actor: "kernel", role: RoleDomain,
		subject: func(*Ledger, *FedUpdate) string { return "federation" },
		run:     applyFedUpdate,
	})
	registerTyped(CmdFedHalt, typedSpec[FedHaltCmd]{
		proposer: proposerCaller, role: RoleSovereign, op: OpFederationHalt,
		subject: func(*Ledger, *FedHaltCmd) string { return "federation" },
		run:     applyFedHalt,
	})
	registerTyped(CmdFedResume, typedSpec[FedResume]{
		proposer: proposerInternal, role: RoleSovereign,
		actorOf: func(p *FedResume) string { return p.Operator },
		subject: func(*Ledger, *FedResume) string { return "federation" },
		run:     applyFedResume,
	})
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
	registerTyped(CmdFedSuspend, typedSpec[FedSuspend]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedSuspend) string { return p.Domain },
		run:     applyFedSuspend,
	})
}

// Payloads of the federation commands.

// FedDomainCreate registers a domain and the hash of its one-time join
// token.
type FedDomainCreate struct {
	Name          string   `codec:"name"`
	JoinTokenHash []byte   `codec:"join_token_hash"`
	Scopes        []string `codec:"scopes"`
}

// FedJoin redeems a join token: the sovereign's leader proposes it with a
// passport it signed for the domain.
type FedJoin struct {
	Domain        string   `codec:"domain"`
	JoinTokenHash []byte   `codec:"join_token_hash"`
	KernelID      string   `codec:"kernel_id"`
	Passport      []byte   `codec:"passport"`
	BusAddrs      []string `codec:"bus_addrs"`
	Protocol      uint16   `codec:"protocol,omitempty"` // the protocol the domain runs
}

// FedPassport records a renewed passport (and the domain's current bus
// addresses and canon acknowledgement).
type FedPassport struct {
	Domain   string   `codec:"domain"`
	Passport []byte   `codec:"passport"`
	BusAddrs []string `codec:"bus_addrs"`
	CanonAck uint64   `codec:"canon_ack"`
}

// FedPassportRevoke revokes a passport by id.
type FedPassportRevoke struct {
	ID string `codec:"id"`
}

// FedSigner registers a sovereign node's passport-signing key.
type FedSigner struct {
	Node   string `codec:"node"`
	PubKey []byte `codec:"pub_key"`
}

// FedWitness records a domain's signed chain head.
type FedWitness struct {
	Domain    string `codec:"domain"`
	Seq       uint64 `codec:"seq"`
	Hash      []byte `codec:"hash"`
	NodeKey   []byte `codec:"node_key"`
	Node      string `codec:"node"`
	Signature []byte `codec:"signature"`
}

// FedAmendPropose proposes a new canon text.
type FedAmendPropose struct {
	Text string `codec:"text"`
}

// FedAmendSign adds one operator's signature to an amendment.
type FedAmendSign struct {
	ID        string `codec:"id"`
	Operator  string `codec:"operator"`
	Signature []byte `codec:"signature"`
}

// FedAmendVeto vetoes a pending amendment.
type FedAmendVeto struct {
	ID string `codec:"id"`
}

// FedCanonAck records a domain's acknowledgement of a canon version on the
// sovereign.
type FedCanonAck struct {
	Domain  string `codec:"domain"`
	Version uint64 `codec:"version"`
}

// FedUpdate brings a domain's view of the federation up to date: its own
// passport, the sovereign's signing keys, the peers, the revocation list,
// the canon and the federation halt, as its leader last heard from the
// sovereign.
type FedUpdate struct {
	SovereignID   string        `codec:"sovereign_id"`
	SovereignKeys []NodeKey     `codec:"sovereign_keys"`
	Passport      []byte        `codec:"passport"`
	Peers         []PeerRecord  `codec:"peers"`
	Revoked       []string      `codec:"revoked"`
	Canon         CanonState    `codec:"canon"`
	CanonText     string        `codec:"canon_text"`
	Halt          *FedHalt      `codec:"halt"`
	Operators     []OperatorKey `codec:"operators"`
	Threshold     int           `codec:"threshold"`
	// Protocol is the sovereign's latest protocol upgrade; the domain
	// takes a newer version than its own once the signatures verify
	// against the operators it already trusts.
	Protocol *ProtocolRatification `codec:"protocol,omitempty"`

	// From protocol 4 a view is signed by the sovereign's signing nodes
	// (each over FedUpdateMessage) and carries the sovereign ledger's seq
	// when it was made: a domain takes a view only if a key it already
	// pinned signed it, and never one older than the last it took.
	SovereignSeq uint64          `codec:"sovereign_seq,omitempty"`
	Signatures   []ViewSignature `codec:"signatures,omitempty"`
}

// ViewSignature is one sovereign node's signature over a view.
type ViewSignature struct {
	Node      string `codec:"node"`
	Signature []byte `codec:"signature"`
}

const ctxFedUpdate = "dominus-federation-view-v1\x00"

// FedUpdateMessage is what each sovereign node signs to send view u to
// domain: the digest of the view without its signatures and without its
// protocol ratification (the domain may set that aside until its voters
// implement the version; it carries M of N operator signatures of its
// own).
func FedUpdateMessage(domain string, u *FedUpdate) []byte {
	c := *u
	c.Signatures, c.Protocol = nil, nil
	sum := sha256.Sum256(Encode(&c))
	return append([]byte(ctxFedUpdate+domain+"\x00"), sum[:]...)
}

// SignFedUpdate adds sovereign node signer's signature to view u for
// domain.
func SignFedUpdate(u *FedUpdate, domain, signer string, key ed25519.PrivateKey) {
	u.Signatures = append(u.Signatures, ViewSignature{Node: signer, Signature: ed25519.Sign(key, FedUpdateMessage(domain, u))})
}

// viewSigned reports whether a key of pinned signed view u for domain:
// at least one signature by a pinned node, and every signature by a
// pinned node valid (those by nodes the domain does not know yet are
// not evidence either way).
func viewSigned(pinned map[string][]byte, domain string, u *FedUpdate) bool {
	msg := FedUpdateMessage(domain, u)
	ok := false
	for _, s := range u.Signatures {
		key := pinned[s.Node]
		if len(key) != ed25519.PublicKeySize {
			continue
		}
		if len(s.Signature) != ed25519.SignatureSize || !ed25519.Verify(key, msg, s.Signature) {
			return false
		}
		ok = true
	}
	return ok
}

// FedHaltCmd halts the federation.
type FedHaltCmd struct {
	Reason string `codec:"reason"`
}

// FedResume adds one operator's signed consent to resume the federation.
type FedResume struct {
	HaltID    string `codec:"halt_id"`
	Operator  string `codec:"operator"`
	Signature []byte `codec:"signature"`
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

// FedSuspend suspends a domain that missed an acknowledgement deadline.
type FedSuspend struct {
	Domain string `codec:"domain"`
	Reason string `codec:"reason"`
}

// FedDetail is the detail record of federation events.
type FedDetail struct {
	Target string `codec:"target"`
	Note   string `codec:"note"`
	Value  string `codec:"value"`
}

func (l *Ledger) fed(role string) (*FedState, Reason) {
	st := l.st
	if st.Fed == nil || st.Meta.Role != role {
		return nil, ReasonWrongRole
	}
	return st.Fed, ReasonOK
}

// joinedDomain returns the sovereign's state and its record of a domain
// that has redeemed its join token.
func (l *Ledger) joinedDomain(name string) (*FedState, *DomainRecord, Reason) {
	f, r := l.fed(RoleSovereign)
	if r != ReasonOK {
		return nil, nil, r
	}
	d := f.Domains[name]
	if d == nil || d.KernelID == "" {
		return nil, nil, ReasonNotFound
	}
	return f, d, ReasonOK
}

func fedDetail(c *call, target, note, value string) {
	c.detail = Encode(&FedDetail{Target: target, Note: note, Value: value})
}

// sealFederation validates a genesis's federation fields and builds the
// federation state and the named operators' capabilities; it changes
// nothing.
func (l *Ledger) sealFederation(g *Genesis, c *call) (*FedState, []*Capability, Reason) {
	switch g.Role {
	case RoleStandalone:
		if len(g.Operators) > 0 || g.Threshold != 0 {
			return nil, nil, ReasonInvalidArgument
		}
		return nil, nil, ReasonOK
	case RoleSovereign:
		if len(g.Operators) == 0 || len(g.Operators) > MaxOperators || g.Threshold < 1 || g.Threshold > len(g.Operators) {
			return nil, nil, ReasonInvalidArgument
		}
	case RoleDomain:
		if len(g.Operators) > 0 || g.Threshold != 0 || g.Domain == SovereignKernel || strings.ContainsAny(g.Domain, "/:") {
			return nil, nil, ReasonInvalidArgument
		}
	default:
		return nil, nil, ReasonInvalidArgument
	}
	f := newFedState()
	f.Threshold = g.Threshold
	f.Canon = CanonState{Hash: append([]byte(nil), g.CanonHash...), Since: c.now}
	seq := l.st.Seq + 1
	rootHash := hex.EncodeToString(g.RootTokenHash)
	var caps []*Capability
	for i, op := range g.Operators {
		if !validName(op.Name) || op.Name == RootOperatorName || len(op.PubKey) != ed25519.PublicKeySize || !validTokenHash(op.TokenHash) {
			return nil, nil, ReasonInvalidArgument
		}
		if _, dup := f.Operators[op.Name]; dup {
			return nil, nil, ReasonInvalidArgument
		}
		level := op.Level
		if level == "" {
			level = LevelSovereign
		}
		if level != LevelSovereign && level != LevelCoOperator {
			return nil, nil, ReasonInvalidArgument
		}
		th := hex.EncodeToString(op.TokenHash)
		if th == rootHash {
			return nil, nil, ReasonDuplicateToken
		}
		for _, prev := range caps {
			if prev.TokenHash == th {
				return nil, nil, ReasonDuplicateToken
			}
		}
		f.Operators[op.Name] = &OperatorKey{Name: op.Name, PubKey: append([]byte(nil), op.PubKey...), Level: level}
		ops := []string{"*"}
		if level == LevelCoOperator {
			ops = []string{OpCanonAmend, OpCapRead, OpAuditRead}
		}
		caps = append(caps, &Capability{
			ID: capID(seq) + "." + strconv.Itoa(i+1), TokenHash: th, Entity: op.Name,
			Operator: true, Domain: g.Domain, Ops: ops, Resources: []string{"*"}, GrantedBy: "genesis", Created: seq,
		})
	}
	return f, caps, ReasonOK
}

func applyFedDomainCreate(l *Ledger, c *call, p *FedDomainCreate) outcome {
	f := l.st.Fed
	if !validName(p.Name) || strings.Contains(p.Name, "/") || strings.Contains(p.Name, ":") || p.Name == SovereignKernel || !validTokenHash(p.JoinTokenHash) || len(p.Scopes) > passport.MaxScopes {
		return deny(ReasonInvalidArgument)
	}
	if _, ok := f.Domains[p.Name]; ok {
		return deny(ReasonAlreadyExists)
	}
	if len(f.Domains) >= MaxDomains {
		return deny(ReasonTooLarge)
	}
	scopes := append([]string(nil), p.Scopes...)
	if len(scopes) == 0 {
		scopes = []string{"bus.*"}
	}
	sort.Strings(scopes)
	f.Domains[p.Name] = &DomainRecord{Name: p.Name, JoinTokenHash: hex.EncodeToString(p.JoinTokenHash), Scopes: scopes, CreatedBy: c.actor, Created: l.st.Seq + 1}
	fedDetail(c, p.Name, "domain created", strings.Join(scopes, ","))
	return outcome{decision: DecisionPermit}
}

// checkIssued verifies a passport the sovereign's leader signed for d.
func (l *Ledger) checkIssued(c *call, f *FedState, d *DomainRecord, b []byte) (passport.Passport, Reason) {
	p, err := passport.Decode(b)
	if err != nil {
		return p, ReasonMalformed
	}
	err = passport.Verify(p, f.trustedSigners(RoleSovereign), c.now, f.IsRevoked)
	switch r := passportReason(err); {
	case r == ReasonOK:
	case r == ReasonBadSignature:
		return p, r
	case errors.Is(err, passport.ErrExpired):
		return p, ReasonExpired
	default: // malformed, revoked, or post-dated (not yet valid at issue)
		return p, ReasonInvalidArgument
	}
	switch {
	case p.Domain != d.Name, p.Issuer != l.st.Meta.KernelID, p.Serial != d.Serial+1,
		p.NotBefore < c.now-PassportIssueSkew, !slices.Equal(p.Scopes, d.Scopes),
		p.ID != PassportID(d.Name, p.Serial):
		return p, ReasonInvalidArgument
	}
	return p, ReasonOK
}

// PassportID names a domain's passport by serial.
func PassportID(domain string, serial uint64) string {
	return "pp-" + domain + "-" + strconv.FormatUint(serial, 10)
}

func (l *Ledger) recordPassport(f *FedState, d *DomainRecord, p passport.Passport, b []byte, addrs []string) {
	d.Passport = append([]byte(nil), b...)
	d.Serial = p.Serial
	d.BusAddrs = append([]string(nil), addrs...)
	f.Passports = append(f.Passports, PassportRecord{ID: p.ID, Domain: p.Domain, Serial: p.Serial, Issued: p.NotBefore, Expires: p.Expires})
	if len(f.Passports) > 4*MaxDomains {
		f.Passports = append([]PassportRecord(nil), f.Passports[len(f.Passports)-4*MaxDomains:]...)
	}
}

func validBusAddrs(a []string) bool {
	if len(a) > MaxBusAddrs {
		return false
	}
	for _, s := range a {
		if s == "" || len(s) > 64 {
			return false
		}
	}
	return true
}

func applyFedJoin(l *Ledger, c *call, p *FedJoin) outcome {
	f := l.st.Fed
	d := f.Domains[p.Domain]
	if d == nil || !validTokenHash(p.JoinTokenHash) || hex.EncodeToString(p.JoinTokenHash) != d.JoinTokenHash {
		return deny(ReasonJoinTokenInvalid)
	}
	if d.KernelID != "" {
		if d.KernelID != p.KernelID {
			return deny(ReasonAlreadyRedeemed)
		}
		// The same kernel redeeming again gets its passport again.
		fedDetail(c, p.Domain, "join repeated", p.KernelID)
		return outcome{decision: DecisionPermit, value: append([]byte(nil), d.Passport...)}
	}
	if !validName(p.KernelID) || !validBusAddrs(p.BusAddrs) {
		return deny(ReasonInvalidArgument)
	}
	pp, r := l.checkIssued(c, f, d, p.Passport)
	if r != ReasonOK {
		return deny(r)
	}
	d.KernelID = p.KernelID
	d.CanonAck = f.Canon.Version
	d.ProtocolAck = p.Protocol
	l.recordPassport(f, d, pp, p.Passport, p.BusAddrs)
	fedDetail(c, p.Domain, "joined; passport "+pp.ID, p.KernelID)
	return outcome{decision: DecisionPermit, id: pp.ID, value: append([]byte(nil), p.Passport...)}
}

func applyFedPassport(l *Ledger, c *call, p *FedPassport) outcome {
	f, d, r := l.joinedDomain(p.Domain)
	if r != ReasonOK {
		return deny(r)
	}
	if d.Suspended {
		return deny(ReasonSuspended)
	}
	if !validBusAddrs(p.BusAddrs) || p.CanonAck > f.Canon.Version {
		return deny(ReasonInvalidArgument)
	}
	if cur, err := passport.Decode(d.Passport); err != nil || d.Revoked || f.IsRevoked(cur.ID) {
		// A revoked domain is not renewed: its standing ends with the
		// revoked passport.
		return deny(ReasonRevoked)
	}
	pp, r := l.checkIssued(c, f, d, p.Passport)
	if r != ReasonOK {
		return deny(r)
	}
	if p.CanonAck > d.CanonAck {
		d.CanonAck = p.CanonAck
	}
	l.recordPassport(f, d, pp, p.Passport, p.BusAddrs)
	fedDetail(c, p.Domain, "passport renewed", pp.ID)
	return outcome{decision: DecisionPermit, id: pp.ID}
}

func applyFedPassportRevoke(l *Ledger, c *call, p *FedPassportRevoke) outcome {
	f := l.st.Fed
	var rec *PassportRecord
	for i := range f.Passports {
		if f.Passports[i].ID == p.ID {
			rec = &f.Passports[i]
		}
	}
	if rec == nil {
		return deny(ReasonNotFound)
	}
	if rec.Revoked || f.IsRevoked(p.ID) {
		return deny(ReasonRevoked)
	}
	revs := &passport.Revocations{}
	for _, e := range f.Revocations {
		_ = revs.Add(e.ID, e.Expires, c.now)
	}
	revs.Prune(c.now)
	if err := revs.Add(p.ID, rec.Expires, c.now); err != nil {
		return deny(ReasonTooLarge)
	}
	f.Revocations = revs.Entries()
	// Every passport of the domain up to this one is revoked; renewal
	// stops (applyFedPassport) until an operator re-admits the domain.
	for i := range f.Passports {
		if f.Passports[i].Domain == rec.Domain && f.Passports[i].Serial <= rec.Serial {
			f.Passports[i].Revoked = true
		}
	}
	if d := f.Domains[rec.Domain]; d != nil {
		d.Revoked = true
	}
	fedDetail(c, rec.Domain, "passport revoked", p.ID)
	return outcome{decision: DecisionPermit}
}

func applyFedSigner(l *Ledger, c *call, p *FedSigner) outcome {
	f := l.st.Fed
	if !validName(p.Node) || len(p.PubKey) != ed25519.PublicKeySize || len(f.Signers) >= passport.MaxNodeKeys {
		return deny(ReasonInvalidArgument)
	}
	// From protocol 4 a node registers only itself, with the node key
	// the ledger holds for it: no proposer vouches for another key.
	if l.authority() && (p.Node != c.env.Node || !bytes.Equal(p.PubKey, l.st.MemberKey(p.Node))) {
		return deny(ReasonMemberUnverified)
	}
	if old, ok := f.Signers[p.Node]; ok && bytes.Equal(old, p.PubKey) {
		return deny(ReasonAlreadyExists)
	}
	f.Signers[p.Node] = append([]byte(nil), p.PubKey...)
	fedDetail(c, p.Node, "signing key registered", hex.EncodeToString(p.PubKey))
	return outcome{decision: DecisionPermit}
}

func applyFedWitness(l *Ledger, c *call, p *FedWitness) outcome {
	f, d, r := l.joinedDomain(p.Domain)
	if r != ReasonOK {
		return deny(r)
	}
	pp, r := l.st.VerifyPassport(d.Passport, c.now)
	if r != ReasonOK {
		return deny(r)
	}
	if len(p.Hash) != sha256.Size || p.Seq == 0 || !validName(p.Node) {
		return deny(ReasonInvalidArgument)
	}
	if !passport.HasNodeKey(pp, ed25519.PublicKey(p.NodeKey)) || len(p.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(ed25519.PublicKey(p.NodeKey), WitnessMessage(p.Domain, p.Seq, p.Hash), p.Signature) {
		return deny(ReasonBadSignature)
	}
	ws := f.Witness[p.Domain]
	if n := len(ws); n > 0 {
		last := ws[n-1]
		if p.Seq < last.Seq || (p.Seq == last.Seq && !bytes.Equal(p.Hash, last.Hash)) {
			// A head behind or beside one already witnessed: the domain's
			// history was rewritten or truncated.
			fedDetail(c, p.Domain, "witness conflict", strconv.FormatUint(p.Seq, 10))
			return deny(ReasonWitnessConflict)
		}
		if p.Seq == last.Seq {
			return deny(ReasonAlreadyExists)
		}
	}
	ws = append(ws, WitnessRecord{Domain: p.Domain, Seq: p.Seq, Hash: append([]byte(nil), p.Hash...), Time: c.now, Node: p.Node})
	if len(ws) > MaxWitnessPerDomain {
		ws = append([]WitnessRecord(nil), ws[len(ws)-MaxWitnessPerDomain:]...)
	}
	f.Witness[p.Domain] = ws
	fedDetail(c, p.Domain, "head witnessed", strconv.FormatUint(p.Seq, 10)+":"+hex.EncodeToString(p.Hash))
	return outcome{decision: DecisionPermit}
}

func (f *FedState) amendment(id string) *Amendment {
	for _, a := range f.Amendments {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// AmendmentState is an amendment's state at ledger time now: a pending
// proposal past its expiry is expired, and one over a canon that has since
// changed is superseded.
func AmendmentState(a *Amendment, f *FedState, now int64) string {
	if a.State != AmendPending {
		return a.State
	}
	if now >= a.Expires {
		return AmendExpired
	}
	if !bytes.Equal(a.PrevHash, f.Canon.Hash) {
		return AmendSuperseded
	}
	return AmendPending
}

// nextAmendmentID names the amendment the next event proposes.
func (l *Ledger) nextAmendmentID() string { return "amd-" + strconv.FormatUint(l.st.Seq+1, 10) }

func applyFedAmendPropose(l *Ledger, c *call, p *FedAmendPropose) outcome {
	f := l.st.Fed
	id := l.nextAmendmentID()
	if p.Text == "" || len(p.Text) > MaxCanonBytes {
		return deny(ReasonInvalidArgument)
	}
	sum := sha256.Sum256([]byte(p.Text))
	if bytes.Equal(sum[:], f.Canon.Hash) {
		return deny(ReasonInvalidArgument)
	}
	if len(f.Amendments) >= MaxAmendments {
		if AmendmentState(f.Amendments[0], f, c.now) == AmendPending {
			return deny(ReasonTooLarge)
		}
		f.Amendments = append([]*Amendment(nil), f.Amendments[1:]...)
	}
	f.Amendments = append(f.Amendments, &Amendment{
		ID: id, Text: p.Text, Hash: sum[:], PrevHash: append([]byte(nil), f.Canon.Hash...), Version: f.Canon.Version + 1,
		Proposer: c.actor, Expires: c.now + AmendmentTTL, State: AmendPending, Proposed: l.st.Seq + 1,
	})
	fedDetail(c, id, "amendment proposed", hex.EncodeToString(sum[:]))
	return outcome{decision: DecisionPermit, id: id}
}

func applyFedAmendSign(l *Ledger, c *call, p *FedAmendSign) outcome {
	f := l.st.Fed
	if !validName(p.Operator) {
		c.actor = ""
		return deny(ReasonInvalidArgument)
	}
	a := f.amendment(p.ID)
	if a == nil {
		return deny(ReasonNotFound)
	}
	op := f.Operators[p.Operator]
	if op == nil || op.Revoked || len(p.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(ed25519.PublicKey(op.PubKey), AmendmentMessage(a.ID, a.Hash), p.Signature) {
		return deny(ReasonBadSignature)
	}
	// An expired or superseded proposal is closed; a denial changes
	// nothing, so its stored state stays pending and readers use
	// AmendmentState.
	if AmendmentState(a, f, c.now) != AmendPending {
		return deny(ReasonAmendmentClosed)
	}
	for _, s := range a.Signers {
		if s == p.Operator {
			return deny(ReasonDuplicateSignature)
		}
	}
	a.Signers = append(a.Signers, p.Operator)
	a.Signature = append(a.Signature, append([]byte(nil), p.Signature...))
	sovereignSigned := false
	for _, s := range a.Signers {
		if o := f.Operators[s]; o != nil && o.Level == LevelSovereign {
			sovereignSigned = true
		}
	}
	if len(a.Signers) >= f.Threshold && sovereignSigned {
		a.State = AmendRatified
		a.Ratified = c.now
		f.Canon = CanonState{Version: a.Version, Hash: append([]byte(nil), a.Hash...), Since: c.now}
		fedDetail(c, a.ID, "amendment ratified; canon version "+strconv.FormatUint(a.Version, 10), strings.Join(a.Signers, ","))
		return outcome{decision: DecisionPermit, id: a.ID, version: a.Version}
	}
	fedDetail(c, a.ID, "amendment signed", strconv.Itoa(len(a.Signers))+"/"+strconv.Itoa(f.Threshold))
	return outcome{decision: DecisionPermit, id: a.ID}
}

func applyFedAmendVeto(l *Ledger, c *call, p *FedAmendVeto) outcome {
	f := l.st.Fed
	if o := f.Operators[c.actor]; (o == nil || o.Level != LevelSovereign) && c.actor != RootOperatorName {
		return deny(ReasonForbidden)
	}
	a := f.amendment(p.ID)
	if a == nil {
		return deny(ReasonNotFound)
	}
	if AmendmentState(a, f, c.now) != AmendPending {
		return deny(ReasonAmendmentClosed)
	}
	a.State, a.VetoedBy = AmendVetoed, c.actor
	fedDetail(c, a.ID, "amendment vetoed", c.actor)
	return outcome{decision: DecisionPermit}
}

func applyFedCanonAck(l *Ledger, c *call, p *FedCanonAck) outcome {
	f := l.st.Fed
	d := f.Domains[p.Domain]
	if d == nil {
		return deny(ReasonNotFound)
	}
	if p.Version > f.Canon.Version || p.Version <= d.CanonAck {
		return deny(ReasonInvalidArgument)
	}
	d.CanonAck = p.Version
	fedDetail(c, p.Domain, "canon acknowledged", strconv.FormatUint(p.Version, 10))
	return outcome{decision: DecisionPermit}
}

func applyFedSuspend(l *Ledger, c *call, p *FedSuspend) outcome {
	f, d, r := l.joinedDomain(p.Domain)
	if r != ReasonOK {
		return deny(r)
	}
	if d.Suspended {
		return deny(ReasonSuspended)
	}
	// Suspension is decided by ledger facts only: the domain has not
	// acknowledged a canon version or a protocol version ratified at
	// least AckDeadline ago.
	why := ""
	for _, a := range f.Amendments {
		if a.State == AmendRatified && a.Version > d.CanonAck && c.now >= a.Ratified+AckDeadline {
			why = "canon acknowledgement overdue"
		}
	}
	if why == "" && f.ProtocolAckOverdue(d, c.now) {
		why = "protocol acknowledgement overdue"
	}
	if why == "" {
		return deny(ReasonInvalidArgument)
	}
	d.Suspended, d.SuspendReason = true, why
	fedDetail(c, p.Domain, "domain suspended", d.SuspendReason)
	return outcome{decision: DecisionPermit}
}

func applyFedUpdate(l *Ledger, c *call, p *FedUpdate) outcome {
	f := l.st.Fed
	st := l.st
	if len(p.SovereignKeys) == 0 || len(p.SovereignKeys) > passport.MaxNodeKeys || len(p.Peers) > MaxDomains+1 ||
		len(p.Revoked) > passport.MaxRevocations || len(p.Operators) > MaxOperators || !validName(p.SovereignID) {
		return deny(ReasonInvalidArgument)
	}
	if p.Threshold < 1 || p.Threshold > len(p.Operators) {
		return deny(ReasonInvalidArgument)
	}
	if f.SovereignID != "" && p.SovereignID != f.SovereignID {
		return deny(ReasonInvalidArgument)
	}
	keys := map[string][]byte{}
	for _, k := range p.SovereignKeys {
		if !validName(k.Node) || len(k.PubKey) != ed25519.PublicKeySize {
			return deny(ReasonInvalidArgument)
		}
		keys[k.Node] = append([]byte(nil), k.PubKey...)
	}
	// From protocol 4 the sovereign keys are pinned at join: the view
	// must be signed by a key this domain already trusts (the first view,
	// which the join brings, by one of its own keys) and be no older than
	// the last one taken. A view that vouches for itself changes nothing.
	if l.authority() {
		pinned := f.SovereignKeys
		if len(pinned) == 0 {
			pinned = keys
		}
		if len(p.Signatures) > passport.MaxNodeKeys {
			return deny(ReasonInvalidArgument)
		}
		if !viewSigned(pinned, st.Meta.Domain, p) {
			return deny(ReasonBadSignature)
		}
		if p.SovereignSeq < f.ViewSeq {
			return deny(ReasonTooOld)
		}
	}
	// The update's own passport must verify under the keys it brings and
	// name this domain; its peers' passports must verify too.
	trusted := map[string]ed25519.PublicKey{}
	for _, k := range p.SovereignKeys {
		trusted[k.Node] = ed25519.PublicKey(k.PubKey)
	}
	revoked := append([]string(nil), p.Revoked...)
	sort.Strings(revoked)
	isRevoked := func(id string) bool {
		i := sort.SearchStrings(revoked, id)
		return i < len(revoked) && revoked[i] == id
	}
	own, err := passport.Decode(p.Passport)
	if err != nil {
		return deny(ReasonMalformed)
	}
	if err := passport.Verify(own, trusted, max(c.now, own.NotBefore), isRevoked); err != nil && !errors.Is(err, passport.ErrExpired) && !errors.Is(err, passport.ErrRevoked) {
		return deny(ReasonBadSignature)
	}
	if own.Domain != st.Meta.Domain || own.Issuer != p.SovereignID {
		return deny(ReasonInvalidArgument)
	}
	if cur, err := f.OwnPassport(); err == nil && cur.Serial > own.Serial {
		return deny(ReasonInvalidArgument)
	}
	peers := map[string]*PeerRecord{}
	for _, pr := range p.Peers {
		if !validName(pr.Kernel) || !validBusAddrs(pr.BusAddrs) || pr.Kernel == st.Meta.Domain {
			return deny(ReasonInvalidArgument)
		}
		if pr.Kernel != SovereignKernel {
			pp, err := passport.Decode(pr.Passport)
			if err != nil || pp.Domain != pr.Kernel {
				return deny(ReasonInvalidArgument)
			}
			if err := passport.Verify(pp, trusted, max(c.now, pp.NotBefore), isRevoked); err != nil && !errors.Is(err, passport.ErrExpired) && !errors.Is(err, passport.ErrRevoked) {
				return deny(ReasonBadSignature)
			}
		}
		peers[pr.Kernel] = &PeerRecord{Kernel: pr.Kernel, Passport: append([]byte(nil), pr.Passport...), BusAddrs: append([]string(nil), pr.BusAddrs...)}
	}
	ops := map[string]*OperatorKey{}
	for _, o := range p.Operators {
		if !validName(o.Name) || len(o.PubKey) != ed25519.PublicKeySize {
			return deny(ReasonInvalidArgument)
		}
		oc := o
		oc.PubKey = append([]byte(nil), o.PubKey...)
		ops[o.Name] = &oc
	}
	if p.Canon.Version < f.Canon.Version {
		return deny(ReasonInvalidArgument)
	}
	adopt, by, r := l.federationProtocol(c, f, p, ops)
	if r != ReasonOK {
		return deny(r)
	}
	if p.Canon.Version > f.Canon.Version {
		// A new canon takes effect here as this kernel records it; the
		// text must hash to the announced hash.
		sum := sha256.Sum256([]byte(p.CanonText))
		if !bytes.Equal(sum[:], p.Canon.Hash) {
			return deny(ReasonInvalidArgument)
		}
		f.Canon = CanonState{Version: p.Canon.Version, Hash: append([]byte(nil), p.Canon.Hash...), Since: c.now}
	}
	f.SovereignID = p.SovereignID
	f.SovereignKeys = keys
	if l.authority() {
		f.ViewSeq = p.SovereignSeq
	}
	f.Passport = append([]byte(nil), p.Passport...)
	f.Peers = peers
	f.Revoked = revoked
	f.Operators = ops
	f.Threshold = p.Threshold
	note := "federation view updated"
	switch {
	case p.Halt != nil && (f.Halt == nil || f.Halt.ID != p.Halt.ID):
		h := *p.Halt
		h.Resumers = nil
		f.Halt = &h
		note = "federation halted: " + h.Reason
	case p.Halt == nil && f.Halt != nil:
		f.LastHalt = f.Halt.ID
		f.Halt = nil
		note = "federation resumed"
	}
	if adopt != 0 {
		l.setProtocol(c, adopt, by)
		note += "; protocol " + strconv.FormatUint(uint64(adopt), 10)
	}
	fedDetail(c, own.ID, note, strconv.FormatUint(f.Canon.Version, 10))
	return outcome{decision: DecisionPermit, version: f.Canon.Version}
}

// federationProtocol checks the protocol upgrade a federation view
// carries: a version newer than the domain's own is taken only if M of
// the federation operators the domain already trusts signed it (on the
// first view, which brings the operators, those). It returns the version
// to put in force (0 for none) and who signed it; it stops this replica
// if its binary cannot judge by that version.
func (l *Ledger) federationProtocol(c *call, f *FedState, p *FedUpdate, brought map[string]*OperatorKey) (uint16, string, Reason) {
	if p.Protocol == nil || p.Protocol.Version <= l.st.Meta.Protocol {
		return 0, "", ReasonOK
	}
	trusted := &FedState{Operators: f.Operators, Threshold: f.Threshold}
	if len(f.Operators) == 0 {
		trusted = &FedState{Operators: brought, Threshold: p.Threshold}
	}
	if len(p.Protocol.Signatures) > MaxOperators {
		return 0, "", ReasonInvalidArgument
	}
	signers, r := operatorQuorum(trusted, ProtocolMessage(p.SovereignID, p.Protocol.Version), p.Protocol.Signatures, "")
	if r != ReasonOK {
		return 0, "", ReasonBadSignature
	}
	requireProtocol(c, p.Protocol.Version) // before anything changes
	return p.Protocol.Version, "federation:" + strings.Join(signers, ","), ReasonOK
}

func applyFedHalt(l *Ledger, c *call, p *FedHaltCmd) outcome {
	f := l.st.Fed
	if o := f.Operators[c.actor]; (o == nil || o.Level != LevelSovereign) && c.actor != RootOperatorName {
		return deny(ReasonForbidden)
	}
	if f.Halt != nil {
		return deny(ReasonAlreadyExists)
	}
	if len(p.Reason) > 256 {
		return deny(ReasonInvalidArgument)
	}
	id := "fh-" + strconv.FormatUint(l.st.Seq+1, 10)
	f.Halt = &FedHalt{ID: id, Reason: p.Reason, By: c.actor, Since: c.now}
	fedDetail(c, id, "federation halted", p.Reason)
	return outcome{decision: DecisionPermit, id: id}
}

func applyFedResume(l *Ledger, c *call, p *FedResume) outcome {
	f := l.st.Fed
	if !validName(p.Operator) {
		c.actor = ""
		return deny(ReasonInvalidArgument)
	}
	if f.Halt == nil || f.Halt.ID != p.HaltID {
		return deny(ReasonNotHalted)
	}
	op := f.Operators[p.Operator]
	if op == nil || op.Revoked || len(p.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(ed25519.PublicKey(op.PubKey), ResumeMessage(p.HaltID), p.Signature) {
		return deny(ReasonBadSignature)
	}
	for _, s := range f.Halt.Resumers {
		if s == p.Operator {
			return deny(ReasonDuplicateSignature)
		}
	}
	f.Halt.Resumers = append(f.Halt.Resumers, p.Operator)
	sovereignSigned := false
	for _, s := range f.Halt.Resumers {
		if o := f.Operators[s]; o != nil && o.Level == LevelSovereign {
			sovereignSigned = true
		}
	}
	if len(f.Halt.Resumers) >= f.Threshold && sovereignSigned {
		id := f.Halt.ID
		f.LastHalt = id
		f.Halt = nil
		fedDetail(c, id, "federation resumed", strconv.Itoa(f.Threshold)+" operators")
		return outcome{decision: DecisionPermit, id: id, found: true}
	}
	fedDetail(c, f.Halt.ID, "resume signed", strconv.Itoa(len(f.Halt.Resumers))+"/"+strconv.Itoa(f.Threshold))
	return outcome{decision: DecisionPermit, id: f.Halt.ID}
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

// standing reports whether a domain kernel may still govern at ledger time
// now: its own passport, as last recorded, is within its lifetime plus
// StandingSlack. A domain cut off from the sovereign keeps governing until
// then and stops after (governance commands excepted), which bounds how
// long a revocation or federation halt can go unheard. The sovereign and
// standalone kernels always have standing.
func (l *Ledger) standing(now int64) bool {
	st := l.st
	if st.Meta.Role != RoleDomain || st.Fed == nil {
		return true
	}
	p, err := st.Fed.OwnPassport()
	if err != nil {
		return false
	}
	return passport.Fresh(p, now, StandingSlack) && !st.Fed.IsRevoked(p.ID)
}

// VerifyCanonChain checks the sovereign's ratified amendments as a chain
// from the genesis canon: each text hashes to its recorded hash, each
// amends the canon before it, versions follow one another, and the last
// is the canon in force. (Amendments beyond the bounded table start the
// chain at the oldest one kept.) Other kernels hold no texts; they pass.
func (s *State) VerifyCanonChain() error {
	f := s.Fed
	if f == nil || s.Meta.Role != RoleSovereign {
		return nil
	}
	prev, version := s.Meta.CanonHash, uint64(0)
	first := true
	for _, a := range f.Amendments {
		if a.State != AmendRatified {
			continue
		}
		if first && a.Version != 1 {
			prev, version = a.PrevHash, a.Version-1
		}
		first = false
		sum := sha256.Sum256([]byte(a.Text))
		switch {
		case !bytes.Equal(sum[:], a.Hash):
			return fmt.Errorf("amendment %s: text does not hash to its recorded hash", a.ID)
		case !bytes.Equal(a.PrevHash, prev):
			return fmt.Errorf("amendment %s: amends canon %x, but the canon before it is %x", a.ID, a.PrevHash, prev)
		case a.Version != version+1:
			return fmt.Errorf("amendment %s: version %d follows version %d", a.ID, a.Version, version)
		}
		prev, version = a.Hash, a.Version
	}
	if !bytes.Equal(f.Canon.Hash, prev) || f.Canon.Version != version {
		return fmt.Errorf("canon in force (version %d, %x) is not the end of the ratified chain (version %d, %x)", f.Canon.Version, f.Canon.Hash, version, prev)
	}
	return nil
}
