package kernel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/canon"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/passport"
)

func (n *Node) registerFederation(open func(string, http.HandlerFunc), authed func(string, httpedge.Handler, ...string)) {
	// Authenticated by the join token, a node signature or an operator
	// signature rather than a bearer token.
	open("POST /v1/federation/join", n.handleFedJoin)
	open("POST /v1/federation/renew", n.handleFedRenew)
	open("POST /v1/canon/amendments/{id}/sign", n.handleAmendSign)
	open("POST /v1/federation/resume", n.handleFedResume)
	open("GET /v1/canon", n.handleCanonShow)
	open("GET /v1/federation/halt", n.handleFedHaltState)
	open("POST /v1/operators/{name}/rekey", n.handleOperatorRekey)
	open("GET /v1/federation/keys", n.handleFedKeys)
	open("POST /v1/federation/keys/rotate", n.handleFedKeysRotate)

	authed("POST /v1/federation/domains", n.handleDomainCreate)
	authed("GET /v1/federation/domains", n.handleDomainList, fsm.OpAuditRead)
	authed("GET /v1/passports", n.handlePassportList, fsm.OpAuditRead)
	authed("GET /v1/passports/{id}", n.handlePassportInspect, fsm.OpAuditRead)
	authed("POST /v1/passports/{id}/revoke", Command(n, fsm.CmdFedPassportRevoke, pathCommand(func(id string) any { return &fsm.FedPassportRevoke{ID: id} }), answerID))
	authed("POST /v1/canon/amendments", Command(n, fsm.CmdFedAmendPropose,
		func(_ *http.Request, req *api.AmendProposeRequest) (any, error) {
			return &fsm.FedAmendPropose{Text: req.Text}, nil
		},
		func(_ *http.Request, _ *api.AmendProposeRequest, res fsm.Result) any {
			return api.AmendResponse{Outcome: httpedge.Outcome(res), ID: res.ID, State: fsm.AmendPending}
		}))
	authed("POST /v1/canon/amendments/{id}/veto", Command(n, fsm.CmdFedAmendVeto, pathCommand(func(id string) any { return &fsm.FedAmendVeto{ID: id} }),
		func(r *http.Request, _ *struct{}, res fsm.Result) any {
			id := r.PathValue("id")
			return api.AmendResponse{Outcome: httpedge.Outcome(res), ID: id, State: n.amendState(id)}
		}))
	authed("POST /v1/federation/halt", Command(n, fsm.CmdFedHalt,
		func(_ *http.Request, req *api.FedHaltRequest) (any, error) {
			return &fsm.FedHaltCmd{Reason: req.Reason}, nil
		},
		func(_ *http.Request, _ *api.FedHaltRequest, res fsm.Result) any {
			return api.FedHaltResponse{Outcome: httpedge.Outcome(res), HaltID: res.ID}
		}))
	authed("GET /v1/federation/witness", n.handleWitnessList, fsm.OpAuditRead)
	authed("GET /v1/bus", n.handleBusStats, fsm.OpAuditRead)
	authed("GET /v1/bus/{dest}/{seq}", n.handleBusEvent)
}

func errNotRole(role string) error {
	return &httpedge.Error{Code: api.CodeBadRequest, Msg: "this endpoint needs a " + role + " kernel"}
}

// handleInit seals genesis: standalone, sovereign (named operators) or
// domain (join token).
func (n *Node) handleInit(w http.ResponseWriter, r *http.Request) {
	var req api.OperatorInitRequest
	if r.ContentLength != 0 {
		if err := httpedge.DecodeBody(r, &req); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	var ir InitResult
	var err error
	var opTokens []api.OperatorToken
	switch n.cfg.Role {
	case fsm.RoleSovereign:
		opTokens, ir, err = n.initSovereign(r.Context(), req)
	case fsm.RoleDomain:
		if req.Protocol != 0 {
			err = httpedge.BadRequest("a domain's protocol is the federation's: it is set on the sovereign")
		} else {
			ir, err = n.InitializeDomain(r.Context(), req.JoinToken)
		}
	default:
		if len(req.Operators) > 0 || req.JoinToken != "" {
			err = httpedge.BadRequest("operators and join tokens belong to federated kernels (--role sovereign|domain)")
		} else {
			ir, err = n.InitAt(r.Context(), req.Protocol)
		}
	}
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	var kid string
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { kid = l.State().Meta.KernelID })
	res := ir.Result
	httpedge.WriteJSON(w, http.StatusOK, api.OperatorInitResponse{
		InitResponse: api.InitResponse{RootToken: ir.RootToken, JoinSecret: ir.JoinSecret, KernelID: kid, Head: api.Head{Seq: res.Seq, Hash: hex.EncodeToString(res.Head[:])}},
		Operators:    opTokens,
	})
}

