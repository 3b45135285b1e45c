package netfault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Pair is a direction between two addresses: packets from Src to Dst.
type Pair struct {
	Src, Dst string
}

func (p Pair) String() string { return p.Src + "->" + p.Dst }

// DefaultProbeTimeout bounds one TCP dial or one datagram's arrival.
const DefaultProbeTimeout = 400 * time.Millisecond

// Prober listens with TCP and UDP on every address and tells whether
// traffic from one address reaches another.
type Prober struct {
	port    int
	timeout time.Duration
	tcp     []net.Listener
	udp     []*net.UDPConn
	wg      sync.WaitGroup

	mu      sync.Mutex
	waiting map[string]chan struct{} // nonce -> closed on arrival
}

// NewProber listens on port of every ip; timeout bounds each probe
// (0: DefaultProbeTimeout).
func NewProber(ips []string, port int, timeout time.Duration) (*Prober, error) {
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	p := &Prober{port: port, timeout: timeout, waiting: map[string]chan struct{}{}}
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("netfault: probe listener: %w", err)
		}
		p.tcp = append(p.tcp, l)
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			p.Close()
			return nil, err
		}
		u, err := net.ListenUDP("udp", ua)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("netfault: probe listener: %w", err)
		}
		p.udp = append(p.udp, u)
		p.wg.Add(2)
		go p.acceptLoop(l)
		go p.readLoop(u)
	}
	return p, nil
}

func (p *Prober) acceptLoop(l net.Listener) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func (p *Prober) readLoop(u *net.UDPConn) {
	defer p.wg.Done()
	buf := make([]byte, 128)
	for {
		n, _, err := u.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		if ch, ok := p.waiting[string(buf[:n])]; ok {
			close(ch)
			delete(p.waiting, string(buf[:n]))
		}
		p.mu.Unlock()
	}
}

// Close stops the listeners.
func (p *Prober) Close() {
	for _, l := range p.tcp {
		l.Close()
	}
	for _, u := range p.udp {
		u.Close()
	}
	p.wg.Wait()
}

// Reach probes traffic from src to dst: whether a TCP dial from src's IP
// completed and whether a datagram from src's IP arrived, each within
// the probe timeout.
func (p *Prober) Reach(ctx context.Context, src, dst string) (tcp, udp bool) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tcp = p.dialTCP(ctx, src, dst) }()
	go func() { defer wg.Done(); udp = p.sendUDP(ctx, src, dst) }()
	wg.Wait()
	return tcp, udp
}

func (p *Prober) dialTCP(ctx context.Context, src, dst string) bool {
	_, ok := p.timeTCP(ctx, src, dst, p.timeout)
	return ok
}

func (p *Prober) sendUDP(ctx context.Context, src, dst string) bool {
	return p.sendUDPWithin(ctx, src, dst, p.timeout)
}

func (p *Prober) sendUDPWithin(ctx context.Context, src, dst string, limit time.Duration) bool {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false
	}
	nonce := hex.EncodeToString(b[:])
	ch := make(chan struct{})
	p.mu.Lock()
	p.waiting[nonce] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, nonce)
		p.mu.Unlock()
	}()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.ParseIP(dst), Port: p.port})
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.Write([]byte(nonce)); err != nil {
		return false
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// ErrNotInEffect is wrapped when a probe contradicts the expected state
// of the network.
var ErrNotInEffect = errors.New("netfault: network state is not what the rules say")

// ExpectBlocked probes every pair (in parallel) and returns an error
// naming each pair through which a TCP dial or a datagram still passed.
func (p *Prober) ExpectBlocked(ctx context.Context, pairs []Pair) error {
	return p.expect(ctx, pairs, false, 1)
}

// ExpectOpen probes every pair and returns an error naming each pair
// through which a TCP dial or a datagram failed, after up to attempts
// tries per pair.
func (p *Prober) ExpectOpen(ctx context.Context, pairs []Pair, attempts int) error {
	return p.expect(ctx, pairs, true, max(1, attempts))
}

func (p *Prober) expect(ctx context.Context, pairs []Pair, open bool, attempts int) error {
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, pr := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tcp, udp bool
			for a := 0; a < attempts; a++ {
				tcp, udp = p.Reach(ctx, pr.Src, pr.Dst)
				if (open && tcp && udp) || (!open && !tcp && !udp) {
					return
				}
			}
			want := "blocked"
			if open {
				want = "open"
			}
			errs[i] = fmt.Errorf("%w: %s should be %s but tcp reached=%v udp reached=%v", ErrNotInEffect, pr, want, tcp, udp)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ExpectDelayed probes every pair (in parallel) and returns an error
// naming each pair whose datagram took less than min to arrive, or whose
// TCP dial (one round trip) took less than 2*min when both directions
// are delayed (bothWays), or which did not pass at all. Every probe
// waits up to the probe timeout plus four times min.
func (p *Prober) ExpectDelayed(ctx context.Context, pairs []Pair, min time.Duration, bothWays bool) error {
	errs := make([]error, len(pairs))
	limit := p.timeout + 4*min
	var wg sync.WaitGroup
	for i, pr := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tcpTook, udpTook time.Duration
			var tcpOK, udpOK bool
			var inner sync.WaitGroup
			inner.Add(2)
			go func() { defer inner.Done(); tcpTook, tcpOK = p.timeTCP(ctx, pr.Src, pr.Dst, limit) }()
			go func() { defer inner.Done(); udpTook, udpOK = p.timeUDP(ctx, pr.Src, pr.Dst, limit) }()
			inner.Wait()
			wantTCP := min
			if bothWays {
				wantTCP = 2 * min
			}
			switch {
			case !tcpOK || !udpOK:
				errs[i] = fmt.Errorf("%w: %s should be delayed but open; tcp reached=%v udp reached=%v within %s", ErrNotInEffect, pr, tcpOK, udpOK, limit)
			case udpTook < min || tcpTook < wantTCP:
				errs[i] = fmt.Errorf("%w: %s should be delayed by %s: a datagram took %s, a TCP dial %s (want >= %s)", ErrNotInEffect, pr, min, udpTook, tcpTook, wantTCP)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// timeTCP times a TCP dial from src to dst (SYN out, SYN-ACK back).
func (p *Prober) timeTCP(ctx context.Context, src, dst string, limit time.Duration) (time.Duration, bool) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: limit}
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(dst, strconv.Itoa(p.port)))
	took := time.Since(start)
	if err != nil {
		return took, false
	}
	c.Close()
	return took, true
}

// timeUDP times one datagram from src's IP until the listener on dst
// read it (one way).
func (p *Prober) timeUDP(ctx context.Context, src, dst string, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	ok := p.sendUDPWithin(ctx, src, dst, limit)
	return time.Since(start), ok
}

// AllPairs returns every ordered pair of distinct addresses.
func AllPairs(ips []string) []Pair {
	var out []Pair
	for _, a := range ips {
		for _, b := range ips {
			if a != b {
				out = append(out, Pair{a, b})
			}
		}
	}
	return out
}
