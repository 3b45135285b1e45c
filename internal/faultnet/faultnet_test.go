package faultnet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestLoopbackAndFreePort(t *testing.T) {
	if got := Loopback(testBlock, 7); got != "127.0.250.7" {
		t.Fatalf("Loopback(250, 7) = %q, want 127.0.250.7", got)
	}
	mustPanic(t, "Loopback(250, 256)", func() { Loopback(testBlock, 256) })
	ip := Loopback(testBlock, 9)
	port, err := FreePort(ip)
	if err != nil {
		t.Fatalf("FreePort: %v", err)
	}
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d, not a port", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d from FreePort is not listenable: %v", port, err)
	}
	_ = ln.Close()
}

func TestAddNodeAndListenValidate(t *testing.T) {
	n := New(1, t.Logf)
	defer n.Close()
	n.AddNode("a", Loopback(testBlock, 1))
	n.AddNode("a", Loopback(testBlock, 1)) // same registration again: no-op
	mustPanic(t, "non-loopback IP", func() { n.AddNode("x", "10.0.0.1") })
	mustPanic(t, "IP of another node", func() { n.AddNode("b", Loopback(testBlock, 1)) })
	mustPanic(t, "second IP for a node", func() { n.AddNode("a", Loopback(testBlock, 2)) })
	mustPanic(t, "fault on unknown node", func() { n.Isolate("nobody") })
	mustPanic(t, "partition naming a node twice", func() { n.Partition([]string{"a"}, []string{"a"}) })
	mustPanic(t, "drop probability above 1", func() { n.SetDrop(1.5) })
	mustPanic(t, "delay min above max", func() { n.SetDelay(2*time.Millisecond, time.Millisecond) })
	mustPanic(t, "Dialer of unknown node", func() { n.Dialer("nobody") })
	if _, err := n.Listen("a", Loopback(testBlock, 2)+":0"); err == nil {
		t.Fatal("Listen on another IP than the node's succeeded")
	}
	if _, err := n.Listen("nobody", Loopback(testBlock, 1)+":0"); err == nil {
		t.Fatal("Listen for an unknown node succeeded")
	}
	// A failed fault call must leave the network usable.
	if !n.Reachable("a", "a") {
		t.Fatal("a node does not reach itself")
	}
}

func TestDialAcceptIdentifiesNodes(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	dialed, accepted := c.connect(t, "a", "b")
	if local, remote, ok := Endpoints(dialed); !ok || local != "a" || remote != "b" {
		t.Fatalf("dialed end: Endpoints = (%q, %q, %v), want (a, b, true)", local, remote, ok)
	}
	if local, remote, ok := Endpoints(accepted); !ok || local != "b" || remote != "a" {
		t.Fatalf("accepted end: Endpoints = (%q, %q, %v), want (b, a, true)", local, remote, ok)
	}
	if got := dialed.LocalAddr().(*net.TCPAddr).IP.String(); got != Loopback(testBlock, 1) {
		t.Fatalf("dialed from %s, want a's IP %s", got, Loopback(testBlock, 1))
	}
	assertFlows(t, dialed, accepted, "ping")
	assertFlows(t, accepted, dialed, "pong")
	if s := c.n.Stats(); s.ConnsOpen != 2 || s.ListenersOpen != 2 {
		t.Fatalf("Stats = %+v, want 2 conn ends and 2 listeners open", s)
	}
	_ = dialed.Close()
	_ = accepted.Close()
	if s := c.n.Stats(); s.ConnsOpen != 0 {
		t.Fatalf("after closing both ends ConnsOpen = %d, want 0", s.ConnsOpen)
	}
}

func TestDeadlinesPassThrough(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	dialed, accepted := c.connect(t, "a", "b")
	if err := dialed.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	_, err := dialed.Read(make([]byte, 1))
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("read past deadline: %v, want a timeout net.Error", err)
	}
	_ = dialed.SetReadDeadline(time.Time{})
	assertFlows(t, accepted, dialed, "after timeout")
}

func TestUnregisteredDialerIsUntracked(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(Loopback(testBlock, 99))}, Timeout: bound}
	stranger, err := d.Dial("tcp", c.addr("b"))
	if err != nil {
		t.Fatalf("dial from an unregistered IP: %v", err)
	}
	defer stranger.Close()
	accepted := accept(t, c.lns["b"])
	if _, _, ok := Endpoints(accepted); ok {
		t.Fatal("conn from an unregistered IP is tracked")
	}
	c.n.Isolate("b")
	assertFlows(t, stranger, accepted, "faults do not apply to strangers")
}