func (n *Node) initSovereign(ctx context.Context, req api.OperatorInitRequest) ([]api.OperatorToken, InitResult, error) {
	if len(req.Operators) == 0 || req.Threshold < 1 || req.Threshold > len(req.Operators) {
		return nil, InitResult{}, httpedge.BadRequest("a sovereign needs named operators and a threshold M with 1 <= M <= N")
	}
	var ops []fsm.GenesisOperator
	var toks []api.OperatorToken
	for _, o := range req.Operators {
		pub, err := hex.DecodeString(o.PubKey)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, InitResult{}, httpedge.BadRequest("operator %q: pub_key must be a hex Ed25519 public key", o.Name)
		}
		tok, th, err := newToken("dmo_")
		if err != nil {
			return nil, InitResult{}, err
		}
		ops = append(ops, fsm.GenesisOperator{Name: o.Name, TokenHash: th, PubKey: pub, Level: o.Level})
		toks = append(toks, api.OperatorToken{Name: o.Name, Token: tok})
	}
	protocol, err := n.genesisProtocol(ctx, req.Protocol)
	if err != nil {
		return nil, InitResult{}, err
	}
	var kid [8]byte
	if _, err := rand.Read(kid[:]); err != nil {
		return nil, InitResult{}, err
	}
	r, err := n.genesis(ctx, "sovereign-"+hex.EncodeToString(kid[:]), ops, req.Threshold, protocol)
	if err != nil {
		return nil, r, err
	}
	return toks, r, nil
}

// fedStatus fills the federation part of Status (under the FSM lock).
func fedStatus(st *fsm.State, s *api.Status) {
	s.Role = st.Meta.Role
	if st.Fed == nil {
		return
	}
	s.CanonVersion = st.Fed.Canon.Version
	if st.Fed.Halt != nil {
		s.Halted, s.FedHalted = true, true
	}
	if p, err := passport.Decode(st.Fed.Passport); err == nil {
		s.Passport = &api.PassportRef{ID: p.ID, Expires: time.Unix(0, p.Expires).UTC()}
	}
}

// sovereignService is the prelude of the sovereign's services to domains:
// decode the request, and answer only as the sovereign's leader, after a
// linearizable read (signing needs the leader's key and current state).
func (n *Node) sovereignService(w http.ResponseWriter, r *http.Request, req any) bool {
	err := httpedge.DecodeBody(r, req)
	switch {
	case err != nil:
	case n.cfg.Role != fsm.RoleSovereign || n.fed == nil:
		err = errNotRole("sovereign")
	default:
		if err = n.requireLeader(); err == nil {
			err = n.ConsistentRead(r.Context())
		}
	}
	if err != nil {
		httpedge.WriteErr(w, err)
		return false
	}
	return true
}

func (n *Node) requireLeader() error {
	if n.raft.State() != raft.Leader {
		addr, id := n.raft.LeaderWithID()
		return &httpedge.Error{Code: api.CodeUnavailable, Msg: fmt.Sprintf("not the leader; the leader is %s (%s)", id, addr)}
	}
	return nil
}

