package kernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/cortex"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/passport"
)

// The cortex on a kernel node (package cortex; DESIGN.md §1). A federated
// node with --gossip joins one memberlist pool with every other node of
// the federation. Gossip is advisory: nothing here changes a gate
// decision; the only thing the cortex ever writes is a knowledge record
// on the sovereign, proposed through its ledger like any other command.
//
// Identity. A node gossips as Domain = its kernel's bus name ("sovereign"
// on the sovereign), Node = the hex of its Ed25519 node key, and
// PassportID = its kernel's current passport id (a domain) or the
// sovereign's kernel id (the sovereign, which has no passport). A pool's
// identity is fixed when it starts, so when the passport id changes
// (renewal) the node leaves and starts a new pool. Receivers bind a
// signal to its signer through their own ledger (cortexVerifier): the
// node key must be listed in the domain's passport, which must be in
// standing (fsm.State.PeerStanding), or, for the sovereign's signals,
// among the sovereign's registered signing keys.
//
// Gossip key (AES-256-GCM, every member the same): DATA/gossip.key if it
// exists (32 raw bytes or 64 hex digits; it must then be on every node);
// otherwise HKDF-SHA256 of the federation master secret with info
// "dominus cortex gossip v1" (cortexGossipKey; in key epoch N > 0, info
// "dominus cortex gossip v1 epoch N") on the sovereign, and the same key
// handed to a domain among its link keys under the name cortexKeyLink.
// Until a node has a key it does not gossip. When the key epoch moves on
// (a revocation, or operators' rotate-keys), a running pool whose primary
// is the derived key follows without a restart (followKey): it installs
// the new key, uses it and removes the old one. The sovereign switches
// as it applies the rotation, each domain as its next renewal brings the
// new key; until then gossip between a node that switched and one that
// has not is dropped (at most one renewal interval). A key from
// DATA/gossip.key, or a keyring an operator rotated by hand, is the
// operator's to rotate.
//
// Addresses. A node's gossip address is, by convention, its bus
// address's IP with the bus port + 1 (with the default --bus, the --bind
// IP and port + 1). Seeds are derived that way from the bus addresses the
// ledger records (a domain: its peers', the sovereign's included; the
// sovereign: every joined domain's) and from the Raft addresses of the
// kernel's own members. A node with another --gossip address still joins
// others, and memberlist spreads its real address; it only cannot be a
// seed.

// Cortex timing and limits.
const (
	cortexTick          = 250 * time.Millisecond
	cortexPublishEvery  = 2 * time.Second
	cortexRejoinEvery   = 10 * time.Second
	cortexRetryEvery    = 5 * time.Second // after a pool failed to start
	cortexLeaveTimeout  = 500 * time.Millisecond
	cortexTCPTimeout    = time.Second // memberlist streams, and so each seed's join
	cortexApplyTimeout  = 5 * time.Second
	cortexInboxSize     = 4096 // accepted signals waiting for the master
	cortexMaxSeeds      = 16
	cortexMaxEntities   = 2048    // entities measured per publish (the first by name)
	cortexMaxScanEvents = 100_000 // ledger events examined per publish (the newest)
	cortexDedupRecords  = 64      // recent knowledge records checked before proposing
	cortexKeyFile       = "gossip.key"
	// cortexKeyLink is the name under which a domain's secrets hold the
	// gossip key (link keys are named "from>to", so it cannot clash).
	cortexKeyLink = "cortex"
)

// cortexGossipKey derives the federation's gossip key in key epoch epoch
// from the link-key master secret (epoch 0: the key of every federation
// before its first rotation).
func cortexGossipKey(master []byte, epoch uint64) ([]byte, error) {
	if len(master) < 16 {
		return nil, fmt.Errorf("cortex: master secret of %d bytes is too short", len(master))
	}
	info := "dominus cortex gossip v1"
	if epoch > 0 {
		info += " epoch " + strconv.FormatUint(epoch, 10)
	}
	return hkdf.Key(sha256.New, master, nil, info, cortex.KeyBytes)
}

// cortexGossipAddr applies the address convention: bus IP, bus port + 1.
func cortexGossipAddr(busAddr string) (string, bool) {
	ip, port, err := splitIPPort(busAddr)
	if err != nil || port >= 65535 {
		return "", false
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port+1)), true
}

