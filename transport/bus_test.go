package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// fedKeys returns the master secret of a test federation and the link keys
// kernels acme, glob and init hold: each holds both directions of its
// links to the other two.
func fedKeys(t *testing.T) (acme, glob linkKeys) {
	t.Helper()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	return keysFor(t, master, "acme", "glob", "init"), keysFor(t, master, "glob", "acme", "init")
}

// Frames and acks cross the bus in both directions, sequentially and
// concurrently, over one cached connection per direction, and every ack
// verifies under the reverse link key.
func TestBusRoundTrip(t *testing.T) {
	pki := newPKI(t)
	acmeKeys, globKeys := fedKeys(t)
	acmeRecv := newKernelReceiver("acme", acmeKeys)
	globRecv := newKernelReceiver("glob", globKeys)
	a := startBus(t, pki.reloader(t, "acme-1", ipAcme1, ""), ipAcme1+":0", acmeRecv.handle, nil)
	b := startBus(t, pki.reloader(t, "glob-1", ipGlob1, ""), ipGlob1+":0",
		globRecv.handle, func(c *Config) { c.MaxIncomingStreams = 4 })

	aToG := acmeKeys[[2]string{"acme", "glob"}]
	send := func(seq uint64) error {
		f := event(seq)
		enc, err := Encode(f, aToG)
		if err != nil {
			return err
		}
		ack, err := a.Send(sendCtx(t), b.Addr().String(), enc)
		if err != nil {
			return err
		}
		verifyAck(t, acmeKeys, ack, enc, f)
		return nil
	}
	const sequential, concurrent = 100, 64
	for seq := uint64(1); seq <= sequential; seq++ {
		if err := send(seq); err != nil {
			t.Fatalf("send seq %d: %v", seq, err)
		}
	}
	// More concurrent frames than the receiver's stream limit.
	errs := make(chan error, concurrent)
	var wg sync.WaitGroup
	for i := range concurrent {
		wg.Go(func() { errs <- send(uint64(sequential + 1 + i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent send: %v", err)
		}
	}

	// The other direction: glob to acme.
	gToA := globKeys[[2]string{"glob", "acme"}]
	for seq := uint64(1); seq <= 20; seq++ {
		f := Frame{Version: FrameVersion, Origin: "glob", OriginNode: "glob-1", Destination: "acme", Seq: seq,
			PassportID: "pp-glob-1", Type: "kv.put", Payload: []byte{byte(seq)}}
		enc := mustEncode(t, f, gToA)
		ack, err := b.Send(sendCtx(t), a.Addr().String(), enc)
		if err != nil {
			t.Fatalf("glob->acme seq %d: %v", seq, err)
		}
		verifyAck(t, globKeys, ack, enc, f)
	}

	_, globErrs, applied := globRecv.snapshot()
	if len(globErrs) != 0 {
		t.Fatalf("glob's handler saw errors: %v", globErrs)
	}
	got := slices.Sorted(slices.Values(applied["acme"]))
	if len(got) != sequential+concurrent || got[0] != 1 || got[len(got)-1] != sequential+concurrent {
		t.Fatalf("glob applied %d frames from acme (%v...), want seqs 1..%d once each", len(got), got[:min(5, len(got))], sequential+concurrent)
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("acme stats %+v", sa)
	t.Logf("glob stats %+v", sb)
	if sa.FramesOut != sequential+concurrent || sa.AcksIn != sequential+concurrent || sb.FramesIn != sequential+concurrent || sb.AcksOut != sequential+concurrent {
		t.Fatalf("acme out %d acks in %d; glob in %d acks out %d; want %d each", sa.FramesOut, sa.AcksIn, sb.FramesIn, sb.AcksOut, sequential+concurrent)
	}
	if sa.FramesIn != 20 || sb.FramesOut != 20 {
		t.Fatalf("glob->acme: acme in %d, glob out %d, want 20", sa.FramesIn, sb.FramesOut)
	}
	if sa.Dials != 1 || sb.Dials != 1 {
		t.Fatalf("dials acme %d glob %d, want one cached connection each", sa.Dials, sb.Dials)
	}
	for _, st := range []Stats{sa, sb} {
		for reason, n := range st.Rejected {
			if n != 0 {
				t.Fatalf("rejected %s = %d, want 0", reason, n)
			}
		}
	}
}

// Every connection a node makes leaves from its own listening socket: the
// receiver sees the sender's own IP and its bus port.
func TestBusDialsFromOwnSocket(t *testing.T) {
	pki := newPKI(t)
	acmeKeys, globKeys := fedKeys(t)
	var mu sync.Mutex
	var seen []netip.AddrPort
	recv := newKernelReceiver("glob", globKeys)
	record := func(ctx context.Context, peerNode string, frame []byte) ([]byte, error) {
		ap, ok := PeerAddr(ctx)
		if !ok {
			t.Error("handler context has no peer address")
		}
		mu.Lock()
		seen = append(seen, ap)
		mu.Unlock()
		return recv.handle(ctx, peerNode, frame)
	}
	a := startBus(t, pki.reloader(t, "acme-1", ipAcme1, ""), ipAcme1+":0", newKernelReceiver("acme", acmeKeys).handle, nil)
	b := startBus(t, pki.reloader(t, "glob-1", ipGlob1, ""), ipGlob1+":0", record, nil)
	if a.Addr().Addr().String() != ipAcme1 {
		t.Fatalf("acme bound %s, want %s", a.Addr(), ipAcme1)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		enc := mustEncode(t, event(seq), acmeKeys[[2]string{"acme", "glob"}])
		if _, err := a.Send(sendCtx(t), b.Addr().String(), enc); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("handler called %d times, want 3", len(seen))
	}
	for _, ap := range seen {
		if ap != a.Addr() {
			t.Fatalf("receiver saw the frame from %s, want the sender's bus address %s", ap, a.Addr())
		}
	}
}

// A node whose certificate comes from another CA never reaches the
// handler, whether it distrusts the federation CA (it refuses the server)
// or trusts it (the server refuses its certificate).
func TestBusRefusesOtherCA(t *testing.T) {
	fed, other := newPKI(t), newPKI(t)
	acmeKeys, globKeys := fedKeys(t)
	recv := newKernelReceiver("glob", globKeys)
	b := startBus(t, fed.reloader(t, "glob-1", ipGlob1, ""), ipGlob1+":0", recv.handle, nil)
	enc := mustEncode(t, event(1), acmeKeys[[2]string{"acme", "glob"}])

	cases := []struct {
		name      string
		trust     string
		refusedBy func(rogue *Server) *Server
	}{
		{"trusts only its own CA", "", func(r *Server) *Server { return r }},
		{"trusts both CAs", bundle(t, fed, other), func(*Server) *Server { return b }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The same node name as a real federation member.
			rl := other.reloader(t, "acme-1", ipRogue, tc.trust)
			rogue := startBus(t, rl, ipRogue+":0", recv.handle, func(c *Config) { c.HandshakeTimeout = 2 * time.Second })
			refuser := tc.refusedBy(rogue)
			before := refuser.Stats().HandshakeFailures
			if _, err := rogue.Send(sendCtx(t), b.Addr().String(), enc); err == nil {
				t.Fatal("Send with a certificate from another CA succeeded")
			} else {
				t.Logf("case %d: Send failed as expected: %v", i, err)
			}
			if got := refuser.Stats().HandshakeFailures; got <= before {
				t.Fatalf("handshake failures at the refusing side %d, want more than %d", got, before)
			}
			if calls, _, _ := recv.snapshot(); calls != 0 {
				t.Fatalf("handler called %d times", calls)
			}
			if n := b.Stats().FramesIn; n != 0 {
				t.Fatalf("frames in %d, want 0", n)
			}
		})
	}
}

// A frame over the receiver's limit is refused from its length prefix:
// the handler never runs and the sender learns why long before the stream
// deadline, without the receiver reading the body.
func TestBusOversizedFrame(t *testing.T) {
	pki := newPKI(t)
	acmeKeys, globKeys := fedKeys(t)
	recv := newKernelReceiver("glob", globKeys)
	const streamTimeout = time.Minute
	b := startBus(t, pki.reloader(t, "glob-1", ipGlob1, ""), ipGlob1+":0", recv.handle, func(c *Config) {
		c.MaxFrameBytesIn = 4096
		c.StreamTimeout = streamTimeout
		c.MaxIdleTimeout = 2 * streamTimeout
	})
	acmeRL := pki.reloader(t, "acme-1", ipAcme1, "")
	a := startBus(t, acmeRL, ipAcme1+":0", recv.handle, nil)

	// A valid frame over the receiver's limit.
	f := event(1)
	f.Payload = bytes.Repeat([]byte{'x'}, 64<<10)
	_, err := a.Send(sendCtx(t), b.Addr().String(), mustEncode(t, f, acmeKeys[[2]string{"acme", "glob"}]))
	wantRemote(t, err, RejectTooLarge, ErrTooLarge)
	if got := b.Stats().Rejected[RejectTooLarge]; got != 1 {
		t.Fatalf("rejected too_large %d, want 1", got)
	}

	// Over the protocol limit: refused locally, nothing sent.
	out := a.Stats().FramesOut
	_, err = a.Send(sendCtx(t), b.Addr().String(), make([]byte, MaxFrameBytes+1))
	var re *RemoteError
	if !errors.Is(err, ErrTooLarge) || errors.As(err, &re) {
		t.Fatalf("Send of %d bytes: %v, want a local ErrTooLarge", MaxFrameBytes+1, err)
	}
	if a.Stats().FramesOut != out {
		t.Fatal("an oversized frame was written")
	}

	// A raw QUIC peer announcing 256 MiB and streaming data.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ipRaw)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	defer udp.Close()
	defer tr.Close()
	tc := acmeRL.ClientConfig("")
	tc.NextProtos = []string{ALPN}
	ctx := sendCtx(t)
	conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(b.Addr()), tc, &quic.Config{})
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = st.SetDeadline(start.Add(ioTimeout))
	const claimed = 256 << 20
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], claimed)
	if _, err := st.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	written := 0
	chunk := make([]byte, 64<<10)
	for written < 16<<20 {
		n, err := st.Write(chunk)
		written += n
		if err != nil {
			break
		}
	}
	_, err = st.Read(make([]byte, 1))
	elapsed := time.Since(start)
	var se *quic.StreamError
	wantCode := quic.StreamErrorCode(rejectCodeBase + rejectIndexOf(RejectTooLarge))
	if !errors.As(err, &se) || !se.Remote || se.ErrorCode != wantCode {
		t.Fatalf("raw peer read: %v, want a remote stream reset with code %#x", err, wantCode)
	}
	t.Logf("refused after %s, %d of %d announced bytes written", elapsed, written, claimed)
	if elapsed > streamTimeout/4 {
		t.Fatalf("refusal took %s; the receiver waited for the body (stream timeout %s)", elapsed, streamTimeout)
	}
	if written >= claimed {
		t.Fatalf("all %d announced bytes were written", claimed)
	}
	if got := b.Stats().Rejected[RejectTooLarge]; got != 2 {
		t.Fatalf("rejected too_large %d, want 2", got)
	}
	if calls, _, _ := recv.snapshot(); calls != 0 || b.Stats().FramesIn != 0 {
		t.Fatalf("handler called %d times, frames in %d; want 0", calls, b.Stats().FramesIn)
	}
}

