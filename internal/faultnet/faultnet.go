package faultnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

var (
	// ErrUnreachable is wrapped by the error of a dial whose path is
	// removed by a fault.
	ErrUnreachable = errors.New("faultnet: destination unreachable under an injected fault")
	// ErrConnBroken is wrapped by the errors of Read and Write on a
	// connection that a fault closed.
	ErrConnBroken = errors.New("faultnet: connection broken by an injected fault")
)

// refusedDialWaitMax bounds how long a dial across a removed path waits
// before failing, standing in for a lost SYN.
const refusedDialWaitMax = 50 * time.Millisecond

// PCG stream constants that split the seed into independent sources.
const (
	streamDrop  = 0x64726f70 // "drop"
	streamDelay = 0x64656c61 // "dela"
	streamUser  = 0x75736572 // "user"
)

// Stats counts what the faults did. Counters only grow, except ConnsOpen
// and ListenersOpen, which are current sizes.
type Stats struct {
	// DialsRefused counts dials that failed because their path was removed,
	// and accepted connections closed on arrival for the same reason.
	DialsRefused uint64
	// ConnsBroken counts tracked connection ends closed by a fault: a
	// partition, isolation or cut, a write across a removed path, or a
	// drop. A broken connection counts once per tracked end.
	ConnsBroken uint64
	// WritesDelayed counts Writes that slept under SetDelay.
	WritesDelayed uint64
	// WritesDropped counts Writes that reset their connection under SetDrop.
	WritesDropped uint64
	// ConnsOpen is the number of tracked connection ends not yet closed.
	ConnsOpen int
	// ListenersOpen is the number of listeners not yet closed.
	ListenersOpen int
}

// pathKey is a directed path between two nodes.
type pathKey struct{ from, to string }

// Network is a set of loopback nodes and the faults between them. It is
// safe for concurrent use.
type Network struct {
	seed     int64
	logf     func(format string, args ...any)
	userRand *rand.Rand // guarded by its own source lock

	mu       sync.Mutex
	closed   bool
	closedCh chan struct{} // closed by Close; wakes refused dials

	nodeIP map[string]string // node name -> canonical IP
	ipNode map[string]string // canonical IP -> node name

	partitions []map[string]int // each: node name -> group index
	isolated   map[string]bool
	cuts       map[pathKey]bool
	dropP      float64
	delayMin   time.Duration
	delayMax   time.Duration
	dropRand   *rand.Rand
	delayRand  *rand.Rand

	conns     map[string][]*conn // pair key -> tracked ends (one or two)
	listeners map[*listener]struct{}
	stats     Stats
}

// New returns an empty network whose random choices all derive from seed.
// logf receives the seed and every fault change; nil discards them.
func New(seed int64, logf func(format string, args ...any)) *Network {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := uint64(seed)
	n := &Network{
		seed:      seed,
		logf:      logf,
		userRand:  rand.New(&lockedSource{src: rand.NewPCG(s, streamUser)}),
		closedCh:  make(chan struct{}),
		nodeIP:    make(map[string]string),
		ipNode:    make(map[string]string),
		isolated:  make(map[string]bool),
		cuts:      make(map[pathKey]bool),
		dropRand:  rand.New(rand.NewPCG(s, streamDrop)),
		delayRand: rand.New(rand.NewPCG(s, streamDelay)),
		conns:     make(map[string][]*conn),
		listeners: make(map[*listener]struct{}),
	}
	logf("faultnet: seed=%d", seed)
	return n
}

// lockedSource makes a rand.Source safe for concurrent use.
type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func (s *lockedSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Uint64()
}

// Seed returns the seed the network was created with.
func (n *Network) Seed() int64 { return n.seed }

// Rand returns a source seeded from the network's seed for the tests' own
// choices. It is safe for concurrent use, and independent of the sources
// that decide drops and delays.
func (n *Network) Rand() *rand.Rand { return n.userRand }

// Intn returns a seeded int in [0, k). It panics if k <= 0.
func (n *Network) Intn(k int) int { return n.userRand.IntN(k) }

// AddNode registers node name at ip, which must be a loopback IP not used
// by another node. Registering the same name at the same IP again is a
// no-op; anything else conflicting panics.
func (n *Network) AddNode(name, ip string) {
	parsed := net.ParseIP(ip)
	if name == "" || parsed == nil || !parsed.IsLoopback() {
		panic(fmt.Sprintf("faultnet: AddNode(%q, %q): need a node name and a loopback IP", name, ip))
	}
	canon := parsed.String()
	n.mu.Lock()
	defer n.mu.Unlock()
	if old, ok := n.nodeIP[name]; ok {
		if old == canon {
			return
		}
		panic(fmt.Sprintf("faultnet: AddNode(%q, %q): node already registered at %s", name, ip, old))
	}
	if other, ok := n.ipNode[canon]; ok {
		panic(fmt.Sprintf("faultnet: AddNode(%q, %q): IP already used by node %q", name, ip, other))
	}
	n.nodeIP[name] = canon
	n.ipNode[canon] = name
}