// cortexOf returns the node's cortex, or nil when it has none.
func (n *Node) cortexOf() *cortexNode { return n.cortex.Load() }

// cortexNode is one node's cortex: its pool (restarted when its passport
// changes), the leader's publisher and, on the sovereign, the master
// cortex. Fields below mu are touched only by the loop goroutine.
type cortexNode struct {
	n      *Node
	nodeID string // hex public key
	inbox  chan cortex.Signal
	halted atomic.Bool // gossip stopped for good on this node

	mu   sync.Mutex
	pool *cortex.Pool
	ppID string

	joining      atomic.Bool
	inboxDropped atomic.Uint64
	recorded     atomic.Uint64 // knowledge records this node proposed and the ledger took

	master      *cortex.Master // sovereign only
	pub         publisher
	derived     []byte // the derived gossip key the pool last took (nil: a key from gossip.key)
	keyEpoch    uint64 // the key epoch of derived
	lastTry     time.Time
	lastJoin    time.Time
	lastPublish time.Time
	lastWarn    time.Time
}

// publisher is the leader's state between publishes.
type publisher struct {
	primed  bool
	lastSeq uint64           // last ledger seq examined
	trust   map[string]int64 // entity -> trust (milli-points) at the last publish
}

// startCortex joins the federation's gossip pool on --gossip (see package
// cortex); a kernel without a gossip address, or not federated, has none.
// The pool itself starts once the kernel knows its passport and gossip
// key; the loop stops it when the node closes.
func (n *Node) startCortex() error {
	if n.cfg.GossipAddr == "" || n.cfg.Role == fsm.RoleStandalone || n.fed == nil {
		return nil
	}
	if _, _, err := net.SplitHostPort(n.cfg.GossipAddr); err != nil {
		return fmt.Errorf("gossip address %q: %w", n.cfg.GossipAddr, err)
	}
	c := &cortexNode{n: n, nodeID: hex.EncodeToString(n.NodePublicKey())}
	if n.cfg.Role == fsm.RoleSovereign {
		m, err := cortex.NewMaster(cortex.DefaultMasterConfig())
		if err != nil {
			return err
		}
		c.master = m
		c.inbox = make(chan cortex.Signal, cortexInboxSize)
	}
	if n.cfg.BusAddr != "" {
		if want, ok := cortexGossipAddr(n.cfg.BusAddr); ok && want != n.cfg.GossipAddr {
			n.log.Info("cortex: the gossip address is not the bus address's port + 1; peers cannot use this node as a seed", "gossip", n.cfg.GossipAddr, "convention", want)
		}
	}
	n.cortex.Store(c)
	n.wg.Add(1)
	go func() { defer n.wg.Done(); c.loop() }()
	return nil
}

// current returns the running pool, or nil.
func (c *cortexNode) current() *cortex.Pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pool
}

// halt stops gossip on this node for good: the pool shuts down and is not
// started again. The kernel keeps governing.
func (c *cortexNode) halt() {
	c.halted.Store(true)
	c.swap(nil, "")
}

// swap installs p as the pool and shuts the previous one down.
func (c *cortexNode) swap(p *cortex.Pool, ppID string) {
	c.mu.Lock()
	old := c.pool
	c.pool, c.ppID = p, ppID
	c.mu.Unlock()
	if old != nil {
		_ = old.Shutdown()
	}
}

func (c *cortexNode) loop() {
	n := c.n
	defer n.cortex.Store(nil)
	defer c.swap(nil, "")
	t := time.NewTicker(cortexTick)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		p := c.ensurePool(now)
		if p == nil {
			continue
		}
		c.followKey(p)
		if now.Sub(c.lastJoin) >= cortexRejoinEvery {
			c.lastJoin = now
			c.join(p)
		}
		leader := n.raft.State() == raft.Leader
		if !leader {
			c.pub.primed = false
		} else if now.Sub(c.lastPublish) >= cortexPublishEvery {
			c.lastPublish = now
			c.publish(p)
		}
		if c.master != nil {
			c.runMaster(p, leader)
		}
	}
}

func (c *cortexNode) warn(msg string, args ...any) {
	if time.Since(c.lastWarn) < time.Minute {
		return
	}
	c.lastWarn = time.Now()
	c.n.log.Warn(msg, args...)
}

