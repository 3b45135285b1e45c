package kernel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// rpcApplyBatch carries several forwarded writes in one call: the
// follower's forwarder gathers the writes that arrive while earlier
// batches are in flight, and the leader proposes each as its own Raft
// entry (hashicorp/raft then commits them together) and answers each
// with its own result or error. Nothing about a write changes: it gets
// the same decision, chain record and answer as when forwarded alone.
const rpcApplyBatch = "apply_batch"

// Forwarding limits: at most fwdMaxBatch writes per call and
// fwdMaxInflight calls in flight per follower; writes beyond wait in
// order (bounded by fwdMaxQueued, then refused as not delivered, which
// the caller retries).
const (
	fwdMaxBatch    = 256
	fwdMaxInflight = 4
	fwdMaxQueued   = 8192
)

type applyBatchRequest struct {
	Items []applyBatchItem `codec:"items"`
}

type applyBatchItem struct {
	Envelope  []byte `codec:"envelope"`   // canonical envelope without Time
	TimeoutNs int64  `codec:"timeout_ns"` // what is left of the caller's deadline
}

type applyBatchResponse struct {
	Items []applyBatchAnswer `codec:"items"` // one per request item, in order
}

type applyBatchAnswer struct {
	Code    string     `codec:"code"` // api error code, "" on success
	Message string     `codec:"message"`
	Result  wireResult `codec:"result"`
	Index   uint64     `codec:"index"`
}

// forwarder batches the writes a follower forwards to its leader.
type forwarder struct {
	n *Node

	mu       sync.Mutex
	queue    []*fwdCall
	inflight int

	// batches and writes count the calls made and the writes they
	// carried (writes/batches is the mean batch size).
	batches, writes atomic.Uint64
}

type fwdCall struct {
	leader   string
	env      []byte
	deadline time.Time
	done     chan fwdResult // buffered: a caller that gave up never blocks the sender
}

type fwdResult struct {
	res fsm.Result
	err error
}

// forward sends env (encoded, without Time) to leader in the next batch
// and waits for its own answer.
func (f *forwarder) forward(ctx context.Context, leader string, env []byte) (fsm.Result, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(rpcTimeout)
	}
	c := &fwdCall{leader: leader, env: env, deadline: deadline, done: make(chan fwdResult, 1)}
	f.mu.Lock()
	if len(f.queue) >= fwdMaxQueued {
		f.mu.Unlock()
		return fsm.Result{}, fmt.Errorf("%w: %d writes already wait to be forwarded", errNotDelivered, fwdMaxQueued)
	}
	f.queue = append(f.queue, c)
	if f.inflight < fwdMaxInflight {
		f.inflight++
		go f.send()
	}
	f.mu.Unlock()
	select {
	case r := <-c.done:
		return r.res, r.err
	case <-ctx.Done():
		// The write may still be applied; the caller reports an unknown
		// outcome, as for any timeout.
		return fsm.Result{}, ctx.Err()
	}
}

// send takes batches off the queue until it is empty. Each batch is the
// queue's longest prefix of writes for one leader address (at most
// fwdMaxBatch), so writes leave in arrival order.
func (f *forwarder) send() {
	for {
		f.mu.Lock()
		if len(f.queue) == 0 {
			f.inflight--
			f.mu.Unlock()
			return
		}
		leader := f.queue[0].leader
		k := 1
		for k < len(f.queue) && k < fwdMaxBatch && f.queue[k].leader == leader {
			k++
		}
		batch := slices.Clone(f.queue[:k])
		f.queue = f.queue[k:]
		f.mu.Unlock()
		f.call(leader, batch)
	}
}

// call sends one batch and hands every write its answer.
func (f *forwarder) call(leader string, batch []*fwdCall) {
	now := time.Now()
	req := applyBatchRequest{Items: make([]applyBatchItem, 0, len(batch))}
	var live []*fwdCall
	last := now
	for _, c := range batch {
		left := c.deadline.Sub(now)
		if left <= 0 {
			// Never sent: certainly not applied.
			c.done <- fwdResult{err: fmt.Errorf("%w: deadline passed before forwarding", context.DeadlineExceeded)}
			continue
		}
		live = append(live, c)
		req.Items = append(req.Items, applyBatchItem{Envelope: c.env, TimeoutNs: int64(left)})
		if c.deadline.After(last) {
			last = c.deadline
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(f.n.ctx, last)
	defer cancel()
	f.batches.Add(1)
	f.writes.Add(uint64(len(live)))
	metricInc("forward.batches")
	var resp applyBatchResponse
	err := f.n.pool.call(ctx, leader, rpcApplyBatch, &req, &resp)
	var re *rpcError
	if errors.As(err, &re) && re.Code == api.CodeBadRequest && strings.Contains(re.Message, "unknown rpc method") {
		// A leader that predates batching: nothing was applied; forward
		// each write alone.
		f.one(leader, live)
		return
	}
	if err == nil && len(resp.Items) != len(live) {
		err = fmt.Errorf("leader answered %d of %d forwarded writes", len(resp.Items), len(live))
	}
	for i, c := range live {
		if err != nil {
			// The whole call failed: errNotDelivered when it was never
			// written (retryable), otherwise an unknown outcome.
			c.done <- fwdResult{err: err}
			continue
		}
		a := resp.Items[i]
		if a.Code != "" {
			c.done <- fwdResult{err: &rpcError{Code: a.Code, Message: a.Message, Leader: leader}}
			continue
		}
		c.done <- fwdResult{res: fromWire(a.Result)}
	}
}

// one forwards each write with its own rpcApply call, concurrently.
func (f *forwarder) one(leader string, calls []*fwdCall) {
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(f.n.ctx, c.deadline)
			defer cancel()
			var ar applyResponse
			err := f.n.pool.call(ctx, leader, rpcApply, &applyRequest{Envelope: c.env}, &ar)
			c.done <- fwdResult{res: fromWire(ar.Result), err: err}
		}()
	}
	wg.Wait()
}

// serveApplyBatch proposes every write of a batch on this leader
// concurrently (each its own Raft entry) and answers each.
func (n *Node) serveApplyBatch(ctx context.Context, body []byte) ([]byte, error) {
	var req applyBatchRequest
	if err := fsm.Decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.Items) > fwdMaxBatch {
		return nil, httpedge.BadRequest("%d writes in one batch; at most %d", len(req.Items), fwdMaxBatch)
	}
	out := applyBatchResponse{Items: make([]applyBatchAnswer, len(req.Items))}
	var wg sync.WaitGroup
	for i, it := range req.Items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &out.Items[i]
			timeout := time.Duration(it.TimeoutNs)
			if timeout <= 0 || timeout > rpcTimeout {
				timeout = rpcTimeout
			}
			ictx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res, idx, err := n.applyForwarded(ictx, it.Envelope)
			if err != nil {
				a.Code, a.Message = httpedge.CodeOf(err), err.Error()
				return
			}
			a.Result, a.Index = toWire(res), idx
		}()
	}
	wg.Wait()
	return fsm.Encode(&out), nil
}

// applyForwarded proposes an envelope a follower forwarded (its canonical
// bytes, without Time) on this leader: the one path of rpcApply and of
// each write of an apply_batch.
func (n *Node) applyForwarded(ctx context.Context, envelope []byte) (fsm.Result, uint64, error) {
	env, err := fsm.DecodeEnvelope(envelope)
	if err != nil {
		return fsm.Result{}, 0, httpedge.BadRequest("malformed envelope: %v", err)
	}
	return n.applyLocal(ctx, env)
}
