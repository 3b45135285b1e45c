package netfault

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// DropUDPRule returns the iptables arguments that append a cut of UDP
// only, from src to dst, to chain: the federation bus (QUIC) is UDP,
// while the nodes' Raft, RPC and HTTP traffic is TCP.
func DropUDPRule(chain, src, dst string) []string {
	return []string{"-A", chain, "-p", "udp", "-s", src, "-d", dst, "-j", "DROP"}
}

// DropUDP cuts UDP packets from src to dst; TCP still passes.
func (f *Firewall) DropUDP(src, dst string) error {
	return f.add(DropUDPRule(f.chain, src, dst))
}

// ExpectUDPBlocked probes every pair (in parallel) and returns an error
// naming each pair through which a datagram still passed, or through
// which a TCP dial failed (a UDP cut must leave TCP alone: a failed dial
// means the network is not in the state the rules describe). The TCP
// side is tried up to three times, so one slow accept is not a failure.
func (p *Prober) ExpectUDPBlocked(ctx context.Context, pairs []Pair) error {
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, pr := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tcp, udp bool
			for a := 0; a < 3; a++ {
				tcp, udp = p.Reach(ctx, pr.Src, pr.Dst)
				if udp {
					break // a datagram passed: no retry changes that
				}
				if tcp {
					return
				}
			}
			errs[i] = fmt.Errorf("%w: %s should pass TCP and drop UDP but tcp reached=%v udp reached=%v", ErrNotInEffect, pr, tcp, udp)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// CrossPairs returns every ordered pair from an address of from to an
// address of to.
func CrossPairs(from, to []string) []Pair {
	var out []Pair
	for _, a := range from {
		for _, b := range to {
			if a != b {
				out = append(out, Pair{a, b})
			}
		}
	}
	return out
}