// identity returns this kernel's current passport id (the sovereign's
// kernel id on the sovereign); "" until it has one.
func (c *cortexNode) identity() string {
	var id string
	c.n.fedState(func(st *fsm.State, f *fsm.FedState) {
		if !st.Initialized {
			return
		}
		switch st.Meta.Role {
		case fsm.RoleSovereign:
			id = st.Meta.KernelID
		case fsm.RoleDomain:
			if p, err := passport.Decode(f.Passport); err == nil {
				id = p.ID
			}
		}
	})
	return id
}

// ensurePool starts the pool when the node has an identity and a key, and
// restarts it when the passport id changed. It returns the running pool.
func (c *cortexNode) ensurePool(now time.Time) *cortex.Pool {
	if c.halted.Load() {
		return nil
	}
	ppID := c.identity()
	c.mu.Lock()
	p, cur := c.pool, c.ppID
	c.mu.Unlock()
	if ppID == "" || (p != nil && ppID == cur) {
		return p
	}
	if now.Sub(c.lastTry) < cortexRetryEvery && p == nil && !c.lastTry.IsZero() {
		return nil
	}
	c.lastTry = now
	key, epoch, derived, err := c.gossipKey()
	if err != nil || key == nil {
		if err != nil {
			c.warn("cortex: no usable gossip key; gossip stays off", "err", err)
		}
		return p
	}
	if p != nil {
		_ = p.Leave(cortexLeaveTimeout)
		c.swap(nil, "")
	}
	n := c.n
	cfg := cortex.DefaultConfig()
	cfg.Gossip = n.cfg.GossipAddr
	cfg.Domain, cfg.Node, cfg.PassportID = n.busName(), c.nodeID, ppID
	cfg.Signer = n.fed.key
	cfg.Verifier = c.verify
	cfg.Keys = [][]byte{key}
	if ring := c.keyring(); len(ring) > 0 {
		cfg.Keys = ring // an operator rotated this node's keyring
	}
	cfg.Clock = func() int64 { return n.now().UnixNano() }
	cfg.TCPTimeout = cortexTCPTimeout
	cfg.OnAccept = c.accept
	cfg.Logger = n.log.With("component", "cortex")
	np, err := cortex.New(cfg)
	if err != nil {
		c.warn("cortex: gossip pool did not start; retrying", "err", err)
		return nil
	}
	n.log.Info("cortex: gossip pool started", "addr", np.Addr(), "domain", cfg.Domain, "passport", ppID)
	c.derived, c.keyEpoch = nil, epoch
	if derived {
		c.derived = key
	}
	c.swap(np, ppID)
	c.lastJoin = time.Time{}
	return np
}

// gossipKey returns the gossip key (see the cortex notes above), nil
// while the node has none, with the key epoch of a derived key and
// whether it is derived (not DATA/gossip.key).
func (c *cortexNode) gossipKey() (key []byte, epoch uint64, derived bool, err error) {
	b, err := os.ReadFile(filepath.Join(c.n.cfg.DataDir, cortexKeyFile))
	switch {
	case err == nil:
		b = bytes.TrimSpace(b)
		if len(b) == 2*cortex.KeyBytes {
			k := make([]byte, cortex.KeyBytes)
			if _, err := hex.Decode(k, b); err == nil {
				return k, 0, false, nil
			}
		}
		if len(b) == cortex.KeyBytes {
			return b, 0, false, nil
		}
		return nil, 0, false, fmt.Errorf("%s is neither %d bytes nor %d hex digits", cortexKeyFile, cortex.KeyBytes, 2*cortex.KeyBytes)
	case !errors.Is(err, os.ErrNotExist):
		return nil, 0, false, err
	}
	epoch = c.n.fed.keyEpoch()
	s := c.n.fed.secrets()
	if s.Master != nil {
		k, err := cortexGossipKey(s.Master, epoch)
		return k, epoch, err == nil, err
	}
	if k := s.Links[cortexKeyLink]; len(k) == cortex.KeyBytes {
		return k, s.KeyEpoch, true, nil
	}
	return nil, 0, false, nil
}

