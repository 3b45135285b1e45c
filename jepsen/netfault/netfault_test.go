package netfault

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRules(t *testing.T) {
	if got, want := DropRule("C", "127.0.90.1", "127.0.90.2"), []string{"-A", "C", "-s", "127.0.90.1", "-d", "127.0.90.2", "-j", "DROP"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("DropRule = %v", got)
	}
	got := strings.Join(LossRule("C", "127.0.90.1", "127.0.90.2", 0.36), " ")
	if got != "-A C -s 127.0.90.1 -d 127.0.90.2 -m statistic --mode random --probability 0.200000 -j DROP" {
		t.Fatalf("LossRule = %s", got)
	}
	for _, p := range []float64{0.1, 0.3, 0.5, 0.9} {
		q := PerPassProbability(p)
		if through := (1 - q) * (1 - q); math.Abs(1-through-p) > 1e-9 {
			t.Errorf("p=%v: two passes at q=%v lose %v", p, q, 1-through)
		}
	}
}

func TestAllPairs(t *testing.T) {
	ps := AllPairs([]string{"a", "b", "c"})
	if len(ps) != 6 {
		t.Fatalf("%d pairs, want 6", len(ps))
	}
	for _, p := range ps {
		if p.Src == p.Dst {
			t.Fatalf("self pair %s", p)
		}
	}
}

// probeIPs picks addresses and a port unlikely to collide with another
// test process on the same machine.
func probeIPs(n int) ([]string, int) {
	var ips []string
	block := 100 + os.Getpid()%100
	for i := 1; i <= n; i++ {
		ips = append(ips, fmt.Sprintf("127.0.%d.%d", block, i))
	}
	return ips, 20000 + os.Getpid()%20000
}

func TestProberSeesOpenPaths(t *testing.T) {
	ips, port := probeIPs(3)
	p, err := NewProber(ips, port, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if err := p.ExpectOpen(ctx, AllPairs(ips), 3); err != nil {
		t.Fatalf("open loopback paths: %v", err)
	}
	// Without rules every path is open, so expecting a cut must fail.
	err = p.ExpectBlocked(ctx, []Pair{{ips[0], ips[1]}})
	if !errors.Is(err, ErrNotInEffect) || !strings.Contains(err.Error(), "tcp reached=true udp reached=true") {
		t.Fatalf("expecting a cut that is not there: %v", err)
	}
	// An address nobody listens on does not reach.
	tcp, udp := p.Reach(ctx, ips[0], "127.0.0.254")
	if tcp || udp {
		t.Fatalf("reached an address without a listener: tcp=%v udp=%v", tcp, udp)
	}
}

func TestOpenFailsLoudlyWithoutIptables(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Open("DJ-NOPE")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open without iptables on PATH (or without root): %v, want ErrUnavailable", err)
	}
	t.Logf("refused as expected: %v", err)
}

// openTestFirewall opens a chain of the test's own (skipping without
// root or iptables: the jepsen runs fail loudly instead) and checks at
// cleanup that Close left nothing behind.
func openTestFirewall(t *testing.T, prefix string) *Firewall {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to change iptables (the jepsen runs fail loudly instead)")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables is not installed (the jepsen runs fail loudly instead)")
	}
	chain := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	fw, err := Open(chain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fw.Close(); err != nil {
			t.Error(err)
		}
		if left, err := Leftovers(chain); err != nil || len(left) > 0 {
			t.Errorf("after Close, iptables -S still shows %v (%v)", left, err)
		}
	})
	return fw
}

// TestFirewallCutsAndHeals adds real iptables rules in a chain of its
// own and probes them. It needs root and iptables.
func TestFirewallCutsAndHeals(t *testing.T) {
	fw := openTestFirewall(t, "DJ-TEST")
	ips, port := probeIPs(3)
	p, err := NewProber(ips, port, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if err := fw.Drop(ips[0], ips[1]); err != nil {
		t.Fatal(err)
	}
	if err := p.ExpectBlocked(ctx, []Pair{{ips[0], ips[1]}}); err != nil {
		t.Fatalf("after a cut: %v", err)
	}
	// one way only: the datagram from the other side still arrives
	if _, udp := p.Reach(ctx, ips[1], ips[0]); !udp {
		t.Fatal("a one-way cut also dropped the reverse datagram")
	}
	if err := p.ExpectOpen(ctx, []Pair{{ips[0], ips[2]}, {ips[2], ips[1]}}, 3); err != nil {
		t.Fatalf("paths the cut does not name: %v", err)
	}
	if err := fw.Loss(ips[1], ips[2], 0.5); err != nil {
		t.Fatal(err)
	}
	rules, err := fw.Rules()
	if err != nil || len(rules) != 2 {
		t.Fatalf("rules %v (%v), want 2", rules, err)
	}
	if err := fw.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := p.ExpectOpen(ctx, AllPairs(ips), 3); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	if rules, _ := fw.Rules(); len(rules) != 0 {
		t.Fatalf("rules after heal: %v", rules)
	}
}
