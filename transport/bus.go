package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN is the TLS application protocol the bus negotiates; a peer offering
// anything else fails the handshake.
const ALPN = "dominus-bus/1"

// Bus errors beyond the verification errors of Decode and Window.
var (
	// ErrTruncated: a frame or ack ended, or its deadline passed, before all
	// of it arrived.
	ErrTruncated = errors.New("transport: truncated message")
	// ErrPeerMismatch: the frame's OriginNode is not the node the TLS
	// certificate of the connection names.
	ErrPeerMismatch = errors.New("transport: frame origin node is not the TLS peer")
	// ErrRefused: the receiver refused the frame for a reason with no
	// sentinel of its own, or answered with an empty ack.
	ErrRefused = errors.New("transport: frame refused")
	// ErrPeerIdentity: the peer's verified certificate does not name a node.
	ErrPeerIdentity = errors.New("transport: peer identity refused")
	// ErrConnLimit: the receiver already serves Config.MaxInboundConns
	// connections.
	ErrConnLimit = errors.New("transport: connection limit reached")
	// ErrClosed: the Server is closed.
	ErrClosed = errors.New("transport: bus closed")
	// ErrTooManyPeers: Send would cache more than Config.MaxPeers
	// connections.
	ErrTooManyPeers = errors.New("transport: too many peers")
)

// RejectReason names why a receiver refused a connection or a frame. It is
// the key of Stats.Rejected and travels to the sender as a QUIC error code.
type RejectReason string

// Reject reasons, in the order of their wire codes (append-only).
const (
	RejectTooLarge     RejectReason = "too_large"
	RejectTruncated    RejectReason = "truncated"
	RejectMalformed    RejectReason = "malformed"
	RejectVersion      RejectReason = "version"
	RejectUnknownLink  RejectReason = "unknown_link"
	RejectBadMAC       RejectReason = "bad_mac"
	RejectReplay       RejectReason = "replay"
	RejectTooOld       RejectReason = "too_old"
	RejectPeerMismatch RejectReason = "peer_mismatch"
	RejectRefused      RejectReason = "refused"
	RejectPeerIdentity RejectReason = "peer_identity"
	RejectConnLimit    RejectReason = "conn_limit"
)

// rejectTable maps each reason to its sentinel; a reason's wire code is
// rejectCodeBase plus its index. Handler errors are classified by the first
// sentinel they match, so order matters only among errors that wrap several.
var rejectTable = [...]struct {
	reason RejectReason
	err    error
}{
	{RejectTooLarge, ErrTooLarge},
	{RejectTruncated, ErrTruncated},
	{RejectMalformed, ErrMalformed},
	{RejectVersion, ErrVersion},
	{RejectUnknownLink, ErrUnknownLink},
	{RejectBadMAC, ErrBadMAC},
	{RejectReplay, ErrReplay},
	{RejectTooOld, ErrTooOld},
	{RejectPeerMismatch, ErrPeerMismatch},
	{RejectRefused, ErrRefused},
	{RejectPeerIdentity, ErrPeerIdentity},
	{RejectConnLimit, ErrConnLimit},
}

// QUIC application error codes. Reject codes are rejectCodeBase + index
// into rejectTable.
const (
	codeClosing    = 0x0 // the bus is closing
	codeCanceled   = 0x1 // the sender gave up (context done)
	codeFailed     = 0x2 // the sender dropped a connection after an error
	rejectCodeBase = 0x100
)

func rejectIndex(err error) int {
	for i, r := range rejectTable {
		if errors.Is(err, r.err) {
			return i
		}
	}
	return rejectIndexOf(RejectRefused)
}

func rejectIndexOf(reason RejectReason) int {
	for i, r := range rejectTable {
		if r.reason == reason {
			return i
		}
	}
	panic("transport: unknown reject reason " + string(reason))
}

// RemoteError is returned by Send when the receiver refused the frame or
// the connection. It unwraps to the sentinel of its reason, so
// errors.Is(err, ErrBadMAC) holds for a frame the peer found forged.
type RemoteError struct {
	Reason RejectReason
	err    error
}

func (e *RemoteError) Error() string {
	return "transport: peer rejected: " + string(e.Reason) + ": " + e.err.Error()
}

// Unwrap returns the reason's sentinel error.
func (e *RemoteError) Unwrap() error { return e.err }