func TestPartition(t *testing.T) {
	c := newCluster(t, 1, "a", "b", "c")
	abD, abA := c.connect(t, "a", "b")
	acD, acA := c.connect(t, "a", "c")
	cbD, cbA := c.connect(t, "c", "b")

	c.n.Partition([]string{"a", "b"}, []string{"c"})

	for _, end := range []struct {
		conn net.Conn
		what string
	}{{acD, "a->c dialed end"}, {acA, "a->c accepted end"}, {cbD, "c->b dialed end"}, {cbA, "c->b accepted end"}} {
		assertBroken(t, end.conn, end.what)
	}
	assertFlows(t, abD, abA, "same group, existing conn")
	assertFlows(t, abA, abD, "same group, reply")
	for _, p := range [][2]string{{"a", "c"}, {"c", "a"}, {"b", "c"}, {"c", "b"}} {
		c.assertRefused(t, p[0], p[1])
		if c.n.Reachable(p[0], p[1]) {
			t.Fatalf("Reachable(%s, %s) under partition", p[0], p[1])
		}
	}
	baD, baA := c.connect(t, "b", "a")
	assertFlows(t, baD, baA, "same group, new conn")

	s := c.n.Stats()
	if s.ConnsBroken != 4 || s.DialsRefused != 4 {
		t.Fatalf("Stats = %+v, want 4 conn ends broken and 4 dials refused", s)
	}
}

func TestPartitionIsolatesUnnamedNodes(t *testing.T) {
	c := newCluster(t, 1, "a", "b", "c")
	c.n.Partition([]string{"a", "b"})
	c.assertRefused(t, "a", "c")
	c.assertRefused(t, "c", "b")
	d, a := c.connect(t, "a", "b")
	assertFlows(t, d, a, "named nodes still talk")
}

func TestIsolate(t *testing.T) {
	c := newCluster(t, 1, "a", "b", "c")
	abD, abA := c.connect(t, "a", "b")
	caD, caA := c.connect(t, "c", "a")
	bcD, bcA := c.connect(t, "b", "c")

	c.n.Isolate("c")

	assertBroken(t, caD, "c->a dialed end")
	assertBroken(t, caA, "c->a accepted end")
	assertBroken(t, bcD, "b->c dialed end")
	assertBroken(t, bcA, "b->c accepted end")
	assertFlows(t, abD, abA, "others keep talking")
	for _, other := range []string{"a", "b"} {
		c.assertRefused(t, "c", other)
		c.assertRefused(t, other, "c")
	}
	if !c.n.Reachable("a", "b") || c.n.Reachable("a", "c") || c.n.Reachable("c", "b") {
		t.Fatal("Reachable disagrees with Isolate(c)")
	}
}

// TestCutOneWay checks the documented model of Cut(a, b): a cannot dial b;
// b can dial a and deliver bytes; the conn breaks when a writes on it.
func TestCutOneWay(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	oldD, oldA := c.connect(t, "b", "a")

	c.n.Cut("a", "b")

	assertBroken(t, oldD, "existing conn, dialed end")
	assertBroken(t, oldA, "existing conn, accepted end")
	if c.n.Reachable("a", "b") || !c.n.Reachable("b", "a") {
		t.Fatal("Reachable disagrees with Cut(a, b)")
	}
	c.assertRefused(t, "a", "b")

	bSide, aSide := c.connect(t, "b", "a")
	assertFlows(t, bSide, aSide, "b's request reaches a")
	assertFlows(t, bSide, aSide, "and another")
	if _, err := aSide.Write([]byte("a's response")); !errors.Is(err, ErrConnBroken) {
		t.Fatalf("a writing to b across the cut: %v, want ErrConnBroken", err)
	}
	assertBroken(t, bSide, "b's end after a wrote")
	assertBroken(t, aSide, "a's end after a wrote")
}

func TestHealRestores(t *testing.T) {
	c := newCluster(t, 1, "a", "b", "c")
	c.n.Partition([]string{"a"}, []string{"b", "c"})
	c.n.Isolate("b")
	c.n.Cut("c", "a")
	c.n.SetDrop(1)
	c.n.SetDelay(time.Second, time.Second)
	c.assertRefused(t, "a", "b")

	c.n.Heal()

	for _, from := range []string{"a", "b", "c"} {
		for _, to := range []string{"a", "b", "c"} {
			if from == to {
				continue
			}
			if !c.n.Reachable(from, to) {
				t.Fatalf("after Heal, Reachable(%s, %s) = false", from, to)
			}
			d, a := c.connect(t, from, to)
			start := time.Now()
			assertFlows(t, d, a, from+" to "+to)
			assertFlows(t, a, d, to+" to "+from)
			if el := time.Since(start); el >= time.Second {
				t.Fatalf("after Heal, %s<->%s round trip took %v: delay not cleared", from, to, el)
			}
		}
	}
}

