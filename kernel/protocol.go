package kernel

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// Protocol upgrades, the kernel's half (the ledger's is fsm/protocol.go):
// asking every member which protocols its binary implements, refusing an
// upgrade some voter (or, on the sovereign, some domain) could not apply,
// and reporting the protocol in force, each member's support and the
// history.
//
// Routes: GET /v1/operator/protocol (open, like /v1/status: the versions
// and member names it shows are public there too) and POST
// /v1/operator/protocol/upgrade (operator.manage; the FSM checks the scope
// again, and on the sovereign the operators' signatures).

// rpcProtocol asks a member which protocol versions its binary implements.
// A member that does not know the method predates protocol upgrades and
// implements protocol 2 (legacyProtocolSupport).
const rpcProtocol = "protocol"

// legacyProtocolSupport is what a binary from before protocol upgrades
// implements.
const legacyProtocolSupport uint16 = 2

// memberSupportTimeout bounds one member's answer.
const memberSupportTimeout = 2 * time.Second

type protocolResponse struct {
	Supports uint16 `codec:"supports"`
}

// memberProtocol is one member's answer.
type memberProtocol struct {
	node     string
	voter    bool
	supports uint16 // 0: unknown (err says why)
	err      error
}

// supportCache keeps the members' answers for Status, which must not wait
// on the network: it shows what the last refresh learned and starts the
// next one when that is older than supportCacheAge.
type supportCache struct {
	mu         sync.Mutex
	at         time.Time
	members    []memberProtocol
	refreshing bool
}

const supportCacheAge = 5 * time.Second

func (n *Node) protocolInForce() uint16 {
	var p uint16
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { p = l.State().Meta.Protocol })
	return p
}

func (n *Node) serveProtocol(ctx context.Context, peer string, _ []byte) ([]byte, error) {
	return fsm.Encode(&protocolResponse{Supports: fsm.ProtocolVersion}), nil
}

// askMembers asks every member of the Raft configuration which protocols
// it implements, in parallel, in configuration order.
func (n *Node) askMembers(ctx context.Context) ([]memberProtocol, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	servers := f.Configuration().Servers
	out := make([]memberProtocol, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		out[i] = memberProtocol{node: string(s.ID), voter: s.Suffrage == raft.Voter}
		if string(s.ID) == n.cfg.Name {
			out[i].supports = fsm.ProtocolVersion
			continue
		}
		wg.Add(1)
		go func(m *memberProtocol, addr string) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, memberSupportTimeout)
			defer cancel()
			var resp protocolResponse
			err := n.pool.call(cctx, addr, rpcProtocol, &struct{}{}, &resp)
			var re *rpcError
			switch {
			case err == nil:
				m.supports = resp.Supports
			case errors.As(err, &re) && strings.Contains(re.Message, "unknown rpc method"):
				m.supports = legacyProtocolSupport
			default:
				m.err = err
			}
		}(&out[i], string(s.Address))
	}
	wg.Wait()
	n.support.mu.Lock()
	n.support.at, n.support.members = time.Now(), out
	n.support.mu.Unlock()
	return out, nil
}

// cachedMembers returns the last answers without waiting, refreshing them
// in the background when they are stale.
func (n *Node) cachedMembers() []memberProtocol {
	c := &n.support
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > supportCacheAge && !c.refreshing && n.ctx.Err() == nil {
		c.refreshing = true
		// Not in n.wg: Status may run while Close waits on it. The refresh
		// ends within its timeout, or at once when Close cancels n.ctx.
		go func() {
			ctx, cancel := context.WithTimeout(n.ctx, memberSupportTimeout+time.Second)
			_, _ = n.askMembers(ctx)
			cancel()
			c.mu.Lock()
			c.refreshing = false
			c.mu.Unlock()
		}()
	}
	return c.members
}

// minVoterSupport is the newest protocol every voter implements; an error
// names a voter that could not be asked.
func minVoterSupport(members []memberProtocol) (uint16, error) {
	min := fsm.ProtocolVersion
	for _, m := range members {
		if !m.voter {
			continue
		}
		if m.err != nil || m.supports == 0 {
			return 0, fmt.Errorf("voter %s did not say which protocols it implements: %v", m.node, m.err)
		}
		if m.supports < min {
			min = m.supports
		}
	}
	return min, nil
}

