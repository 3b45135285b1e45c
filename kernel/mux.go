package kernel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// Connection kinds: the first byte a dialer writes after the TLS handshake.
const (
	connRaft byte = 'R'
	connRPC  byte = 'C'
)

const handshakeTimeout = 5 * time.Second

// mux owns the node's one TCP port: it accepts connections, completes
// mutual TLS, reads the kind byte and hands Raft connections to the
// stream layer and RPC connections to the RPC server. Every outgoing
// connection is dialed from the node's own bind IP.
type mux struct {
	ln       net.Listener
	addr     net.Addr
	dial     func(ctx context.Context, addr string) (net.Conn, error)
	tls      *tlsutil.Reloader
	log      *slog.Logger
	raftCh   chan net.Conn
	rpc      func(conn net.Conn, peer string)
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	accepted map[net.Conn]struct{}
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
		name, err := m.tls.PeerNode(tc.ConnectionState())
		if err != nil {
			m.log.Warn("refused node connection: peer identity", "remote", c.RemoteAddr().String(), "err", err)
			tc.Close()
			return
		}
		peer = name
		c = tc
	}
	var kind [1]byte
	if _, err := c.Read(kind[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		select {
		case m.raftCh <- c:
		case <-m.done:
			c.Close()
		}
	case connRPC:
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
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
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