func TestDropAlwaysBreaksOnFirstWrite(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	d, a := c.connect(t, "a", "b")
	c.n.SetDrop(1)
	if _, err := d.Write([]byte("lost")); !errors.Is(err, ErrConnBroken) {
		t.Fatalf("first write under SetDrop(1): %v, want ErrConnBroken", err)
	}
	assertBroken(t, a, "peer end")
	if s := c.n.Stats(); s.WritesDropped != 1 || s.ConnsBroken != 2 {
		t.Fatalf("Stats = %+v, want 1 write dropped and 2 conn ends broken", s)
	}
	// Dials are not affected by drops.
	d2, a2 := c.connect(t, "b", "a")
	if _, err := d2.Write([]byte("lost too")); !errors.Is(err, ErrConnBroken) {
		t.Fatalf("write on a new conn under SetDrop(1): %v, want ErrConnBroken", err)
	}
	assertBroken(t, a2, "new conn's peer end")
}

func TestDropZeroNeverBreaks(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	c.n.SetDrop(0.5)
	c.n.SetDrop(0)
	d, a := c.connect(t, "a", "b")
	for i := range 200 {
		assertFlows(t, d, a, "m"+strconv.Itoa(i))
	}
	if s := c.n.Stats(); s.WritesDropped != 0 || s.ConnsBroken != 0 {
		t.Fatalf("Stats = %+v, want nothing dropped or broken", s)
	}
}

// dropTrace counts, on a series of fresh conns, how many writes succeed
// before a drop breaks the conn.
func dropTrace(t *testing.T, seed int64) []int {
	t.Helper()
	c := newCluster(t, seed, "a", "b")
	defer c.n.Close()
	c.n.SetDrop(0.25)
	const conns, writesMax = 24, 200
	var trace []int
	for range conns {
		d, _ := c.connect(t, "a", "b")
		writes := 0
		for ; writes < writesMax; writes++ {
			if _, err := d.Write([]byte{byte(writes)}); err != nil {
				if !errors.Is(err, ErrConnBroken) {
					t.Fatalf("write: %v, want ErrConnBroken", err)
				}
				break
			}
		}
		trace = append(trace, writes)
	}
	return trace
}

func TestDropDecisionsReproducible(t *testing.T) {
	const seed, otherSeed = 42, 43
	first := dropTrace(t, seed)
	second := dropTrace(t, seed)
	t.Logf("seed %d: writes before each drop: %v", seed, first)
	if !slices.Equal(first, second) {
		t.Fatalf("same seed, same writes, different drops:\n%v\n%v", first, second)
	}
	if slices.Min(first) == slices.Max(first) {
		t.Fatalf("p=0.25 gave the same count on every conn (%v): decisions are not random", first)
	}
	if other := dropTrace(t, otherSeed); slices.Equal(first, other) {
		t.Fatalf("seeds %d and %d gave the same drops %v: decisions ignore the seed", seed, otherSeed, first)
	}
}

