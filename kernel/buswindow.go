package kernel

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transport"
)

// maxBusWindows bounds the windows a node keeps. Only an origin with
// standing in the ledger (a federation peer) gets one, so the bound is
// never reached in a real federation; past it, frames go to the ledger.
const maxBusWindows = 4096

// busWindows is a domain node's replay filter for incoming bus events:
// one transport.Window per origin kernel, holding the sequence numbers
// this node's ledger has applied from that origin. The ledger's inbox
// applies an origin's events in sequence order, each exactly once, so
// what it applied is the prefix 1..Next-1 and a window is seeded with
// Window.AcceptUpTo(Next-1):
//
//   - when the node starts (the state Raft restored), when it becomes
//     leader (after the term's barrier, so it has applied everything
//     committed before the term), and after every event it passes to the
//     ledger (the inbox as this node has applied it);
//   - a window only ever holds what this node's ledger applied, and
//     this node's FSM applies only committed entries.
//
// The ledger stays the authority. A frame the window rejects is dropped
// before Raft only if this node's ledger confirms it applied that seq
// (seq < Next); below the window that follows from the inbox's order. A
// window that holds a seq the ledger has not applied (the state went
// back: a restored epoch) is rebuilt from the ledger and the frame goes
// on. A frame the window passes always goes to the ledger, which
// deduplicates a replay the window had not seen yet (a window seeded
// before a restarted node replayed its log).
//
// Witness and canon acknowledgement frames to the sovereign are not
// windowed: their seq is a send time and the ledger deduplicates them by
// what they carry, not by (origin, seq).
type busWindows struct {
	mu       sync.Mutex
	byOrigin map[string]*transport.Window // guarded by mu
	dropped  atomic.Uint64                // frames dropped before Raft
}

func newBusWindows() *busWindows { return &busWindows{byOrigin: map[string]*transport.Window{}} }

// inboxView is what this node's ledger holds for one origin's seq.
type inboxView struct {
	next      uint64        // the next seq the inbox expects (1: none applied)
	stored    bool          // seq was applied and its answer is still kept
	result    fsm.BusResult // that answer
	ledgerSeq uint64        // the ledger's current seq (a duplicate's answer names it)
}

// inbox reads this node's ledger for origin's seq.
func (fd *fed) inbox(origin string, seq uint64) inboxView {
	v := inboxView{next: 1}
	fd.n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		v.ledgerSeq = st.Seq
		if st.Fed == nil {
			return
		}
		if in := st.Fed.Inbox[origin]; in != nil {
			v.next = in.Next
			v.result, v.stored = in.Stored(seq)
		}
	})
	return v
}

// seedWindows rebuilds every window from this node's ledger.
func (fd *fed) seedWindows() {
	applied := map[string]uint64{}
	fd.n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		if f := l.State().Fed; f != nil {
			for origin, in := range f.Inbox {
				applied[origin] = in.Next - 1
			}
		}
	})
	bw := fd.windows
	bw.mu.Lock()
	defer bw.mu.Unlock()
	bw.byOrigin = make(map[string]*transport.Window, len(applied))
	for origin, seq := range applied {
		if len(bw.byOrigin) >= maxBusWindows {
			break
		}
		w := &transport.Window{}
		w.AcceptUpTo(seq)
		bw.byOrigin[origin] = w
	}
}

// advance records that this node's ledger applied origin's events
// 1..next-1.
func (bw *busWindows) advance(origin string, next uint64) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	w := bw.byOrigin[origin]
	if w == nil {
		if len(bw.byOrigin) >= maxBusWindows {
			return
		}
		w = &transport.Window{}
		bw.byOrigin[origin] = w
	}
	w.AcceptUpTo(next - 1)
}

// check is the window's verdict on (origin, seq): nil, or ErrReplay or
// ErrTooOld (wrapped).
func (bw *busWindows) check(origin string, seq uint64) error {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	w := bw.byOrigin[origin]
	if w == nil {
		w = &transport.Window{} // nothing applied yet: only seq 0 is refused
	}
	return w.Check(seq)
}

// reset rebuilds origin's window from the ledger's next expected seq.
func (bw *busWindows) reset(origin string, next uint64) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if w := bw.byOrigin[origin]; w != nil {
		*w = transport.Window{}
		w.AcceptUpTo(next - 1)
	}
}

// highest is the highest seq origin's window holds (0: none).
func (bw *busWindows) highest(origin string) uint64 {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if w := bw.byOrigin[origin]; w != nil {
		return w.Highest()
	}
	return 0
}

// screenReplay drops a bus event the window rejects and this node's
// ledger confirms it applied: dropped is true, and ack is answered (the
// kept result, as the ledger itself would answer a resent event) or err
// says why the frame is refused (the answer is no longer kept: a replay,
// or a frame below the window). dropped false: the frame goes to the
// ledger.
func (fd *fed) screenReplay(f transport.Frame, ack *transport.Ack) (dropped bool, err error) {
	werr := fd.windows.check(f.Origin, f.Seq)
	if werr == nil {
		return false, nil
	}
	view := fd.inbox(f.Origin, f.Seq)
	if f.Seq != 0 && f.Seq >= view.next {
		// The window holds a seq the ledger has not applied: the state
		// went back. The ledger decides; the window follows it again.
		fd.windows.reset(f.Origin, view.next)
		fd.n.log.Warn("bus replay window was ahead of the ledger; rebuilt from the inbox", "origin", f.Origin, "seq", f.Seq, "next", view.next)
		return false, nil
	}
	fd.windows.dropped.Add(1)
	metricInc("bus.replay_dropped")
	fd.n.log.Debug("bus event dropped before raft: the ledger applied it", "origin", f.Origin, "seq", f.Seq, "next", view.next, "answered", view.stored)
	if !view.stored {
		return true, fmt.Errorf("%w (the ledger applied %s/%d and no longer keeps its answer)", werr, f.Origin, f.Seq)
	}
	ack.Status = transport.AckDuplicate
	ack.Result = ackResult(fsm.CmdBusReceive, fsm.Result{
		Seq: view.ledgerSeq, Reason: fsm.ReasonDuplicateEvent, Value: fsm.Encode(&view.result), Duplicate: true, Noop: true,
	})
	return true, nil
}

// ackResult is the result an ack carries: a bus event's value is its
// encoded fsm.BusResult (the kept one for a duplicate); anything else,
// or a value over the ack's limit, gets a summary.
func ackResult(t fsm.CommandType, res fsm.Result) []byte {
	if t != fsm.CmdBusReceive || len(res.Value) == 0 || len(res.Value) > transport.MaxAckResultBytes {
		return fsm.Encode(&fsm.BusResult{Decision: res.Decision, Reason: res.Reason, Seq: res.Seq})
	}
	return res.Value
}
