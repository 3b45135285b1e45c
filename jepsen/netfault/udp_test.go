package netfault

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUDPRuleAndCrossPairs(t *testing.T) {
	got := DropUDPRule("C", "127.0.92.1", "127.0.93.2")
	want := []string{"-A", "C", "-p", "udp", "-s", "127.0.92.1", "-d", "127.0.93.2", "-j", "DROP"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DropUDPRule = %v", got)
	}
	ps := CrossPairs([]string{"a1", "a2"}, []string{"b1", "b2", "b3"})
	if len(ps) != 6 {
		t.Fatalf("%d pairs, want 6: %v", len(ps), ps)
	}
	for _, p := range ps {
		if !strings.HasPrefix(p.Src, "a") || !strings.HasPrefix(p.Dst, "b") {
			t.Fatalf("pair %s does not go from the first set to the second", p)
		}
	}
}

// TestExpectUDPBlockedFailsOnOpenPaths shows the probe refuses to call
// an open path cut.
func TestExpectUDPBlockedFailsOnOpenPaths(t *testing.T) {
	ips, port := probeIPs(2)
	p, err := NewProber(ips, port+1, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.ExpectUDPBlocked(context.Background(), []Pair{{ips[0], ips[1]}})
	if !errors.Is(err, ErrNotInEffect) || !strings.Contains(err.Error(), "udp reached=true") {
		t.Fatalf("expecting a UDP cut that is not there: %v", err)
	}
}

// TestFirewallCutsUDPOnly adds a real UDP-only rule and probes it: the
// datagram is dropped, the TCP dial still passes. Needs root and
// iptables.
func TestFirewallCutsUDPOnly(t *testing.T) {
	fw := openTestFirewall(t, "DJ-UDP")
	ips, port := probeIPs(2)
	p, err := NewProber(ips, port+2, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if err := fw.DropUDP(ips[0], ips[1]); err != nil {
		t.Fatal(err)
	}
	if err := p.ExpectUDPBlocked(ctx, []Pair{{ips[0], ips[1]}}); err != nil {
		t.Fatalf("after a UDP cut: %v", err)
	}
	// A UDP cut is not a cut of everything: ExpectBlocked must say so.
	if err := p.ExpectBlocked(ctx, []Pair{{ips[0], ips[1]}}); err == nil || !strings.Contains(err.Error(), "tcp reached=true") {
		t.Fatalf("a UDP-only cut passed for a full cut: %v", err)
	}
	if _, udp := p.Reach(ctx, ips[1], ips[0]); !udp {
		t.Fatal("a one-way UDP cut also dropped the reverse datagram")
	}
	if err := fw.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := p.ExpectOpen(ctx, AllPairs(ips), 3); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}