// Listen opens a real TCP listener on addr, whose host must be node name's
// IP (port 0 picks a free port). Connections it accepts from registered
// nodes are tracked and subject to faults; connections from other IPs are
// returned untracked. An accepted connection whose path from the dialer
// was removed after the dial is closed and skipped.
func (n *Network) Listen(name, addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen %s on %q: %w", name, addr, err)
	}
	n.mu.Lock()
	ip, ok := n.nodeIP[name]
	closed := n.closed
	n.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("faultnet: listen %s on %q: %w", name, addr, net.ErrClosed)
	case !ok:
		return nil, fmt.Errorf("faultnet: listen on %q: unknown node %q", addr, name)
	case canonicalIP(host) != ip:
		return nil, fmt.Errorf("faultnet: listen %s on %q: node's IP is %s", name, addr, ip)
	}
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen %s: %w", name, err)
	}
	l := &listener{Listener: inner, n: n, node: name}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		_ = inner.Close()
		return nil, fmt.Errorf("faultnet: listen %s on %q: %w", name, addr, net.ErrClosed)
	}
	n.listeners[l] = struct{}{}
	return l, nil
}

// Dialer returns node name's dial function: it dials TCP from the node's IP
// and consults the faults (see the package documentation). A dial to an
// address that is not a registered node's IP is passed through untracked.
// Dialer panics if name is not registered.
func (n *Network) Dialer(name string) func(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	ip, ok := n.nodeIP[name]
	n.mu.Unlock()
	if !ok {
		panic(fmt.Sprintf("faultnet: Dialer(%q): unknown node", name))
	}
	local := &net.TCPAddr{IP: net.ParseIP(ip)}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return n.dial(ctx, name, local, addr)
	}
}

func (n *Network) dial(ctx context.Context, from string, local *net.TCPAddr, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: local, Err: err}
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: local, Err: net.ErrClosed}
	}
	to, tracked := n.ipNode[canonicalIP(host)]
	if tracked && !n.reachableLocked(from, to) {
		n.stats.DialsRefused++
		n.mu.Unlock()
		return nil, n.refuse(ctx, local, addr)
	}
	n.mu.Unlock()

	d := net.Dialer{LocalAddr: local}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || !tracked {
		return raw, err
	}
	c := newConn(n, raw, from, to, pairKey(raw.LocalAddr(), raw.RemoteAddr()))

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		_ = raw.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: local, Err: net.ErrClosed}
	}
	if !n.reachableLocked(from, to) {
		// A fault removed the path while the handshake ran.
		n.stats.DialsRefused++
		c.shutdown(true)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: local, Addr: raw.RemoteAddr(), Err: ErrUnreachable}
	}
	n.trackLocked(c)
	return c, nil
}

// refuse waits as a lost SYN would, bounded by refusedDialWaitMax, the
// context and Close, and returns the dial's error.
func (n *Network) refuse(ctx context.Context, local *net.TCPAddr, addr string) error {
	wait := refusedDialWaitMax
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, max(time.Until(deadline), 0))
	}
	remote, _ := net.ResolveTCPAddr("tcp", addr) // addr's host is a literal IP
	opErr := &net.OpError{Op: "dial", Net: "tcp", Source: local, Addr: remote, Err: ErrUnreachable}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		opErr.Err = fmt.Errorf("%w (%w)", ErrUnreachable, ctx.Err())
	case <-n.closedCh:
		opErr.Err = net.ErrClosed
	}
	return opErr
}

// admitAccepted decides what Accept returns for raw, accepted by node's
// listener. ok=false means raw was closed and Accept should go on.
func (n *Network) admitAccepted(node string, raw net.Conn) (c net.Conn, ok bool) {
	remoteIP := ""
	if tcp, isTCP := raw.RemoteAddr().(*net.TCPAddr); isTCP {
		remoteIP = tcp.IP.String()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		_ = raw.Close()
		return nil, false
	}
	from, tracked := n.ipNode[remoteIP]
	if !tracked {
		return raw, true
	}
	wrapped := newConn(n, raw, node, from, pairKey(raw.RemoteAddr(), raw.LocalAddr()))
	if !n.reachableLocked(from, node) {
		// The path from the dialer was removed after its dial was admitted.
		n.stats.DialsRefused++
		wrapped.shutdown(true)
		return nil, false
	}
	n.trackLocked(wrapped)
	return wrapped, true
}

