package checker

import (
	"context"
	"fmt"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// LedgerClock checks that no acknowledged answer carries a ledger time
// further ahead of true time than MaxAhead: a leader whose clock runs
// ahead of its quorum beyond the maximum skew must refuse writes, or it
// drags ledger time forward for good. True time is the harness's wall
// clock when the answer arrived (Input.StartWall plus the completion's
// run time), which is after the leader stamped it.
type LedgerClock struct {
	MaxAhead time.Duration // default 2s (the agents' default --max-clock-skew)
}

// Name implements Checker.
func (LedgerClock) Name() string { return "ledger-clock" }

// Check implements Checker.
func (c LedgerClock) Check(ctx context.Context, in *Input) Verdict {
	limit := c.MaxAhead
	if limit <= 0 {
		limit = 2 * time.Second
	}
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	var v violations
	if in.StartWall.IsZero() {
		v.add("the run's wall-clock start is unknown")
	}
	var worst time.Duration
	checked := 0
	for _, p := range ps {
		if p.Type() != history.OK || p.Complete.LedgerTime == 0 || in.StartWall.IsZero() {
			continue
		}
		checked++
		wall := in.StartWall.Add(time.Duration(p.End()))
		ahead := time.Unix(0, p.Complete.LedgerTime).Sub(wall)
		worst = max(worst, ahead)
		if ahead > limit {
			v.add("op %d (%s %s via %s, seq %d) got ledger time %s, %s ahead of the wall clock when it was answered (limit %s)",
				p.Invoke.Index, p.Invoke.F, p.Invoke.Key, p.Invoke.Node, p.Complete.Seq,
				time.Unix(0, p.Complete.LedgerTime).UTC().Format(time.RFC3339Nano), ahead.Round(time.Millisecond), limit)
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("%d acknowledged answers; ledger time at most %s ahead of true time (limit %s)", checked, worst.Round(time.Millisecond), limit))
	out.Stats = map[string]int{"checked": checked, "max_ahead_ms": int(worst.Milliseconds())}
	return out
}
