package kernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/passport"
)

// sovereignDuties: make sure this leader's signing key is registered and
// the master secret exists, and suspend domains past their deadline.
func (fd *fed) sovereignDuties() {
	n := fd.n
	ctx, cancel := context.WithTimeout(n.ctx, fedRequestTimeout)
	defer cancel()
	if err := fd.ensureMaster(ctx); err != nil {
		n.log.Warn("federation master secret", "err", err)
	}
	if _, err := fd.ensureSigner(ctx); err != nil {
		n.log.Warn("registering passport signing key", "err", err)
	}
	var overdue []string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		for _, d := range f.SortedDomains() {
			if d.KernelID == "" || d.Suspended {
				continue
			}
			due := f.ProtocolAckOverdue(d, st.Time)
			for _, a := range f.Amendments {
				if a.State == fsm.AmendRatified && a.Version > d.CanonAck && st.Time >= a.Ratified+fsm.AckDeadline {
					due = true
				}
			}
			if due {
				overdue = append(overdue, d.Name)
			}
		}
	})
	for _, d := range overdue {
		if _, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedSuspend, Payload: fsm.Encode(&fsm.FedSuspend{Domain: d, Reason: "acknowledgement overdue"})}); err != nil {
			n.log.Warn("suspending domain", "domain", d, "err", err)
		}
	}
	fd.rotateAfterRevocation(ctx)
}

// rotateAfterRevocation moves the key epoch on when the ledger holds a
// revocation no rotation has answered: the revoked domain's link keys and
// the gossip key it held stop working, and every other domain takes the
// new keys at its next renewal.
func (fd *fed) rotateAfterRevocation(ctx context.Context) {
	n := fd.n
	var rotate *fsm.FedKeysRotate
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		if d := f.UnansweredRevocation(); d != "" {
			rotate = &fsm.FedKeysRotate{Epoch: f.CurrentKeyEpoch() + 1, Domain: d}
		}
	})
	if rotate == nil {
		return
	}
	if err := n.applyInternal(ctx, "key rotation", fsm.CmdFedKeysRotate, fsm.Encode(rotate)); err != nil {
		n.log.Warn("rotating the federation keys after a revocation", "domain", rotate.Domain, "epoch", rotate.Epoch, "err", err)
		return
	}
	n.log.Info("federation keys rotated after a revocation", "domain", rotate.Domain, "epoch", rotate.Epoch)
}

// ensureMaster gives this sovereign leader the link-key master secret:
// its own copy, a peer's, or, while no domain has joined, a new one.
func (fd *fed) ensureMaster(ctx context.Context) error {
	if fd.secrets().Master != nil {
		return nil
	}
	n := fd.n
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == n.cfg.Name {
				continue
			}
			var sec fedSecrets
			if err := n.pool.call(ctx, string(s.Address), rpcFedSecrets, &struct{}{}, &sec); err == nil && sec.Master != nil {
				return fd.setSecrets(sec)
			}
		}
	}
	joined := false
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		for _, d := range f.SortedDomains() {
			if d.KernelID != "" {
				joined = true
			}
		}
	})
	if joined {
		return errors.New("no member holds the federation master secret and domains have joined; restore federation.secrets from a backup")
	}
	m := make([]byte, 32)
	if _, err := rand.Read(m); err != nil {
		return err
	}
	return fd.setSecrets(fedSecrets{Master: m})
}

func (fd *fed) ensureSigner(ctx context.Context) (bool, error) {
	n := fd.n
	pub := fd.key.Public().(ed25519.PublicKey)
	var have bool
	n.fedState(func(_ *fsm.State, f *fsm.FedState) { have = bytes.Equal(f.Signers[n.cfg.Name], pub) })
	if have {
		return true, nil
	}
	res, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedSigner, Payload: fsm.Encode(&fsm.FedSigner{Node: n.cfg.Name, PubKey: pub})})
	if err != nil {
		return false, err
	}
	if res.Decision != fsm.DecisionPermit && res.Reason != fsm.ReasonAlreadyExists {
		return false, fmt.Errorf("signing key registration denied: %s", res.Reason)
	}
	return true, nil
}

