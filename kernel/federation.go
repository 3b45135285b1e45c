package kernel

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
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

func (fd *fed) close() {
	if fd != nil && fd.bus != nil {
		_ = fd.bus.Close()
	}
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
