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
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/passport"
	"github.com/dominus-kernel/dominus/transport"
)

// FedJoinRequest is what a domain presents to the sovereign to redeem its
// join token.
type FedJoinRequest struct {
	Domain    string   `json:"domain"`
	JoinToken string   `json:"join_token"`
	KernelID  string   `json:"kernel_id"`
	NodeKeys  []string `json:"node_keys"` // hex
	BusAddrs  []string `json:"bus_addrs"`
	// ProtocolSupport is the newest protocol every voter of the domain
	// implements (0: unknown).
	ProtocolSupport uint16 `json:"protocol_support,omitempty"`
	// The token is single-use: once the domain has joined, a repeated
	// join (a retried init) must be signed by a node key of its current
	// passport (signingBytes) and sent within two minutes.
	SentAt    int64  `json:"sent_at,omitempty"`
	NodeKey   string `json:"node_key,omitempty"`
	Signature string `json:"signature,omitempty"`
}

const joinContext = "dominus-join-v1\x00"

func (r *FedJoinRequest) signingBytes() []byte {
	c := *r
	c.Signature = ""
	b, _ := json.Marshal(&c)
	return append([]byte(joinContext), b...)
}

// FedRenewRequest is a domain leader's periodic renewal, signed by one of
// the node keys of its current passport.
type FedRenewRequest struct {
	Domain   string   `json:"domain"`
	KernelID string   `json:"kernel_id"`
	NodeKeys []string `json:"node_keys"`
	BusAddrs []string `json:"bus_addrs"`
	CanonAck uint64   `json:"canon_ack"`
	// ProtocolAck is the protocol the domain runs; ProtocolSupport the
	// newest every voter of it implements (0: unknown).
	ProtocolAck     uint16 `json:"protocol_ack,omitempty"`
	ProtocolSupport uint16 `json:"protocol_support,omitempty"`
	SentAt          int64  `json:"sent_at"`
	NodeKey         string `json:"node_key"`
	Signature       string `json:"signature"`
}

const renewContext = "dominus-renew-v1\x00"

func (r *FedRenewRequest) signingBytes() []byte {
	c := *r
	c.Signature = ""
	b, _ := json.Marshal(&c)
	return append([]byte(renewContext), b...)
}

func (n *Node) identify(ctx context.Context, addr string) (identifyResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var id identifyResponse
	err := n.pool.call(ctx, addr, rpcIdentify, &struct{}{}, &id)
	return id, err
}

// memberKeys gathers the public keys and bus addresses of this kernel's
// members.
func (n *Node) memberKeys(ctx context.Context) (keys [][]byte, busAddrs []string) {
	keys = append(keys, n.NodePublicKey())
	if n.cfg.BusAddr != "" {
		busAddrs = append(busAddrs, n.cfg.BusAddr)
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == n.cfg.Name {
				continue
			}
			if id, err := n.identify(ctx, string(s.Address)); err == nil {
				if len(id.NodeKey) == ed25519.PublicKeySize {
					keys = append(keys, id.NodeKey)
				}
				if id.BusAddr != "" {
					busAddrs = append(busAddrs, id.BusAddr)
				}
			}
		}
	}
	sort.Strings(busAddrs)
	return passport.SortedNodeKeys(keys), busAddrs
}

// postSovereign POSTs body to the first sovereign URL that answers as
// leader and decodes the answer into out.
func (fd *fed) postSovereign(ctx context.Context, path string, body, out any) error {
	n := fd.n
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var lastErr error = errors.New("no sovereign URL configured")
	for _, base := range n.cfg.SovereignURLs {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := fd.httpc.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxFedBody))
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("sovereign %s: %s: %s", base, resp.Status, strings.TrimSpace(string(data)))
			if resp.StatusCode >= 500 || resp.StatusCode == http.StatusMisdirectedRequest {
				continue
			}
			return lastErr
		}
		return json.Unmarshal(data, out)
	}
	return lastErr
}

// kernelIDPath persists the kernel id a domain redeems its token under, so
// a retried init is the same kernel to the sovereign.
func (n *Node) pendingKernelID() (string, error) {
	path := filepath.Join(n.cfg.DataDir, "federation.kernel-id")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var kid [8]byte
	if _, err := rand.Read(kid[:]); err != nil {
		return "", err
	}
	id := "kernel-" + hex.EncodeToString(kid[:])
	return id, writeSecretFile(path, []byte(id))
}

