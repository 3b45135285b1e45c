package kernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/passport"
	"github.com/dominus-kernel/dominus/transport"
)

// Federation timing defaults. A passport lives PassportLifetime; a domain
// renews every RenewEvery, so a revocation or federation halt reaches a
// reachable domain within RenewEvery and a partitioned one within
// PassportLifetime + fsm.StandingSlack.
const (
	DefaultPassportLifetime = 10 * time.Minute
	DefaultRenewEvery       = 5 * time.Second
	DefaultWitnessEvery     = 10 * time.Second
	shipEvery               = 100 * time.Millisecond
	fedRequestTimeout       = 5 * time.Second
	maxFedBody              = 4 << 20
)

// fed is a node's federation machinery: its node key, link keys (bus
// secrets, never in a log), the bus, and the leader loops.
type fed struct {
	n       *Node
	key     ed25519.PrivateKey
	bus     *transport.Server
	httpc   *http.Client
	mu      sync.Mutex
	master  []byte            // sovereign: the link-key master secret
	links   map[string][]byte // "from>to" -> key
	epoch   uint64            // domain: the key epoch of links
	lastUpd []byte            // domain: the last FedUpdate this leader applied
	start   map[string]int    // per destination: the bus address to try first
	kick    chan struct{}     // wakes the shipper when an outbox event commits
	acked   uint64            // domain: the canon version this leader acknowledged over the bus
	support map[string]uint16 // sovereign: per domain, the protocol its voters implement, as its last renewal said
	kernel  string            // this kernel's bus name
	windows *busWindows       // domain: the replay window of each origin's bus events
}

func linkName(from, to string) string { return from + ">" + to }

// busName is this kernel's name on the bus.
func (n *Node) busName() string {
	if n.cfg.Role == fsm.RoleSovereign {
		return fsm.SovereignKernel
	}
	return n.cfg.Domain
}

// loadNodeKey reads (or creates, once) this node's Ed25519 key. Only the
// public half ever leaves the node.
func loadNodeKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, "node.key")
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != ed25519.SeedSize {
			return nil, fmt.Errorf("node key %s is %d bytes, want %d", path, len(b), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(b), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if err := writeSecretFile(path, seed); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// applyInternal proposes a kernel-internal command (payload already
// encoded) and turns anything but a PERMIT into an error naming what.
func (n *Node) applyInternal(ctx context.Context, what string, t fsm.CommandType, payload []byte) error {
	res, err := n.Apply(ctx, fsm.Envelope{Type: t, Payload: payload})
	if err != nil {
		return err
	}
	if res.Decision != fsm.DecisionPermit {
		return &httpedge.Error{Code: api.CodeDenied, Msg: what + " denied: " + res.Reason.String()}
	}
	return nil
}

// writeSecretFile writes a 0600 file durably (temp + fsync + rename).
func writeSecretFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// NodePublicKey returns this node's public key.
func (n *Node) NodePublicKey() ed25519.PublicKey {
	if n.nodeKey == nil {
		return nil
	}
	return n.nodeKey.Public().(ed25519.PublicKey)
}

func (n *Node) startFederation() error {
	if n.cfg.Role == fsm.RoleStandalone {
		return nil
	}
	fd := &fed{n: n, key: n.nodeKey, links: map[string][]byte{}, start: map[string]int{}, kick: make(chan struct{}, 1), kernel: n.busName(),
		windows: newBusWindows()}
	n.fed = fd
	fd.loadSecrets()
	fd.seedWindows() // from the state Raft restored
	if n.tls != nil {
		ip, _, _ := splitIPPort(n.cfg.BindAddr)
		fd.httpc = &http.Client{Timeout: fedRequestTimeout, Transport: &http.Transport{
			TLSClientConfig:     n.tls.ClientConfig(""),
			DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: fedRequestTimeout}).DialContext,
			MaxIdleConnsPerHost: 4,
		}}
		if n.cfg.BusAddr != "" {
			bc := transport.DefaultConfig()
			bc.Handler = fd.handleFrame
			bc.ClientTLS = n.tls.ClientConfig("")
			bc.PeerNode = n.busPeer
			bc.Logger = n.log
			srv, err := transport.Listen(n.cfg.BusAddr, n.tls.ServerConfig(true), bc)
			if err != nil {
				return fmt.Errorf("bus: %w", err)
			}
			fd.bus = srv
			n.cfg.BusAddr = srv.Addr().String()
		}
	} else {
		fd.httpc = &http.Client{Timeout: fedRequestTimeout}
	}
	if err := n.startCortex(); err != nil {
		return fmt.Errorf("cortex: %w", err)
	}
	n.wg.Add(2)
	go func() { defer n.wg.Done(); fd.loop() }()
	go func() { defer n.wg.Done(); fd.shipLoop() }()
	return nil
}