func (n *Node) handleFedJoin(w http.ResponseWriter, r *http.Request) {
	var req FedJoinRequest
	if !n.sovereignService(w, r, &req) {
		return
	}
	ctx := r.Context()
	th := hex.EncodeToString(TokenHash(req.JoinToken))
	var d fsm.DomainRecord
	var found, revoked bool
	var cur passport.Passport
	var issuer string
	var protocol uint16
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		if rec := f.Domains[req.Domain]; rec != nil {
			d, found = *rec, true
			cur, _ = passport.Decode(rec.Passport)
			revoked = rec.Revoked || f.IsRevoked(cur.ID)
		}
		issuer = st.Meta.KernelID
		protocol = st.Meta.Protocol
	})
	if !found || d.JoinTokenHash != th {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeUnauthorized, Msg: "unknown domain or join token"})
		return
	}
	if d.KernelID != "" {
		// The token is spent: only the joined kernel itself, signing with
		// a node key of its passport, gets its view (and keys) again.
		if err := n.checkJoinRepeat(&req, &d, cur, revoked); err != nil {
			metricInc("federation.join.refused")
			httpedge.WriteErr(w, err)
			return
		}
	}
	if req.ProtocolSupport != 0 && req.ProtocolSupport < protocol {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("this federation runs protocol %d and the domain's voters implement protocols only up to %d: upgrade their binaries first", protocol, req.ProtocolSupport)})
		return
	}
	n.fed.setDomainSupport(req.Domain, req.ProtocolSupport)
	if d.KernelID == "" {
		var keys [][]byte
		for _, k := range req.NodeKeys {
			b, err := hex.DecodeString(k)
			if err != nil || len(b) != ed25519.PublicKeySize {
				httpedge.WriteErr(w, httpedge.BadRequest("node keys must be hex Ed25519 public keys"))
				return
			}
			keys = append(keys, b)
		}
		if len(keys) == 0 || len(keys) > passport.MaxNodeKeys {
			httpedge.WriteErr(w, httpedge.BadRequest("1..%d node keys required", passport.MaxNodeKeys))
			return
		}
		if err := n.fed.ensureMaster(ctx); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		if _, err := n.fed.ensureSigner(ctx); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		b, _ := n.fed.issuePassport(&d, keys, issuer, d.CreatedBy)
		if err := n.applyInternal(ctx, "join", fsm.CmdFedJoin, fsm.Encode(&fsm.FedJoin{
			Domain: req.Domain, JoinTokenHash: TokenHash(req.JoinToken), KernelID: req.KernelID, Passport: b, BusAddrs: req.BusAddrs, Protocol: protocol})); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	n.answerView(w, r, req.Domain)
}

// checkJoinRepeat authenticates a join request for a domain that has
// already redeemed its token: it must come from the same kernel, be signed
// by a node key of the domain's current passport within the renewal
// bound, and the domain must be neither revoked nor suspended.
func (n *Node) checkJoinRepeat(req *FedJoinRequest, d *fsm.DomainRecord, cur passport.Passport, revoked bool) error {
	if d.KernelID != req.KernelID {
		return &httpedge.Error{Code: api.CodeForbidden, Msg: "join token already redeemed by another kernel"}
	}
	if req.Signature == "" {
		return &httpedge.Error{Code: api.CodeUnauthorized, Msg: "join token already redeemed: a repeated join must be signed by a node key of the domain's passport"}
	}
	nodeKey, err := n.checkDomainSigned("join", "federation.join.bad_signature", req.NodeKey, req.Signature, req.signingBytes(), req.SentAt)
	switch {
	case err != nil:
		return err
	case !passport.HasNodeKey(cur, nodeKey):
		return &httpedge.Error{Code: api.CodeUnauthorized, Msg: "join signed by a key outside the domain's passport"}
	case revoked:
		return &httpedge.Error{Code: api.CodeForbidden, Msg: "passport " + cur.ID + " is revoked"}
	case d.Suspended:
		return &httpedge.Error{Code: api.CodeForbidden, Msg: "domain is suspended: " + d.SuspendReason}
	}
	return nil
}

// checkDomainSigned verifies a domain's signed request (what: "join",
// "renewal"): the hex Ed25519 signature by the hex node key over msg, sent
// within two minutes of this node's clock; a bad signature is counted
// under metric. It returns the node key.
func (n *Node) checkDomainSigned(what, metric, nodeKeyHex, sigHex string, msg []byte, sentAt int64) (ed25519.PublicKey, error) {
	nodeKey, err := hex.DecodeString(nodeKeyHex)
	sig, serr := hex.DecodeString(sigHex)
	if err != nil || serr != nil || len(nodeKey) != ed25519.PublicKeySize || !ed25519.Verify(nodeKey, msg, sig) {
		metricInc(metric)
		return nil, &httpedge.Error{Code: api.CodeUnauthorized, Msg: what + " signature does not verify"}
	}
	if d := n.now().Sub(time.Unix(0, sentAt)); d > 2*time.Minute || d < -2*time.Minute {
		return nil, &httpedge.Error{Code: api.CodeUnauthorized, Msg: what + " request is stale or from the future"}
	}
	return nodeKey, nil
}