// remoteError maps a QUIC error carrying one of our reject codes from the
// peer to a *RemoteError.
func remoteError(err error) (*RemoteError, bool) {
	var code uint64
	var se *quic.StreamError
	var ae *quic.ApplicationError
	switch {
	case errors.As(err, &se) && se.Remote:
		code = uint64(se.ErrorCode)
	case errors.As(err, &ae) && ae.Remote:
		code = uint64(ae.ErrorCode)
	default:
		return nil, false
	}
	if code < rejectCodeBase || code-rejectCodeBase >= uint64(len(rejectTable)) {
		return nil, false
	}
	r := rejectTable[code-rejectCodeBase]
	return &RemoteError{Reason: r.reason, err: r.err}, true
}

// Handler answers one incoming frame. peerNode is the node named by the
// verified TLS certificate of the connection the frame arrived on; ctx
// carries the stream's deadline, ends when the Server closes, and holds the
// peer's address (PeerAddr). frame is the caller's to keep.
//
// A non-empty ack is written back to the sender. A non-nil error refuses
// the frame: it is counted under the reason of the first sentinel it
// matches (ErrRefused if none) and the sender's Send returns a
// *RemoteError carrying that reason. Handlers must return promptly when
// ctx is done; Close waits for them.
type Handler func(ctx context.Context, peerNode string, frame []byte) (ack []byte, err error)

// Config configures a Server. Zero limits and durations take the values of
// DefaultConfig.
//
// Memory for incoming frames is bounded by MaxInboundConns ×
// MaxIncomingStreams × MaxFrameBytesIn (64 × 16 × ~1 MiB by default), and
// only peers holding a federation certificate can use any of it.
type Config struct {
	// Handler answers incoming frames. Required.
	Handler Handler
	// ClientTLS is the configuration for dialing peers, with a client
	// certificate and verification of the server against the federation
	// CA: tlsutil.Reloader.ClientConfig(""). Required.
	ClientTLS *tls.Config
	// PeerNode names the node at the other end of an accepted connection
	// from its verified certificate (tlsutil.Reloader.PeerNode, or a name
	// that also carries the certificate's kernel); the Handler receives
	// it. Required.
	PeerNode func(tls.ConnectionState) (string, error)
	// Logger receives connection and rejection events. Nil discards.
	Logger *slog.Logger

	// MaxFrameBytesIn bounds an incoming frame; at most MaxFrameBytes.
	MaxFrameBytesIn int
	// StreamTimeout bounds one exchange (frame in, handler, ack out) on
	// either side.
	StreamTimeout time.Duration
	// HandshakeTimeout bounds a QUIC handshake.
	HandshakeTimeout time.Duration
	// MaxIdleTimeout closes a connection that hears nothing for this long.
	MaxIdleTimeout time.Duration
	// KeepAlivePeriod is how often an idle connection is pinged; below
	// MaxIdleTimeout.
	KeepAlivePeriod time.Duration
	// MaxIncomingStreams bounds the concurrent frames a peer may have in
	// flight on one connection.
	MaxIncomingStreams int
	// MaxInboundConns bounds the connections this Server accepts at once.
	MaxInboundConns int
	// MaxPeers bounds the outgoing connections Send caches.
	MaxPeers int
	// StatelessResetKey, if set (32 bytes), lets this node tell peers that
	// a connection it no longer knows (after a restart) is gone, so their
	// next Send re-dials at once instead of timing out. It must be secret
	// and the same across restarts of the node. Optional.
	StatelessResetKey []byte
}