// notifyOutbox wakes the shipper (an outbox event committed).
func (fd *fed) notifyOutbox() {
	select {
	case fd.kick <- struct{}{}:
	default:
	}
}

// shipLoop ships the outbox on a domain's leader: at once when an event
// commits, and every shipEvery for retries. It runs apart from renewal
// and witnessing, so an unreachable sovereign never holds up the bus.
func (fd *fed) shipLoop() {
	n := fd.n
	t := time.NewTicker(shipEvery)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-fd.kick:
		}
		var domain bool
		n.fsm.read(func(l *fsm.Ledger, _ uint64) { domain = l.State().Initialized && l.State().Meta.Role == fsm.RoleDomain })
		if domain && n.raft.State() == raft.Leader {
			fd.ship(n.ctx)
		}
	}
}

func (fd *fed) close() {
	if fd != nil && fd.bus != nil {
		_ = fd.bus.Close()
	}
}

// secrets file: the master (sovereign) or the link keys (domain) and the
// key epoch they were derived in (the sovereign's epoch is in its ledger).
type fedSecrets struct {
	Master   []byte            `codec:"master"`
	Links    map[string][]byte `codec:"links"`
	KeyEpoch uint64            `codec:"key_epoch,omitempty"`
}

func (fd *fed) secretsPath() string { return filepath.Join(fd.n.cfg.DataDir, "federation.secrets") }

func (fd *fed) loadSecrets() {
	b, err := os.ReadFile(fd.secretsPath())
	if err != nil {
		return
	}
	var s fedSecrets
	if err := fsm.Decode(b, &s); err != nil {
		fd.n.log.Error("federation secrets file unreadable; fetching again", "err", err)
		return
	}
	fd.mu.Lock()
	fd.master = s.Master
	if s.Links != nil {
		fd.links = s.Links
	}
	fd.epoch = s.KeyEpoch
	fd.mu.Unlock()
}

func (fd *fed) secrets() fedSecrets {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	links := make(map[string][]byte, len(fd.links))
	for k, v := range fd.links {
		links[k] = v
	}
	return fedSecrets{Master: fd.master, Links: links, KeyEpoch: fd.epoch}
}

// setSecrets stores new secrets when they differ from the held ones: new
// link keys replace the old ones, in memory and in the secrets file.
func (fd *fed) setSecrets(s fedSecrets) error {
	fd.mu.Lock()
	same := bytes.Equal(fd.master, s.Master) && len(fd.links) == len(s.Links) && fd.epoch == s.KeyEpoch
	if same {
		for k, v := range s.Links {
			if !bytes.Equal(fd.links[k], v) {
				same = false
				break
			}
		}
	}
	if !same {
		fd.master = s.Master
		if s.Links == nil {
			s.Links = map[string][]byte{}
		}
		fd.links = s.Links
		fd.epoch = s.KeyEpoch
	}
	fd.mu.Unlock()
	if same {
		return nil
	}
	return writeSecretFile(fd.secretsPath(), fsm.Encode(&s))
}

