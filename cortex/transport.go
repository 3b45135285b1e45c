package cortex

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// Limits of the gossip transport.
const (
	// udpPacketBytesMax is the read buffer of the UDP socket; memberlist
	// packets are far smaller (UDPBufferSize 1400).
	udpPacketBytesMax = 65536
	// udpRecvBufferBytes is the socket receive buffer asked of the OS,
	// halved until accepted.
	udpRecvBufferBytes = 2 << 20
	// bindAttempts bounds the retries for a free port when the configured
	// port is 0 (TCP and UDP must get the same number).
	bindAttempts = 10
	// acceptBackoffMax bounds the pause after a failed TCP accept.
	acceptBackoffMax = time.Second
)

// boundTransport is memberlist's transport for one node: a TCP listener and
// a UDP socket on the node's own IP and one port. Every stream it dials
// has the node's IP as its local address and every packet it sends leaves
// from the bound UDP socket, so peers see gossip coming from the address
// the node advertises. memberlist's NetTransport dials with an unbound
// dialer, which on a host with several addresses picks the source by
// route (127.0.0.1 for every 127.x address), so it is not used.
type boundTransport struct {
	addr   netip.AddrPort // bound IP and port
	ip     net.IP
	tcp    *net.TCPListener
	udp    *net.UDPConn
	logger *slog.Logger

	// observe, if set before the transport starts, sees the remote
	// address of every accepted stream ("tcp") and received packet ("udp").
	observe func(network string, remote net.Addr)

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*boundTransport)(nil)

// listen binds TCP and UDP on addr. Port 0 picks a port free for both.
func listen(addr netip.AddrPort, logger *slog.Logger, observe func(string, net.Addr)) (*boundTransport, error) {
	ip := net.IP(addr.Addr().AsSlice())
	var (
		tcp     *net.TCPListener
		udp     *net.UDPConn
		lastErr error
	)
	attempts := 1
	if addr.Port() == 0 {
		attempts = bindAttempts
	}
	for range attempts {
		var err error
		tcp, err = net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: int(addr.Port())})
		if err != nil {
			return nil, fmt.Errorf("cortex: listen tcp %s: %w", addr, err)
		}
		port := tcp.Addr().(*net.TCPAddr).Port
		udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err == nil {
			break
		}
		_ = tcp.Close()
		tcp, udp = nil, nil
		lastErr = fmt.Errorf("cortex: listen udp %s port %d: %w", ip, port, err)
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if udp == nil {
		return nil, lastErr
	}
	setRecvBuffer(udp, logger)
	t := &boundTransport{
		addr:     netip.AddrPortFrom(addr.Addr(), uint16(tcp.Addr().(*net.TCPAddr).Port)),
		ip:       ip,
		tcp:      tcp,
		udp:      udp,
		logger:   logger,
		observe:  observe,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}
	t.wg.Add(2)
	go t.acceptLoop()
	go t.readLoop()
	return t, nil
}

func setRecvBuffer(c *net.UDPConn, logger *slog.Logger) {
	for size := udpRecvBufferBytes; size >= 64<<10; size /= 2 {
		if c.SetReadBuffer(size) == nil {
			return
		}
	}
	logger.Warn("cortex: could not enlarge the UDP receive buffer")
}

// FinalAdvertiseAddr returns the bound IP and port whatever memberlist
// proposes: the node advertises exactly the address it sends from.
func (t *boundTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, int(t.addr.Port()), nil
}

// WriteTo sends b to addr from the bound UDP socket.
func (t *boundTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	to, err := resolveUDP(addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteToUDPAddrPort(b, to)
	return time.Now(), err
}

// WriteToAddress sends b to a.Addr from the bound UDP socket.
func (t *boundTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func resolveUDP(addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// DialTimeout opens a TCP stream to addr from the node's IP.
func (t *boundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: t.ip}}
	return d.Dial("tcp", addr)
}

// DialAddressTimeout opens a TCP stream to a.Addr from the node's IP.
func (t *boundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// PacketCh delivers received packets.
func (t *boundTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh delivers accepted streams.
func (t *boundTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown closes the sockets and waits for the loops to end. memberlist
// calls it before it stops reading the channels; the loops also give up a
// pending hand-off when done closes, so Shutdown never blocks on them.
func (t *boundTransport) Shutdown() error {
	t.stopOnce.Do(func() {
		close(t.done)
		_ = t.tcp.Close()
		_ = t.udp.Close()
	})
	t.wg.Wait()
	return nil
}

func (t *boundTransport) stopping() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *boundTransport) acceptLoop() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.stopping() {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
			t.logger.Warn("cortex: gossip accept failed", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-t.done:
				return
			}
			continue
		}
		backoff = 0
		if t.observe != nil {
			t.observe("tcp", conn.RemoteAddr())
		}
		select {
		case t.streamCh <- conn:
		case <-t.done:
			_ = conn.Close()
			return
		}
	}
}

func (t *boundTransport) readLoop() {
	defer t.wg.Done()
	for {
		buf := make([]byte, udpPacketBytesMax)
		n, from, err := t.udp.ReadFromUDP(buf)
		ts := time.Now()
		if err != nil {
			if t.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.logger.Warn("cortex: gossip read failed", "err", err)
			continue
		}
		if n < 1 {
			continue
		}
		if t.observe != nil {
			t.observe("udp", from)
		}
		select {
		case t.packetCh <- &memberlist.Packet{Buf: buf[:n], From: from, Timestamp: ts}:
		case <-t.done:
			return
		}
	}
}