// Forged, tampered, wrongly keyed, replayed, stale, misattributed and
// unknown-origin frames each fail with their typed error: the handler sees
// it, the receiver counts it under its reason, the sender gets it back as a
// *RemoteError, and nothing is applied.
func TestBusRejectsBadFrames(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 7))

	pki := newPKI(t)
	acmeKeys, globKeys := fedKeys(t)
	recv := newKernelReceiver("glob", globKeys)
	b := startBus(t, pki.reloader(t, "glob-1", ipGlob1, ""), ipGlob1+":0", recv.handle, nil)
	a := startBus(t, pki.reloader(t, "acme-1", ipAcme1, ""), ipAcme1+":0", newKernelReceiver("acme", acmeKeys).handle, nil)
	aToG := acmeKeys[[2]string{"acme", "glob"}]
	gToA := acmeKeys[[2]string{"glob", "acme"}]

	// Seqs 1..3 applied first; seq 2 is replayed below.
	for seq := uint64(1); seq <= 3; seq++ {
		if _, err := a.Send(sendCtx(t), b.Addr().String(), mustEncode(t, event(seq), aToG)); err != nil {
			t.Fatal(err)
		}
	}
	valid := mustEncode(t, event(100), aToG)
	off := fieldOffsets(valid)
	tamper := func(field string, fn func(byte) byte) []byte {
		c := bytes.Clone(valid)
		c[off[field]] = fn(c[off[field]])
		return c
	}
	next := func(c byte) byte { return c + 1 }
	forged := bytes.Clone(valid)
	for i := len(forged) - MACSize; i < len(forged); i++ {
		forged[i] = byte(rng.Uint32())
	}
	evilFrame := event(5)
	evilFrame.Origin = "evil"
	evilKey := make([]byte, 32)
	for i := range evilKey {
		evilKey[i] = byte(rng.Uint32())
	}
	notMe := event(6)
	notMe.OriginNode = "acme-2" // a real acme node, but not this connection's
	tooOldSetup := mustEncode(t, event(5000), aToG)

	cases := []struct {
		name   string
		before []byte // sent first and must succeed
		frame  []byte
		reason RejectReason
		want   error
	}{
		{"forged MAC", nil, forged, RejectBadMAC, ErrBadMAC},
		{"tampered version", nil, tamper("version", next), RejectVersion, ErrVersion},
		{"tampered origin node", nil, tamper("origin node", next), RejectBadMAC, ErrBadMAC},
		{"tampered destination", nil, tamper("destination", next), RejectUnknownLink, ErrUnknownLink},
		{"tampered seq", nil, tamper("seq", next), RejectBadMAC, ErrBadMAC},
		{"tampered passport id", nil, tamper("passport id", next), RejectBadMAC, ErrBadMAC},
		{"tampered type", nil, tamper("type", next), RejectBadMAC, ErrBadMAC},
		{"tampered sent at", nil, tamper("sent at", next), RejectBadMAC, ErrBadMAC},
		{"tampered payload", nil, tamper("payload", next), RejectBadMAC, ErrBadMAC},
		{"tampered MAC", nil, tamper("mac", next), RejectBadMAC, ErrBadMAC},
		{"tampered length", nil, tamper("payload length", next), RejectMalformed, ErrMalformed},
		{"B->A key used for A->B", nil, mustEncode(t, event(7), gToA), RejectBadMAC, ErrBadMAC},
		{"unknown origin", nil, mustEncode(t, evilFrame, evilKey), RejectUnknownLink, ErrUnknownLink},
		{"origin node is not the TLS peer", nil, mustEncode(t, notMe, aToG), RejectPeerMismatch, ErrPeerMismatch},
		{"replayed seq", nil, mustEncode(t, event(2), aToG), RejectReplay, ErrReplay},
		{"replayed bytes", valid, valid, RejectReplay, ErrReplay},
		{"below the window", tooOldSetup, mustEncode(t, event(50), aToG), RejectTooOld, ErrTooOld},
		{"garbage", nil, []byte("not a frame"), RejectMalformed, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				if _, err := a.Send(sendCtx(t), b.Addr().String(), tc.before); err != nil {
					t.Fatalf("setup frame: %v", err)
				}
			}
			_, _, appliedBefore := recv.snapshot()
			rejBefore := b.Stats().Rejected
			_, err := a.Send(sendCtx(t), b.Addr().String(), tc.frame)
			wantRemote(t, err, tc.reason, tc.want)

			_, errs, appliedAfter := recv.snapshot()
			if len(errs) == 0 || !errors.Is(errs[len(errs)-1], tc.want) {
				t.Fatalf("handler's last error %v, want %v", errs[len(errs)-1:], tc.want)
			}
			rejAfter := b.Stats().Rejected
			for reason := range rejAfter {
				want := rejBefore[reason]
				if reason == tc.reason {
					want++
				}
				if rejAfter[reason] != want {
					t.Fatalf("rejected %s went %d -> %d, want %d", reason, rejBefore[reason], rejAfter[reason], want)
				}
			}
			if !equalApplied(appliedBefore, appliedAfter) {
				t.Fatalf("applied changed: %v -> %v", appliedBefore, appliedAfter)
			}
		})
	}
	// The connection survived every refusal.
	if d := a.Stats().Dials; d != 1 {
		t.Fatalf("acme dialed %d times, want 1", d)
	}
}

