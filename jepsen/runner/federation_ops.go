package runner

// The operations a federation run performs itself, beside its clients:
// the revocation the nemesis asks for, and after the heal the bus
// drain, the calls once the revoked domain's standing ended and the
// final status of every event.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
	"github.com/dominus-kernel/dominus/jepsen/workload"
)

// sovClient is a client of the sovereign's first node sending token.
func (r *fedRun) sovClient(token string, timeout time.Duration) (*client.Client, error) {
	s := r.kernels[fedSovereign]
	return s.TokenClients(timeout)(s.Nodes()[0].Name, token)
}

// revoke is the nemesis's Revoker: it revokes domain's latest passport
// on the sovereign (a revoke whose outcome is unknown is repeated; a
// repeat of one that took effect is refused as already revoked), then
// reads the domain's passports.
func (r *fedRun) revoke(ctx context.Context, domain string) (string, error) {
	sov, err := r.sovClient(r.opToken, 10*time.Second)
	if err != nil {
		return "", err
	}
	sovNode := r.kernels[fedSovereign].Nodes()[0].Name
	read := func(n int) history.Op {
		inv := history.Op{Process: fedRevokeProc, F: checker.FPassportRead, Key: domain, Node: sovNode, RequestID: fmt.Sprintf("%s-pp-read-%d", r.runID, n)}
		return r.record(ctx, 10*time.Second, inv, func(cctx context.Context, inv history.Op) history.Op {
			return r.wl.PassportRead(cctx, sov, nil, inv)
		})
	}
	cur := read(0)
	if cur.Type != history.OK {
		return "", fmt.Errorf("reading %s's passports before the revoke: %s %s", domain, cur.Type, cur.Error)
	}
	id := cur.Result
	var last history.Op
	for attempt := 1; attempt <= 3; attempt++ {
		inv := history.Op{Process: fedRevokeProc, F: checker.FPassportRevoke, Key: id, Value: domain, Node: sovNode,
			RequestID: fmt.Sprintf("%s-revoke-%d", r.runID, attempt)}
		last = r.record(context.WithoutCancel(ctx), 10*time.Second, inv, func(cctx context.Context, inv history.Op) history.Op {
			return r.wl.Revoke(cctx, sov, inv)
		})
		if last.Type != history.Info {
			break
		}
	}
	after := read(1)
	if last.Type != history.OK && !(after.Type == history.OK && after.Found) {
		return "", fmt.Errorf("revoke of %s: %s %s %s %s", id, last.Type, last.Decision, last.Reason, last.Error)
	}
	r.mu.Lock()
	r.revoked = domain
	r.mu.Unlock()
	desc := fmt.Sprintf("revoke passport %s of %s on the sovereign (seq %d)", id, domain, last.Seq)
	for _, peer := range []string{fedA, fedB} {
		if peer != domain {
			if t := r.awaitPeerKnows(ctx, peer, domain); t >= 0 {
				desc += fmt.Sprintf("; %s reports it revoked %.1fs later", peer, float64(t)/1e9)
			}
		}
	}
	return desc, nil
}

// awaitPeerKnows reads, every 200ms for up to 20s, peer's view of
// domain's passports (through its nodes in turn) until one reports the
// latest revoked, recording each read. It returns how long after its
// start that took, or -1.
func (r *fedRun) awaitPeerKnows(ctx context.Context, peer, domain string) time.Duration {
	c := r.kernels[peer]
	ctx = context.WithoutCancel(ctx)
	start := time.Now()
	for i := 0; time.Since(start) < 20*time.Second; i++ {
		n := c.Nodes()[i%len(c.Nodes())]
		cl, err := c.Client(n, 2*time.Second)
		if err != nil {
			r.fail("%v", err)
			return -1
		}
		inv := history.Op{Process: fedRevokeProc, F: checker.FPassportRead, Key: domain, Node: n.Name, RequestID: fmt.Sprintf("%s-pp-known-%d", r.runID, i)}
		out := r.record(ctx, 2*time.Second, inv, func(cctx context.Context, inv history.Op) history.Op {
			return r.wl.PassportRead(cctx, cl, nil, inv)
		})
		if out.Type == history.OK && out.Found {
			return time.Since(start)
		}
		if sleepCtx(ctx, 200*time.Millisecond) != nil {
			return -1
		}
	}
	r.logf("%s did not report %s's passport revoked within 20s", peer, domain)
	return -1
}

// drain waits, bounded, until the bus has delivered every pending event
// of each origin in standing.
func (r *fedRun) drain(ctx context.Context) {
	r.mu.Lock()
	revoked := r.revoked
	r.mu.Unlock()
	if revoked != "" {
		// Both links touch the revoked domain: its peers refuse its
		// events, and it refuses theirs once its frozen view goes stale.
		r.logf("no bus drain: %s's passport is revoked, and both links touch it", revoked)
		return
	}
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	for _, d := range []string{fedA, fedB} {
		c := r.kernels[d]
		for {
			pending := -1
			if l := c.Leader(ctx); l != nil {
				if cl, err := c.Client(l, 5*time.Second); err == nil {
					if st, err := cl.BusStats(ctx); err == nil {
						pending = st.Pending
					}
				}
			}
			if pending == 0 {
				r.logf("bus drained: %s has no pending outbound event", d)
				break
			}
			if time.Now().After(deadline) {
				r.logf("%s still has %d pending outbound event(s) after %s (fed-delivery judges them)", d, pending, r.cfg.DrainTimeout)
				break
			}
			if sleepCtx(ctx, 250*time.Millisecond) != nil {
				return
			}
		}
	}
}