// DefaultConfig returns the default limits and durations.
func DefaultConfig() Config {
	return Config{
		MaxFrameBytesIn:    MaxFrameBytes,
		StreamTimeout:      10 * time.Second,
		HandshakeTimeout:   5 * time.Second,
		MaxIdleTimeout:     15 * time.Second,
		KeepAlivePeriod:    5 * time.Second,
		MaxIncomingStreams: 16,
		MaxInboundConns:    64,
		MaxPeers:           64,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrameBytesIn == 0 {
		c.MaxFrameBytesIn = d.MaxFrameBytesIn
	}
	if c.StreamTimeout == 0 {
		c.StreamTimeout = d.StreamTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.MaxIdleTimeout == 0 {
		c.MaxIdleTimeout = d.MaxIdleTimeout
	}
	if c.KeepAlivePeriod == 0 {
		c.KeepAlivePeriod = d.KeepAlivePeriod
	}
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = d.MaxIncomingStreams
	}
	if c.MaxInboundConns == 0 {
		c.MaxInboundConns = d.MaxInboundConns
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = d.MaxPeers
	}
	return c
}

// Validate names every offending value.
func (c *Config) Validate() error {
	var errs []string
	if c.Handler == nil {
		errs = append(errs, "handler is nil")
	}
	if c.PeerNode == nil {
		errs = append(errs, "peer node function is nil")
	}
	if c.ClientTLS == nil {
		errs = append(errs, "client TLS config is nil")
	} else {
		if c.ClientTLS.InsecureSkipVerify && c.ClientTLS.VerifyConnection == nil {
			errs = append(errs, "client TLS config skips verification and has no VerifyConnection")
		}
		if c.ClientTLS.GetClientCertificate == nil && len(c.ClientTLS.Certificates) == 0 {
			errs = append(errs, "client TLS config presents no client certificate")
		}
	}
	if c.MaxFrameBytesIn < frameLengthMin || c.MaxFrameBytesIn > MaxFrameBytes {
		errs = append(errs, fmt.Sprintf("max frame bytes in %d is outside %d..%d", c.MaxFrameBytesIn, frameLengthMin, MaxFrameBytes))
	}
	if c.StreamTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Sprintf("stream timeout %s is below 10ms", c.StreamTimeout))
	}
	if c.HandshakeTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Sprintf("handshake timeout %s is below 10ms", c.HandshakeTimeout))
	}
	if c.MaxIdleTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("max idle timeout %s is below 100ms", c.MaxIdleTimeout))
	}
	if c.KeepAlivePeriod <= 0 || c.KeepAlivePeriod >= c.MaxIdleTimeout {
		errs = append(errs, fmt.Sprintf("keep-alive period %s is not in (0, max idle timeout %s)", c.KeepAlivePeriod, c.MaxIdleTimeout))
	}
	if c.MaxIncomingStreams < 1 || c.MaxIncomingStreams > 1024 {
		errs = append(errs, fmt.Sprintf("max incoming streams %d is outside 1..1024", c.MaxIncomingStreams))
	}
	if c.MaxInboundConns < 1 || c.MaxInboundConns > 65536 {
		errs = append(errs, fmt.Sprintf("max inbound conns %d is outside 1..65536", c.MaxInboundConns))
	}
	if c.MaxPeers < 1 || c.MaxPeers > 65536 {
		errs = append(errs, fmt.Sprintf("max peers %d is outside 1..65536", c.MaxPeers))
	}
	if n := len(c.StatelessResetKey); n != 0 && n != len(quic.StatelessResetKey{}) {
		errs = append(errs, fmt.Sprintf("stateless reset key has %d bytes, want %d", n, len(quic.StatelessResetKey{})))
	}
	if len(errs) > 0 {
		return errors.New("transport config: " + strings.Join(errs, "; "))
	}
	return nil
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	FramesIn          uint64 // frames read whole and handed to the Handler
	AcksOut           uint64 // acks written back to senders
	FramesOut         uint64 // frames Send wrote whole
	AcksIn            uint64 // acks Send read whole
	SendFailures      uint64 // Send calls that returned an error
	Dials             uint64 // outgoing connection attempts
	DialFailures      uint64 // outgoing connection attempts that failed
	HandshakeFailures uint64 // handshakes refused by certificate verification, in either role
	InboundConns      int    // accepted connections open now
	OutboundConns     int    // cached outgoing connections open now
	// Rejected counts refused incoming connections and frames by reason;
	// every reason is present.
	Rejected map[RejectReason]uint64
}

type counters struct {
	framesIn, acksOut, framesOut, acksIn atomic.Uint64
	sendFailures, dials, dialFailures    atomic.Uint64
	handshakeFailures                    atomic.Uint64
	rejected                             [len(rejectTable)]atomic.Uint64
}

// Server is one node's end of the federation bus: a single UDP socket on the
// node's own IP that accepts QUIC connections from peers and dials them, so
// every packet the node sends leaves from that IP. It keeps no delivery
// state; the ledgers of the two kernels do.
//
// A Server is safe for concurrent use.
type Server struct {
	cfg       Config
	logger    *slog.Logger
	addr      netip.AddrPort
	udp       *net.UDPConn
	tr        *quic.Transport
	ln        *quic.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config
	dialQUIC  *quic.Config

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop, connections, streams

	mu      sync.Mutex
	closed  bool                    // guarded by mu
	peers   map[string]*peer        // by peer address; guarded by mu
	inbound map[*quic.Conn]struct{} // accepted connections; guarded by mu

	stats counters
}