// ProtocolStatus reports the protocol in force, what each member
// implements (asked now) and the history.
func (n *Node) ProtocolStatus(ctx context.Context) api.ProtocolStatus {
	out := api.ProtocolStatus{Node: n.cfg.Name, Supported: fsm.ProtocolVersion, Members: []api.ProtocolMember{}, History: []api.ProtocolChange{}}
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		out.InForce = st.Meta.Protocol
		if !st.Initialized {
			return
		}
		genesis := st.Meta.Protocol
		if len(st.Meta.ProtocolHistory) > 0 {
			genesis = st.Meta.ProtocolHistory[0].From
		}
		out.History = append(out.History, api.ProtocolChange{Version: genesis, Seq: 1, By: "genesis"})
		for _, h := range st.Meta.ProtocolHistory {
			out.History = append(out.History, api.ProtocolChange{Version: h.Version, From: h.From, Seq: h.Seq, Time: time.Unix(0, h.Time).UTC(), By: h.By})
		}
		if f := st.Fed; f != nil && st.Meta.Role == fsm.RoleSovereign {
			for _, d := range f.SortedDomains() {
				if d.KernelID == "" {
					continue
				}
				out.Domains = append(out.Domains, api.ProtocolDomain{Domain: d.Name, Acknowledged: d.ProtocolAck,
					Supports: n.fed.domainSupport(d.Name), Suspended: d.Suspended})
			}
		}
	})
	members, err := n.askMembers(ctx)
	if err != nil {
		out.Error = err.Error()
	}
	for _, m := range members {
		pm := api.ProtocolMember{Node: m.node, Supports: m.supports, Voter: m.voter}
		if m.err != nil {
			pm.Error = m.err.Error()
		}
		out.Members = append(out.Members, pm)
	}
	return out
}

// checkJoinerProtocol refuses a joining node whose binary does not
// implement the protocol in force: it could apply nothing past genesis
// or the last upgrade. A node that cannot be asked is let in (it stops
// at the first entry it cannot apply, see ledgerFSM.stopApplying).
func (n *Node) checkJoinerProtocol(ctx context.Context, name, addr string) error {
	inForce := n.protocolInForce()
	cctx, cancel := context.WithTimeout(ctx, memberSupportTimeout)
	defer cancel()
	var resp protocolResponse
	err := n.pool.call(cctx, addr, rpcProtocol, &struct{}{}, &resp)
	var re *rpcError
	switch {
	case err == nil:
	case errors.As(err, &re) && strings.Contains(re.Message, "unknown rpc method"):
		resp.Supports = legacyProtocolSupport
	default:
		n.log.Warn("could not ask a joining node which protocols it implements", "id", name, "err", err)
		return nil
	}
	if resp.Supports < inForce {
		return &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("join refused: %s implements protocols up to %d and this kernel runs protocol %d; start it with a release that implements %d", name, resp.Supports, inForce, inForce)}
	}
	return nil
}

// checkUpgrade refuses an upgrade to version that a voter, or on the
// sovereign a joined domain, could not apply. The warnings name
// non-voting members that will stop at the upgrade entry.
func (n *Node) checkUpgrade(ctx context.Context, version uint16) (warnings []string, _ error) {
	inForce := n.protocolInForce()
	if version <= inForce {
		return nil, httpedge.BadRequest("protocol %d is already in force; an upgrade moves forward only (in force: %d)", version, inForce)
	}
	if version > fsm.ProtocolVersion {
		return nil, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("this node (%s) implements protocols up to %d, not %d", n.cfg.Name, fsm.ProtocolVersion, version)}
	}
	members, err := n.askMembers(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if !m.voter {
			if m.supports < version {
				warnings = append(warnings, fmt.Sprintf("non-voter %s implements protocols up to %s: it stops at the upgrade entry until its binary implements %d", m.node, supportText(m.supports), version))
			}
			continue
		}
		if m.err != nil {
			return nil, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("voter %s did not say which protocols it implements (%v); every voter must implement protocol %d before the upgrade", m.node, m.err, version)}
		}
		if m.supports < version {
			return nil, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("voter %s implements protocols up to %d, not %d: upgrade its binary (or remove it from the configuration) first", m.node, m.supports, version)}
		}
	}
	if version >= fsm.ProtocolAuthority {
		if missing := n.unkeyedMembers(members); len(missing) > 0 {
			return nil, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("from protocol %d every internal command carries its member's signature, and the ledger holds no node key yet for %s; the leader records a member's key within seconds of its joining (dominus operator raft list-peers shows node_key): retry then", fsm.ProtocolAuthority, strings.Join(missing, ", "))}
		}
	}
	if n.cfg.Role == fsm.RoleSovereign && n.fed != nil {
		var lagging []string
		n.fedState(func(_ *fsm.State, f *fsm.FedState) {
			for _, d := range f.SortedDomains() {
				if d.KernelID == "" || d.Suspended || d.Revoked {
					continue
				}
				if s := n.fed.domainSupport(d.Name); s < version {
					lagging = append(lagging, fmt.Sprintf("%s (implements %s)", d.Name, supportText(s)))
				}
			}
		})
		if len(lagging) > 0 {
			return nil, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("domains not ready for protocol %d: %s; each domain reports what its voters implement at its next renewal", version, strings.Join(lagging, ", "))}
		}
	}
	return warnings, nil
}