func (n *Node) answerView(w http.ResponseWriter, r *http.Request, domain string) {
	// Member addresses come from RPCs: gather them before taking the FSM
	// read lock.
	_, sovAddrs := n.memberKeys(r.Context())
	var view FedView
	var err error
	if _, err := n.fed.ensureSigner(r.Context()); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	n.fedState(func(st *fsm.State, f *fsm.FedState) { view, err = n.fed.view(st, f, domain, sovAddrs) })
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	n.fed.signView(r.Context(), &view.Update, domain)
	httpedge.WriteJSON(w, http.StatusOK, view)
}

func (n *Node) handleFedRenew(w http.ResponseWriter, r *http.Request) {
	var req FedRenewRequest
	if !n.sovereignService(w, r, &req) {
		return
	}
	ctx := r.Context()
	nodeKey, err := n.checkDomainSigned("renewal", "federation.renew.bad_signature", req.NodeKey, req.Signature, req.signingBytes(), req.SentAt)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	now := n.now()
	var d fsm.DomainRecord
	var found, revoked bool
	var cur passport.Passport
	var issuer string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		if rec := f.Domains[req.Domain]; rec != nil {
			d, found = *rec, true
			cur, _ = passport.Decode(rec.Passport)
			revoked = rec.Revoked || f.IsRevoked(cur.ID)
		}
		issuer = st.Meta.KernelID
	})
	switch {
	case !found || d.KernelID == "" || d.KernelID != req.KernelID:
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeUnauthorized, Msg: "unknown domain kernel"})
		return
	case !passport.HasNodeKey(cur, nodeKey):
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeUnauthorized, Msg: "renewal signed by a key outside the domain's passport"})
		return
	case revoked:
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeForbidden, Msg: "passport " + cur.ID + " is revoked"})
		return
	case d.Suspended:
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeForbidden, Msg: "domain is suspended: " + d.SuspendReason})
		return
	}
	if req.CanonAck > d.CanonAck {
		if _, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedCanonAck, Payload: fsm.Encode(&fsm.FedCanonAck{Domain: d.Name, Version: req.CanonAck})}); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	if req.ProtocolSupport != 0 {
		n.fed.setDomainSupport(d.Name, req.ProtocolSupport)
	}
	if req.ProtocolAck > d.ProtocolAck {
		if _, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedProtocolAck, Payload: fsm.Encode(&fsm.FedProtocolAck{Domain: d.Name, Version: req.ProtocolAck})}); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	var keys [][]byte
	for _, k := range req.NodeKeys {
		if b, err := hex.DecodeString(k); err == nil && len(b) == ed25519.PublicKeySize {
			keys = append(keys, b)
		}
	}
	keys = passport.SortedNodeKeys(keys)
	sameKeys := len(keys) == len(cur.NodeKeys)
	for i := 0; sameKeys && i < len(keys); i++ {
		sameKeys = string(keys[i]) == string(cur.NodeKeys[i])
	}
	half := int64(n.cfg.PassportLifetime) / 2
	if len(keys) > 0 && (!sameKeys || !slices.Equal(req.BusAddrs, d.BusAddrs) || cur.Expires-now.UnixNano() < half || cur.KeyID != n.cfg.Name && !n.fed.signerKnown(cur.KeyID)) {
		if _, err := n.fed.ensureSigner(ctx); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		b, _ := n.fed.issuePassport(&d, keys, issuer, d.CreatedBy)
		if err := n.applyInternal(ctx, "renewal", fsm.CmdFedPassport, fsm.Encode(&fsm.FedPassport{Domain: d.Name, Passport: b, BusAddrs: req.BusAddrs})); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	n.answerView(w, r, req.Domain)
}

func (fd *fed) signerKnown(node string) bool {
	ok := false
	fd.n.fedState(func(_ *fsm.State, f *fsm.FedState) { _, ok = f.Signers[node] })
	return ok
}