// peer is the cached outgoing connection to one address.
type peer struct {
	addr *net.UDPAddr
	sem  chan struct{} // held while checking or dialing conn
	conn atomic.Pointer[quic.Conn]
}

type peerAddrKey struct{}

// PeerAddr returns the UDP address an incoming frame came from, from the
// context a Handler receives.
func PeerAddr(ctx context.Context) (netip.AddrPort, bool) {
	ap, ok := ctx.Value(peerAddrKey{}).(netip.AddrPort)
	return ap, ok
}

// Listen binds one UDP socket to addr, which must be the node's own IP and
// a port ("127.0.70.1:8400"; port 0 picks one), and serves the bus on it.
// Outgoing connections from Send use the same socket.
//
// tlsConf is the server side of mutual TLS: it must require a client
// certificate and verify it, as tlsutil.Reloader.ServerConfig(true) does.
// Listen works on clones of tlsConf and cfg.ClientTLS with ALPN set and
// TLS 1.3 required. 0-RTT is refused: the server does not accept it and
// Send never attempts it.
func Listen(addr string, tlsConf *tls.Config, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ap, err := parseIPPort(addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen address: %w", err)
	}
	if ap.Addr().IsUnspecified() {
		return nil, fmt.Errorf("transport: listen address %q must be the node's own IP, not a wildcard", addr)
	}
	if tlsConf == nil {
		return nil, errors.New("transport: server TLS config is nil")
	}
	mutual := tlsConf.ClientAuth == tls.RequireAndVerifyClientCert ||
		tlsConf.ClientAuth == tls.RequireAnyClientCert && tlsConf.VerifyConnection != nil
	if !mutual {
		return nil, fmt.Errorf("transport: server TLS config must require and verify client certificates (ClientAuth %v)", tlsConf.ClientAuth)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		logger:  logger,
		peers:   make(map[string]*peer),
		inbound: make(map[*quic.Conn]struct{}),
	}
	s.serverTLS = s.busTLS(tlsConf)
	s.clientTLS = s.busTLS(cfg.ClientTLS)
	s.dialQUIC = &quic.Config{
		HandshakeIdleTimeout:  cfg.HandshakeTimeout,
		MaxIdleTimeout:        cfg.MaxIdleTimeout,
		KeepAlivePeriod:       cfg.KeepAlivePeriod,
		MaxIncomingStreams:    -1, // peers send us frames on their own connections
		MaxIncomingUniStreams: -1,
	}
	serverQUIC := &quic.Config{
		HandshakeIdleTimeout:  cfg.HandshakeTimeout,
		MaxIdleTimeout:        cfg.MaxIdleTimeout,
		KeepAlivePeriod:       cfg.KeepAlivePeriod,
		MaxIncomingStreams:    int64(cfg.MaxIncomingStreams),
		MaxIncomingUniStreams: -1,
		Allow0RTT:             false,
	}

	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("transport: bind %s: %w", addr, err)
	}
	s.udp = udp
	s.addr = udp.LocalAddr().(*net.UDPAddr).AddrPort()
	s.tr = &quic.Transport{Conn: udp}
	if len(cfg.StatelessResetKey) > 0 {
		var k quic.StatelessResetKey
		copy(k[:], cfg.StatelessResetKey)
		s.tr.StatelessResetKey = &k
	}
	ln, err := s.tr.Listen(s.serverTLS, serverQUIC)
	if err != nil {
		_ = s.tr.Close()
		_ = udp.Close()
		return nil, fmt.Errorf("transport: listen on %s: %w", s.addr, err)
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.acceptLoop()
	s.logger.Info("bus listening", "addr", s.addr.String())
	return s, nil
}

// busTLS clones c for the bus: ALPN, TLS 1.3, and handshake failures in
// VerifyConnection counted.
func (s *Server) busTLS(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.NextProtos = []string{ALPN}
	c.MinVersion = tls.VersionTLS13
	if verify := c.VerifyConnection; verify != nil {
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verify(cs); err != nil {
				s.stats.handshakeFailures.Add(1)
				s.logger.Warn("bus handshake refused", "error", err.Error())
				return err
			}
			return nil
		}
	}
	return c
}

