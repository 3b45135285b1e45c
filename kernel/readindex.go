package kernel

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// DefaultReadConfirmTimeout bounds a read-index round and how long a
// scoped read waits for this node to confirm its state against the
// leader before answering stale.
const DefaultReadConfirmTimeout = time.Second

// readRounds coalesces read-index rounds. A caller joins the next round,
// which starts only after the running one ends, so every caller is served
// by a round that started after it arrived: its index covers everything
// committed before the caller asked, and one round (one leadership check,
// or one RPC to the leader) serves every caller that arrived while the
// previous round ran. At most one round runs at a time; its goroutine
// exits when no caller waits.
type readRounds struct {
	fetch   func(ctx context.Context) (uint64, error) // one round
	base    context.Context                           // ends at node close
	timeout time.Duration                             // bound on one round

	mu      sync.Mutex
	next    *readRound // the round new callers join; nil when none waits
	running bool       // a goroutine is running rounds

	rounds atomic.Uint64 // rounds run (tests and benchmarks read it)
}

// readRound is one read-index round and its outcome, set before done
// closes.
type readRound struct {
	done  chan struct{}
	index uint64
	err   error
}

// index returns a read index from a round that started after the call.
func (rr *readRounds) index(ctx context.Context) (uint64, error) {
	rr.mu.Lock()
	r := rr.next
	if r == nil {
		r = &readRound{done: make(chan struct{})}
		rr.next = r
	}
	if !rr.running {
		rr.running = true
		go rr.run()
	}
	rr.mu.Unlock()
	select {
	case <-r.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run runs rounds while callers wait for one.
func (rr *readRounds) run() {
	for {
		rr.mu.Lock()
		r := rr.next
		rr.next = nil
		if r == nil {
			rr.running = false
			rr.mu.Unlock()
			return
		}
		rr.mu.Unlock()
		ctx, cancel := context.WithTimeout(rr.base, rr.timeout)
		r.index, r.err = rr.fetch(ctx)
		cancel()
		rr.rounds.Add(1)
		close(r.done)
	}
}

// errStale answers a scoped read this node cannot confirm.
func errStale(cause error) error {
	return &httpedge.Error{Code: api.CodeStale, Msg: fmt.Sprintf("this node cannot confirm its state with the leader (%v): "+
		"a capability revoked there may still look valid here, so the read is refused; retry, or ask another node", cause)}
}

// confirmState makes this node's state include everything committed
// before the call, within Config.ReadConfirmTimeout: a (coalesced) read index
// from the leader, then this node's FSM applying through it. A follower
// cut off from the leader, a leader that lost its quorum or a node too
// far behind gets errStale.
func (n *Node) confirmState(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReadConfirmTimeout)
	defer cancel()
	start := time.Now()
	if err := n.ConsistentRead(ctx); err != nil {
		metricInc("http.read_stale")
		return errStale(err)
	}
	metricSince("http.read_confirm", start)
	return nil
}

// scopeErr checks, on this node's state as it is, that the token's
// capability is usable and covers op on resource.
func (n *Node) scopeErr(token, op, resource string) error {
	var reason fsm.Reason
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		c := st.CapByToken(hex.EncodeToString(TokenHash(token)))
		if reason = st.Usable(c, st.Time); reason == fsm.ReasonOK && !st.Covers(c, op, resource) {
			reason = fsm.ReasonForbidden
		}
	})
	if reason != fsm.ReasonOK {
		return &httpedge.Error{Code: api.CodeForbidden, Msg: fmt.Sprintf("%s requires a usable capability scoped to %q (%s)", op, op, reason)}
	}
	return nil
}

// requireScope checks, before Raft, that the caller's capability is usable
// and covers op, on state confirmed against the leader (confirmState):
// a route whose answer is not ledgered (a read, an operator action on
// this node) never serves a capability the leader has revoked. It
// answers stale (503) when this node cannot confirm, forbidden (403)
// when the scope does not hold.
func (n *Node) requireScope(ctx context.Context, token, op string) error {
	return n.requireAnyScope(ctx, token, op)
}

// requireAnyScope is requireScope for a route that one of several scopes
// opens: one confirmation, then the first op that holds; the error names
// the first op.
func (n *Node) requireAnyScope(ctx context.Context, token string, ops ...string) error {
	if err := n.confirmState(ctx); err != nil {
		return err
	}
	var first error
	for _, op := range ops {
		err := n.scopeErr(token, op, "*")
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}
