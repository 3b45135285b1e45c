package netfault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDelayRule(t *testing.T) {
	got := strings.Join(DelayRule("C", "127.0.90.1", "127.0.90.2", 4242), " ")
	if got != "-A C -s 127.0.90.1 -d 127.0.90.2 -j NFQUEUE --queue-num 4242 --queue-bypass" {
		t.Fatalf("DelayRule = %s", got)
	}
}

// TestFirewallDelays holds real packets in a real NFQUEUE: a delayed
// pair is slow by at least the delay, other pairs are not, and after the
// heal the same probe finds the pair fast again (so the probe can fail).
// It needs root and iptables.
func TestFirewallDelays(t *testing.T) {
	fw := openTestFirewall(t, "DJ-DELAY")
	ips, port := probeIPs(3)
	p, err := NewProber(ips, port, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	const delay = 80 * time.Millisecond
	if err := p.ExpectDelayed(ctx, []Pair{{ips[0], ips[1]}}, delay, true); !errors.Is(err, ErrNotInEffect) {
		t.Fatalf("before any rule the probe found the pair delayed: %v", err)
	}
	for _, pr := range []Pair{{ips[0], ips[1]}, {ips[1], ips[0]}} {
		if err := fw.Delay(pr.Src, pr.Dst, delay); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.ExpectDelayed(ctx, []Pair{{ips[0], ips[1]}, {ips[1], ips[0]}}, delay, true); err != nil {
		t.Fatalf("delayed pair: %v", err)
	}
	// A pair without a rule passes at loopback speed.
	if took, ok := p.timeUDP(ctx, ips[0], ips[2], time.Second); !ok || took >= delay/2 {
		t.Fatalf("undelayed pair: datagram took %s (reached %v)", took, ok)
	}
	// A stream through the delayed pair arrives whole and in order.
	if err := streamThrough(ips[0], ips[1], port+1, 4<<20); err != nil {
		t.Fatal(err)
	}
	st := fw.DelayStats()
	if st.Held == 0 || st.VerdictErrors != 0 {
		t.Fatalf("delayer stats %+v: want packets held and no verdict errors", st)
	}
	t.Logf("delayer: %+v", st)
	if err := fw.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := p.ExpectOpen(ctx, AllPairs(ips), 3); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	if err := p.ExpectDelayed(ctx, []Pair{{ips[0], ips[1]}}, delay, true); !errors.Is(err, ErrNotInEffect) {
		t.Fatalf("after heal the pair still looks delayed: %v", err)
	}
}

// streamThrough sends n bytes of a known pattern over TCP from src to a
// listener on dst and checks every byte arrived in order.
func streamThrough(src, dst string, port, n int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(dst, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 32<<10)
		got := 0
		for got < n {
			k, err := c.Read(buf)
			for i := 0; i < k; i++ {
				if buf[i] != byte((got+i)%251) {
					errc <- fmt.Errorf("byte %d is %d, want %d: the stream was reordered or corrupted", got+i, buf[i], (got+i)%251)
					return
				}
			}
			got += k
			if err != nil {
				errc <- fmt.Errorf("after %d of %d bytes: %w", got, n, err)
				return
			}
		}
		errc <- nil
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i % 251)
	}
	if _, err := c.Write(data); err != nil {
		return err
	}
	return <-errc
}