// followKey moves the running pool to the federation's gossip key when
// the key epoch moved on: install the new key, use it, remove the old
// one, and keep a keyring file an operator left in step. It leaves alone
// a pool whose key did not come from the federation (gossip.key, or a
// keyring an operator rotated to another key).
func (c *cortexNode) followKey(p *cortex.Pool) {
	if c.derived == nil || c.n.fed.keyEpoch() == c.keyEpoch {
		return
	}
	key, epoch, derived, err := c.gossipKey()
	if err != nil || !derived || key == nil || bytes.Equal(key, c.derived) {
		return
	}
	old := c.derived
	if keys := p.Keys(); len(keys) == 0 || !bytes.Equal(keys[0], old) && !bytes.Equal(keys[0], key) {
		c.derived = nil // an operator rotated this node's keyring by hand
		return
	}
	for _, step := range []func() error{func() error { return p.InstallKey(key) }, func() error { return p.UseKey(key) }, func() error { return p.RemoveKey(old) }} {
		if err := step(); err != nil {
			c.warn("cortex: moving to the rotated gossip key failed; retrying", "err", err)
			return
		}
	}
	c.derived, c.keyEpoch = key, epoch
	if len(c.keyring()) > 0 {
		if err := c.saveKeyring(p.Keys()); err != nil {
			c.warn("cortex: saving the rotated gossip keyring", "err", err)
		}
	}
	c.n.log.Info("cortex: gossip key rotated", "key_epoch", epoch)
}

// seeds returns the gossip addresses of the other kernels' and this
// kernel's members (the address convention), without this node's own.
func (c *cortexNode) seeds(self string) []string {
	n := c.n
	var bus []string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		switch st.Meta.Role {
		case fsm.RoleSovereign:
			for _, d := range f.Domains {
				if d.KernelID != "" && !d.Suspended {
					bus = append(bus, d.BusAddrs...)
				}
			}
		case fsm.RoleDomain:
			for _, p := range f.Peers {
				bus = append(bus, p.BusAddrs...)
			}
		}
	})
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			if string(s.ID) != n.cfg.Name {
				bus = append(bus, string(s.Address))
			}
		}
	}
	set := map[string]bool{}
	for _, a := range bus {
		if g, ok := cortexGossipAddr(a); ok && g != self {
			set[g] = true
		}
	}
	out := slices.Sorted(maps.Keys(set))
	if len(out) > cortexMaxSeeds {
		out = out[:cortexMaxSeeds]
	}
	return out
}

// join contacts the seeds that are not members yet, one at a time, in the
// background; a closing node waits for at most one seed's timeout.
func (c *cortexNode) join(p *cortex.Pool) {
	members := map[string]bool{}
	for _, m := range p.Members() {
		members[m.Addr] = true
	}
	var todo []string
	for _, s := range c.seeds(p.Addr()) {
		if !members[s] {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 || !c.joining.CompareAndSwap(false, true) {
		return
	}
	n := c.n
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer c.joining.Store(false)
		for _, s := range todo {
			if n.ctx.Err() != nil {
				return
			}
			if _, err := p.Join([]string{s}); err != nil {
				n.log.Debug("cortex: seed did not answer", "seed", s, "err", err)
			}
		}
	}()
}

// accept hands a signal the pool accepted to the master (never blocks).
func (c *cortexNode) accept(s cortex.Signal) {
	if c.inbox == nil {
		return
	}
	select {
	case c.inbox <- s:
	default:
		c.inboxDropped.Add(1)
		metricInc("cortex.inbox_dropped")
	}
}

// verify is the pool's Verifier: the key of node's signals in domain under
// passportID, as this kernel's ledger binds it.
func (c *cortexNode) verify(domain, node, passportID string) (ed25519.PublicKey, bool) {
	pub, err := hex.DecodeString(node)
	if err != nil || len(pub) != ed25519.PublicKeySize || hex.EncodeToString(pub) != node {
		return nil, false
	}
	now := c.n.now().UnixNano()
	ok := false
	c.n.fedState(func(st *fsm.State, f *fsm.FedState) { ok = signalKeyBound(st, f, domain, passportID, pub, now) })
	if !ok {
		return nil, false
	}
	return ed25519.PublicKey(pub), true
}

// signalKeyBound reports whether the ledger binds node key pub to domain
// under passportID at now: the domain's passport is that one (or, for a
// peer, one of its non-revoked predecessors), in standing, and lists pub;
// the sovereign's signals carry its kernel id and a registered signing key.
func signalKeyBound(st *fsm.State, f *fsm.FedState, domain, passportID string, pub []byte, now int64) bool {
	has := func(keys [][]byte) bool {
		return slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, pub) })
	}
	switch {
	case !st.Initialized:
		return false
	case domain == fsm.SovereignKernel && st.Meta.Role == fsm.RoleSovereign:
		return passportID == st.Meta.KernelID && has(slices.Collect(maps.Values(f.Signers)))
	case domain == fsm.SovereignKernel:
		return passportID == f.SovereignID && has(slices.Collect(maps.Values(f.SovereignKeys)))
	case st.Meta.Role == fsm.RoleDomain && domain == st.Meta.Domain:
		pp, r := st.VerifyPassport(f.Passport, now)
		if r != fsm.ReasonOK && !(r == fsm.ReasonExpired && passport.Fresh(pp, now, fsm.StandingSlack)) {
			return false
		}
		return pp.ID == passportID && has(pp.NodeKeys)
	default:
		pp, r := st.PeerStanding(domain, passportID, now)
		return r == fsm.ReasonOK && has(pp.NodeKeys)
	}
}