// Addr returns the address the Server is bound to.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		FramesIn:          s.stats.framesIn.Load(),
		AcksOut:           s.stats.acksOut.Load(),
		FramesOut:         s.stats.framesOut.Load(),
		AcksIn:            s.stats.acksIn.Load(),
		SendFailures:      s.stats.sendFailures.Load(),
		Dials:             s.stats.dials.Load(),
		DialFailures:      s.stats.dialFailures.Load(),
		HandshakeFailures: s.stats.handshakeFailures.Load(),
		Rejected:          make(map[RejectReason]uint64, len(rejectTable)),
	}
	for i, r := range rejectTable {
		st.Rejected[r.reason] = s.stats.rejected[i].Load()
	}
	s.mu.Lock()
	st.InboundConns = len(s.inbound)
	for _, p := range s.peers {
		if c := p.conn.Load(); c != nil && c.Context().Err() == nil {
			st.OutboundConns++
		}
	}
	s.mu.Unlock()
	return st
}

// Close stops accepting, closes every connection, waits for running
// handlers to return and releases the socket. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var conns []*quic.Conn
	for c := range s.inbound {
		conns = append(conns, c)
	}
	for _, p := range s.peers {
		if c := p.conn.Load(); c != nil {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()

	s.cancel()
	err := s.ln.Close()
	for _, c := range conns {
		_ = c.CloseWithError(codeClosing, "bus closing")
	}
	s.wg.Wait()
	if terr := s.tr.Close(); err == nil {
		err = terr
	}
	if uerr := s.udp.Close(); err == nil {
		err = uerr
	}
	s.logger.Info("bus closed", "addr", s.addr.String())
	return err
}

func (s *Server) reject(reason RejectReason) int {
	i := rejectIndexOf(reason)
	s.stats.rejected[i].Add(1)
	return i
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				s.logger.Error("bus accept failed", "error", err.Error())
			}
			return
		}
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

// serveConn identifies the peer of an accepted connection and serves its
// streams until the connection or the Server ends.
func (s *Server) serveConn(conn *quic.Conn) {
	defer s.wg.Done()
	remote := conn.RemoteAddr().String()
	peerNode, err := s.cfg.PeerNode(conn.ConnectionState().TLS)
	if err != nil {
		i := s.reject(RejectPeerIdentity)
		s.logger.Warn("bus peer identity refused", "remote", remote, "error", err.Error())
		_ = conn.CloseWithError(quic.ApplicationErrorCode(rejectCodeBase+i), "peer identity refused")
		return
	}
	s.mu.Lock()
	if s.closed || len(s.inbound) >= s.cfg.MaxInboundConns {
		closed := s.closed
		s.mu.Unlock()
		if closed {
			_ = conn.CloseWithError(codeClosing, "bus closing")
			return
		}
		i := s.reject(RejectConnLimit)
		s.logger.Warn("bus connection refused: limit reached", "remote", remote, "peer_node", peerNode, "limit", s.cfg.MaxInboundConns)
		_ = conn.CloseWithError(quic.ApplicationErrorCode(rejectCodeBase+i), "connection limit reached")
		return
	}
	s.inbound[conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inbound, conn)
		s.mu.Unlock()
	}()
	s.logger.Debug("bus connection accepted", "remote", remote, "peer_node", peerNode)

	ctx := s.ctx
	if ua, ok := conn.RemoteAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		ctx = context.WithValue(ctx, peerAddrKey{}, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveStream(ctx, peerNode, st)
	}
}