func (n *Node) handleDomainCreate(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.DomainCreateRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	jt, th, err := newToken("dmj_")
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdFedDomainCreate, &fsm.FedDomainCreate{Name: req.Name, JoinTokenHash: th, Scopes: req.Scopes})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out := api.DomainCreateResponse{Outcome: httpedge.Outcome(res), Domain: req.Name}
	if res.Decision == fsm.DecisionPermit && !res.Duplicate {
		out.JoinToken = jt
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) handleDomainList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	out := []api.Domain{}
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		for _, d := range f.SortedDomains() {
			ad := api.Domain{Name: d.Name, KernelID: d.KernelID, Joined: d.KernelID != "", Scopes: d.Scopes, BusAddrs: d.BusAddrs,
				CanonAck: d.CanonAck, Suspended: d.Suspended, CreatedBy: d.CreatedBy}
			if p, err := passport.Decode(d.Passport); err == nil {
				ad.Passport = p.ID
			}
			out = append(out, ad)
		}
	})
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func passportToAPI(p passport.Passport, revoked, current bool) api.Passport {
	out := api.Passport{ID: p.ID, Domain: p.Domain, Serial: p.Serial, Issued: time.Unix(0, p.NotBefore).UTC(), Expires: time.Unix(0, p.Expires).UTC(),
		Revoked: revoked, Current: current, Issuer: p.Issuer, IssuedBy: p.IssuedBy, KeyID: p.KeyID, Scopes: p.Scopes, Signature: hex.EncodeToString(p.Signature)}
	for _, k := range p.NodeKeys {
		out.NodeKeys = append(out.NodeKeys, hex.EncodeToString(k))
	}
	return out
}

// passports lists the passports this kernel knows: every issued one on
// the sovereign; its own and its peers' on a domain.
func (n *Node) passports() []api.Passport {
	out := []api.Passport{}
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		if st.Meta.Role == fsm.RoleSovereign {
			current := map[string]bool{}
			for _, d := range f.SortedDomains() {
				if p, err := passport.Decode(d.Passport); err == nil {
					current[p.ID] = true
				}
			}
			for _, rec := range f.Passports {
				out = append(out, api.Passport{ID: rec.ID, Domain: rec.Domain, Serial: rec.Serial, Issued: time.Unix(0, rec.Issued).UTC(),
					Expires: time.Unix(0, rec.Expires).UTC(), Revoked: rec.Revoked || f.IsRevoked(rec.ID), Current: current[rec.ID]})
			}
			return
		}
		if p, err := passport.Decode(f.Passport); err == nil {
			out = append(out, passportToAPI(p, f.IsRevoked(p.ID), true))
		}
		for _, pr := range f.SortedPeers() {
			if p, err := passport.Decode(pr.Passport); err == nil {
				out = append(out, passportToAPI(p, f.IsRevoked(p.ID), true))
			}
		}
	})
	return out
}

func (n *Node) handlePassportList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	httpedge.WriteJSON(w, http.StatusOK, n.passports())
}

func (n *Node) handlePassportInspect(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	id := r.PathValue("id")
	var out *api.Passport
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		var cands [][]byte
		cands = append(cands, f.Passport)
		for _, d := range f.SortedDomains() {
			cands = append(cands, d.Passport)
		}
		for _, pr := range f.SortedPeers() {
			cands = append(cands, pr.Passport)
		}
		for _, b := range cands {
			if p, err := passport.Decode(b); err == nil && p.ID == id {
				a := passportToAPI(p, f.IsRevoked(p.ID), true)
				out = &a
				return
			}
		}
	})
	if out == nil {
		for _, p := range n.passports() {
			if p.ID == id {
				out = &p
				break
			}
		}
	}
	if out == nil {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "no passport " + id})
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func amendmentToAPI(a *fsm.Amendment, state string, withText bool) api.Amendment {
	out := api.Amendment{ID: a.ID, Hash: hex.EncodeToString(a.Hash), PrevHash: hex.EncodeToString(a.PrevHash), Version: a.Version,
		Proposer: a.Proposer, Expires: time.Unix(0, a.Expires).UTC(), Signers: append([]string{}, a.Signers...), State: state, VetoedBy: a.VetoedBy}
	if withText {
		out.Text = a.Text
	}
	return out
}

