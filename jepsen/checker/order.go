package checker

import (
	"context"
	"fmt"
	"sort"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// AckOrder checks that the ledger respects real time: if op A was
// acknowledged before op B was invoked, A's ledger seq is below B's.
// Seqs are the ones the answers named (RequestIDs checks that they match
// the ledger).
type AckOrder struct{}

// Name implements Checker.
func (AckOrder) Name() string { return "ack-order" }

// Check implements Checker.
func (c AckOrder) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	var acked []history.Pair
	for _, p := range ps {
		if p.Type() == history.OK && p.Complete.Seq != 0 {
			acked = append(acked, p)
		}
	}
	byEnd := append([]history.Pair(nil), acked...)
	sort.SliceStable(byEnd, func(i, j int) bool { return byEnd[i].End() < byEnd[j].End() })
	// maxUpTo[i]: the index in byEnd of the highest seq among byEnd[0..i].
	maxUpTo := make([]int, len(byEnd))
	for i := range byEnd {
		maxUpTo[i] = i
		if i > 0 && byEnd[maxUpTo[i-1]].Complete.Seq >= byEnd[i].Complete.Seq {
			maxUpTo[i] = maxUpTo[i-1]
		}
	}
	var v violations
	for n, b := range acked {
		if n%4096 == 0 && ctx.Err() != nil {
			v.add("timed out: %v", ctx.Err())
			break
		}
		// ops that completed strictly before b was invoked
		k := sort.Search(len(byEnd), func(i int) bool { return byEnd[i].End() >= b.Start() })
		if k == 0 {
			continue
		}
		a := byEnd[maxUpTo[k-1]]
		if a.Complete.Seq >= b.Complete.Seq {
			v.add("op %d (%s %s, seq %d) was acknowledged at %s, before op %d (%s %s) was invoked at %s, yet op %d got the lower or equal seq %d",
				a.Invoke.Index, a.Invoke.F, a.Invoke.Key, a.Complete.Seq, ms(a.End()),
				b.Invoke.Index, b.Invoke.F, b.Invoke.Key, ms(b.Start()), b.Invoke.Index, b.Complete.Seq)
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("%d acknowledged ops: ledger order agrees with real-time order", len(acked)))
	out.Stats = map[string]int{"acknowledged": len(acked)}
	return out
}
