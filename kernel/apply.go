package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/hashicorp/raft"
)

// Apply proposes env (without Time) on the leader, forwarding if this
// node is a follower, and waits for the ledger's answer.
func (n *Node) Apply(ctx context.Context, env fsm.Envelope) (fsm.Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	env.Time = 0
	n.signInternal(ctx, &env)
	var data []byte // encoded once, and only if the write is forwarded
	backoff := 10 * time.Millisecond
	for {
		var res fsm.Result
		var err error
		if n.raft.State() == raft.Leader {
			res, _, err = n.applyLocal(ctx, env)
		} else if leader := n.leaderAddr(); leader != "" {
			if data == nil {
				data = fsm.Encode(&env)
			}
			res, err = n.fwd.forward(ctx, leader, data)
		} else {
			err = ErrNoLeader
		}
		if err == nil {
			return res, nil
		}
		code := httpedge.CodeOf(err)
		// Only retry where the entry certainly did not reach the log.
		if !(errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrClockUnverified) || code == api.CodeNoLeader) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%w (after waiting %s)", ErrNoLeader, n.cfg.ApplyTimeout)
		case <-time.After(backoff):
		}
		if backoff < 500*time.Millisecond {
			backoff *= 2
		}
	}
}

// applyLocal stamps and proposes envelope bytes on this leader.
// signInternal gives an internal command this node's member evidence
// (fsm/internal.go): its node name and its node key's signature over the
// kernel id, the command and its payload. The ledger verifies it against
// the key it holds for this member (protocol 4). Commands with a caller
// token, genesis, and commands proposed before the kernel id is known
// are left as they are.
func (n *Node) signInternal(ctx context.Context, env *fsm.Envelope) {
	if len(env.Auth) != 0 || env.Node != "" || !fsm.IsInternal(env.Type) || n.nodeKey == nil {
		return
	}
	var kid string
	var keyed bool
	read := func() {
		n.fsm.read(func(l *fsm.Ledger, _ uint64) {
			st := l.State()
			kid, keyed = st.Meta.KernelID, st.MemberKey(n.cfg.Name) != nil
		})
	}
	if read(); kid == "" {
		// The genesis may be committed but not applied here yet (a
		// follower that forwarded it): catch up with the leader first.
		if err := n.ConsistentRead(ctx); err == nil {
			read()
		}
	}
	if kid == "" {
		return
	}
	fsm.SignMember(env, kid, n.cfg.Name, n.nodeKey)
	if !keyed && env.Type != fsm.CmdMemberUpdate {
		// A node the ledger holds no key for yet (it joined a moment ago;
		// the leader records it within seconds) records its own first,
		// or its command would not verify.
		n.recordSelf()
	}
}

// recordSelf proposes this node's own member record, signed with its key
// (the ledger accepts that once, for a node it holds no key for).
func (n *Node) recordSelf() {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
	defer cancel()
	u := &fsm.MemberUpdate{Node: n.cfg.Name, PubKey: n.NodePublicKey(), Addr: n.cfg.BindAddr}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == n.cfg.Name {
				u.Addr, u.NonVoter = string(s.Address), s.Suffrage != raft.Voter
			}
		}
	}
	n.proposeMember(ctx, u)
}

func (n *Node) applyLocal(ctx context.Context, env fsm.Envelope) (fsm.Result, uint64, error) {
	if n.raft.State() != raft.Leader {
		return fsm.Result{}, 0, ErrNotLeader
	}
	if err := n.checkDisk(); err != nil {
		return fsm.Result{}, 0, err
	}
	if err := n.ensureSkewChecked(); err != nil {
		return fsm.Result{}, 0, err
	}
	n.skewMu.Lock()
	off := n.skewOff
	n.skewMu.Unlock()
	if off > n.cfg.MaxClockSkew || -off > n.cfg.MaxClockSkew {
		return fsm.Result{}, 0, fmt.Errorf("%w (this leader's clock is %s from its quorum's median, max %s)", ErrClockSkew, off, n.cfg.MaxClockSkew)
	}
	env.Time = n.now().UnixNano()
	stamped := fsm.Encode(&env)
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	start := time.Now()
	f := n.raft.Apply(stamped, timeout)
	if err := waitApplied(f, timeout+n.cfg.ApplyTimeout); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return fsm.Result{}, 0, ErrNotLeader
		}
		return fsm.Result{}, 0, err
	}
	metricSince("apply", start)
	res, ok := f.Response().(fsm.Result)
	if !ok {
		return fsm.Result{}, 0, fmt.Errorf("unexpected apply response %T", f.Response())
	}
	return res, f.Index(), nil
}

