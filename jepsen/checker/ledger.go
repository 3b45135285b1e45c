package checker

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// zeroHash is the chain head before genesis.
var zeroHash = strings.Repeat("0", 64)

// LedgerChain checks each replica's chain on its own: the node's own
// verification (`dominus ledger verify`) passed, and the events it serves
// run from seq 1 without gaps, each event's prev equal to the previous
// event's hash, ending at the head its status reports.
type LedgerChain struct{}

// Name implements Checker.
func (LedgerChain) Name() string { return "ledger-chain" }

// Check implements Checker.
func (c LedgerChain) Check(ctx context.Context, in *Input) Verdict {
	var v violations
	if len(in.Ledgers) == 0 {
		v.add("no ledgers were collected")
	}
	events := 0
	for _, l := range in.Ledgers {
		if ctx.Err() != nil {
			v.add("timed out: %v", ctx.Err())
			break
		}
		if l.FetchErr != "" {
			v.add("%s: ledger could not be read: %s", l.Node, l.FetchErr)
			continue
		}
		switch {
		case l.VerifyErr != "":
			v.add("%s: ledger verify failed: %s", l.Node, l.VerifyErr)
		case l.Verify == nil:
			v.add("%s: no ledger verify answer", l.Node)
		case !l.Verify.OK:
			v.add("%s: ledger verify reports a broken chain at seq %d: %s", l.Node, l.Verify.BadSeq, l.Verify.Message)
		}
		prev := zeroHash
		var prevTime time.Time
		for i, ev := range l.Events {
			want := uint64(i + 1)
			if ev.Seq != want {
				v.add("%s: event %d of the ledger has seq %d, want %d (gap or reorder)", l.Node, i, ev.Seq, want)
				break
			}
			if ev.Prev != prev {
				v.add("%s: seq %d: prev %s does not equal the previous event's hash %s", l.Node, ev.Seq, short(ev.Prev), short(prev))
			}
			if len(ev.Hash) != 64 {
				v.add("%s: seq %d: hash %q is not 32 hex bytes", l.Node, ev.Seq, ev.Hash)
			}
			if i > 0 && !ev.Time.After(prevTime) {
				v.add("%s: seq %d: ledger time %s does not increase (previous %s)", l.Node, ev.Seq, ev.Time.Format(time.RFC3339Nano), prevTime.Format(time.RFC3339Nano))
			}
			prev, prevTime = ev.Hash, ev.Time
		}
		events += len(l.Events)
		if l.Status == nil {
			v.add("%s: no status", l.Node)
			continue
		}
		n := uint64(len(l.Events))
		if n != l.Status.Head.Seq {
			v.add("%s: served %d events but its head is at seq %d", l.Node, n, l.Status.Head.Seq)
		} else if n > 0 && l.Events[n-1].Hash != l.Status.Head.Hash {
			v.add("%s: last event's hash %s differs from the head %s", l.Node, short(l.Events[n-1].Hash), short(l.Status.Head.Hash))
		}
		if l.Verify != nil && l.Verify.OK && l.Verify.Head != l.Status.Head {
			v.add("%s: verified head %d:%s differs from the status head %d:%s", l.Node,
				l.Verify.Head.Seq, short(l.Verify.Head.Hash), l.Status.Head.Seq, short(l.Status.Head.Hash))
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("%d replicas verified; %d events link from genesis to their heads with increasing ledger time", len(in.Ledgers), events))
	out.Stats = map[string]int{"replicas": len(in.Ledgers), "events": events}
	return out
}

// Convergence checks that every replica reached the same head, the same
// state digest and the same event at every seq.
type Convergence struct{}

// Name implements Checker.
func (Convergence) Name() string { return "convergence" }

// Check implements Checker.
func (c Convergence) Check(ctx context.Context, in *Input) Verdict {
	var v violations
	if len(in.Ledgers) < 2 {
		v.add("%d replica(s) collected; convergence needs at least 2", len(in.Ledgers))
	}
	var ref *NodeLedger
	for i := range in.Ledgers {
		l := &in.Ledgers[i]
		if l.Status == nil {
			v.add("%s: no status", l.Node)
			continue
		}
		if ref == nil {
			ref = l
			continue
		}
		if l.Status.Head != ref.Status.Head {
			v.add("%s head %d:%s differs from %s head %d:%s", l.Node, l.Status.Head.Seq, short(l.Status.Head.Hash),
				ref.Node, ref.Status.Head.Seq, short(ref.Status.Head.Hash))
		}
		if l.Status.StateDigest != ref.Status.StateDigest {
			v.add("%s state digest %s differs from %s's %s", l.Node, short(l.Status.StateDigest), ref.Node, short(ref.Status.StateDigest))
		}
		if l.FetchErr != "" || ref.FetchErr != "" {
			continue
		}
		n := min(len(l.Events), len(ref.Events))
		for i := 0; i < n; i++ {
			if l.Events[i].Hash != ref.Events[i].Hash {
				v.add("%s and %s diverge at seq %d (%s vs %s)", l.Node, ref.Node, l.Events[i].Seq, short(l.Events[i].Hash), short(ref.Events[i].Hash))
				break
			}
		}
		if len(l.Events) != len(ref.Events) {
			v.add("%s serves %d events, %s serves %d", l.Node, len(l.Events), ref.Node, len(ref.Events))
		}
	}
	summary := "no replicas"
	if ref != nil {
		summary = fmt.Sprintf("%d replicas at head %d:%s, digest %s", len(in.Ledgers), ref.Status.Head.Seq, short(ref.Status.Head.Hash), short(ref.Status.StateDigest))
	}
	return v.verdict(c.Name(), summary)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