// unkeyedMembers names the members whose node key the ledger does not
// hold: from protocol 4 their internal commands would be refused.
func (n *Node) unkeyedMembers(members []memberProtocol) []string {
	var missing []string
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		for _, m := range members {
			if st.MemberKey(m.node) == nil {
				missing = append(missing, m.node)
			}
		}
	})
	return missing
}

func supportText(s uint16) string {
	if s == 0 {
		return "unknown: no renewal since this leader started"
	}
	return fmt.Sprintf("up to %d", s)
}

func (n *Node) registerProtocol(open func(string, http.HandlerFunc), authed func(string, httpedge.Handler, ...string)) {
	open("GET /v1/operator/protocol", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), memberSupportTimeout+time.Second)
		defer cancel()
		httpedge.WriteJSON(w, http.StatusOK, n.ProtocolStatus(ctx))
	})
	authed("POST /v1/operator/protocol/upgrade", n.handleProtocolUpgrade)
}

func (n *Node) handleProtocolUpgrade(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.ProtocolUpgradeRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if err := n.requireScope(r.Context(), caller.Token, fsm.OpOperatorManage); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if n.cfg.Role == fsm.RoleDomain {
		httpedge.WriteErr(w, httpedge.BadRequest("a domain takes the federation's protocol from the sovereign: upgrade there, with the federation operators' signatures"))
		return
	}
	sigs, err := parseSignatures(req.Signatures)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if n.cfg.Role == fsm.RoleSovereign && len(sigs) == 0 {
		httpedge.WriteErr(w, httpedge.BadRequest("a federation's protocol upgrade needs the operators' signatures: each runs dominus operator protocol sign %d --key KEY and the outputs go to --signature", req.Version))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*memberSupportTimeout)
	defer cancel()
	warnings, err := n.checkUpgrade(ctx, req.Version)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdProtocolUpgrade, &fsm.ProtocolUpgrade{Version: req.Version, Signatures: sigs})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	inForce := n.protocolInForce() // this node may not have applied the upgrade yet
	if res.Decision == fsm.DecisionPermit {
		inForce = req.Version
	}
	httpedge.WriteJSON(w, http.StatusOK, api.ProtocolUpgradeResponse{Outcome: httpedge.Outcome(res), InForce: inForce, Warnings: warnings})
}

// parseSignatures reads OPERATOR:HEX signatures.
func parseSignatures(in []string) ([]fsm.OperatorSignature, error) {
	var out []fsm.OperatorSignature
	for _, s := range in {
		op, sig, ok := strings.Cut(s, ":")
		b, err := hex.DecodeString(sig)
		if !ok || op == "" || err != nil {
			return nil, httpedge.BadRequest("signature %q: want OPERATOR:HEX", s)
		}
		out = append(out, fsm.OperatorSignature{Operator: op, Signature: b})
	}
	return out, nil
}

// Federation: what domains report.

// domainSupport is the newest protocol domain's voters all implement, as
// its last renewal to this leader reported (0: not reported).
func (fd *fed) domainSupport(domain string) uint16 {
	if fd == nil {
		return 0
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return fd.support[domain]
}

func (fd *fed) setDomainSupport(domain string, s uint16) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.support == nil {
		fd.support = map[string]uint16{}
	}
	fd.support[domain] = s
}

// domainVoterSupport is what this domain reports: the newest protocol all
// its voters implement (0 when a voter could not be asked).
func (n *Node) domainVoterSupport(ctx context.Context) uint16 {
	members, err := n.askMembers(ctx)
	if err != nil {
		return 0
	}
	s, err := minVoterSupport(members)
	if err != nil {
		return 0
	}
	return s
}

// protocolForVoters drops from a federation view an upgrade that a voter
// of this domain cannot apply: proposing it would stop that voter. The
// domain stays on its protocol, says so, and the sovereign suspends it at
// the acknowledgement deadline unless its binaries are upgraded first.
func (fd *fed) protocolForVoters(ctx context.Context, u *fsm.FedUpdate) {
	n := fd.n
	if u.Protocol == nil || u.Protocol.Version <= n.protocolInForce() {
		return
	}
	members, err := n.askMembers(ctx)
	if err == nil {
		var min uint16
		min, err = minVoterSupport(members)
		if err == nil && min >= u.Protocol.Version {
			missing := []string(nil)
			if u.Protocol.Version >= fsm.ProtocolAuthority {
				missing = n.unkeyedMembers(members)
			}
			if len(missing) == 0 {
				return
			}
			err = fmt.Errorf("the ledger holds no node key yet for %s", strings.Join(missing, ", "))
		} else if err == nil {
			err = fmt.Errorf("a voter implements protocols only up to %d", min)
		}
	}
	n.log.Error("the federation moved to a protocol this domain cannot apply yet; staying on the current one until every voter's binary implements it (the sovereign suspends the domain at the acknowledgement deadline)",
		"protocol", u.Protocol.Version, "in_force", n.protocolInForce(), "err", err)
	u.Protocol = nil
}
