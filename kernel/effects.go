package kernel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/driver"
	"github.com/dominus-kernel/dominus/fsm"
)

// The effect runner: on the leader only, every pending external effect is
// handed to the driver for its op after the permit is committed, and its
// outcome is proposed as effect.complete. When a node becomes leader, the
// effects already pending were dispatched by an earlier leader whose
// outcome is lost: they are completed as indeterminate — or, for a driver
// declared idempotent on the syscall id, run again.

const maxEffectWorkers = 16

type effectRunner struct {
	n       *Node
	drivers []*supervisor
	wake    chan struct{}

	paused atomic.Bool // tests: stop dispatching (as if the leader died first)

	mu         sync.Mutex
	term       uint64          // leadership term the sets below belong to
	dispatched map[uint64]bool // effects this leader has started
	sem        chan struct{}
}

func newEffectRunner(n *Node) *effectRunner {
	r := &effectRunner{n: n, wake: make(chan struct{}, 1), dispatched: map[uint64]bool{}, sem: make(chan struct{}, maxEffectWorkers)}
	for _, dc := range n.cfg.Drivers {
		r.drivers = append(r.drivers, newSupervisor(dc, n.log))
	}
	return r
}

func (r *effectRunner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *effectRunner) driverFor(op string) *supervisor {
	for _, d := range r.drivers {
		if strings.HasPrefix(op, d.cfg.Prefix) {
			return d
		}
	}
	return nil
}

func (r *effectRunner) loop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, d := range r.drivers {
				d.close()
			}
			return
		case <-t.C:
		case <-r.wake:
		}
		r.step(ctx)
	}
}

func (r *effectRunner) step(ctx context.Context) {
	n := r.n
	if n.raft.State() != raft.Leader || r.paused.Load() {
		return
	}
	term := n.raft.CurrentTerm()
	r.mu.Lock()
	newTerm := r.term != term
	r.mu.Unlock()
	if newTerm {
		// Effects permitted by entries of an earlier term were dispatched
		// (if at all) by an earlier leader; this leader's own are its to run.
		bctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		err := n.ensureBarrier(bctx)
		cancel()
		if err != nil {
			return
		}
		var pending, inherited []fsm.Effect
		n.fsm.read(func(l *fsm.Ledger, _ uint64) { pending = l.State().PendingEffects() })
		for _, e := range pending {
			if !e.Caller && n.entryTerm(e.Index) < term {
				inherited = append(inherited, e)
			}
		}
		r.mu.Lock()
		r.term, r.dispatched = term, map[uint64]bool{}
		for _, e := range inherited {
			r.dispatched[e.Seq] = true
		}
		r.mu.Unlock()
		for _, e := range inherited {
			if d := r.driverFor(e.Op); d != nil && d.cfg.Idempotent {
				r.start(ctx, e, d)
				continue
			}
			n.log.Warn("effect outcome lost with an earlier leader; recording it as indeterminate", "seq", e.Seq, "op", e.Op)
			r.complete(ctx, e.Seq, driver.Response{Status: fsm.EffectIndeterminate, Code: -1})
		}
	}
	var pending []fsm.Effect
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { pending = l.State().PendingEffects() })
	for _, e := range pending {
		if e.Caller {
			continue // its caller executes it (protocol 5): its gateway reports it
		}
		r.mu.Lock()
		seen := r.dispatched[e.Seq]
		r.dispatched[e.Seq] = true
		r.mu.Unlock()
		if !seen {
			r.start(ctx, e, r.driverFor(e.Op))
		}
	}
	// Forget completed effects.
	r.mu.Lock()
	if len(r.dispatched) > 2*fsm.MaxEffects {
		live := map[uint64]bool{}
		for _, e := range pending {
			live[e.Seq] = true
		}
		r.dispatched = live
	}
	r.mu.Unlock()
}

func (r *effectRunner) start(ctx context.Context, e fsm.Effect, d *supervisor) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	go func() {
		defer func() { <-r.sem }()
		if d == nil {
			r.complete(ctx, e.Seq, driver.Response{Status: fsm.EffectFailed, Code: -404})
			return
		}
		resp, err := d.Call(ctx, driver.Request{ID: e.Seq, Op: e.Op, Resource: e.Resource, Args: string(e.Args)})
		switch {
		case errors.Is(err, errDriverLost):
			r.n.log.Warn("driver lost an effect; recording it as indeterminate", "seq", e.Seq, "err", err)
			resp = driver.Response{Status: fsm.EffectIndeterminate, Code: -1}
		case err != nil:
			r.n.log.Warn("driver unavailable; effect failed", "seq", e.Seq, "err", err)
			resp = driver.Response{Status: fsm.EffectFailed, Code: -503}
		case resp.Status != fsm.EffectOK:
			resp.Status = fsm.EffectFailed
		}
		r.complete(ctx, e.Seq, resp)
	}()
}

func (r *effectRunner) complete(ctx context.Context, seq uint64, resp driver.Response) {
	cctx, cancel := context.WithTimeout(ctx, r.n.cfg.ApplyTimeout)
	defer cancel()
	digest := resp.OutputDigest
	if len(digest) > 128 {
		digest = digest[:128]
	}
	_, err := r.n.Apply(cctx, fsm.Envelope{Type: fsm.CmdEffectComplete, Payload: fsm.Encode(&fsm.EffectComplete{Seq: seq, Status: resp.Status, Code: resp.Code, OutputDigest: digest})})
	if err != nil {
		// The next leader will find it pending and record it as
		// indeterminate.
		r.n.log.Warn("could not record an effect's completion", "seq", seq, "err", err)
	}
}

// entryTerm is the term of the log entry at index (0 if compacted away,
// which only happens to entries of earlier terms).
func (n *Node) entryTerm(index uint64) uint64 {
	var l raft.Log
	if err := n.store.GetLog(index, &l); err != nil {
		return 0
	}
	return l.Term
}
