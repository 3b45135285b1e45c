package kernel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// Membership: who may enter this kernel's Raft configuration, and the
// ledger's record of its members (fsm/members.go).
//
//   - Before genesis, nodes of this kernel (their certificates say so)
//     form the cluster with --bootstrap-expect and join freely: there is
//     nothing to protect yet.
//   - Genesis seals the hash of a join secret, printed once by operator
//     init, and the node keys of the voters the leader reached. After it, a
//     node not in the configuration joins only with --join-secret, or by
//     name and address after an operator's `operator raft add-peer`
//     (operator.manage; ledgered as member.admit).
//   - The leader keeps the ledger's member table in step with the Raft
//     configuration (reconcileMembers): it records each new member's node
//     key (from the identify RPC, over mutual TLS with a certificate of
//     this kernel) and each removal.

// reconcileEvery bounds how often the leader compares the configuration
// with the ledger's member table.
const reconcileEvery = 2 * time.Second

// newJoinSecret makes a kernel's join secret; only its hash is proposed.
func newJoinSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "dms_" + hex.EncodeToString(b[:]), nil
}

// genesisMembers are the members the leader can reach now, with their
// node keys and addresses.
func (n *Node) genesisMembers(ctx context.Context) []fsm.GenesisMember {
	var out []fsm.GenesisMember
	f := n.raft.GetConfiguration()
	if f.Error() != nil || len(f.Configuration().Servers) == 0 {
		// Not bootstrapped yet (an init that waits for the first
		// election): this node at least; the leader records the others.
		return []fsm.GenesisMember{{Node: n.cfg.Name, PubKey: n.NodePublicKey(), Addr: n.cfg.BindAddr}}
	}
	for _, s := range f.Configuration().Servers {
		m := fsm.GenesisMember{Node: string(s.ID), Addr: string(s.Address), NonVoter: s.Suffrage != raft.Voter}
		if string(s.ID) == n.cfg.Name {
			m.PubKey = n.NodePublicKey()
		} else if id, err := n.identify(ctx, string(s.Address)); err == nil && id.Name == string(s.ID) && len(id.NodeKey) == ed25519.PublicKeySize {
			m.PubKey = id.NodeKey
		} else {
			continue // the leader records it once it answers (reconcileMembers)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// admitJoin decides whether a node that asks to join may enter the
// configuration.
func (n *Node) admitJoin(req joinRequest) error {
	var init, secretOK, admitted bool
	var admittedAddr string
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		init = st.Initialized
		secretOK = st.CheckJoinSecret(req.JoinSecret)
		if m := st.Member(req.Name); m != nil && !m.Removed && m.Admitted != "" {
			admitted, admittedAddr = true, m.Addr
		}
	})
	switch {
	case !init || secretOK:
		return nil
	case admitted && admittedAddr == req.BindAddr:
		return nil
	case admitted:
		return &httpedge.Error{Code: api.CodeForbidden, Msg: fmt.Sprintf("join refused: %s was admitted at %s, not %s", req.Name, admittedAddr, req.BindAddr)}
	case n.inConfiguration(req.Name, req.BindAddr):
		return nil // a member rejoining from an empty data dir at its own address
	case req.JoinSecret != "":
		metricInc("rpc.join_secret_refused")
		return &httpedge.Error{Code: api.CodeForbidden, Msg: "join refused: the join secret is not this kernel's"}
	}
	return &httpedge.Error{Code: api.CodeForbidden, Msg: fmt.Sprintf("join refused: this kernel is initialized; start %s with --join-secret (printed by operator init), or admit it first: dominus operator raft add-peer %s %s", req.Name, req.Name, req.BindAddr)}
}

// inConfiguration reports whether node is in the Raft configuration at
// addr.
func (n *Node) inConfiguration(node, addr string) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == node && string(s.Address) == addr {
			return true
		}
	}
	return false
}

