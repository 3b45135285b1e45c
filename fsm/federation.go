package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/passport"
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
