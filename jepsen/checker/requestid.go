package checker

import (
	"context"
	"fmt"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// RequestIDs checks the ledger against the history by request id, on
// every replica: a request id appears at most once in a ledger; every
// acknowledged (OK) op's request id appears exactly once, at the seq its
// answer named, with the expected event type and subject; a request that
// certainly failed (Fail) does not appear at all.
type RequestIDs struct {
	// EventType maps an op's F to the ledger event type it appends
	// ("write" -> "kv.put"); an F missing from the map is not
	// type-checked.
	EventType map[string]string
	// SubjectIsKey: the event's subject must equal the op's key.
	SubjectIsKey bool
}

// Name implements Checker.
func (RequestIDs) Name() string { return "request-ids" }

// Check implements Checker.
func (c RequestIDs) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	var v violations
	if len(in.Ledgers) == 0 {
		v.add("no ledgers were collected")
	}
	stats := map[string]int{}
	for li, l := range in.Ledgers {
		if ctx.Err() != nil {
			v.add("timed out: %v", ctx.Err())
			break
		}
		if l.FetchErr != "" {
			v.add("%s: ledger could not be read: %s", l.Node, l.FetchErr)
			continue
		}
		where := map[string][]int{} // request id -> positions in l.Events
		for i, ev := range l.Events {
			if ev.RequestID != "" {
				where[ev.RequestID] = append(where[ev.RequestID], i)
			}
		}
		for _, rid := range sortedKeys(where) {
			if pos := where[rid]; len(pos) > 1 {
				seqs := make([]uint64, len(pos))
				for i, p := range pos {
					seqs[i] = l.Events[p].Seq
				}
				v.add("%s: request id %s appears %d times in the ledger (seqs %v)", l.Node, rid, len(pos), seqs)
			}
		}
		for _, p := range ps {
			rid := p.Invoke.RequestID
			if rid == "" {
				continue
			}
			pos := where[rid]
			switch p.Type() {
			case history.OK:
				if len(pos) == 0 {
					v.add("%s: acknowledged %s %s (request id %s, seq %d, op %d) is missing from the ledger",
						l.Node, p.Invoke.F, p.Invoke.Key, rid, p.Complete.Seq, p.Invoke.Index)
					continue
				}
				ev := l.Events[pos[0]]
				if p.Complete.Seq != 0 && ev.Seq != p.Complete.Seq {
					v.add("%s: request id %s is at seq %d but its answer named seq %d", l.Node, rid, ev.Seq, p.Complete.Seq)
				}
				if want, ok := c.EventType[p.Invoke.F]; ok && ev.Type != want {
					v.add("%s: request id %s (%s) is a %s event, want %s", l.Node, rid, p.Invoke.F, ev.Type, want)
				}
				if c.SubjectIsKey && ev.Subject != p.Invoke.Key {
					v.add("%s: request id %s has subject %q, want key %q", l.Node, rid, ev.Subject, p.Invoke.Key)
				}
				if li == 0 {
					stats["ok_found"]++
				}
			case history.Fail:
				if len(pos) > 0 {
					v.add("%s: request id %s was answered as failed (%s) but is in the ledger at seq %d",
						l.Node, rid, p.Complete.Error, l.Events[pos[0]].Seq)
				}
			default:
				if li == 0 {
					if len(pos) > 0 {
						stats["info_applied"]++
					} else {
						stats["info_not_applied"]++
					}
				}
			}
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("every request id at most once on %d replicas; %d acknowledged ops found exactly once; of %d unknown outcomes %d were applied",
		len(in.Ledgers), stats["ok_found"], stats["info_applied"]+stats["info_not_applied"], stats["info_applied"]))
	out.Stats = stats
	return out
}
