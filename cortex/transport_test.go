package cortex

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestTransportSendsFromOwnIP checks the transport alone: a stream dialled
// and a packet sent by a transport bound on one loopback IP arrive at a
// transport bound on another loopback IP from the first IP. (An unbound
// socket would leave from 127.0.0.1, the source Linux picks for the
// loopback route.)
func TestTransportSendsFromOwnIP(t *testing.T) {
	logger := testLogger(t, slog.LevelWarn)
	ips := []netip.Addr{netip.MustParseAddr("127.0.70.1"), netip.MustParseAddr("127.0.70.2")}
	var ts []*boundTransport
	for _, ip := range ips {
		tr, err := listen(netip.AddrPortFrom(ip, 0), logger, nil)
		if err != nil {
			t.Fatalf("listen on %s: %v", ip, err)
		}
		t.Cleanup(func() { _ = tr.Shutdown() })
		ts = append(ts, tr)
	}
	for i, from := range ts {
		to := ts[1-i]
		adv, port, _ := from.FinalAdvertiseAddr("", 0)
		if !adv.Equal(net.IP(ips[i].AsSlice())) || port != int(from.addr.Port()) {
			t.Fatalf("transport %d advertises %s:%d, want %s", i, adv, port, from.addr)
		}

		conn, err := from.DialAddressTimeout(memberlist.Address{Addr: to.addr.String()}, time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", to.addr, err)
		}
		if got := conn.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != ips[i] {
			t.Errorf("dial from %s: local address %s", ips[i], got)
		}
		select {
		case in := <-to.StreamCh():
			if got := in.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != ips[i] {
				t.Errorf("stream from transport %d arrived from %s, want %s", i, got, ips[i])
			}
			_ = in.Close()
		case <-time.After(waitTimeout):
			t.Fatal("no stream arrived")
		}
		_ = conn.Close()

		if _, err := from.WriteToAddress([]byte("ping"), memberlist.Address{Addr: to.addr.String()}); err != nil {
			t.Fatalf("write to %s: %v", to.addr, err)
		}
		select {
		case p := <-to.PacketCh():
			if got := p.From.(*net.UDPAddr).AddrPort().Addr().Unmap(); got != ips[i] {
				t.Errorf("packet from transport %d arrived from %s, want %s", i, got, ips[i])
			}
			if string(p.Buf) != "ping" {
				t.Errorf("packet = %q, want ping", p.Buf)
			}
		case <-time.After(waitTimeout):
			t.Fatal("no packet arrived")
		}
	}
}

// TestTransportShutdownWithPendingHandOff checks that Shutdown returns
// while a stream is waiting to be handed to a reader that never comes.
func TestTransportShutdownWithPendingHandOff(t *testing.T) {
	accepted := make(chan struct{}, 1)
	tr, err := listen(netip.MustParseAddrPort("127.0.70.3:0"), testLogger(t, slog.LevelWarn), func(string, net.Addr) { accepted <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", tr.addr.String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case <-accepted: // the accept loop now waits to hand the stream over
	case <-time.After(waitTimeout):
		t.Fatal("stream not accepted")
	}
	done := make(chan struct{})
	go func() { _ = tr.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown blocked on an undelivered stream")
	}
}