// issuePassport signs the next passport for d with this leader's key.
func (fd *fed) issuePassport(d *fsm.DomainRecord, nodeKeys [][]byte, issuer, issuedBy string) ([]byte, passport.Passport) {
	n := fd.n
	now := n.now().UnixNano()
	serial := d.Serial + 1
	p := passport.Passport{
		ID: fsm.PassportID(d.Name, serial), Domain: d.Name, Issuer: issuer, IssuedBy: issuedBy, Serial: serial,
		NotBefore: now - int64(time.Second), Expires: now + int64(n.cfg.PassportLifetime),
		Scopes: append([]string(nil), d.Scopes...), NodeKeys: passport.SortedNodeKeys(nodeKeys), KeyID: n.cfg.Name,
	}
	p = passport.Sign(p, fd.key)
	return p.Encode(), p
}

// FedView is the sovereign's answer to a join or renewal: the domain's
// federation view (recorded in its ledger) and its link keys (never
// recorded anywhere but the domain nodes' secrets files).
type FedView struct {
	Update fsm.FedUpdate     `json:"update"`
	Links  map[string][]byte `json:"links"`
	// KeyEpoch is the key epoch Links (and the gossip key among them)
	// were derived in.
	KeyEpoch uint64 `json:"key_epoch,omitempty"`
	// Protocol is the protocol in force on the sovereign: a joining
	// domain seals its genesis under it.
	Protocol uint16 `json:"protocol,omitempty"`
}

// view builds the federation view for domain d (sovereign, under read);
// sovAddrs are the sovereign members' bus addresses.
func (fd *fed) view(st *fsm.State, f *fsm.FedState, domain string, sovAddrs []string) (FedView, error) {
	d := f.Domains[domain]
	if d == nil {
		return FedView{}, errors.New("unknown domain")
	}
	u := fsm.FedUpdate{SovereignID: st.Meta.KernelID, Passport: d.Passport, Canon: f.Canon, Threshold: f.Threshold, SovereignSeq: st.Seq}
	for _, node := range sortedKeys(f.Signers) {
		u.SovereignKeys = append(u.SovereignKeys, fsm.NodeKey{Node: node, PubKey: f.Signers[node]})
	}
	u.Peers = append(u.Peers, fsm.PeerRecord{Kernel: fsm.SovereignKernel, BusAddrs: sovAddrs})
	names := []string{fsm.SovereignKernel}
	for _, o := range f.SortedDomains() {
		if o.Name == domain || o.KernelID == "" {
			continue
		}
		u.Peers = append(u.Peers, fsm.PeerRecord{Kernel: o.Name, Passport: o.Passport, BusAddrs: o.BusAddrs})
		names = append(names, o.Name)
	}
	for _, r := range f.Revocations {
		u.Revoked = append(u.Revoked, r.ID)
	}
	sort.Strings(u.Revoked)
	for _, a := range f.Amendments {
		if a.State == fsm.AmendRatified && a.Version == f.Canon.Version {
			u.CanonText = a.Text
		}
	}
	if f.Halt != nil {
		h := *f.Halt
		h.Resumers = nil
		u.Halt = &h
	}
	for _, name := range sortedKeys(f.Operators) {
		u.Operators = append(u.Operators, *f.Operators[name])
	}
	if f.Protocol != nil {
		pr := *f.Protocol
		u.Protocol = &pr
	}
	epoch := f.CurrentKeyEpoch()
	links, err := fd.linksFor(domain, names, epoch)
	if err != nil {
		return FedView{}, err
	}
	return FedView{Update: u, Links: links, KeyEpoch: epoch, Protocol: st.Meta.Protocol}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type fedSignRequest struct {
	Message []byte `codec:"message"`
	// View and Domain ask a sovereign member to sign a federation view
	// for a domain (instead of Message).
	View   *fsm.FedUpdate `codec:"view,omitempty"`
	Domain string         `codec:"domain,omitempty"`
}

// viewSignTimeout bounds how long a view waits for each member's
// signature.
const viewSignTimeout = time.Second

// signView signs view u for domain with this node's key and asks every
// other member of the sovereign to sign it too, in parallel: a domain
// takes a view only if a sovereign key it pinned signed it (protocol 4),
// and it may have pinned the keys of other members than this one (it
// joined before this node did). Members that do not answer in time add
// no signature; this node's own always stands.
func (fd *fed) signView(ctx context.Context, u *fsm.FedUpdate, domain string) {
	n := fd.n
	// The view reaches the domain as JSON: sign what the domain will
	// decode (JSON keeps no difference between a nil and an empty list).
	if b, err := json.Marshal(u); err == nil {
		var norm fsm.FedUpdate
		if json.Unmarshal(b, &norm) == nil {
			*u = norm
		}
	}
	msg := fsm.FedUpdateMessage(domain, u)
	sigs := []fsm.ViewSignature{{Node: n.cfg.Name, Signature: ed25519.Sign(fd.key, msg)}}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, sv := range f.Configuration().Servers {
			if string(sv.ID) == n.cfg.Name {
				continue
			}
			wg.Add(1)
			go func(node, addr string) {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, viewSignTimeout)
				defer cancel()
				var out fedSignResponse
				if err := n.pool.call(cctx, addr, rpcFedSign, &fedSignRequest{View: u, Domain: domain}, &out); err != nil {
					n.log.Debug("a sovereign member did not sign a federation view", "member", node, "err", err)
					return
				}
				mu.Lock()
				sigs = append(sigs, fsm.ViewSignature{Node: node, Signature: out.Signature})
				mu.Unlock()
			}(string(sv.ID), string(sv.Address))
		}
		wg.Wait()
	}
	sort.Slice(sigs, func(i, j int) bool { return sigs[i].Node < sigs[j].Node })
	u.Signatures = sigs
}