// Partition splits the registered nodes into groups: nodes in different
// groups cannot reach each other, and nodes named in no group (including
// nodes registered later) reach no one. It panics on an unknown name or a
// name given twice.
func (n *Network) Partition(groups ...[]string) {
	assign := make(map[string]int)
	for g, group := range groups {
		for _, name := range group {
			if _, dup := assign[name]; dup {
				panic(fmt.Sprintf("faultnet: Partition: node %q named twice", name))
			}
			assign[name] = g
		}
	}
	n.change(func() string {
		for name := range assign {
			n.mustKnowLocked("Partition", name)
		}
		n.partitions = append(n.partitions, assign)
		return fmt.Sprintf("partition %v", groups)
	})
}

// Isolate cuts node name off from every other node, in both directions;
// the other nodes keep talking to each other.
func (n *Network) Isolate(name string) {
	n.change(func() string {
		n.mustKnowLocked("Isolate", name)
		n.isolated[name] = true
		return fmt.Sprintf("isolate %s", name)
	})
}

// Cut removes the one-way path from→to: from can no longer dial to, and a
// connection between them breaks the first time from writes on it; to can
// still dial from and deliver bytes to it. Existing connections between
// the two are closed at once.
func (n *Network) Cut(from, to string) {
	if from == to {
		panic(fmt.Sprintf("faultnet: Cut(%q, %q): a node cannot be cut from itself", from, to))
	}
	n.change(func() string {
		n.mustKnowLocked("Cut", from)
		n.mustKnowLocked("Cut", to)
		n.cuts[pathKey{from, to}] = true
		return fmt.Sprintf("cut %s->%s", from, to)
	})
}

// Heal restores every path and switches off drops and delays. It closes
// nothing; new dials succeed.
func (n *Network) Heal() {
	n.change(func() string {
		n.partitions = nil
		clear(n.isolated)
		clear(n.cuts)
		n.dropP = 0
		n.delayMin, n.delayMax = 0, 0
		return "heal"
	})
}

// SetDrop makes each Write on a cross-node connection reset that
// connection (both ends) with probability p, drawn from the seeded drop
// source. 0 switches drops off. It panics unless 0 <= p <= 1.
func (n *Network) SetDrop(p float64) {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("faultnet: SetDrop(%v): probability must be in [0, 1]", p))
	}
	n.change(func() string {
		n.dropP = p
		return fmt.Sprintf("drop p=%v", p)
	})
}

// SetDelay makes each Write on a cross-node connection first sleep a
// duration drawn uniformly from [minDelay, maxDelay] by the seeded delay
// source. SetDelay(0, 0) switches delays off. It panics unless
// 0 <= minDelay <= maxDelay.
func (n *Network) SetDelay(minDelay, maxDelay time.Duration) {
	if minDelay < 0 || maxDelay < minDelay {
		panic(fmt.Sprintf("faultnet: SetDelay(%v, %v): need 0 <= min <= max", minDelay, maxDelay))
	}
	n.change(func() string {
		n.delayMin, n.delayMax = minDelay, maxDelay
		return fmt.Sprintf("delay min=%v max=%v", minDelay, maxDelay)
	})
}

// change applies a fault under the lock, closes the tracked connections
// whose paths it removed, and logs it.
func (n *Network) change(apply func() (what string)) {
	what, broken := func() (string, int) {
		n.mu.Lock()
		defer n.mu.Unlock()
		what := apply()
		return what, n.breakUnreachableLocked()
	}()
	n.logf("faultnet: %s (closed %d conn ends)", what, broken)
}

// Reachable reports whether bytes written by from reach to. A node always
// reaches itself. It panics on an unknown name.
func (n *Network) Reachable(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mustKnowLocked("Reachable", from)
	n.mustKnowLocked("Reachable", to)
	return n.reachableLocked(from, to)
}

func (n *Network) reachableLocked(from, to string) bool {
	if from == to {
		return true
	}
	if n.isolated[from] || n.isolated[to] || n.cuts[pathKey{from, to}] {
		return false
	}
	for _, assign := range n.partitions {
		gFrom, okFrom := assign[from]
		gTo, okTo := assign[to]
		if !okFrom || !okTo || gFrom != gTo {
			return false
		}
	}
	return true
}

func (n *Network) mustKnowLocked(op, name string) {
	if _, ok := n.nodeIP[name]; !ok {
		panic(fmt.Sprintf("faultnet: %s: unknown node %q", op, name))
	}
}