// serveStream reads one frame, hands it to the Handler and writes its ack.
// The frame's length prefix is checked before anything is allocated; a
// frame over the limit is refused without reading it.
func (s *Server) serveStream(ctx context.Context, peerNode string, st *quic.Stream) {
	defer s.wg.Done()
	deadline := time.Now().Add(s.cfg.StreamTimeout)
	_ = st.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	refuse := func(err error) {
		i := rejectIndex(err)
		s.stats.rejected[i].Add(1)
		code := quic.StreamErrorCode(rejectCodeBase + i)
		st.CancelRead(code)
		st.CancelWrite(code)
		s.logger.Debug("bus frame rejected", "peer_node", peerNode, "reason", string(rejectTable[i].reason), "error", err.Error())
	}

	frame, err := readMessage(st, s.cfg.MaxFrameBytesIn)
	if err != nil {
		if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
			err = fmt.Errorf("%w: %w", ErrTruncated, err) // reset by the sender, deadline, connection lost
		}
		refuse(err)
		return
	}
	s.stats.framesIn.Add(1)
	ack, err := s.cfg.Handler(ctx, peerNode, frame)
	if err == nil && len(ack) == 0 {
		err = fmt.Errorf("%w: handler returned an empty ack", ErrRefused)
	}
	if err == nil && len(ack) > MaxAckBytes {
		err = fmt.Errorf("%w: handler returned an ack of %d bytes, over %d", ErrRefused, len(ack), MaxAckBytes)
	}
	if err != nil {
		refuse(err)
		return
	}
	if err := writeMessage(st, ack); err != nil {
		st.CancelWrite(codeFailed)
		s.logger.Debug("bus ack not written", "peer_node", peerNode, "error", err.Error())
		return
	}
	s.stats.acksOut.Add(1)
}

// Send delivers one encoded frame to the bus at addr (an IP:port) and
// returns the receiver's ack, within ctx and Config.StreamTimeout. It uses
// the cached connection to addr, dialing one from this Server's socket if
// there is none; a connection that fails is dropped, and if a cached one
// turns out to be dead the frame is sent once more on a fresh connection.
// The frame may therefore reach the receiver more than once; receivers
// deduplicate on (origin, seq).
//
// A refusal by the receiver is a *RemoteError wrapping the sentinel of its
// reason (ErrBadMAC, ErrReplay, ...). The ack is the caller's to keep and
// to verify with DecodeAck.
func (s *Server) Send(ctx context.Context, addr string, frame []byte) ([]byte, error) {
	ack, err := s.send(ctx, addr, frame)
	if err != nil {
		s.stats.sendFailures.Add(1)
	}
	return ack, err
}

func (s *Server) send(ctx context.Context, addr string, frame []byte) ([]byte, error) {
	if len(frame) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if len(frame) > MaxFrameBytes {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrTooLarge, len(frame), MaxFrameBytes)
	}
	ap, err := parseIPPort(addr)
	if err != nil {
		return nil, fmt.Errorf("transport: peer address: %w", err)
	}
	for attempt := 1; ; attempt++ {
		p, err := s.peer(ap)
		if err != nil {
			return nil, err
		}
		conn, reused, err := s.connect(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("transport: connect to %s: %w", ap, err)
		}
		ack, err := s.exchange(ctx, conn, frame)
		if err == nil {
			return ack, nil
		}
		if re, ok := remoteError(err); ok {
			if connLost(conn, err) {
				s.drop(p, conn)
			}
			return nil, re
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("transport: send to %s: %w (%v)", ap, cerr, err)
		}
		dead := connLost(conn, err)
		s.drop(p, conn)
		if reused && dead && attempt == 1 {
			s.logger.Debug("bus cached connection dead; re-dialing", "peer", ap.String(), "error", err.Error())
			continue
		}
		return nil, fmt.Errorf("transport: send to %s: %w", ap, err)
	}
}

// peer returns the cache entry for ap, creating it if there is room.
func (s *Server) peer(ap netip.AddrPort) (*peer, error) {
	key := ap.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if p, ok := s.peers[key]; ok {
		return p, nil
	}
	if len(s.peers) >= s.cfg.MaxPeers {
		for k, p := range s.peers { // forget entries with no live connection
			if c := p.conn.Load(); c == nil || c.Context().Err() != nil {
				select {
				case p.sem <- struct{}{}:
					delete(s.peers, k)
					<-p.sem
				default: // a dial is in progress
				}
			}
		}
		if len(s.peers) >= s.cfg.MaxPeers {
			return nil, fmt.Errorf("%w: %d cached connections", ErrTooManyPeers, len(s.peers))
		}
	}
	p := &peer{addr: net.UDPAddrFromAddrPort(ap), sem: make(chan struct{}, 1)}
	s.peers[key] = p
	return p, nil
}