func (n *Node) handleCanonShow(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("consistent") {
		if err := n.ConsistentRead(r.Context()); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	out := api.Canon{Hash: canon.HashHex(), Compiled: canon.HashHex(), Amendments: []api.Amendment{}, Operators: []api.OperatorInfo{}}
	withText := r.URL.Query().Has("text")
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		out.Version, out.Hash, out.Threshold = f.Canon.Version, hex.EncodeToString(f.Canon.Hash), f.Threshold
		for _, a := range f.Amendments {
			out.Amendments = append(out.Amendments, amendmentToAPI(a, fsm.AmendmentState(a, f, n.now().UnixNano()), withText))
		}
		for _, name := range sortedKeys(f.Operators) {
			o := f.Operators[name]
			out.Operators = append(out.Operators, api.OperatorInfo{Name: o.Name, Level: o.Level, PubKey: hex.EncodeToString(o.PubKey), Revoked: o.Revoked})
		}
	})
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) amendState(id string) string {
	s := ""
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		for _, a := range f.Amendments {
			if a.ID == id {
				s = fsm.AmendmentState(a, f, n.now().UnixNano())
			}
		}
	})
	return s
}

func (n *Node) handleAmendSign(w http.ResponseWriter, r *http.Request) {
	var req api.AmendSignRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	sig, err := hex.DecodeString(req.Signature)
	if err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("signature must be hex"))
		return
	}
	id := r.PathValue("id")
	res, err := n.Apply(r.Context(), fsm.Envelope{Type: fsm.CmdFedAmendSign, Payload: fsm.Encode(&fsm.FedAmendSign{ID: id, Operator: req.Operator, Signature: sig})})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	state := n.amendState(id)
	if res.Decision == fsm.DecisionPermit && res.Version > 0 {
		state = fsm.AmendRatified // this node may not have applied it yet
	}
	httpedge.WriteJSON(w, http.StatusOK, api.AmendResponse{Outcome: httpedge.Outcome(res), ID: id, State: state, Version: res.Version})
}

func (n *Node) handleFedHaltState(w http.ResponseWriter, r *http.Request) {
	out := api.FedHaltState{}
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		out.LastHalt = f.LastHalt
		if h := f.Halt; h != nil {
			out.Halted, out.ID, out.Reason, out.By, out.Resumers = true, h.ID, h.Reason, h.By, append([]string{}, h.Resumers...)
		}
	})
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) handleFedResume(w http.ResponseWriter, r *http.Request) {
	var req api.FedResumeRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	sig, err := hex.DecodeString(req.Signature)
	if err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("signature must be hex"))
		return
	}
	res, err := n.Apply(r.Context(), fsm.Envelope{Type: fsm.CmdFedResume, Payload: fsm.Encode(&fsm.FedResume{HaltID: req.HaltID, Operator: req.Operator, Signature: sig})})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, api.FedHaltResponse{Outcome: httpedge.Outcome(res), HaltID: req.HaltID, Resumed: res.Found})
}

func (n *Node) handleWitnessList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	domain := r.URL.Query().Get("domain")
	out := []api.WitnessHead{}
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		for _, name := range sortedKeys(f.Witness) {
			if domain != "" && name != domain {
				continue
			}
			for _, wr := range f.Witness[name] {
				out = append(out, api.WitnessHead{Domain: wr.Domain, Seq: wr.Seq, Hash: hex.EncodeToString(wr.Hash), Time: time.Unix(0, wr.Time).UTC(), Node: wr.Node})
			}
		}
	})
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func busEventToAPI(e *fsm.OutEvent) api.BusEvent {
	out := api.BusEvent{ID: e.ID, Dest: e.Dest, Seq: e.Seq, Entity: e.Entity, Op: e.Op, Resource: e.Resource, Status: e.Status}
	if e.Status != fsm.BusStatePending {
		out.Remote = &api.RemoteRes{Decision: e.Remote.Decision.JSON(), Reason: e.Remote.Reason.String(), Seq: e.Remote.Seq,
			Result: string(e.Remote.Value), Found: e.Remote.Found}
	}
	return out
}