func equalApplied(x, y map[string][]uint64) bool {
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if !slices.Equal(v, y[k]) {
			return false
		}
	}
	return true
}

// A connection whose certificate names no admitted node, and connections
// beyond the inbound limit, are refused and counted; the sender gets the
// reason.
func TestBusRefusesConnections(t *testing.T) {
	pki := newPKI(t)
	acmeKeys, globKeys := fedKeys(t)
	recv := newKernelReceiver("glob", globKeys)
	globRL := pki.reloader(t, "glob-1", ipGlob1, "")
	b := startBus(t, globRL, ipGlob1+":0", recv.handle, func(c *Config) {
		c.MaxInboundConns = 1
		c.PeerNode = func(cs tls.ConnectionState) (string, error) {
			node, err := globRL.PeerNode(cs)
			if err == nil && strings.HasPrefix(node, "init-") {
				return "", errors.New("node not admitted")
			}
			return node, err
		}
	})
	a1 := startBus(t, pki.reloader(t, "acme-1", ipAcme1, ""), ipAcme1+":0", recv.handle, nil)
	i1 := startBus(t, pki.reloader(t, "init-1", ipInit1, ""), ipInit1+":0", recv.handle, nil)
	a2 := startBus(t, pki.reloader(t, "acme-2", ipAcme2, ""), ipAcme2+":0", recv.handle, nil)
	aToG := acmeKeys[[2]string{"acme", "glob"}]

	if _, err := a1.Send(sendCtx(t), b.Addr().String(), mustEncode(t, event(1), aToG)); err != nil {
		t.Fatal(err)
	}
	_, err := i1.Send(sendCtx(t), b.Addr().String(), mustEncode(t, event(2), aToG))
	wantRemote(t, err, RejectPeerIdentity, ErrPeerIdentity)

	f := event(3)
	f.OriginNode = "acme-2"
	_, err = a2.Send(sendCtx(t), b.Addr().String(), mustEncode(t, f, aToG))
	wantRemote(t, err, RejectConnLimit, ErrConnLimit)

	st := b.Stats()
	if st.Rejected[RejectPeerIdentity] != 1 || st.Rejected[RejectConnLimit] != 1 || st.InboundConns != 1 {
		t.Fatalf("stats %+v, want one peer_identity, one conn_limit, one open connection", st)
	}
	if calls, _, _ := recv.snapshot(); calls != 1 {
		t.Fatalf("handler called %d times, want 1", calls)
	}
}

