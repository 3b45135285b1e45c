package kernel

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// Connection kinds: the first byte a dialer writes after the TLS
// handshake. The hello kinds are followed by each side's connHello
// (identity.go); the first two, from nodes before the hello, are accepted
// only with --allow-legacy-certs and never dialed.
const (
	connRaftLegacy byte = 'R'
	connRPCLegacy  byte = 'C'
	connRaft       byte = 'r'
	connRPC        byte = 'c'
)

const handshakeTimeout = 5 * time.Second

// mux owns the node's one TCP port: it accepts connections, completes
// mutual TLS, reads the kind byte and hands Raft connections to the
// stream layer and RPC connections to the RPC server. Every outgoing
// connection is dialed from the node's own bind IP.
type mux struct {
	ln     net.Listener
	addr   net.Addr
	dial   func(ctx context.Context, addr string) (net.Conn, error)
	tls    *tlsutil.Reloader
	log    *slog.Logger
	raftCh chan net.Conn
	rpc    func(conn net.Conn, peer string)
	// identity is this node's kernel; checkPeer judges a peer's
	// certificate; legacy accepts the kinds without a hello.
	identity  *kernelIdentity
	checkPeer func(tlsutil.Identity) error
	legacy    bool
	done      chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
	mu        sync.Mutex
	accepted  map[net.Conn]struct{}
}

func newMux(cfg *Config, tr *tlsutil.Reloader, log *slog.Logger) (*mux, error) {
	ip, _, err := splitIPPort(cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.BindAddr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.BindAddr, err)
		}
	}
	dial := cfg.Dial
	if dial == nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: handshakeTimeout, KeepAlive: 15 * time.Second}
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	addr, err := net.ResolveTCPAddr("tcp", cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	return &mux{
		ln: ln, addr: addr, dial: dial, tls: tr, log: log,
		raftCh:   make(chan net.Conn, 16),
		done:     make(chan struct{}),
		accepted: map[net.Conn]struct{}{},
	}, nil
}

func (m *mux) serve() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.done:
					return
				default:
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				m.log.Error("accept failed", "err", err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.handshake(c)
			}()
		}
	}()
}

func (m *mux) handshake(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	peer := c.RemoteAddr().String()
	if m.tls != nil {
		tc := tls.Server(c, m.tls.ServerConfig(true))
		if err := tc.Handshake(); err != nil {
			metricInc("rpc.tls_rejected")
			m.log.Warn("refused node connection: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		id, err := m.tls.PeerIdentity(tc.ConnectionState())
		if err == nil && m.checkPeer != nil {
			err = m.checkPeer(id)
		}
		if err != nil {
			metricInc("rpc.peer_refused")
			m.log.Warn("refused node connection: peer identity", "remote", c.RemoteAddr().String(), "err", err)
			tc.Close()
			return
		}
		peer = id.Node
		c = tc
	}
	var kind [1]byte
	if _, err := io.ReadFull(c, kind[:]); err != nil {
		c.Close()
		return
	}
	switch kind[0] {
	case connRaft, connRPC:
		hc, err := m.acceptHello(c)
		if err != nil {
			metricInc("rpc.peer_refused")
			m.log.Warn("refused node connection", "remote", c.RemoteAddr().String(), "peer", peer, "err", err)
			c.Close()
			return
		}
		c = hc
	case connRaftLegacy, connRPCLegacy:
		if !m.legacy {
			m.log.Warn("refused node connection without a hello (a node from before kernel-bound certificates; allowed only with --allow-legacy-certs)", "remote", c.RemoteAddr().String(), "peer", peer)
			c.Close()
			return
		}
	}
	_ = c.SetDeadline(time.Time{})
	switch kind[0] {
	case connRaft, connRaftLegacy:
		select {
		case m.raftCh <- c:
		case <-m.done:
			c.Close()
		}
	case connRPC, connRPCLegacy:
		if m.track(c) {
			m.rpc(c, peer)
			m.untrack(c)
		}
	default:
		m.log.Warn("refused node connection: unknown kind", "remote", c.RemoteAddr().String(), "kind", kind[0])
		c.Close()
	}
}

func (m *mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		c.Close()
		return false
	default:
	}
	m.accepted[c] = struct{}{}
	return true
}

func (m *mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.accepted, c)
	m.mu.Unlock()
	c.Close()
}

// dialKind dials addr from the node's IP, completes TLS and writes kind.
func (m *mux) dialKind(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	c, err := m.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	if m.tls != nil {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(c, m.tls.ClientConfig(host))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		id, err := m.tls.PeerIdentity(tc.ConnectionState())
		if err == nil && m.checkPeer != nil {
			err = m.checkPeer(id)
		}
		if err != nil {
			tc.Close()
			return nil, fmt.Errorf("node at %s: %w", addr, err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	if err := writeHello(c, m.identity); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	peer, err := readHello(br)
	if err == nil {
		err = checkHello(m.identity, peer, "the node at "+addr)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return &helloConn{Conn: c, r: br}, nil
}

// acceptHello reads a dialer's hello, checks it, and answers with this
// node's.
func (m *mux) acceptHello(c net.Conn) (net.Conn, error) {
	br := bufio.NewReader(c)
	peer, err := readHello(br)
	if err != nil {
		return nil, err
	}
	if err := checkHello(m.identity, peer, "the dialing node"); err != nil {
		return nil, err
	}
	if err := writeHello(c, m.identity); err != nil {
		return nil, err
	}
	return &helloConn{Conn: c, r: br}, nil
}

func (m *mux) close() {
	m.once.Do(func() {
		close(m.done)
		m.ln.Close()
		m.mu.Lock()
		for c := range m.accepted {
			c.Close()
		}
		m.mu.Unlock()
	})
}

// streamLayer adapts the mux to raft.StreamLayer.
type streamLayer struct{ m *mux }

func (s streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raftCh:
		return c, nil
	case <-s.m.done:
		return nil, errors.New("listener closed")
	}
}

func (s streamLayer) Close() error { s.m.close(); return nil }

func (s streamLayer) Addr() net.Addr { return s.m.addr }

func (s streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.m.dialKind(ctx, string(address), connRaft)
}