// handleBusEvent shows one outbox event: to the entity that made it, or
// to an auditor (audit.read covering the event's id), whose scope is
// checked on confirmed state.
func (n *Node) handleBusEvent(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	id := r.PathValue("dest") + "/" + r.PathValue("seq")
	if _, err := strconv.ParseUint(r.PathValue("seq"), 10, 64); err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("seq must be a number"))
		return
	}
	if r.URL.Query().Has("consistent") {
		if err := n.ConsistentRead(r.Context()); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	c := &caller.Cap
	event := func() (out *api.BusEvent, own bool) {
		n.fedState(func(_ *fsm.State, f *fsm.FedState) {
			if e := f.OutEventByID(id); e != nil {
				a := busEventToAPI(e)
				out, own = &a, c != nil && e.Entity == c.Entity
			}
		})
		return out, own
	}
	out, own := event()
	if !own {
		if err := n.confirmState(r.Context()); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		if out, _ = event(); n.scopeErr(caller.Token, fsm.OpAuditRead, id) != nil {
			out = nil
		}
	}
	if out == nil {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "no bus event " + id + " visible to this token"})
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) handleBusStats(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	out := api.BusStats{Rejected: map[string]uint64{}}
	if n.fed != nil && n.fed.bus != nil {
		st := n.fed.bus.Stats()
		out.Addr = n.fed.bus.Addr().String()
		out.Accepted = st.FramesIn
		for k, v := range st.Rejected {
			out.Rejected[string(k)] = v
		}
	}
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		for _, e := range f.Outbox {
			if e.Status == fsm.BusStatePending {
				out.Pending++
			} else {
				out.Delivered++
			}
		}
	})
	if n.fed != nil {
		out.KeyEpoch = n.fed.keyEpoch()
		out.ReplayDropped = n.fed.windows.dropped.Load()
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// handleFedKeys shows the sovereign's key epoch and the signatures
// gathered for the next one.
func (n *Node) handleFedKeys(w http.ResponseWriter, r *http.Request) {
	if n.cfg.Role != fsm.RoleSovereign {
		httpedge.WriteErr(w, errNotRole("sovereign"))
		return
	}
	if r.URL.Query().Has("consistent") {
		if err := n.ConsistentRead(r.Context()); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
	}
	out := api.FedKeys{Pending: []string{}}
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		out.KernelID, out.KeyEpoch, out.Threshold = st.Meta.KernelID, f.CurrentKeyEpoch(), f.Threshold
		out.Pending = append(out.Pending, f.PendingKeySigners()...)
		if k := f.Keys; k != nil && k.Epoch > 0 {
			out.Since, out.By = time.Unix(0, k.Since).UTC(), k.By
		}
	})
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// handleFedKeysRotate submits one operator's signature to move the key
// epoch on; the signature is the authority, checked by the ledger.
func (n *Node) handleFedKeysRotate(w http.ResponseWriter, r *http.Request) {
	var req api.KeyRotateRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if n.cfg.Role != fsm.RoleSovereign {
		httpedge.WriteErr(w, errNotRole("sovereign"))
		return
	}
	sig, err := hex.DecodeString(req.Signature)
	if err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("signature must be hex"))
		return
	}
	res, err := n.Apply(r.Context(), fsm.Envelope{Type: fsm.CmdFedKeysSign, Payload: fsm.Encode(&fsm.FedKeysSign{Epoch: req.Epoch, Operator: req.Operator, Signature: sig})})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out := api.KeyRotateResponse{Outcome: httpedge.Outcome(res), Rotated: res.Found, Pending: []string{}}
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		out.KeyEpoch = f.CurrentKeyEpoch()
		out.Pending = append(out.Pending, f.PendingKeySigners()...)
	})
	if res.Found {
		out.KeyEpoch = max(out.KeyEpoch, res.Version) // this node may not have applied it yet
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) handleOperatorRekey(w http.ResponseWriter, r *http.Request) {
	var req api.RekeyRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	name := r.PathValue("name")
	newKey, err := hex.DecodeString(req.NewPubKey)
	if err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("new_pub_key must be hex"))
		return
	}
	p := fsm.FedOperatorRekey{Operator: name, NewPubKey: newKey}
	for _, sg := range req.Signatures {
		sig, err := hex.DecodeString(sg.Signature)
		if err != nil {
			httpedge.WriteErr(w, httpedge.BadRequest("signature of %q must be hex", sg.Operator))
			return
		}
		p.Signatures = append(p.Signatures, fsm.OperatorSignature{Operator: sg.Operator, Signature: sig})
	}
	res, err := n.Apply(r.Context(), fsm.Envelope{Type: fsm.CmdFedOperatorRekey, Payload: fsm.Encode(&p)})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, api.GrantResponse{Outcome: httpedge.Outcome(res), ID: name})
}