// reconcileMembers records in the ledger the node keys of configuration
// members it lacks and the removal of members that left (leader only).
func (n *Node) reconcileMembers(ctx context.Context) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	type known struct {
		key      []byte
		addr     string
		nonVoter bool
		removed  bool
		admitted string
	}
	var init bool
	ledger := map[string]known{}
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		init = st.Initialized
		for _, m := range st.SortedMembers() {
			ledger[m.Node] = known{key: m.PubKey, addr: m.Addr, nonVoter: m.NonVoter, removed: m.Removed, admitted: m.Admitted}
		}
	})
	if !init {
		return
	}
	inConfig := map[string]bool{}
	// A copy: the configuration raft hands out is shared with every
	// other reader, and this sorts it.
	servers := slices.Clone(f.Configuration().Servers)
	// This node first: until the ledger holds its key, its other
	// records would not verify (it records its own, signed with it).
	sort.SliceStable(servers, func(i, j int) bool { return string(servers[i].ID) == n.cfg.Name && string(servers[j].ID) != n.cfg.Name })
	for _, s := range servers {
		name := string(s.ID)
		inConfig[name] = true
		k, ok := ledger[name]
		nonVoter := s.Suffrage != raft.Voter
		if ok && !k.removed && len(k.key) > 0 && k.nonVoter == nonVoter && k.addr == string(s.Address) {
			continue
		}
		key := []byte(n.NodePublicKey())
		if name != n.cfg.Name {
			id, err := n.identify(ctx, string(s.Address))
			if err != nil || id.Name != name || len(id.NodeKey) != ed25519.PublicKeySize {
				continue // not answering yet; the next round tries again
			}
			key = id.NodeKey
		}
		if ok && !k.removed && len(k.key) > 0 && string(k.key) != string(key) {
			n.log.Error("a member answers with another node key than the ledger records; not recorded", "member", name)
			continue
		}
		n.proposeMember(ctx, &fsm.MemberUpdate{Node: name, PubKey: key, Addr: string(s.Address), NonVoter: nonVoter})
	}
	for name, k := range ledger {
		// An admitted node that has not joined yet keeps its admission.
		if !k.removed && !inConfig[name] && len(k.key) > 0 {
			n.proposeMember(ctx, &fsm.MemberUpdate{Node: name, Removed: true})
		}
	}
}

func (n *Node) proposeMember(ctx context.Context, u *fsm.MemberUpdate) {
	res, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdMemberUpdate, Payload: fsm.Encode(u)})
	switch {
	case err != nil:
		n.log.Warn("recording a member", "member", u.Node, "err", err)
	case res.Decision != fsm.DecisionPermit && res.Reason != fsm.ReasonAlreadyExists:
		n.log.Warn("recording a member denied", "member", u.Node, "reason", res.Reason.String())
	}
}

// handleAddPeer is POST /v1/operator/raft/add-peer (operator.manage): it
// admits the node in the ledger, then adds it to the configuration.
func (n *Node) handleAddPeer(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.AddPeerRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if err := n.requireScope(r.Context(), caller.Token, fsm.OpOperatorManage); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if err := validName(req.ID); err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("%v", err))
		return
	}
	if _, _, err := splitIPPort(req.Address); err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("address %q: %v", req.Address, err))
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdMemberAdmit, &fsm.MemberAdmit{Node: req.ID, Addr: req.Address, NonVoter: req.NonVoter})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out := api.AddPeerResponse{Outcome: httpedge.Outcome(res), ID: req.ID, Address: req.Address}
	if res.Decision == fsm.DecisionPermit || res.Reason == fsm.ReasonAlreadyExists {
		err = n.onLeaderAdd(r.Context(), req)
		if err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		out.Added = true
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

type addPeerRPC struct {
	ID       string `codec:"id"`
	Address  string `codec:"address"`
	NonVoter bool   `codec:"non_voter,omitempty"`
}

// onLeaderAdd adds an admitted node to the configuration on the leader.
func (n *Node) onLeaderAdd(ctx context.Context, req api.AddPeerRequest) error {
	if n.raft.State() == raft.Leader {
		return n.addPeerLocal(ctx, addPeerRPC{ID: req.ID, Address: req.Address, NonVoter: req.NonVoter})
	}
	leader := n.leaderAddr()
	if leader == "" {
		return ErrNoLeader
	}
	return n.pool.call(ctx, leader, rpcAddPeer, &addPeerRPC{ID: req.ID, Address: req.Address, NonVoter: req.NonVoter}, nil)
}

func (n *Node) addPeerLocal(ctx context.Context, req addPeerRPC) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	var admitted bool
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		m := l.State().Member(req.ID)
		admitted = m != nil && !m.Removed && m.Admitted != "" && m.Addr == req.Address
	})
	if !admitted {
		return &httpedge.Error{Code: api.CodeForbidden, Msg: fmt.Sprintf("%s at %s is not admitted in the ledger", req.ID, req.Address)}
	}
	if err := n.checkJoinerProtocol(ctx, req.ID, req.Address); err != nil {
		return err
	}
	add, kind := n.raft.AddVoter, "voter"
	if req.NonVoter {
		add, kind = n.raft.AddNonvoter, "non-voter"
	}
	if err := add(raft.ServerID(req.ID), raft.ServerAddress(req.Address), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return err
	}
	n.log.Info("added "+kind+" admitted by an operator", "id", req.ID, "address", req.Address)
	return nil
}