// keyEpoch is the epoch of the link and gossip keys this node uses: on
// the sovereign the one its ledger holds, on a domain the one of the keys
// its last renewal (or its leader) handed it.
func (fd *fed) keyEpoch() uint64 {
	if fd.n.cfg.Role == fsm.RoleSovereign {
		var epoch uint64
		fd.n.fedState(func(_ *fsm.State, f *fsm.FedState) { epoch = f.CurrentKeyEpoch() })
		return epoch
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return fd.epoch
}

// busPeer names the sender of a bus connection from its certificate:
// "KERNEL/NODE", or "/NODE" for a certificate that names no kernel (only
// with --allow-legacy-certs).
func (n *Node) busPeer(cs tls.ConnectionState) (string, error) {
	id, err := n.tls.PeerIdentity(cs)
	if err != nil {
		return "", err
	}
	if id.Legacy {
		if !n.cfg.AllowLegacyCerts {
			return "", fmt.Errorf("%w: node %q presented a certificate that names no kernel", ErrIdentity, id.Node)
		}
		return "/" + id.Node, nil
	}
	return id.Kernel + "/" + id.Node, nil
}

// linkKey is the bus's key lookup: the sovereign derives the key in the
// epoch its ledger holds, a domain has the keys of its last renewal. A
// frame under an earlier epoch's key does not verify.
func (fd *fed) linkKey(from, to string) ([]byte, bool) {
	var epoch uint64
	if fd.n.cfg.Role == fsm.RoleSovereign {
		epoch = fd.keyEpoch() // before fd.mu: it reads the ledger
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.master != nil {
		k, err := transport.DeriveLinkKeyEpoch(fd.master, from, to, epoch)
		return k, err == nil
	}
	k, ok := fd.links[linkName(from, to)]
	return k, ok
}

// linksFor derives, in key epoch epoch, every link key a domain needs: to
// and from each other kernel of the federation, and the gossip key.
func (fd *fed) linksFor(domain string, others []string, epoch uint64) (map[string][]byte, error) {
	fd.mu.Lock()
	master := fd.master
	fd.mu.Unlock()
	if master == nil {
		return nil, errors.New("federation master secret not available on this node yet")
	}
	out := map[string][]byte{}
	for _, o := range others {
		if o == domain {
			continue
		}
		for _, pair := range [][2]string{{domain, o}, {o, domain}} {
			k, err := transport.DeriveLinkKeyEpoch(master, pair[0], pair[1], epoch)
			if err != nil {
				return nil, err
			}
			out[linkName(pair[0], pair[1])] = k
		}
	}
	// The federation's gossip key travels with the link keys.
	k, err := cortexGossipKey(master, epoch)
	if err != nil {
		return nil, err
	}
	out[cortexKeyLink] = k
	return out, nil
}

func (n *Node) fedState(fn func(st *fsm.State, f *fsm.FedState)) {
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		if st.Fed != nil {
			fn(st, st.Fed)
		}
	})
}

// loop runs the federation duties: on every node, fetching secrets from
// the leader; on the leader, the role's periodic work.
func (fd *fed) loop() {
	n := fd.n
	t := time.NewTicker(shipEvery)
	defer t.Stop()
	var lastRenew, lastWitness, lastSecrets, lastSovereign time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var role string
		var init bool
		n.fsm.read(func(l *fsm.Ledger, _ uint64) { role, init = l.State().Meta.Role, l.State().Initialized })
		if !init {
			continue
		}
		leader := n.raft.State() == raft.Leader
		if !leader && now.Sub(lastSecrets) > 2*time.Second {
			lastSecrets = now
			fd.fetchSecrets()
		}
		if !leader {
			continue
		}
		switch role {
		case fsm.RoleSovereign:
			if now.Sub(lastSovereign) > time.Second {
				lastSovereign = now
				fd.sovereignDuties()
			}
		case fsm.RoleDomain:
			if now.Sub(lastRenew) > n.cfg.RenewEvery {
				lastRenew = now
				if err := fd.renew(n.ctx); err != nil {
					n.log.Warn("passport renewal failed; the domain keeps its current passport until it expires", "err", err)
				}
				actx, cancel := context.WithTimeout(n.ctx, fedRequestTimeout)
				if err := fd.ackCanon(actx); err != nil {
					n.log.Warn("canon acknowledgement not delivered over the bus; retrying", "err", err)
				}
				cancel()
			}
			if now.Sub(lastWitness) > n.cfg.WitnessEvery {
				lastWitness = now
				if err := fd.witness(n.ctx); err != nil {
					n.log.Warn("witness report failed", "err", err)
				}
			}
		}
	}
}