// After the receiving node restarts, the sender's cached connection is
// replaced. With a stateless reset key the restarted node resets the stale
// connection at once and the same Send succeeds on a fresh one; without
// one, the stale connection costs one Send its deadline and the next
// re-dials.
func TestBusRedialsAfterPeerRestart(t *testing.T) {
	for _, withResetKey := range []bool{true, false} {
		name := "without reset key"
		if withResetKey {
			name = "with reset key"
		}
		t.Run(name, func(t *testing.T) {
			pki := newPKI(t)
			acmeKeys, globKeys := fedKeys(t)
			globRL := pki.reloader(t, "glob-1", ipGlob1, "")
			resetKey := bytes.Repeat([]byte{9}, 32)
			mod := func(c *Config) {
				if withResetKey {
					c.StatelessResetKey = resetKey
				}
			}
			b := startBus(t, globRL, ipGlob1+":0", newKernelReceiver("glob", globKeys).handle, mod)
			const senderTimeout = 2 * time.Second
			a := startBus(t, pki.reloader(t, "acme-1", ipAcme1, ""), ipAcme1+":0", newKernelReceiver("acme", acmeKeys).handle,
				func(c *Config) { c.StreamTimeout = senderTimeout })
			aToG := acmeKeys[[2]string{"acme", "glob"}]
			addr := b.Addr().String()
			if _, err := a.Send(sendCtx(t), addr, mustEncode(t, event(1), aToG)); err != nil {
				t.Fatal(err)
			}
			crash(b)
			b2 := startBus(t, globRL, addr, newKernelReceiver("glob", globKeys).handle, mod)

			start := time.Now()
			_, err := a.Send(sendCtx(t), addr, mustEncode(t, event(2), aToG))
			elapsed := time.Since(start)
			t.Logf("first send after restart: %v after %s", err, elapsed)
			if withResetKey {
				if err != nil {
					t.Fatalf("Send after a restart with a reset key: %v", err)
				}
				if elapsed >= senderTimeout {
					t.Fatalf("Send took %s, the stream timeout; the stale connection was not reset", elapsed)
				}
			} else {
				if err == nil {
					t.Fatal("Send on a stale connection without a reset succeeded; expected its deadline")
				}
				if _, err := a.Send(sendCtx(t), addr, mustEncode(t, event(2), aToG)); err != nil {
					t.Fatalf("second Send after restart: %v", err)
				}
			}
			if d := a.Stats().Dials; d != 2 {
				t.Fatalf("dials %d, want 2", d)
			}
			if n := b2.Stats().FramesIn; n != 1 {
				t.Fatalf("restarted node received %d frames, want 1", n)
			}
		})
	}
}