// Published signal definitions (the leader of each kernel, every
// cortexPublishEvery; window = the node's clock at publish):
//
//   - TrustVelocity: the mean change, in whole trust points (truncated),
//     of the trust of the entities that had a trust score at both this
//     and the previous publish (0 if none); -1000..1000.
//   - AnomalyIndicator: of the entities with a baseline, the share whose
//     deviation score (sense.Sensor.Deviation at the node's clock) is
//     above 0, in basis points (0 with no baselines).
//   - OperationalTempo: gate decisions (PERMIT, DENY, ESCALATE of
//     syscall, kv.* and bus.receive events) the ledger recorded since the
//     previous publish.
//   - ResourcePressure: the largest of the data directory's filesystem use
//     ((blocks − available) / blocks), the pending bus outbox over
//     fsm.MaxOutbox and the pending effects over fsm.MaxEffects, in basis
//     points.
//   - DenyRate: DENY decisions over all decisions counted by
//     OperationalTempo, in basis points (0 with none).
//
// Entities are the distinct entities of the kernel's capabilities; at
// most cortexMaxEntities (the first by name) are measured. At most
// cortexMaxScanEvents ledger events are examined per publish (the newest;
// tempo is then a lower bound). The first publish after a node becomes
// leader only sets the starting points and publishes the two level
// kinds (AnomalyIndicator, ResourcePressure).

// publish measures and publishes this kernel's signals (leader only).
func (c *cortexNode) publish(p *cortex.Pool) {
	n := c.n
	now := n.now().UnixNano()
	m := c.measure(now)
	pressure := max(diskPressure(n.cfg.DataDir), basisPoints(m.pendingOutbox, fsm.MaxOutbox), basisPoints(m.pendingEffects, fsm.MaxEffects))
	values := []struct {
		kind  cortex.Kind
		value int64
	}{
		{cortex.AnomalyIndicator, basisPoints(m.deviating, m.withBaseline)},
		{cortex.ResourcePressure, pressure},
	}
	if !c.pub.primed {
		_, c.pub.lastSeq = n.arch.Last()
		c.pub.trust, c.pub.primed = m.trust, true
	} else {
		decided, denied, last := c.scanDecisions(c.pub.lastSeq)
		c.pub.lastSeq = last
		var sum, common int64
		for e, cur := range m.trust {
			if prev, ok := c.pub.trust[e]; ok {
				sum += cur - prev
				common++
			}
		}
		velocity := int64(0)
		if common > 0 {
			velocity = min(1000, max(-1000, sum/common/1000))
		}
		c.pub.trust = m.trust
		values = append(values, []struct {
			kind  cortex.Kind
			value int64
		}{
			{cortex.TrustVelocity, velocity},
			{cortex.OperationalTempo, min(decided, 1_000_000_000)},
			{cortex.DenyRate, basisPoints(denied, decided)},
		}...)
	}
	for _, v := range values {
		if _, err := p.Publish(v.kind, v.value, now); err != nil {
			n.log.Debug("cortex: publish refused", "kind", v.kind.String(), "err", err)
		}
	}
	st := p.Stats()
	metricGauge("cortex.members", float32(st.Members))
	for r, v := range st.Dropped {
		metricGauge("cortex.dropped."+string(r), float32(v))
	}
}