// fetchSecrets asks the leader for the federation secrets.
func (fd *fed) fetchSecrets() {
	n := fd.n
	addr := n.leaderAddr()
	if addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	var s fedSecrets
	if err := n.pool.call(ctx, addr, rpcFedSecrets, &struct{}{}, &s); err != nil {
		return
	}
	if s.Master == nil && len(s.Links) == 0 {
		return
	}
	if err := fd.setSecrets(s); err != nil {
		n.log.Error("storing federation secrets", "err", err)
	}
}

// serveSecrets answers a member of this kernel's own Raft configuration.
func (n *Node) serveSecrets(ctx context.Context, peer string, _ []byte) ([]byte, error) {
	if n.fed == nil {
		return nil, errors.New("not a federated kernel")
	}
	if n.tls != nil && !n.isMember(peer) {
		return nil, fmt.Errorf("federation secrets refused: %q is not a member of this kernel", peer)
	}
	s := n.fed.secrets()
	return fsm.Encode(&s), nil
}

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

// send seals and sends one frame to a kernel, trying each of its bus
// addresses, and verifies the ack.
func (fd *fed) send(ctx context.Context, dest string, addrs []string, f transport.Frame) (transport.Ack, []byte, error) {
	if fd.bus == nil {
		return transport.Ack{}, nil, errors.New("this node has no bus (--bus, TLS required)")
	}
	key, ok := fd.linkKey(fd.kernel, dest)
	if !ok {
		return transport.Ack{}, nil, fmt.Errorf("no link key for %s -> %s", fd.kernel, dest)
	}
	f.Version = transport.FrameVersion
	f.Origin, f.OriginNode, f.Destination = fd.kernel, fd.n.cfg.Name, dest
	f.SentAtNs = time.Now().UnixNano()
	frame, err := transport.Encode(f, key)
	if err != nil {
		return transport.Ack{}, nil, err
	}
	var lastErr error = fmt.Errorf("no bus address known for %s", dest)
	// Start where the last exchange with dest succeeded, or one past where
	// it last failed: a destination whose first addresses are unreachable
	// is still reached through the others, whatever the attempt budget.
	fd.mu.Lock()
	first := fd.start[dest]
	fd.mu.Unlock()
	for i := range addrs {
		if ctx.Err() != nil {
			break // the next attempt starts where this one stopped
		}
		idx := (first + i) % len(addrs)
		a := addrs[idx]
		fd.mu.Lock()
		fd.start[dest] = (idx + 1) % len(addrs)
		fd.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		b, err := fd.bus.Send(actx, a, frame)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		ack, err := transport.DecodeAck(b, fd.linkKey)
		if err != nil {
			lastErr = err
			continue
		}
		if ack.Seq != f.Seq || ack.Origin != fd.kernel || ack.Responder != dest || ack.EventDigest != transport.DigestFrame(frame) {
			lastErr = errors.New("ack does not match the event sent")
			continue
		}
		if ack.Status == transport.AckUnavailable {
			lastErr = fmt.Errorf("%s at %s is unavailable", dest, a)
			continue
		}
		fd.mu.Lock()
		fd.start[dest] = idx
		fd.mu.Unlock()
		return ack, frame, nil
	}
	return transport.Ack{}, frame, lastErr
}

// ship sends the oldest pending outbox event of each destination and
// records the answer. Events to one destination go in sequence order.
func (fd *fed) ship(ctx context.Context) {
	n := fd.n
	type dest struct {
		events []fsm.OutEvent // pending, in sequence order
		addrs  []string
	}
	var ppID string
	dests := map[string]*dest{}
	var order []string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		p, err := passport.Decode(f.Passport)
		if err != nil {
			return
		}
		ppID = p.ID
		for _, e := range f.Outbox {
			if e.Status != fsm.BusStatePending {
				continue
			}
			d := dests[e.Dest]
			if d == nil {
				d = &dest{}
				if pr := f.Peers[e.Dest]; pr != nil {
					d.addrs = pr.BusAddrs
				}
				dests[e.Dest] = d
				order = append(order, e.Dest)
			}
			if len(d.events) < maxShipPerTick {
				d.events = append(d.events, *e)
			}
		}
	})
	// Each destination's events go one at a time in sequence order (its
	// inbox applies them in that order); a failure leaves the rest of that
	// destination for the next tick.
	for _, name := range order {
		d := dests[name]
		for _, e := range d.events {
			if ctx.Err() != nil || !fd.shipOne(ctx, e, d.addrs, ppID) {
				break
			}
		}
	}
}

