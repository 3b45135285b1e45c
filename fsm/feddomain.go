package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/passport"
)

// The commands of a domain's life in the federation: its join and its
// passport renewals, its acknowledgements and suspension (applied on the
// sovereign), and the federation view the sovereign hands it (applied on
// the domain).
func init() {
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
	registerTyped(CmdFedSuspend, typedSpec[FedSuspend]{
		proposer: proposerInternal, actor: "kernel", role: RoleSovereign,
		subject: func(_ *Ledger, p *FedSuspend) string { return p.Domain },
		run:     applyFedSuspend,
	})
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

// FedSuspend suspends a domain that missed an acknowledgement deadline.
type FedSuspend struct {
	Domain string `codec:"domain"`
	Reason string `codec:"reason"`
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
