package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/passport"
)

// The sovereign's commands: domains and the revocation of their
// passports, its passport-signing keys, the intake of domains' witnessed
// heads, canon amendments, and the federation-wide halt and resume.

// Signature contexts: every federation signature covers a context string
// that no other Dominus signature uses (the operators' contexts are in
// api/signing.go).
const (
	ctxWitness = "dominus-witness-v1\x00"
)

// WitnessMessage is what a domain node signs to report its chain head.
func WitnessMessage(domain string, seq uint64, hash []byte) []byte {
	b := []byte(ctxWitness + domain + "\x00")
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, hash...)
}

func init() {
	registerTyped(CmdFedDomainCreate, typedSpec[FedDomainCreate]{
		proposer: proposerCaller, role: RoleSovereign, op: OpFederationManage,
		subject: func(_ *Ledger, p *FedDomainCreate) string { return p.Name },
		run:     applyFedDomainCreate,
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
}

// Payloads of the sovereign's commands.

// FedDomainCreate registers a domain and the hash of its one-time join
// token.
type FedDomainCreate struct {
	Name          string   `codec:"name"`
	JoinTokenHash []byte   `codec:"join_token_hash"`
	Scopes        []string `codec:"scopes"`
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
