package checker

import (
	"context"
	"fmt"
	"strings"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Capability op names (history.Op.F) of a capability workload.
const (
	FGrant   = "grant"   // Key: the entity; Limit: the use limit; the completion's CapID: the new capability
	FSyscall = "syscall" // Key: the resource; Value: the args; CapID: the capability used
	FRevoke  = "revoke"  // Key and CapID: the capability revoked
)

// Ledger event types, decisions and reasons the capability checkers read
// (api.Event.Type, .Decision, .Reason).
const (
	EventSyscall        = "syscall"
	EventCapGrant       = "cap.grant"
	EventCapRevoke      = "cap.revoke"
	DecisionPermit      = "permit"
	DecisionDeny        = "deny"
	ReasonUsesExhausted = "uses_exhausted"
	ReasonRevoked       = "revoked"
)

// SameDecision reports whether decisions a and b are the same. Kernels
// answer them in lower case; earlier ones answered PERMIT, DENY and
// ESCALATE, and histories and ledgers recorded from them keep that
// spelling, so decisions are compared without regard to case.
func SameDecision(a, b string) bool { return strings.EqualFold(a, b) }

// capGrant is what the history says about a capability: the limit its
// acknowledged grant asked for.
type capGrant struct {
	limit int64 // 0: unlimited
	seq   uint64
	op    int // index of the grant's invocation
}

// grantsOf returns the capabilities created by acknowledged grants.
func grantsOf(ps []history.Pair) map[string]capGrant {
	out := map[string]capGrant{}
	for _, p := range ps {
		if p.Invoke.F == FGrant && p.Type() == history.OK && p.Complete.CapID != "" {
			out[p.Complete.CapID] = capGrant{limit: p.Invoke.Limit, seq: p.Complete.Seq, op: p.Invoke.Index}
		}
	}
	return out
}

// byRequestID maps each request id of events to its first position.
func byRequestID(events []api.Event) map[string]int {
	out := make(map[string]int, len(events))
	for i, ev := range events {
		if ev.RequestID == "" {
			continue
		}
		if _, seen := out[ev.RequestID]; !seen {
			out[ev.RequestID] = i
		}
	}
	return out
}

// CapLimit checks use limits against the ledger, which is the authority:
// on every replica, no capability has more PERMIT syscall events than the
// limit its grant set, and none is denied uses_exhausted before it has
// had exactly that many; every syscall the clients were told was
// permitted is a PERMIT event of the same capability at the seq they were
// told, and every ledgered refusal they were told of is there with the
// same decision and reason. It also checks, from the history alone, that
// the clients were never told PERMIT more often than a limit allows.
type CapLimit struct{}

// Name implements Checker.
func (CapLimit) Name() string { return "cap-limit" }

// capUse counts one capability's syscall events on one replica.
type capUse struct {
	permits   int64
	overSeq   uint64 // seq of the first PERMIT beyond the limit
	overRID   string
	lastOKSeq uint64 // seq of the limit-th PERMIT
}

// Check implements Checker.
func (c CapLimit) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	grants := grantsOf(ps)
	var v violations
	stats := map[string]int{"caps_granted": len(grants)}

	// The history alone: PERMITs told to clients, per capability.
	told := map[string]int64{}
	for _, p := range ps {
		if p.Invoke.F == FSyscall && p.Type() == history.OK {
			told[p.Invoke.CapID]++
			stats["acknowledged_permits"]++
		}
	}
	for _, id := range sortedKeys(told) {
		if g, ok := grants[id]; ok && g.limit > 0 && told[id] > g.limit {
			v.add("the clients were told PERMIT %d times for %s, whose limit is %d", told[id], id, g.limit)
		}
	}

	if len(in.Ledgers) == 0 {
		v.add("no ledgers were collected")
	}
	for li, l := range in.Ledgers {
		if l.FetchErr != "" {
			v.add("%s: ledger could not be read: %s", l.Node, l.FetchErr)
			continue
		}
		uses := map[string]*capUse{}
		for i, ev := range l.Events {
			if i%4096 == 0 && ctx.Err() != nil {
				v.add("timed out: %v", ctx.Err())
				return v.verdict(c.Name(), "")
			}
			if ev.Type != EventSyscall || ev.CapID == "" {
				continue
			}
			g, known := grants[ev.CapID]
			u := uses[ev.CapID]
			if u == nil {
				u = &capUse{}
				uses[ev.CapID] = u
			}
			switch {
			case SameDecision(ev.Decision, DecisionPermit):
				u.permits++
				if !known {
					v.add("%s: PERMIT at seq %d (request id %s) under %s, which no acknowledged grant of the history created", l.Node, ev.Seq, ev.RequestID, ev.CapID)
					continue
				}
				if g.limit > 0 && u.permits == g.limit {
					u.lastOKSeq = ev.Seq
				}
				if g.limit > 0 && u.permits == g.limit+1 {
					u.overSeq, u.overRID = ev.Seq, ev.RequestID
				}
				if li == 0 {
					stats["ledger_permits"]++
				}
			case SameDecision(ev.Decision, DecisionDeny):
				if li == 0 {
					stats["denied_"+ev.Reason]++
				}
				if ev.Reason == ReasonUsesExhausted && known && g.limit > 0 && u.permits < g.limit {
					v.add("%s: %s (limit %d) was denied uses_exhausted at seq %d (request id %s) after only %d PERMIT(s)",
						l.Node, ev.CapID, g.limit, ev.Seq, ev.RequestID, u.permits)
				}
			}
		}
		for _, id := range sortedKeys(uses) {
			u, g := uses[id], grants[id]
			if g.limit > 0 && u.permits > g.limit {
				v.add("%s: %s (limit %d) has %d PERMIT events; the limit was reached at seq %d and exceeded at seq %d (request id %s)",
					l.Node, id, g.limit, u.permits, u.lastOKSeq, u.overSeq, u.overRID)
			}
			if li == 0 && g.limit > 0 && u.permits >= g.limit {
				stats["caps_used_up"]++
			}
		}

		// What the clients were told against what the ledger holds.
		rids := byRequestID(l.Events)
		for _, p := range ps {
			if p.Invoke.F != FSyscall || p.Invoke.RequestID == "" {
				continue
			}
			refused := p.Type() == history.Fail && p.Complete.Seq != 0
			if p.Type() != history.OK && !refused {
				continue
			}
			what := "PERMIT"
			if refused {
				what = p.Complete.Decision + " " + p.Complete.Reason
			}
			pos, ok := rids[p.Invoke.RequestID]
			if !ok {
				v.add("%s: syscall op %d (request id %s) was answered %s at seq %d, but it is not in the ledger",
					l.Node, p.Invoke.Index, p.Invoke.RequestID, what, p.Complete.Seq)
				continue
			}
			ev := l.Events[pos]
			switch {
			case ev.Type != EventSyscall:
				v.add("%s: syscall op %d (request id %s) is a %s event at seq %d", l.Node, p.Invoke.Index, p.Invoke.RequestID, ev.Type, ev.Seq)
			case ev.Seq != p.Complete.Seq:
				v.add("%s: syscall op %d (request id %s) was answered %s at seq %d, but the ledger has it at seq %d",
					l.Node, p.Invoke.Index, p.Invoke.RequestID, what, p.Complete.Seq, ev.Seq)
			case !refused && !SameDecision(ev.Decision, DecisionPermit):
				v.add("%s: syscall op %d (request id %s) was answered PERMIT at seq %d, but the ledger records %s %s",
					l.Node, p.Invoke.Index, p.Invoke.RequestID, ev.Seq, ev.Decision, ev.Reason)
			case refused && (!SameDecision(ev.Decision, p.Complete.Decision) || ev.Reason != p.Complete.Reason):
				v.add("%s: syscall op %d (request id %s) was answered %s at seq %d, but the ledger records %s %s",
					l.Node, p.Invoke.Index, p.Invoke.RequestID, what, ev.Seq, ev.Decision, ev.Reason)
			case ev.CapID != p.Invoke.CapID:
				v.add("%s: syscall op %d (request id %s) used %s, but the ledger charges %s at seq %d",
					l.Node, p.Invoke.Index, p.Invoke.RequestID, p.Invoke.CapID, ev.CapID, ev.Seq)
			}
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("%d capabilities on %d replicas: at most their limit of PERMITs (%d in the ledger, %d told to clients); %d used up",
		len(grants), len(in.Ledgers), stats["ledger_permits"], stats["acknowledged_permits"], stats["caps_used_up"]))
	out.Stats = stats
	return out
}

// CapRevoke checks revocation: on every replica, no PERMIT syscall event
// of a capability comes after (at a higher seq than) a cap.revoke event
// that revoked it, and no denial for `revoked` comes before one; every
// acknowledged revoke is a cap.revoke PERMIT event of its capability at
// the seq it was told. From the history: no syscall invoked after a
// revoke of its capability was acknowledged was told PERMIT, and none
// was told PERMIT at a seq above the acknowledged revoke's.
type CapRevoke struct{}

// Name implements Checker.
func (CapRevoke) Name() string { return "cap-revoke" }

// ackedRevoke is the earliest acknowledged revoke of a capability.
type ackedRevoke struct {
	end int64  // acknowledgement time
	seq uint64 // the lowest seq an acknowledged revoke was told
	op  int
}

// Check implements Checker.
func (c CapRevoke) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	var v violations
	stats := map[string]int{}
	revoked := map[string]ackedRevoke{}
	for _, p := range ps {
		if p.Invoke.F != FRevoke || p.Type() != history.OK {
			continue
		}
		stats["acknowledged_revokes"]++
		id := p.Invoke.CapID
		r, seen := revoked[id]
		if !seen || p.End() < r.end {
			r.end, r.op = p.End(), p.Invoke.Index
		}
		if !seen || p.Complete.Seq < r.seq {
			r.seq = p.Complete.Seq
		}
		revoked[id] = r
	}

	// The history alone.
	for _, p := range ps {
		if p.Invoke.F != FSyscall {
			continue
		}
		r, ok := revoked[p.Invoke.CapID]
		if !ok || p.Start() <= r.end {
			continue
		}
		stats["invoked_after_revoke"]++
		if p.Type() == history.OK {
			v.add("syscall op %d with %s was invoked at %s, after the revoke of %s was acknowledged at %s (op %d, seq %d), yet it was told PERMIT at seq %d",
				p.Invoke.Index, p.Invoke.CapID, ms(p.Start()), p.Invoke.CapID, ms(r.end), r.op, r.seq, p.Complete.Seq)
		}
	}
	for _, p := range ps {
		if p.Invoke.F != FSyscall || p.Type() != history.OK {
			continue
		}
		if r, ok := revoked[p.Invoke.CapID]; ok && r.seq != 0 && p.Complete.Seq > r.seq && p.Start() <= r.end {
			v.add("syscall op %d with %s was told PERMIT at seq %d, above seq %d of the acknowledged revoke (op %d)",
				p.Invoke.Index, p.Invoke.CapID, p.Complete.Seq, r.seq, r.op)
		}
	}

	if len(in.Ledgers) == 0 {
		v.add("no ledgers were collected")
	}
	for li, l := range in.Ledgers {
		if l.FetchErr != "" {
			v.add("%s: ledger could not be read: %s", l.Node, l.FetchErr)
			continue
		}
		revokedAt := map[string]uint64{} // capability -> seq of its first revoke so far
		for i, ev := range l.Events {
			if i%4096 == 0 && ctx.Err() != nil {
				v.add("timed out: %v", ctx.Err())
				return v.verdict(c.Name(), "")
			}
			switch ev.Type {
			case EventCapRevoke:
				if SameDecision(ev.Decision, DecisionPermit) {
					if _, seen := revokedAt[ev.Subject]; !seen {
						revokedAt[ev.Subject] = ev.Seq
						if li == 0 {
							stats["ledger_revokes"]++
						}
					}
				}
			case EventSyscall:
				at, isRevoked := revokedAt[ev.CapID]
				switch {
				case SameDecision(ev.Decision, DecisionPermit) && isRevoked:
					v.add("%s: PERMIT for %s at seq %d (request id %s), after its revoke at seq %d", l.Node, ev.CapID, ev.Seq, ev.RequestID, at)
				case SameDecision(ev.Decision, DecisionDeny) && ev.Reason == ReasonRevoked && !isRevoked:
					v.add("%s: %s denied revoked at seq %d (request id %s), but no earlier event revokes it", l.Node, ev.CapID, ev.Seq, ev.RequestID)
				case SameDecision(ev.Decision, DecisionDeny) && ev.Reason == ReasonRevoked && li == 0:
					stats["denied_revoked"]++
				case SameDecision(ev.Decision, DecisionPermit) && li == 0:
					stats["permits"]++
				}
			}
		}
		rids := byRequestID(l.Events)
		for _, p := range ps {
			if p.Invoke.F != FRevoke || p.Type() != history.OK {
				continue
			}
			pos, ok := rids[p.Invoke.RequestID]
			if !ok {
				v.add("%s: acknowledged revoke of %s (op %d, request id %s, seq %d) is not in the ledger",
					l.Node, p.Invoke.CapID, p.Invoke.Index, p.Invoke.RequestID, p.Complete.Seq)
				continue
			}
			ev := l.Events[pos]
			if ev.Type != EventCapRevoke || !SameDecision(ev.Decision, DecisionPermit) || ev.Subject != p.Invoke.CapID || ev.Seq != p.Complete.Seq {
				v.add("%s: acknowledged revoke of %s (op %d, request id %s) was told seq %d; the ledger has %s %s of %q at seq %d",
					l.Node, p.Invoke.CapID, p.Invoke.Index, p.Invoke.RequestID, p.Complete.Seq, ev.Type, ev.Decision, ev.Subject, ev.Seq)
			}
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("%d acknowledged revokes (%d revokes in the ledger): no PERMIT after a revoke; %d syscalls invoked after an acknowledged revoke, none permitted; %d denied revoked",
		stats["acknowledged_revokes"], stats["ledger_revokes"], stats["invoked_after_revoke"], stats["denied_revoked"]))
	out.Stats = stats
	return out
}