// ReadIndex returns an index such that a read served after the local FSM
// applied it is linearizable: on the leader, a barrier once per term, the
// last log index, then a leadership check; followers ask the leader. It
// returns by ctx's end. Callers go through n.reads, which coalesces
// rounds.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() == raft.Leader {
		if err := n.ensureBarrier(ctx); err != nil {
			return 0, err
		}
		// Every acknowledged write was applied by this leader's FSM before
		// it was acknowledged, so the FSM's applied index covers them all;
		// it is also an index every replica's FSM will reach (Raft's own
		// noop and barrier entries never reach an FSM).
		var idx uint64
		n.fsm.read(func(_ *fsm.Ledger, last uint64) { idx = last })
		if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			return 0, ErrNotLeader
		}
		return idx, nil
	}
	leader := n.leaderAddr()
	if leader == "" {
		return 0, ErrNoLeader
	}
	var r readIndexResponse
	if err := n.pool.call(ctx, leader, rpcReadIndex, struct{}{}, &r); err != nil {
		return 0, err
	}
	return r.Index, nil
}

// ConsistentRead waits until this node has applied a linearizable read
// index, from a read-index round that started after the call (rounds are
// coalesced: one serves every caller that arrived while the previous one
// ran).
func (n *Node) ConsistentRead(ctx context.Context) error {
	idx, err := n.reads.index(ctx)
	if err != nil {
		return err
	}
	return n.fsm.waitApplied(ctx, idx)
}

// waitFuture waits for a Raft future, or for ctx's end.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // ends when the future resolves or raft shuts down
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) observe(r fsm.Result) {
	if r.Noop {
		return
	}
	if _, id := n.identity.get(); id == "" {
		n.learnKernelID()
	}
	if r.Type == fsm.CmdSyscall && r.Decision == fsm.DecisionPermit && n.effects != nil {
		n.effects.notify()
	}
	if r.Type == fsm.CmdSyscall && r.Decision == fsm.DecisionPermit && n.fed != nil && strings.Contains(r.ID, "/") {
		n.fed.notifyOutbox() // a cross-domain call entered the outbox
	}
	lag := time.Since(time.Unix(0, r.Time))
	if lag < -n.cfg.MaxClockSkew {
		metricInc("clock.leader_stamp_ahead")
		n.log.Warn("leader's time stamp is ahead of this node's clock beyond the maximum skew", "ahead", (-lag).String(), "seq", r.Seq)
	}
}

// learnKernelID records the kernel id in the data dir once the ledger
// knows it (genesis applied here, or a snapshot installed).
func (n *Node) learnKernelID() {
	var id string
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { id = l.State().Meta.KernelID })
	if err := n.identity.learnID(id); err != nil {
		n.log.Error("kernel identity", "err", err)
	}
}

func (n *Node) backfillFromLeader(ctx context.Context, from, to uint64) ([]archive.Record, error) {
	leader := n.leaderAddr()
	if leader == "" {
		return nil, ErrNoLeader
	}
	var resp archiveRangeResponse
	if err := n.pool.call(ctx, leader, rpcArchiveRange, &archiveRangeRequest{FromIndex: from, ToIndex: to, MaxRecords: 1024}, &resp); err != nil {
		return nil, err
	}
	out := make([]archive.Record, len(resp.Records))
	for i, r := range resp.Records {
		out[i] = archive.Record{Index: r.Index, Seq: r.Seq, Kind: archive.Kind(r.Kind), Data: r.Data}
	}
	return out, nil
}