// connect returns p's live connection, dialing one if needed. reused says
// the connection was already cached.
func (s *Server) connect(ctx context.Context, p *peer) (conn *quic.Conn, reused bool, err error) {
	if c := p.conn.Load(); c != nil && c.Context().Err() == nil {
		return c, true, nil
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-p.sem }()
	if c := p.conn.Load(); c != nil && c.Context().Err() == nil {
		return c, true, nil // dialed by another Send meanwhile
	}
	s.stats.dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, 2*s.cfg.HandshakeTimeout)
	defer cancel()
	c, err := s.tr.Dial(dctx, p.addr, s.clientTLS, s.dialQUIC)
	if err != nil {
		s.stats.dialFailures.Add(1)
		if re, ok := remoteError(err); ok {
			return nil, false, re
		}
		return nil, false, err
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		p.conn.Store(c)
	}
	s.mu.Unlock()
	if closed {
		_ = c.CloseWithError(codeClosing, "bus closing")
		return nil, false, ErrClosed
	}
	s.logger.Debug("bus connection dialed", "peer", p.addr.String(), "local", c.LocalAddr().String())
	return c, false, nil
}

// connLost reports whether err, returned by an exchange on conn, means
// the connection itself is gone. The connection's context can end a moment
// after a stream reports the cause, so the error is inspected too.
func connLost(conn *quic.Conn, err error) bool {
	if conn.Context().Err() != nil {
		return true
	}
	var (
		reset     *quic.StatelessResetError
		idle      *quic.IdleTimeoutError
		app       *quic.ApplicationError
		transport *quic.TransportError
	)
	return errors.As(err, &reset) || errors.As(err, &idle) || errors.As(err, &app) || errors.As(err, &transport)
}

// drop forgets and closes conn if it is still p's cached connection.
func (s *Server) drop(p *peer, conn *quic.Conn) {
	if p.conn.CompareAndSwap(conn, nil) {
		_ = conn.CloseWithError(codeFailed, "dropped after an error")
	}
}

// exchange writes one frame on a new stream and reads one ack.
func (s *Server) exchange(ctx context.Context, conn *quic.Conn, frame []byte) ([]byte, error) {
	deadline := time.Now().Add(s.cfg.StreamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	octx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	st, err := conn.OpenStreamSync(octx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	_ = st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() {
		st.CancelRead(codeCanceled)
		st.CancelWrite(codeCanceled)
	})
	defer stop()
	if err := writeMessage(st, frame); err != nil {
		// A receiver that refuses a frame before reading it all stops our
		// sending side and resets its own with the reason; read the reason.
		_, rerr := readMessage(st, MaxAckBytes)
		st.CancelRead(codeFailed)
		if re, ok := remoteError(rerr); ok {
			return nil, re
		}
		return nil, fmt.Errorf("write frame: %w", err)
	}
	s.stats.framesOut.Add(1)
	ack, err := readMessage(st, MaxAckBytes)
	if err != nil {
		st.CancelRead(codeFailed)
		return nil, fmt.Errorf("read ack: %w", err)
	}
	s.stats.acksIn.Add(1)
	return ack, nil
}

// writeMessage writes a u32 big-endian length, msg, and closes the sending
// side of the stream.
func writeMessage(st *quic.Stream, msg []byte) error {
	b := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(b, uint32(len(msg)))
	copy(b[4:], msg)
	if _, err := st.Write(b); err != nil {
		return err
	}
	return st.Close()
}

// readMessage reads one length-prefixed message of 1 to max bytes followed
// by the end of the stream. The length is checked before the buffer is
// allocated. A message that is too long, empty or followed by more bytes
// fails with ErrTooLarge or ErrMalformed; a stream that ends early with
// ErrTruncated; stream and connection errors are returned as they are.
func readMessage(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, truncated("length prefix", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, fmt.Errorf("%w: zero-length message", ErrMalformed)
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: message of %d bytes exceeds %d", ErrTooLarge, n, max)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, truncated(fmt.Sprintf("%d-byte message", n), err)
	}
	var extra [1]byte
	for range 16 { // io.Reader may return (0, nil); bounded
		k, err := r.Read(extra[:])
		switch {
		case k > 0:
			return nil, fmt.Errorf("%w: bytes after the %d-byte message", ErrMalformed, n)
		case errors.Is(err, io.EOF):
			return msg, nil
		case err != nil:
			return nil, truncated("end of stream", err)
		}
	}
	return nil, fmt.Errorf("%w: stream not closed after the message", ErrMalformed)
}

// truncated wraps an end of stream before what was expected in
// ErrTruncated, and any other read error only with what was being read.
func truncated(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s", ErrTruncated, what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// parseIPPort parses an IP:port with a literal IP (no names, no zones).
func parseIPPort(addr string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP:port: %w", addr, err)
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q has a zone", addr)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