// Close closes every tracked listener and connection, which wakes all
// blocked Accepts, Reads and Writes, and makes later Listens and dials
// fail. It is idempotent.
func (n *Network) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	close(n.closedCh)
	listeners := make([]*listener, 0, len(n.listeners))
	for l := range n.listeners {
		listeners = append(listeners, l)
	}
	var conns []*conn
	for _, ends := range n.conns {
		conns = append(conns, ends...)
	}
	clear(n.listeners)
	clear(n.conns)
	stats := n.stats
	n.mu.Unlock()

	for _, l := range listeners {
		_ = l.closeInner()
	}
	for _, c := range conns {
		c.shutdown(false)
	}
	n.logf("faultnet: closed (%d listeners, %d conn ends; dials_refused=%d conns_broken=%d writes_delayed=%d writes_dropped=%d)",
		len(listeners), len(conns), stats.DialsRefused, stats.ConnsBroken, stats.WritesDelayed, stats.WritesDropped)
}

// Stats returns the fault counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	for _, ends := range n.conns {
		s.ConnsOpen += len(ends)
	}
	s.ListenersOpen = len(n.listeners)
	return s
}

func (n *Network) trackLocked(c *conn) {
	n.conns[c.key] = append(n.conns[c.key], c)
}

func (n *Network) untrack(c *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ends := slices.DeleteFunc(n.conns[c.key], func(e *conn) bool { return e == c })
	if len(ends) == 0 {
		delete(n.conns, c.key)
	} else {
		n.conns[c.key] = ends
	}
}

func (n *Network) untrackListener(l *listener) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.listeners, l)
}

// breakUnreachableLocked closes both ends of every tracked connection
// between two nodes that no longer reach each other in both directions,
// and returns how many ends it closed.
func (n *Network) breakUnreachableLocked() int {
	var doomed []string
	for key, ends := range n.conns {
		for _, c := range ends {
			if !n.reachableLocked(c.local, c.remote) || !n.reachableLocked(c.remote, c.local) {
				doomed = append(doomed, key)
				break
			}
		}
	}
	broken := 0
	for _, key := range doomed {
		broken += n.breakPairLocked(key)
	}
	return broken
}

// breakPairLocked closes, as broken, both tracked ends of a connection.
func (n *Network) breakPairLocked(key string) int {
	ends := n.conns[key]
	delete(n.conns, key)
	for _, c := range ends {
		c.shutdown(true)
	}
	n.stats.ConnsBroken += uint64(len(ends))
	return len(ends)
}

// writeDelay draws the delay for one Write on c.
func (n *Network) writeDelay(c *conn) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.delayMax == 0 || c.local == c.remote {
		return 0
	}
	n.stats.WritesDelayed++
	span := int64(n.delayMax - n.delayMin)
	return n.delayMin + time.Duration(n.delayRand.Int64N(span+1))
}

// admitWrite decides whether one Write on c may proceed. When it may not,
// it has closed both ends of c's connection.
func (n *Network) admitWrite(c *conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.isDone() {
		return false
	}
	if !n.reachableLocked(c.local, c.remote) {
		n.breakPairLocked(c.key)
		return false
	}
	if c.local == c.remote || n.dropP == 0 {
		return true
	}
	if n.dropP < 1 && n.dropRand.Float64() >= n.dropP {
		return true
	}
	n.stats.WritesDropped++
	n.breakPairLocked(c.key)
	return false
}

// pairKey names a TCP connection by its dialing and accepting addresses,
// so both of its ends share the key.
func pairKey(dialer, accepter net.Addr) string {
	return dialer.String() + "|" + accepter.String()
}

func canonicalIP(host string) string {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return host
}

// Loopback returns the loopback IP "127.0.<block>.<i>". Each test package
// uses its own block so packages tested in parallel never share an
// address. It panics unless 0 <= i <= 255.
func Loopback(block byte, i int) string {
	if i < 0 || i > 255 {
		panic(fmt.Sprintf("faultnet: Loopback(%d, %d): host part must be in [0, 255]", block, i))
	}
	return fmt.Sprintf("127.0.%d.%d", block, i)
}

// FreePort returns a TCP port that was free on ip a moment ago: it listens
// on ip:0, reads the port and closes the listener. Listening on port 0
// directly avoids the race with other processes where that is possible.
func FreePort(ip string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("faultnet: free port on %s: %w", ip, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("faultnet: free port on %s: %w", ip, err)
	}
	return port, nil
}

// Endpoints reports the (local, remote) node names of a connection
// returned by a Dialer or a Listener of this package; ok is false for a
// connection that is not tracked.
func Endpoints(c net.Conn) (local, remote string, ok bool) {
	fc, ok := c.(*conn)
	if !ok {
		return "", "", false
	}
	return fc.local, fc.remote, true
}