// InitDomain joins the federation with a join token and seals this
// domain's genesis. It returns the domain-sovereign root token.
func (n *Node) InitDomain(ctx context.Context, joinToken string) (string, fsm.Result, error) {
	r, err := n.InitializeDomain(ctx, joinToken)
	return r.RootToken, r.Result, err
}

// InitializeDomain is InitDomain with the join secret.
func (n *Node) InitializeDomain(ctx context.Context, joinToken string) (InitResult, error) {
	if n.cfg.Role != fsm.RoleDomain || n.fed == nil {
		return InitResult{}, httpedge.BadRequest("this kernel is not a domain kernel (--role domain)")
	}
	if joinToken == "" {
		joinToken = n.cfg.JoinToken
	}
	if joinToken == "" {
		return InitResult{}, httpedge.BadRequest("a join token is required (--join-token)")
	}
	var initialized bool
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { initialized = l.State().Initialized })
	if initialized {
		return InitResult{}, ErrAlreadyInit
	}
	kid, err := n.pendingKernelID()
	if err != nil {
		return InitResult{}, err
	}
	req := n.joinRequest(ctx, joinToken, kid)
	var view FedView
	if err := n.fed.postSovereign(ctx, "/v1/federation/join", &req, &view); err != nil {
		return InitResult{}, &httpedge.Error{Code: "federation_join_failed", Msg: err.Error()}
	}
	if err := n.fed.setSecrets(fedSecrets{Links: view.Links, KeyEpoch: view.KeyEpoch}); err != nil {
		return InitResult{}, err
	}
	// The domain starts under the federation's protocol (a sovereign
	// from before protocol upgrades names none).
	protocol, err := n.genesisProtocol(ctx, view.Protocol)
	if err != nil {
		return InitResult{}, err
	}
	r, err := n.genesis(ctx, kid, nil, 0, protocol)
	if err != nil {
		return r, err
	}
	if err := n.fed.applyUpdate(ctx, view.Update); err != nil {
		return r, fmt.Errorf("recording the federation view: %w", err)
	}
	return r, nil
}

// joinRequest builds this domain's join request under kernel id kid,
// signed with this node's key: the sovereign ignores the signature at the
// first redeem of the token and requires it of a repeat (a retried init),
// which it answers only if this node's key is in the passport the first
// redeem issued.
func (n *Node) joinRequest(ctx context.Context, joinToken, kid string) FedJoinRequest {
	keys, addrs := n.memberKeys(ctx)
	req := FedJoinRequest{Domain: n.cfg.Domain, JoinToken: joinToken, KernelID: kid, BusAddrs: addrs, ProtocolSupport: n.domainVoterSupport(ctx),
		SentAt: n.now().UnixNano(), NodeKey: hex.EncodeToString(n.NodePublicKey())}
	for _, k := range keys {
		req.NodeKeys = append(req.NodeKeys, hex.EncodeToString(k))
	}
	req.Signature = hex.EncodeToString(ed25519.Sign(n.fed.key, req.signingBytes()))
	return req
}

func (fd *fed) applyUpdate(ctx context.Context, u fsm.FedUpdate) error {
	b := fsm.Encode(&u)
	fd.mu.Lock()
	same := bytes.Equal(b, fd.lastUpd)
	fd.mu.Unlock()
	if same {
		return nil
	}
	if err := fd.n.applyInternal(ctx, "federation update", fsm.CmdFedUpdate, b); err != nil {
		return err
	}
	fd.mu.Lock()
	fd.lastUpd = b
	fd.mu.Unlock()
	return nil
}

// renew asks the sovereign for a fresh passport and view.
func (fd *fed) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*fedRequestTimeout)
	defer cancel()
	req, err := fd.renewRequest(ctx)
	if err != nil {
		return err
	}
	var view FedView
	if err := fd.postSovereign(ctx, "/v1/federation/renew", &req, &view); err != nil {
		return err
	}
	// The keys of the sovereign's current key epoch replace the held ones.
	if err := fd.setSecrets(fedSecrets{Links: view.Links, KeyEpoch: view.KeyEpoch}); err != nil {
		return err
	}
	fd.protocolForVoters(ctx, &view.Update)
	return fd.applyUpdate(ctx, view.Update)
}

