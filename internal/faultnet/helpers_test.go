package faultnet

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// testBlock is this package's loopback range: 127.0.250.x.
const testBlock = 250

// bound caps every wait in these tests; reaching it is a failure.
const bound = 5 * time.Second

var seedFlag = flag.Int64("faultnet.seed", 0, "seed for the randomised tests (0: derive from the clock)")

// testSeed returns the seed for a randomised test and logs it.
func testSeed(t *testing.T) int64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed=%d (rerun with -args -faultnet.seed=%d)", seed, seed)
	return seed
}

// cluster is a network with one listener per node.
type cluster struct {
	n   *Network
	lns map[string]net.Listener
}

// newCluster registers names at 127.0.250.1, .2, ... and listens on each.
func newCluster(t *testing.T, seed int64, names ...string) *cluster {
	t.Helper()
	n := New(seed, t.Logf)
	t.Cleanup(n.Close)
	c := &cluster{n: n, lns: make(map[string]net.Listener)}
	for i, name := range names {
		ip := Loopback(testBlock, i+1)
		n.AddNode(name, ip)
		ln, err := n.Listen(name, net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("listen %s: %v", name, err)
		}
		c.lns[name] = ln
	}
	return c
}

func (c *cluster) addr(name string) string { return c.lns[name].Addr().String() }

// dial dials to from from, bounded.
func (c *cluster) dial(from, to string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return c.n.Dialer(from)(ctx, c.addr(to))
}

// connect dials from→to and accepts at to, returning both ends.
func (c *cluster) connect(t *testing.T, from, to string) (dialed, accepted net.Conn) {
	t.Helper()
	dialed, err := c.dial(from, to)
	if err != nil {
		t.Fatalf("dial %s->%s: %v", from, to, err)
	}
	t.Cleanup(func() { _ = dialed.Close() })
	accepted = accept(t, c.lns[to])
	return dialed, accepted
}

type acceptResult struct {
	c   net.Conn
	err error
}

// accept accepts one connection within bound.
func accept(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := ln.Accept()
		ch <- acceptResult{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { _ = r.c.Close() })
		return r.c
	case <-time.After(bound):
		t.Fatalf("accept: nothing within %v", bound)
		return nil
	}
}

// assertFlows checks that bytes written on a arrive at b.
func assertFlows(t *testing.T, a, b net.Conn, msg string) {
	t.Helper()
	if _, err := a.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	_ = b.SetReadDeadline(time.Now().Add(bound))
	defer func() { _ = b.SetReadDeadline(time.Time{}) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatalf("read %q: %v", msg, err)
	}
	if !bytes.Equal(got, []byte(msg)) {
		t.Fatalf("read %q, want %q", got, msg)
	}
}

// assertBroken checks that a fault closed c: a Read fails, within bound,
// with ErrConnBroken, and so does a Write.
func assertBroken(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(bound))
	_, err := c.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: read still blocked after %v, want broken", what, bound)
	}
	if !errors.Is(err, ErrConnBroken) {
		t.Fatalf("%s: read error %v, want ErrConnBroken", what, err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrConnBroken) {
		t.Fatalf("%s: write error %v, want ErrConnBroken", what, err)
	}
}

// assertRefused checks that a dial from→to fails with ErrUnreachable
// within bound.
func (c *cluster) assertRefused(t *testing.T, from, to string) {
	t.Helper()
	conn, err := c.dial(from, to)
	if err == nil {
		_ = conn.Close()
		t.Fatalf("dial %s->%s succeeded, want ErrUnreachable", from, to)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dial %s->%s: %v, want ErrUnreachable", from, to, err)
	}
}

// mustPanic checks that f panics.
func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s: did not panic", what)
		}
	}()
	f()
}