func TestDelayLowerBoundAndOrder(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	d, a := c.connect(t, "a", "b")
	const minDelay, maxDelay, writes = 20 * time.Millisecond, 30 * time.Millisecond, 5
	c.n.SetDelay(minDelay, maxDelay)

	start := time.Now()
	for i := range writes {
		if _, err := d.Write([]byte{byte(i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if el := time.Since(start); el < writes*minDelay {
		t.Fatalf("%d delayed writes took %v, want at least %v", writes, el, writes*minDelay)
	}
	got := make([]byte, writes)
	_ = a.SetReadDeadline(time.Now().Add(bound))
	if _, err := io.ReadFull(a, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	for i, b := range got {
		if int(b) != i {
			t.Fatalf("bytes arrived as %v, want 0..%d in order", got, writes-1)
		}
	}
	if s := c.n.Stats(); s.WritesDelayed != writes {
		t.Fatalf("WritesDelayed = %d, want %d", s.WritesDelayed, writes)
	}
}

// TestDelayKeepsOrderUnderConcurrentWriters checks that Writes racing on
// one conn each arrive whole, in a per-writer order, despite random delays.
func TestDelayKeepsOrderUnderConcurrentWriters(t *testing.T) {
	c := newCluster(t, 7, "a", "b")
	d, a := c.connect(t, "a", "b")
	c.n.SetDelay(0, 2*time.Millisecond)
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := d.Write([]byte{byte(w), byte(i)}); err != nil {
					t.Errorf("writer %d write %d: %v", w, i, err)
					return
				}
			}
		})
	}
	got := make([]byte, 2*writers*perWriter)
	_ = a.SetReadDeadline(time.Now().Add(bound))
	if _, err := io.ReadFull(a, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	wg.Wait()
	next := make([]int, writers)
	for k := 0; k < len(got); k += 2 {
		w, i := int(got[k]), int(got[k+1])
		if w >= writers || i != next[w] {
			t.Fatalf("message %d is (writer %d, #%d); writes were split or reordered", k/2, w, i)
		}
		next[w]++
	}
}

func TestRefusedDialIsBoundedAndRespectsContext(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	c.n.Isolate("b")
	dial := c.n.Dialer("a")

	// No deadline: fails after the bounded wait, not never.
	done := make(chan error, 1)
	go func() {
		_, err := dial(context.Background(), c.addr("b"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("dial without deadline: %v, want ErrUnreachable", err)
		}
	case <-time.After(bound):
		t.Fatalf("dial across a fault without deadline still blocked after %v", bound)
	}

	// A cancelled context ends the wait and is reported.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dial(ctx, c.addr("b")); !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with cancelled context: %v, want ErrUnreachable and context.Canceled", err)
	}
}

func TestCloseUnblocksEverything(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	d, a := c.connect(t, "a", "b")
	c.n.SetDelay(time.Hour, time.Hour)

	errs := make(chan error, 4)
	for _, conn := range []net.Conn{d, a} {
		go func() {
			_, err := conn.Read(make([]byte, 1))
			errs <- err
		}()
	}
	go func() { // a Write asleep in its delay
		_, err := d.Write([]byte("x"))
		errs <- err
	}()
	go func() {
		_, err := c.lns["a"].Accept()
		errs <- err
	}()

	c.n.Close()

	deadline := time.After(bound)
	for i := range 4 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatalf("blocked call %d returned no error after Close", i)
			}
		case <-deadline:
			t.Fatalf("%d of 4 blocked calls still blocked %v after Close", 4-i, bound)
		}
	}
	if _, err := c.dial("a", "b"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("dial after Close: %v, want net.ErrClosed", err)
	}
	if s := c.n.Stats(); s.ConnsOpen != 0 || s.ListenersOpen != 0 {
		t.Fatalf("after Close: Stats = %+v, want nothing open", s)
	}
	c.n.Close() // idempotent
}

// TestNoGoroutineLeak isolates and heals a node with readers blocked on its
// conns, closes the network, and checks the goroutine count comes back.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		c := newCluster(t, 1, "a", "b", "c")
		var wg sync.WaitGroup
		read := func(conn net.Conn) {
			wg.Go(func() { _, _ = io.Copy(io.Discard, conn) })
		}
		for _, p := range [][2]string{{"a", "b"}, {"b", "c"}, {"c", "a"}} {
			d, a := c.connect(t, p[0], p[1])
			read(d)
			read(a)
		}
		c.n.Isolate("c")
		c.n.Heal()
		d, a := c.connect(t, "c", "a")
		read(d)
		read(a)
		c.n.Close()
		waitOrFail(t, &wg, "readers after Close")
	}()
	deadline := time.Now().Add(bound)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after Close\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("%s: still running after %v", what, bound)
	}
}

// TestTLSOverFaultConns runs a TLS 1.3 handshake and traffic over the
// wrappers, as the kernel's Raft stream layer does, then partitions.
func TestTLSOverFaultConns(t *testing.T) {
	c := newCluster(t, 1, "a", "b")
	serverCfg, clientCfg := selfSignedTLS(t, Loopback(testBlock, 2))
	d, a := c.connect(t, "a", "b")
	client, server := tls.Client(d, clientCfg), tls.Server(a, serverCfg)
	_ = d.SetDeadline(time.Now().Add(bound))
	_ = a.SetDeadline(time.Now().Add(bound))
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	assertFlows(t, client, server, "over tls")
	assertFlows(t, server, client, "back over tls")

	c.n.Partition([]string{"a"}, []string{"b"})
	_ = client.SetReadDeadline(time.Now().Add(bound))
	_, err := client.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("tls read after partition: %v, want the conn broken", err)
	}
}

func selfSignedTLS(t *testing.T, ip string) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "faultnet-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP(ip)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{RootCAs: pool, ServerName: ip, MinVersion: tls.VersionTLS13}
	return server, client
}