// renewRequest builds this domain's signed renewal.
func (fd *fed) renewRequest(ctx context.Context) (FedRenewRequest, error) {
	n := fd.n
	var kid string
	var ack uint64
	var protocol uint16
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		kid, ack, protocol = st.Meta.KernelID, f.Canon.Version, st.Meta.Protocol
	})
	keys, addrs := n.memberKeys(ctx)
	req := FedRenewRequest{Domain: n.cfg.Domain, KernelID: kid, BusAddrs: addrs, CanonAck: ack, SentAt: n.now().UnixNano(),
		ProtocolAck: protocol, ProtocolSupport: n.domainVoterSupport(ctx), NodeKey: hex.EncodeToString(n.NodePublicKey())}
	for _, k := range keys {
		req.NodeKeys = append(req.NodeKeys, hex.EncodeToString(k))
	}
	err := fd.signRenewal(ctx, &req)
	return req, err
}

// signRenewal signs req with a key the sovereign accepts: this node's
// when the domain's passport lists it, else that of a member it lists (a
// node that joined after the last renewal may lead before its key is in
// the passport; the renewal then adds it).
func (fd *fed) signRenewal(ctx context.Context, req *FedRenewRequest) error {
	n := fd.n
	var listed [][]byte
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		if p, err := passport.Decode(f.Passport); err == nil {
			listed = p.NodeKeys
		}
	})
	own := n.NodePublicKey()
	if passport.HasNodeKey(passport.Passport{NodeKeys: listed}, own) || len(listed) == 0 {
		req.NodeKey = hex.EncodeToString(own)
		req.Signature = hex.EncodeToString(ed25519.Sign(fd.key, req.signingBytes()))
		return nil
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			if string(sv.ID) == n.cfg.Name {
				continue
			}
			id, err := n.identify(ctx, string(sv.Address))
			if err != nil || !passport.HasNodeKey(passport.Passport{NodeKeys: listed}, id.NodeKey) {
				continue
			}
			req.NodeKey = hex.EncodeToString(id.NodeKey)
			var out fedSignResponse
			if err := n.pool.call(ctx, string(sv.Address), rpcFedSign, &fedSignRequest{Message: req.signingBytes()}, &out); err != nil {
				continue
			}
			req.Signature = hex.EncodeToString(out.Signature)
			return nil
		}
	}
	return errors.New("no member whose key the passport lists could sign the renewal")
}

// witness reports this domain's signed head to the sovereign over the bus.
func (fd *fed) witness(ctx context.Context) error {
	n := fd.n
	var w fsm.FedWitness
	var ppID string
	var addrs []string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		w = fsm.FedWitness{Domain: st.Meta.Domain, Seq: st.Seq, Hash: append([]byte(nil), st.Head[:]...), Node: n.cfg.Name}
		if p, err := passport.Decode(f.Passport); err == nil {
			ppID = p.ID
		}
		if s := f.Peers[fsm.SovereignKernel]; s != nil {
			addrs = s.BusAddrs
		}
	})
	if ppID == "" || w.Seq == 0 {
		return nil
	}
	w.NodeKey = n.NodePublicKey()
	w.Signature = ed25519.Sign(fd.key, fsm.WitnessMessage(w.Domain, w.Seq, w.Hash))
	seq := uint64(n.now().UnixNano()) // witness frames carry a time-ordered sequence; the ledger dedups by head
	_, _, err := fd.send(ctx, fsm.SovereignKernel, addrs, transport.Frame{
		Seq: seq, PassportID: ppID, Type: "witness", Payload: fsm.Encode(&w),
	})
	return err
}

// ackCanon acknowledges, over the bus, a canon version this domain has
// recorded and not yet acknowledged: the amendment takes effect here as
// this kernel records it, and the sovereign counts the acknowledgement
// against the suspension deadline. (Renewals carry it too.)
func (fd *fed) ackCanon(ctx context.Context) error {
	n := fd.n
	var version uint64
	var ppID, domain string
	var addrs []string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		version, domain = f.Canon.Version, st.Meta.Domain
		if p, err := passport.Decode(f.Passport); err == nil {
			ppID = p.ID
		}
		if s := f.Peers[fsm.SovereignKernel]; s != nil {
			addrs = s.BusAddrs
		}
	})
	fd.mu.Lock()
	done := version <= fd.acked
	fd.mu.Unlock()
	if done || ppID == "" {
		return nil
	}
	_, _, err := fd.send(ctx, fsm.SovereignKernel, addrs, transport.Frame{
		Seq: uint64(n.now().UnixNano()), PassportID: ppID, Type: "canon.ack", Payload: fsm.Encode(&fsm.FedCanonAck{Domain: domain, Version: version}),
	})
	if err != nil {
		return err
	}
	fd.mu.Lock()
	fd.acked = max(fd.acked, version)
	fd.mu.Unlock()
	return nil
}
