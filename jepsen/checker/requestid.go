package checker

import (
	"context"
	"fmt"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// RequestIDs checks the ledger against the history by request id, on
// every replica: a request id appears at most once in a ledger; every
// acknowledged (OK) op's request id appears exactly once, at the seq its
// answer named, with the expected event type and subject; a request that
// certainly failed (Fail) before reaching the ledger does not appear at
// all, and one the ledger refused (a Fail with a seq: a gate DENY)
// appears exactly once, at that seq, with the decision it was told and
// never as a PERMIT.
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
				c.same(&v, l.Node, p, l.Events[pos[0]])
				if li == 0 {
					stats["ok_found"]++
				}
			case history.Fail:
				if p.Complete.Seq == 0 {
					if len(pos) > 0 {
						v.add("%s: request id %s was answered as failed (%s) but is in the ledger at seq %d",
							l.Node, rid, p.Complete.Error, l.Events[pos[0]].Seq)
					}
					continue
				}
				// refused by the ledger: recorded once, never as a PERMIT
				if len(pos) == 0 {
					v.add("%s: %s %s (request id %s, op %d) was refused %s %s at seq %d, but is missing from the ledger",
						l.Node, p.Invoke.F, p.Invoke.Key, rid, p.Invoke.Index, p.Complete.Decision, p.Complete.Reason, p.Complete.Seq)
					continue
				}
				ev := l.Events[pos[0]]
				c.same(&v, l.Node, p, ev)
				if SameDecision(ev.Decision, DecisionPermit) || (p.Complete.Decision != "" && !SameDecision(ev.Decision, p.Complete.Decision)) {
					v.add("%s: request id %s was refused %s %s at seq %d, but the ledger records %s %s",
						l.Node, rid, p.Complete.Decision, p.Complete.Reason, p.Complete.Seq, ev.Decision, ev.Reason)
				}
				if li == 0 {
					stats["refused_found"]++
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
	out := v.verdict(c.Name(), fmt.Sprintf("every request id at most once on %d replicas; %d acknowledged ops found exactly once; %d ledgered refusals found as refused; of %d unknown outcomes %d were applied",
		len(in.Ledgers), stats["ok_found"], stats["refused_found"], stats["info_applied"]+stats["info_not_applied"], stats["info_applied"]))
	out.Stats = stats
	return out
}

// same reports where ev, the ledger event of p's request id, differs
// from what p was told: its seq, its type, its subject.
func (c RequestIDs) same(v *violations, node string, p history.Pair, ev api.Event) {
	rid := p.Invoke.RequestID
	if p.Complete.Seq != 0 && ev.Seq != p.Complete.Seq {
		v.add("%s: request id %s is at seq %d but its answer named seq %d", node, rid, ev.Seq, p.Complete.Seq)
	}
	if want, ok := c.EventType[p.Invoke.F]; ok && ev.Type != want {
		v.add("%s: request id %s (%s) is a %s event, want %s", node, rid, p.Invoke.F, ev.Type, want)
	}
	if c.SubjectIsKey && ev.Subject != p.Invoke.Key && !(refusedBeforeDedup(ev) && ev.Subject == rid) {
		v.add("%s: request id %s has subject %q, want key %q", node, rid, ev.Subject, p.Invoke.Key)
	}
}

// refusedBeforeDedup: the ledger refused the request before judging it
// (the caller at its dedup quota, or its request id reused for another
// command); such an event names the request id as its subject, and the
// request id is not remembered (fsm/ledger.go).
func refusedBeforeDedup(ev api.Event) bool {
	return SameDecision(ev.Decision, DecisionDeny) && (ev.Reason == "quota_exceeded" || ev.Reason == "request_id_reused")
}
