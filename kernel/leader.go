package kernel

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/hashicorp/raft"
)

// leaderLoop runs the leader's periodic duties: the per-term barrier and
// the clock-skew check.
func (n *Node) leaderLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var reconciling atomic.Bool
	var lastReconcile time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case isLeader := <-n.raft.LeaderCh():
			if isLeader {
				n.log.Info("became leader", "term", n.raft.CurrentTerm())
				go n.tookLeadership()
			}
		case <-t.C:
			if n.raft.State() != raft.Leader {
				continue
			}
			n.checkSkew(n.raft.CurrentTerm())
			n.runDuties(time.Now())
			if time.Since(lastReconcile) >= reconcileEvery && reconciling.CompareAndSwap(false, true) {
				lastReconcile = time.Now()
				go func() {
					defer reconciling.Store(false)
					ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
					defer cancel()
					n.reconcileMembers(ctx)
				}()
			}
		}
	}
}

// tookLeadership runs once this node became leader: the term's barrier,
// then what depends on having applied everything committed before the
// term (the bus replay windows, seeded from the ledger).
func (n *Node) tookLeadership() {
	if err := n.ensureBarrier(n.ctx); err != nil {
		return
	}
	if n.fed != nil {
		n.fed.seedWindows()
	}
}

// ensureBarrier makes sure a barrier completed in the current term, so
// this leader has applied everything committed before it took over.
func (n *Node) ensureBarrier(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() == term {
		return nil
	}
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := waitFuture(ctx, n.raft.Barrier(timeout)); err != nil {
		return err
	}
	n.barrierTerm.Store(term)
	return nil
}

// checkSkew asks the voters for their clocks and records how far this
// leader's clock is from the median of the voters' clocks it can read, its
// own included (so one skewed follower moves the median by nothing). A
// leader beyond --max-clock-skew either way refuses writes and hands over
// leadership: a fast clock would drag ledger time forward for good, a slow
// one would stall it (capability, passport and approval expiry are judged
// at ledger time). It reports whether a quorum answered (always true for a
// single voter); only then does the result count for the term. The leader
// loop repeats it every second.
func (n *Node) checkSkew(term uint64) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	var peers []raft.Server
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.ID != raft.ServerID(n.cfg.Name) {
			peers = append(peers, s)
		}
	}
	var mu sync.Mutex
	var offsets []time.Duration
	var wg sync.WaitGroup
	for _, s := range peers {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, 500*time.Millisecond)
			defer cancel()
			sent := n.now()
			var cr clockResponse
			if err := n.pool.call(ctx, addr, rpcClock, &clockRequest{SenderTime: sent.UnixNano()}, &cr); err != nil {
				return
			}
			recv := n.now()
			mid := sent.Add(recv.Sub(sent) / 2)
			mu.Lock()
			offsets = append(offsets, mid.Sub(time.Unix(0, cr.Time))) // positive: we are ahead
			mu.Unlock()
		}(string(s.Address))
	}
	wg.Wait()
	if len(offsets)+1 <= voters/2 { // with this leader, not a majority
		return false
	}
	off := medianOffset(offsets)
	n.skewMu.Lock()
	n.skewOff, n.skewChecked, n.skewTerm = off, time.Now(), term
	n.skewMu.Unlock()
	metricGauge("clock.leader_ahead_ms", float32(off.Milliseconds()))
	if off > n.cfg.MaxClockSkew || -off > n.cfg.MaxClockSkew {
		dir := "ahead of"
		if off < 0 {
			dir = "behind"
		}
		n.log.Error("leader clock is "+dir+" its quorum beyond the maximum skew; refusing writes and handing over leadership",
			"offset", off.String(), "max", n.cfg.MaxClockSkew.String())
		_ = n.raft.LeadershipTransfer()
	}
	return true
}

// medianOffset is the median of this leader's offsets from the voters it
// heard from and from itself (0): positive when its clock runs ahead.
func medianOffset(followers []time.Duration) time.Duration {
	all := append([]time.Duration{0}, followers...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all)%2 == 1 {
		return all[len(all)/2]
	}
	// An even count: the one nearer this leader's own clock, so a single
	// skewed peer of two never decides alone.
	a, b := all[len(all)/2-1], all[len(all)/2]
	if abs(a) < abs(b) {
		return a
	}
	return b
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// ErrClockUnverified is returned by a new leader that could not yet
// compare its clock with a quorum's: it stamps nothing until it has.
var ErrClockUnverified error = &httpedge.Error{Code: api.CodeUnavailable, Msg: "leader has not yet verified its clock against a quorum; retry"}

// ensureSkewChecked makes a leader measure its clock against its quorum
// once per term before it stamps any write, so a leader elected with a
// fast clock never drags ledger time forward.
func (n *Node) ensureSkewChecked() error {
	term := n.raft.CurrentTerm()
	n.skewMu.Lock()
	done := n.skewTerm == term
	n.skewMu.Unlock()
	if done {
		return nil
	}
	n.skewRun.Lock()
	defer n.skewRun.Unlock()
	n.skewMu.Lock()
	done = n.skewTerm == term
	n.skewMu.Unlock()
	if done || n.checkSkew(term) {
		return nil
	}
	return ErrClockUnverified
}

func (n *Node) now() time.Time { return time.Now().Add(time.Duration(n.clockOffset.Load())) }

// SetClockOffset shifts this node's clock; for fault tests only.
func (n *Node) SetClockOffset(d time.Duration) { n.clockOffset.Store(int64(d)) }

func (n *Node) leaderAddr() string {
	if n.raft == nil { // still inside raft.NewRaft (a restore at start-up)
		return ""
	}
	addr, _ := n.raft.LeaderWithID()
	return string(addr)
}