// runMaster feeds the master every signal accepted since the last tick
// and the pool's latest, and on the leader records what it finds.
func (c *cortexNode) runMaster(p *cortex.Pool, leader bool) {
	var sigs []cortex.Signal
drain:
	for range cortexInboxSize {
		select {
		case s := <-c.inbox:
			sigs = append(sigs, s)
		default:
			break drain
		}
	}
	sigs = append(sigs, p.Latest()...)
	var found []cortex.Finding
	for _, s := range sigs {
		found = append(found, c.master.Observe(s)...)
	}
	if !leader {
		return
	}
	for _, f := range found {
		c.record(f)
	}
}

// record proposes a finding as knowledge unless the ledger already holds
// the same episode (a recent record of the kind covering the domains
// within the master's quiet time, e.g. from a previous leader).
func (c *cortexNode) record(f cortex.Finding) {
	n := c.n
	k := fsm.Knowledge{Kind: f.Name(), Domains: f.Domains, Evidence: f.EvidenceIDs(), Confidence: f.Confidence, Summary: f.Summary(), Window: f.Window}
	quiet := c.master.Config().QuietNs
	dup := false
	n.fedState(func(_ *fsm.State, fs *fsm.FedState) {
		for i := len(fs.Knowledge) - 1; i >= 0 && i >= len(fs.Knowledge)-cortexDedupRecords; i-- {
			r := fs.Knowledge[i]
			if r.Kind == k.Kind && abs64(k.Window-r.Window) <= quiet && coveredBy(k.Domains, r.Domains) {
				dup = true
				return
			}
		}
	})
	if dup {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, cortexApplyTimeout)
	defer cancel()
	res, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdKnowledge, Payload: fsm.Encode(&k)})
	switch {
	case err != nil:
		n.log.Warn("cortex: recording a finding failed", "kind", k.Kind, "err", err)
	case res.Decision != fsm.DecisionPermit:
		n.log.Warn("cortex: finding refused by the ledger", "kind", k.Kind, "reason", res.Reason.String())
	default:
		c.recorded.Add(1)
		metricInc("cortex.knowledge_recorded")
		n.log.Info("cortex: finding recorded", "kind", k.Kind, "domains", strings.Join(k.Domains, ","), "confidence", k.Confidence, "seq", res.Seq)
	}
}

func coveredBy(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// registerCortex adds the cortex endpoints.
func (n *Node) registerCortex(open func(string, http.HandlerFunc), authed func(string, httpedge.Handler, ...string)) {
	authed("GET /v1/cortex/signals", n.handleCortexSignals, fsm.OpAuditRead)
	authed("GET /v1/cortex/insights", n.handleCortexInsights, fsm.OpAuditRead)
	authed("POST /v1/cortex/keyring", n.handleCortexKeyring, fsm.OpOperatorManage)
}

func signalToAPI(s cortex.Signal) api.CortexSignal {
	return api.CortexSignal{ID: cortex.SignalID(s), Domain: s.Domain, Node: s.Node, Kind: s.Kind.String(), Value: s.Value,
		Window: time.Unix(0, s.Window).UTC(), Seq: s.Seq, PassportID: s.PassportID}
}

// handleCortexSignals lists this node's latest signal of every (domain,
// node, kind): gossip, not ledger, so it needs no consistent read.
func (n *Node) handleCortexSignals(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	out := []api.CortexSignal{}
	if c := n.cortexOf(); c != nil {
		if p := c.current(); p != nil {
			for _, s := range p.Latest() {
				out = append(out, signalToAPI(s))
			}
		}
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// handleCortexInsights lists the master cortex's ledgered findings.
func (n *Node) handleCortexInsights(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	out := []api.CortexInsight{}
	n.fedState(func(_ *fsm.State, f *fsm.FedState) {
		for _, k := range f.Knowledge {
			out = append(out, api.CortexInsight{Kind: k.Kind, Domains: append([]string{}, k.Domains...), Evidence: append([]string{}, k.Evidence...),
				Confidence: k.Confidence, Summary: k.Summary, Window: time.Unix(0, k.Window).UTC(), Seq: k.Seq, Time: time.Unix(0, k.Time).UTC()})
		}
	})
	httpedge.WriteJSON(w, http.StatusOK, out)
}
