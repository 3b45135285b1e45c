package faultnet

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one tracked end of a TCP connection between two nodes. Addresses
// and deadlines pass through to the socket; Read, Write and Close add the
// fault model.
//
// Lock order: wmu before Network.mu. Network.mu may close a conn (shutdown)
// but never takes wmu.
type conn struct {
	net.Conn // the *net.TCPConn

	n      *Network
	local  string // this end's node
	remote string // the other end's node
	key    string // shared by both ends, see pairKey

	wmu    sync.Mutex    // serialises Writes, so delays keep byte order
	done   chan struct{} // closed when this end is closed, for any reason
	once   sync.Once
	broken atomic.Bool // closed by a fault rather than by Close
}

func newConn(n *Network, raw net.Conn, local, remote, key string) *conn {
	return &conn{Conn: raw, n: n, local: local, remote: remote, key: key, done: make(chan struct{})}
}

// Read reads from the socket; once a fault has closed this end, its error
// wraps ErrConnBroken.
func (c *conn) Read(p []byte) (int, error) {
	nr, err := c.Conn.Read(p)
	if err != nil && c.broken.Load() {
		err = c.brokenErr("read")
	}
	return nr, err
}

// Write waits out the configured delay, then writes unless the path to the
// remote node is gone or the write is dropped, in which case both ends are
// closed and nothing is written.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.isDone() {
		return c.closedWrite(p)
	}
	if d := c.n.writeDelay(c); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-c.done:
			timer.Stop()
			return c.closedWrite(p)
		}
	}
	if !c.n.admitWrite(c) {
		return c.closedWrite(p)
	}
	nw, err := c.Conn.Write(p)
	if err != nil && c.broken.Load() {
		err = c.brokenErr("write")
	}
	return nw, err
}

// closedWrite is a Write on an end already closed.
func (c *conn) closedWrite(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, c.brokenErr("write")
	}
	// Closed here (shutdown closes done before the socket): never write
	// to a socket that is about to close; say what the socket would.
	return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
}

// Close closes this end. Closing an end a fault already closed returns nil.
func (c *conn) Close() error {
	if closed, err := c.shutdown(false); closed {
		c.n.untrack(c)
		return err
	}
	if c.broken.Load() {
		return nil
	}
	return &net.OpError{Op: "close", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
}

// shutdown closes the socket once. A fault sets linger 0 so the other
// side, if it is not tracked, sees a reset as after real connection loss.
// It reports whether this call closed it.
func (c *conn) shutdown(fault bool) (closed bool, err error) {
	c.once.Do(func() {
		closed = true
		if fault {
			c.broken.Store(true)
			if tcp, ok := c.Conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
		}
		close(c.done)
		err = c.Conn.Close()
	})
	return closed, err
}

func (c *conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *conn) brokenErr(op string) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: ErrConnBroken}
}

// listener wraps a node's TCP listener; see Network.Listen.
type listener struct {
	net.Listener

	n    *Network
	node string
	once sync.Once
}

// Accept returns the next connection, tracked if it comes from a
// registered node, skipping connections whose path was removed.
func (l *listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c, ok := l.n.admitAccepted(l.node, raw); ok {
			return c, nil
		}
	}
}

// Close closes the listener; connections it accepted stay open.
func (l *listener) Close() error {
	l.n.untrackListener(l)
	return l.closeInner()
}

func (l *listener) closeInner() error {
	err := net.ErrClosed
	l.once.Do(func() { err = l.Listener.Close() })
	return err
}