// maxShipPerTick bounds the events shipped to one destination per tick.
const maxShipPerTick = 512

// shipOne sends one outbox event and records the answer; false when it
// was not delivered.
func (fd *fed) shipOne(ctx context.Context, e fsm.OutEvent, addrs []string, ppID string) bool {
	n := fd.n
	payload := fsm.Encode(&fsm.BusReceive{Origin: fd.kernel, Seq: e.Seq, PassportID: ppID, Entity: e.Entity, Op: e.Op,
		Resource: e.Resource, Args: e.Args, TokenHash: e.TokenHash})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ack, _, err := fd.send(cctx, e.Dest, addrs, transport.Frame{Seq: e.Seq, PassportID: ppID, Type: "syscall", Payload: payload})
	cancel()
	if err != nil {
		metricInc("bus.send_failed")
		n.log.Debug("bus send failed; will retry", "event", e.ID, "err", err)
		return false
	}
	var res fsm.BusResult
	if len(ack.Result) > 0 {
		if err := fsm.Decode(ack.Result, &res); err != nil {
			n.log.Warn("bus ack carries an unreadable result", "event", e.ID, "err", err)
			return false
		}
	}
	d := fsm.BusDelivered{Dest: e.Dest, Seq: e.Seq, Rejected: ack.Status == transport.AckRejected, Result: res}
	if _, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdBusDelivered, Payload: fsm.Encode(&d)}); err != nil {
		n.log.Warn("recording bus delivery", "event", e.ID, "err", err)
		return false
	}
	metricInc("bus.delivered")
	return true
}

// Bus refusal sentinels (counted by the transport under ErrRefused).
var (
	errBusNotForUs  = errors.New("bus: event is not addressed to this kernel")
	errBusStanding  = errors.New("bus: sender has no standing (passport unknown, expired or revoked)")
	errBusOrigin    = errors.New("bus: origin node does not match the TLS peer")
	errBusEventType = errors.New("bus: unknown event type")
)

// handleFrame is the bus handler: verify, drop a replay the ledger
// already applied, apply through the ledger, ack.
func (fd *fed) handleFrame(ctx context.Context, peerNode string, b []byte) ([]byte, error) {
	f, env, err := fd.verifyFrame(peerNode, b)
	if err != nil {
		return nil, err
	}
	ack := transport.Ack{Version: transport.FrameVersion, Origin: f.Origin, Responder: fd.kernel, Seq: f.Seq, EventDigest: transport.DigestFrame(b)}
	if h, ok := fd.n.frameHandler(f.Type); ok {
		return fd.serviceFrame(ctx, f, ack, h)
	}
	if env.Type == fsm.CmdBusReceive {
		dropped, err := fd.screenReplay(f, &ack)
		if err != nil {
			return nil, err
		}
		if dropped {
			return fd.sealAck(ack)
		}
	}
	res, err := fd.n.Apply(ctx, env)
	if env.Type == fsm.CmdBusReceive {
		fd.windows.advance(f.Origin, fd.inbox(f.Origin, 0).next)
	}
	switch {
	case err != nil, res.Reason == fsm.ReasonSequenceGap:
		ack.Status = transport.AckUnavailable // the sender retries
	case res.Duplicate:
		ack.Status = transport.AckDuplicate
	case res.Reason == fsm.ReasonPassportInvalid, res.Reason == fsm.ReasonWrongRole, res.Reason == fsm.ReasonMalformed:
		ack.Status = transport.AckRejected
	default:
		ack.Status = transport.AckApplied
	}
	if err == nil {
		ack.Result = ackResult(env.Type, res)
	}
	return fd.sealAck(ack)
}