type fedSignResponse struct {
	Signature []byte `codec:"signature"`
}

// serveSign signs, for a member of its own kernel, a renewal of this
// node's own domain (on a domain) or a federation view (on the
// sovereign); it signs nothing else.
func (n *Node) serveSign(ctx context.Context, peer string, body []byte) ([]byte, error) {
	if n.fed == nil || (n.cfg.Role != fsm.RoleDomain && n.cfg.Role != fsm.RoleSovereign) {
		return nil, errors.New("not a federation kernel")
	}
	if n.tls != nil && !n.isMember(peer) {
		return nil, fmt.Errorf("signing refused: %q is not a member of this kernel", peer)
	}
	var req fedSignRequest
	if err := fsm.Decode(body, &req); err != nil {
		return nil, err
	}
	if n.cfg.Role == fsm.RoleSovereign {
		if req.View == nil || req.Domain == "" {
			return nil, errors.New("signing refused: the sovereign signs federation views only")
		}
		return fsm.Encode(&fedSignResponse{Signature: ed25519.Sign(n.fed.key, fsm.FedUpdateMessage(req.Domain, req.View))}), nil
	}
	msg, ok := bytes.CutPrefix(req.Message, []byte(renewContext))
	var r FedRenewRequest
	if !ok || json.Unmarshal(msg, &r) != nil || r.Domain != n.cfg.Domain || r.Signature != "" || r.NodeKey != hex.EncodeToString(n.NodePublicKey()) {
		return nil, errors.New("signing refused: not a renewal of this domain naming this node's key")
	}
	return fsm.Encode(&fedSignResponse{Signature: ed25519.Sign(n.fed.key, req.Message)}), nil
}

// isMember reports whether node is in this kernel's Raft configuration.
func (n *Node) isMember(node string) bool {
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == node {
				return true
			}
		}
	}
	return false
}