// Close returns once running handlers have seen their context end, is
// idempotent, and Send afterwards fails with ErrClosed.
func TestBusClose(t *testing.T) {
	pki := newPKI(t)
	acmeKeys, _ := fedKeys(t)
	started := make(chan struct{})
	var handlerErr error
	blocking := func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		handlerErr = ctx.Err()
		return nil, ctx.Err()
	}
	b := startBus(t, pki.reloader(t, "glob-1", ipGlob1, ""), ipGlob1+":0", blocking, func(c *Config) { c.StreamTimeout = time.Minute })
	a := startBus(t, pki.reloader(t, "acme-1", ipAcme1, ""), ipAcme1+":0", blocking, nil)
	sendErr := make(chan error, 1)
	go func() {
		_, err := a.Send(sendCtx(t), b.Addr().String(), mustEncode(t, event(1), acmeKeys[[2]string{"acme", "glob"}]))
		sendErr <- err
	}()
	select {
	case <-started:
	case <-time.After(ioTimeout):
		t.Fatal("handler not called")
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Close did not return")
	}
	if !errors.Is(handlerErr, context.Canceled) {
		t.Fatalf("handler context ended with %v, want context.Canceled", handlerErr)
	}
	select {
	case err := <-sendErr:
		if err == nil {
			t.Fatal("Send to a closing node succeeded")
		}
	case <-time.After(ioTimeout):
		t.Fatal("Send did not return after the receiver closed")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Send(sendCtx(t), a.Addr().String(), []byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
}

func TestListenRejectsBadSetup(t *testing.T) {
	pki := newPKI(t)
	rl := pki.reloader(t, "acme-1", ipAcme1, "")
	h := func(context.Context, string, []byte) ([]byte, error) { return nil, nil }
	good := Config{Handler: h, ClientTLS: rl.ClientConfig(""), PeerNode: rl.PeerNode}
	cases := []struct {
		name   string
		addr   string
		server *tls.Config
		mod    func(*Config)
		want   string
	}{
		{"wildcard address", "0.0.0.0:0", rl.ServerConfig(true), nil, "wildcard"},
		{"host name", "localhost:0", rl.ServerConfig(true), nil, "not an IP:port"},
		{"no client auth", ipAcme1 + ":0", rl.ServerConfig(false), nil, "client certificates"},
		{"no handler", ipAcme1 + ":0", rl.ServerConfig(true), func(c *Config) { c.Handler = nil }, "handler is nil"},
		{"keep-alive not below idle", ipAcme1 + ":0", rl.ServerConfig(true),
			func(c *Config) { c.KeepAlivePeriod, c.MaxIdleTimeout = 5*time.Second, 5*time.Second }, "keep-alive period 5s"},
		{"frame limit over protocol", ipAcme1 + ":0", rl.ServerConfig(true),
			func(c *Config) { c.MaxFrameBytesIn = MaxFrameBytes + 1 }, "max frame bytes in"},
		{"short reset key", ipAcme1 + ":0", rl.ServerConfig(true),
			func(c *Config) { c.StatelessResetKey = []byte{1} }, "stateless reset key has 1 bytes"},
	}
	for _, tc := range cases {
		cfg := good
		if tc.mod != nil {
			tc.mod(&cfg)
		}
		s, err := Listen(tc.addr, tc.server, cfg)
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: Listen accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
	s := startBus(t, rl, ipAcme1+":0", h, nil)
	if _, err := s.Send(sendCtx(t), "localhost:1", []byte{1}); err == nil || !strings.Contains(err.Error(), "not an IP:port") {
		t.Errorf("Send to a host name: %v", err)
	}
}