// sealAck encodes an ack under the key of the link back to its origin.
func (fd *fed) sealAck(ack transport.Ack) ([]byte, error) {
	key, ok := fd.linkKey(fd.kernel, ack.Origin)
	if !ok {
		return nil, transport.ErrUnknownLink
	}
	return transport.EncodeAck(ack, key)
}

// verifyFrame decodes a frame and checks, before anything reaches the
// ledger, its sender, destination, standing and payload; it returns the
// command the frame proposes.
func (fd *fed) verifyFrame(peerNode string, b []byte) (transport.Frame, fsm.Envelope, error) {
	f, err := transport.Decode(b, fd.linkKey)
	if err != nil {
		metricInc("bus.rejected.frame")
		return f, fsm.Envelope{}, err
	}
	// The sender's certificate names the origin's node, and (a
	// kernel-bound certificate) the origin kernel: peerNode is
	// "KERNEL/NODE", or "/NODE" for a legacy certificate.
	peerKernel, node, _ := strings.Cut(peerNode, "/")
	if f.OriginNode != node || (peerKernel != "" && peerKernel != f.Origin) {
		metricInc("bus.rejected.origin")
		return f, fsm.Envelope{}, errBusOrigin
	}
	if f.Destination != fd.kernel {
		metricInc("bus.rejected.destination")
		return f, fsm.Envelope{}, errBusNotForUs
	}
	if !fd.standing(f.Origin, f.PassportID) {
		metricInc("bus.rejected.standing")
		return f, fsm.Envelope{}, errBusStanding
	}
	env, err := fd.frameCommand(f)
	return f, env, err
}

// frameCommand is the command a verified frame proposes, by its type and
// this kernel's role.
func (fd *fed) frameCommand(f transport.Frame) (fsm.Envelope, error) {
	role := fd.n.cfg.Role
	if _, ok := fd.n.frameHandler(f.Type); ok {
		return fsm.Envelope{}, nil // a service's frame: not ledgered (witnesshost.go)
	}
	switch {
	case f.Type == "witness" && role == fsm.RoleSovereign:
		var w fsm.FedWitness
		if err := fsm.Decode(f.Payload, &w); err != nil || w.Domain != f.Origin {
			metricInc("bus.rejected.payload")
			return fsm.Envelope{}, fmt.Errorf("%w: witness payload", transport.ErrMalformed)
		}
		return fsm.Envelope{Type: fsm.CmdFedWitness, Payload: f.Payload}, nil
	case f.Type == "canon.ack" && role == fsm.RoleSovereign:
		var a fsm.FedCanonAck
		if err := fsm.Decode(f.Payload, &a); err != nil || a.Domain != f.Origin {
			metricInc("bus.rejected.payload")
			return fsm.Envelope{}, fmt.Errorf("%w: canon acknowledgement payload", transport.ErrMalformed)
		}
		return fsm.Envelope{Type: fsm.CmdFedCanonAck, Payload: f.Payload}, nil
	case f.Type == "syscall" && role == fsm.RoleDomain:
		var p fsm.BusReceive
		if err := fsm.Decode(f.Payload, &p); err != nil || p.Origin != f.Origin || p.Seq != f.Seq || p.PassportID != f.PassportID {
			metricInc("bus.rejected.payload")
			return fsm.Envelope{}, fmt.Errorf("%w: syscall payload does not match its frame", transport.ErrMalformed)
		}
		return fsm.Envelope{Type: fsm.CmdBusReceive, Payload: f.Payload}, nil
	}
	metricInc("bus.rejected.type")
	return fsm.Envelope{}, errBusEventType
}

// standing applies fsm.State.PeerStanding, the ledger's own rule, before
// anything reaches the ledger.
func (fd *fed) standing(origin, ppID string) bool {
	ok := false
	fd.n.fedState(func(st *fsm.State, _ *fsm.FedState) {
		_, r := st.PeerStanding(origin, ppID, fd.n.now().UnixNano())
		ok = r == fsm.ReasonOK
	})
	return ok
}