// afterStanding waits, when a passport was revoked, until the revoked
// domain's standing ended (its latest passport's expiry plus the slack)
// if that is within MaxExpiryWait, and then asks its gate for a local
// call through every node and one cross-domain call, and a's gate for a
// local call (which must still be permitted).
func (r *fedRun) afterStanding(ctx context.Context) {
	r.mu.Lock()
	revoked := r.revoked
	r.mu.Unlock()
	if revoked == "" {
		return
	}
	dc := r.kernels[revoked]
	sov, err := r.sovClient(r.opToken, 10*time.Second)
	if err != nil {
		r.fail("%v", err)
		return
	}
	own, err := dc.Client(dc.Nodes()[0], 5*time.Second)
	if err != nil {
		r.fail("%v", err)
		return
	}
	if l := dc.Leader(ctx); l != nil {
		if c, err := dc.Client(l, 5*time.Second); err == nil {
			own = c
		}
	}
	inv := history.Op{Process: fedFinalProc, F: checker.FPassportRead, Key: revoked, Node: r.kernels[fedSovereign].Nodes()[0].Name,
		RequestID: r.runID + "-pp-read-final"}
	rd := r.record(ctx, 10*time.Second, inv, func(cctx context.Context, inv history.Op) history.Op {
		return r.wl.PassportRead(cctx, sov, own, inv)
	})
	if rd.Type != history.OK {
		r.fail("reading %s's passports after the revoke: %s %s", revoked, rd.Type, rd.Error)
		return
	}
	expiry, err := time.Parse(time.RFC3339Nano, rd.Value)
	if err != nil {
		r.fail("passport expiry %q: %v", rd.Value, err)
		return
	}
	end := expiry.Add(r.cfg.StandingSlack)
	wait := time.Until(end) + 2*time.Second
	if wait > r.cfg.MaxExpiryWait {
		r.logf("%s's standing ends at %s, %s from now, beyond -fed-expiry-wait %s: its own gate is not judged", revoked, end.UTC().Format(time.RFC3339), wait.Round(time.Second), r.cfg.MaxExpiryWait)
		return
	}
	if wait > 0 {
		r.logf("waiting %s for %s's standing to end (passport expiry %s + slack %s)", wait.Round(100*time.Millisecond), revoked, expiry.UTC().Format(time.RFC3339), r.cfg.StandingSlack)
		if sleepCtx(ctx, wait) != nil {
			return
		}
	}
	other := fedA
	if revoked == fedA {
		other = fedB
	}
	token := r.wl.AgentToken(revoked)
	for i, n := range dc.Nodes() {
		inv := r.wl.LocalOp(fmt.Sprintf("%s-%s-final-%d", revoked, r.runID, i))
		inv.Process, inv.Node, inv.RequestID = fedFinalProc+1, n.Name, fmt.Sprintf("%s-final-local-%d", r.runID, i)
		out := r.performCall(ctx, revoked, token, inv, 10*time.Second)
		r.logf("after %s's standing ended: local call through %s: %s %s %s", revoked, n.Name, out.Type, out.Decision, out.Reason)
	}
	call := r.wl.CallOp(other, revoked, r.runID+"-final")
	call.Process, call.Node, call.RequestID = fedFinalProc+2, dc.Nodes()[0].Name, r.runID+"-final-call"
	out := r.performCall(ctx, revoked, token, call, 10*time.Second)
	r.logf("after %s's standing ended: cross-domain call to %s: %s %s %s", revoked, other, out.Type, out.Decision, out.Reason)
	oc := r.kernels[other]
	ctl := r.wl.LocalOp(fmt.Sprintf("%s-%s-control", other, r.runID))
	ctl.Process, ctl.Node, ctl.RequestID = fedFinalProc+3, oc.Nodes()[0].Name, r.runID+"-final-control"
	out = r.performCall(ctx, other, r.wl.AgentToken(other), ctl, 10*time.Second)
	r.logf("control: local call in %s: %s %s %s", other, out.Type, out.Decision, out.Reason)
}

// readStatuses reads, on each origin, every outbound event from seq 1
// until the origin knows no more (bounded by the calls its agents made).
func (r *fedRun) readStatuses(ctx context.Context) {
	for _, link := range [][2]string{{fedA, fedB}, {fedB, fedA}} {
		origin, dest := link[0], link[1]
		c := r.kernels[origin]
		r.mu.Lock()
		bound := r.calls[origin] + 1
		r.mu.Unlock()
		read := 0
		for seq := 1; seq <= bound; seq++ {
			var err error
			for attempt := 0; attempt < 3*len(c.Nodes()); attempt++ {
				n := c.Nodes()[attempt%len(c.Nodes())]
				var cl *client.Client
				if cl, err = c.Client(n, 5*time.Second); err != nil {
					break
				}
				inv := history.Op{Process: fedStatusProc, F: checker.FFedStatus, Key: fmt.Sprintf("%s/%d", dest, seq), Node: n.Name,
					RequestID: fmt.Sprintf("%s-status-%s-%d-%d", r.runID, origin, seq, attempt)}
				r.record(ctx, 5*time.Second, inv, func(cctx context.Context, inv history.Op) history.Op {
					var out history.Op
					out, err = r.wl.Status(cctx, cl, inv)
					return out
				})
				if err == nil || errors.Is(err, workload.ErrNoEvent) {
					break
				}
			}
			if errors.Is(err, workload.ErrNoEvent) {
				break
			}
			if err != nil {
				r.fail("final status of %s/%d on %s: %v", dest, seq, origin, err)
				continue
			}
			read++
		}
		r.logf("final status of %d event(s) %s -> %s read", read, origin, dest)
	}
}
