package checker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Federation op names (history.Op.F) of a federation run. Node is always
// the node the request went to, which names its kernel.
const (
	// FFedCall is a cross-domain call: Key is "DEST:resource" (the
	// resource is unique in the run), Value the args. The completion
	// carries the origin's decision (Decision, Reason, Seq) and, on
	// PERMIT, the bus event id ("DEST/SEQ") in Result.
	FFedCall = "fed-call"
	// FFedLocal is a syscall in the caller's own domain: Key is the
	// resource; the completion carries the decision and its LedgerTime.
	FFedLocal = "fed-local"
	// FFedStatus reads a bus event's final state on its origin: Key is
	// the event id. The completion carries the status (pending,
	// delivered, rejected) in Result, the event's resource in Value, and
	// the destination's decision, reason and seq in Decision, Reason and
	// Seq (empty while it is pending).
	FFedStatus = "fed-status"
	// FPassportRevoke revokes a passport on the sovereign: Key is the
	// passport id, Value the domain it belongs to.
	FPassportRevoke = "passport-revoke"
	// FPassportRead reads a domain's passports: Key is the domain. The
	// completion carries the latest passport id in Result, the latest
	// expiry known for the domain (RFC 3339, ns) in Value, and Found set
	// when that passport is revoked.
	FPassportRead = "passport-read"
)

// Bus event statuses (api.BusEvent.Status) and the ledger event the
// destination appends for an event it receives.
const (
	BusPending            = "pending"
	BusDelivered          = "delivered"
	BusRejected           = "rejected"
	EventBusReceive       = "bus.receive"
	ReasonPassportInvalid = "passport_invalid"
)

// fedDomains maps node names to the domain whose kernel they run.
func fedDomains(domains map[string][]string) map[string]string {
	out := map[string]string{}
	for d, nodes := range domains {
		for _, n := range nodes {
			out[n] = d
		}
	}
	return out
}

// domainLedgers returns the ledgers of domain's nodes, and a violation
// for each that could not be read.
func domainLedgers(in *Input, nodes []string, v *violations) []NodeLedger {
	want := map[string]bool{}
	for _, n := range nodes {
		want[n] = true
	}
	var out []NodeLedger
	for _, l := range in.Ledgers {
		if !want[l.Node] {
			continue
		}
		if l.FetchErr != "" {
			v.add("%s: ledger could not be read: %s", l.Node, l.FetchErr)
			continue
		}
		out = append(out, l)
	}
	return out
}

// fedStatus is one event's final state as its origin reported it.
type fedStatus struct {
	origin, dest string
	seq          uint64 // the event's seq in its origin's outbox to dest
	id           string
	status       string
	resource     string
	decision     string
	reason       string
	remoteSeq    uint64
}

// fedStatuses returns the acknowledged FFedStatus reads by event id.
func fedStatuses(ps []history.Pair, nodeDomain map[string]string) map[string]fedStatus {
	out := map[string]fedStatus{}
	for _, p := range ps {
		if p.Invoke.F != FFedStatus || p.Type() != history.OK {
			continue
		}
		dest, seqText, ok := strings.Cut(p.Invoke.Key, "/")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil {
			continue
		}
		c := p.Complete
		out[p.Invoke.Key] = fedStatus{origin: nodeDomain[p.Invoke.Node], dest: dest, seq: seq, id: p.Invoke.Key, status: c.Result,
			resource: c.Value, decision: c.Decision, reason: c.Reason, remoteSeq: c.Seq}
	}
	return out
}

// FedExactlyOnce checks the federation bus against every replica's
// ledger: every event its origin reports delivered with the
// destination's PERMIT is exactly one bus.receive PERMIT in each replica
// of the destination, of the event's resource, at the seq the origin was
// told; an event reported delivered with a DENY, or rejected, was never
// permitted there; no resource is permitted twice (each resource is
// unique to one call); every bus.receive PERMIT has a permitted
// cross-domain syscall of that resource in its origin's ledger and a
// client's call in the history (none forged); and the destination
// applied each origin's events in the origin's sequence order.
type FedExactlyOnce struct {
	// Domains maps each domain kernel to its node names (Input.Ledgers
	// holds the ledgers of every kernel's nodes).
	Domains map[string][]string
}

// Name implements Checker.
func (FedExactlyOnce) Name() string { return "fed-exactly-once" }

// Check implements Checker.
func (c FedExactlyOnce) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	var v violations
	nodeDomain := fedDomains(c.Domains)
	ledgers := map[string][]NodeLedger{}
	for _, d := range sortedKeys(c.Domains) {
		ledgers[d] = domainLedgers(in, c.Domains[d], &v)
		if len(ledgers[d]) == 0 {
			v.add("domain %s: no ledger could be read", d)
		}
	}
	// What the clients asked for: resource in dest -> origin.
	asked := map[string]map[string]string{}
	calls := 0
	for _, p := range ps {
		if p.Invoke.F != FFedCall {
			continue
		}
		dest, res, ok := strings.Cut(p.Invoke.Key, ":")
		if !ok {
			v.add("op %d: cross-domain call of %q names no destination", p.Invoke.Index, p.Invoke.Key)
			continue
		}
		if asked[dest] == nil {
			asked[dest] = map[string]string{}
		}
		asked[dest][res] = nodeDomain[p.Invoke.Node]
		calls++
	}
	// The origins' outboxes: permitted cross-domain syscalls by subject,
	// from each origin's first readable replica (replicas are checked
	// for equality by convergence).
	outbox := map[string]map[string]bool{}
	for d, ls := range ledgers {
		outbox[d] = map[string]bool{}
		if len(ls) == 0 {
			continue
		}
		for _, ev := range ls[0].Events {
			if ev.Type == EventSyscall && SameDecision(ev.Decision, DecisionPermit) && strings.Contains(ev.Subject, ":") {
				outbox[d][ev.Subject] = true
			}
		}
	}
	// Every replica's bus.receive permits.
	receives := 0
	for _, dest := range sortedKeys(ledgers) {
		for _, l := range ledgers[dest] {
			if ctx.Err() != nil {
				v.add("timed out: %v", ctx.Err())
				return v.verdict(c.Name(), "")
			}
			permits := map[string][]uint64{}
			for _, ev := range l.Events {
				if ev.Type != EventBusReceive || !SameDecision(ev.Decision, DecisionPermit) {
					continue
				}
				permits[ev.Subject] = append(permits[ev.Subject], ev.Seq)
				origin, _, _ := strings.Cut(ev.Actor, "/")
				if len(permits[ev.Subject]) > 1 {
					continue
				}
				if l.Node == ledgers[dest][0].Node {
					receives++
				}
				if _, known := c.Domains[origin]; !known {
					v.add("%s: seq %d: bus.receive PERMIT of %s from %q, which is not a domain of this federation", l.Node, ev.Seq, ev.Subject, ev.Actor)
					continue
				}
				if !outbox[origin][dest+":"+ev.Subject] {
					v.add("%s: seq %d: bus.receive PERMIT of %s from %s has no permitted cross-domain syscall of %s:%s in %s's ledger (forged)",
						l.Node, ev.Seq, ev.Subject, origin, dest, ev.Subject, origin)
				}
				if asked[dest][ev.Subject] != origin {
					v.add("%s: seq %d: bus.receive PERMIT of %s from %s matches no client's call from %s in the history (forged)", l.Node, ev.Seq, ev.Subject, origin, origin)
				}
			}
			for _, s := range sortedKeys(permits) {
				if seqs := permits[s]; len(seqs) > 1 {
					v.add("%s: %s was permitted by bus.receive %d times (seqs %v): written twice", l.Node, s, len(seqs), seqs)
				}
			}
		}
	}
	// What the origins report.
	st := fedStatuses(ps, nodeDomain)
	delivered := 0
	order := map[string][]fedStatus{}
	for _, id := range sortedKeys(st) {
		s := st[id]
		if s.status != BusDelivered && s.status != BusRejected {
			continue
		}
		if s.decision != "" {
			order[s.origin+">"+s.dest] = append(order[s.origin+">"+s.dest], s)
		}
		for _, l := range ledgers[s.dest] {
			var found []api.Event
			for _, ev := range l.Events {
				if ev.Type == EventBusReceive && SameDecision(ev.Decision, DecisionPermit) && ev.Subject == s.resource {
					found = append(found, ev)
				}
			}
			permitted := s.status == BusDelivered && SameDecision(s.decision, DecisionPermit)
			switch {
			case permitted && len(found) == 0:
				v.add("%s: event %s from %s (%s) was acknowledged delivered with PERMIT at seq %d but no bus.receive PERMIT of it is in the ledger (lost)",
					l.Node, id, s.origin, s.resource, s.remoteSeq)
			case permitted && found[0].Seq != s.remoteSeq:
				v.add("%s: event %s from %s (%s) was acknowledged as PERMIT at seq %d but the ledger permitted it at seq %d",
					l.Node, id, s.origin, s.resource, s.remoteSeq, found[0].Seq)
			case !permitted && len(found) > 0:
				v.add("%s: event %s from %s (%s) was reported %s %s %s, yet the ledger permitted it at seq %d",
					l.Node, id, s.origin, s.resource, s.status, s.decision, s.reason, found[0].Seq)
			}
		}
		if s.status == BusDelivered && SameDecision(s.decision, DecisionPermit) {
			delivered++
		}
	}
	for _, link := range sortedKeys(order) {
		evs := order[link]
		sort.Slice(evs, func(i, j int) bool { return evs[i].seq < evs[j].seq })
		for i := 1; i < len(evs); i++ {
			if evs[i].remoteSeq != 0 && evs[i-1].remoteSeq != 0 && evs[i].remoteSeq <= evs[i-1].remoteSeq {
				v.add("link %s: event %s was applied at seq %d, not after event %s at seq %d (out of sequence order)",
					link, evs[i].id, evs[i].remoteSeq, evs[i-1].id, evs[i-1].remoteSeq)
			}
		}
	}
	if calls == 0 {
		v.add("no cross-domain call in the history: nothing was tested")
	}
	out := v.verdict(c.Name(), fmt.Sprintf("%d cross-domain calls; %d events acknowledged delivered with PERMIT, each permitted exactly once at the seq told; %d bus.receive permits, none forged, none twice, in sequence order",
		calls, delivered, receives))
	out.Stats = map[string]int{"calls": calls, "delivered_permit": delivered, "statuses": len(st), "receive_permits": receives}
	return out
}

// FedDelivery checks that the bus delivered: after the faults were
// healed, every event between domains that kept their standing was read
// back from its origin as delivered or rejected (none still pending), and
// every call its origin permitted had its final state read. Events from
// or to the domain whose passport was revoked are not judged: its peers
// refuse its events, and it refuses theirs once its frozen view of them
// goes stale (it is never renewed again).
type FedDelivery struct {
	Domains map[string][]string
	// Revoked names the domain whose passport the run revoked ("" if
	// none); its outgoing events are not judged.
	Revoked string
}

// Name implements Checker.
func (FedDelivery) Name() string { return "fed-delivery" }

// Check implements Checker.
func (c FedDelivery) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	var v violations
	nodeDomain := fedDomains(c.Domains)
	st := fedStatuses(ps, nodeDomain)
	judged, pending, unjudged := 0, 0, 0
	for _, id := range sortedKeys(st) {
		s := st[id]
		if c.Revoked != "" && (s.origin == c.Revoked || s.dest == c.Revoked) {
			if s.status == BusPending {
				unjudged++
			}
			continue
		}
		judged++
		if s.status != BusDelivered && s.status != BusRejected {
			pending++
			v.add("event %s from %s to %s (%s) is still %q after the heal and the drain", id, s.origin, s.dest, s.resource, s.status)
		}
	}
	for _, p := range ps {
		dest, _, _ := strings.Cut(p.Invoke.Key, ":")
		if p.Invoke.F != FFedCall || p.Type() != history.OK || c.Revoked != "" && (nodeDomain[p.Invoke.Node] == c.Revoked || dest == c.Revoked) {
			continue
		}
		if _, ok := st[p.Complete.Result]; !ok {
			v.add("op %d: permitted cross-domain call %s (event %q) has no final status read", p.Invoke.Index, p.Invoke.Key, p.Complete.Result)
		}
	}
	summary := fmt.Sprintf("%d events between domains in standing, every one delivered or rejected after the heal", judged)
	if c.Revoked != "" {
		summary += fmt.Sprintf("; %d events to or from %s (revoked) left pending, not judged", unjudged, c.Revoked)
	}
	out := v.verdict(c.Name(), summary)
	out.Stats = map[string]int{"judged": judged, "pending": pending, "revoked_link_pending": unjudged}
	return out
}

// KnownMargin is the clock slack FedRevocation allows between the
// harness's clock and a leader's ledger-time stamp (one machine).
const KnownMargin = 50 * time.Millisecond

// FedRevocation checks the revocation bound. After the revocation of
// Domain's passport at run time r (the revoke's acknowledgement, or the
// first read that found it revoked), no peer's replica applied (bus.receive
// PERMIT) an event from Domain at a ledger time later than r + Bound; a
// peer that itself reported the passport revoked (FPassportRead on one of
// its nodes, Found) applied none of Domain's events stamped after that
// report (revoked passports are rejected everywhere, whatever their
// expiry); and
// Domain's own gate permitted nothing (syscall or bus.receive PERMIT) at a
// ledger time past its latest passport's expiry + Slack, nor was any
// client told PERMIT for a local call invoked after that. The second part
// needs a gate decision of Domain's after its standing ended; a run that
// ends before says so in the verdict's summary.
type FedRevocation struct {
	Domains map[string][]string
	Domain  string        // the domain whose passport is revoked
	Bound   time.Duration // passport lifetime + standing slack
	Slack   time.Duration // standing slack (fsm.StandingSlack: 30s)
}

// Name implements Checker.
func (FedRevocation) Name() string { return "fed-revocation" }

// Check implements Checker.
func (c FedRevocation) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	var v violations
	var r int64 = -1
	revokeSeen := false
	for _, p := range ps {
		if p.Invoke.F == FPassportRevoke && p.Invoke.Value == c.Domain {
			revokeSeen = true
			if p.Type() == history.OK && (r < 0 || p.End() < r) {
				r = p.End()
			}
		}
	}
	var expiry time.Time
	for _, p := range ps {
		if p.Invoke.F != FPassportRead || p.Invoke.Key != c.Domain || p.Type() != history.OK {
			continue
		}
		if p.Complete.Found && r < 0 {
			r = p.End() // an unacknowledged revoke, seen in effect
		}
		t, err := time.Parse(time.RFC3339Nano, p.Complete.Value)
		if err != nil {
			v.add("op %d: passport read of %s carries expiry %q: %v", p.Invoke.Index, c.Domain, p.Complete.Value, err)
			continue
		}
		if r >= 0 && p.Start() >= r && t.After(expiry) {
			expiry = t
		}
	}
	if r < 0 {
		if revokeSeen {
			v.add("a revoke of %s's passport was invoked but neither acknowledged nor seen in effect: the bound cannot be judged", c.Domain)
			return v.verdict(c.Name(), "")
		}
		return Verdict{Checker: c.Name(), Valid: true, Summary: fmt.Sprintf("no passport of %s was revoked in this run: nothing to judge", c.Domain)}
	}
	rWall := in.StartWall.Add(time.Duration(r))
	limit := rWall.Add(c.Bound)
	// When each peer first reported the revocation itself (a read of its
	// passports on one of its nodes that found the passport revoked).
	nodeDomain := fedDomains(c.Domains)
	known := map[string]int64{}
	for _, p := range ps {
		d := nodeDomain[p.Invoke.Node]
		if p.Invoke.F != FPassportRead || p.Invoke.Key != c.Domain || d == "" || d == c.Domain || p.Type() != history.OK || !p.Complete.Found {
			continue
		}
		if t, ok := known[d]; !ok || p.End() < t {
			known[d] = p.End()
		}
	}
	// Peers: nothing from Domain applied later than the bound.
	var lastApplied time.Duration = -1
	peerReplicas := 0
	for _, d := range sortedKeys(c.Domains) {
		if d == c.Domain {
			continue
		}
		t, knew := known[d]
		knewWall := in.StartWall.Add(time.Duration(t) + KnownMargin)
		for _, l := range domainLedgers(in, c.Domains[d], &v) {
			peerReplicas++
			for _, ev := range l.Events {
				if ev.Type != EventBusReceive || !SameDecision(ev.Decision, DecisionPermit) || !strings.HasPrefix(ev.Actor, c.Domain+"/") {
					continue
				}
				if knew && ev.Time.After(knewWall) {
					v.add("%s: seq %d: bus.receive PERMIT of %s from %s at ledger time %s, %s after %s itself reported %s's passport revoked (run time %s)",
						l.Node, ev.Seq, ev.Subject, ev.Actor, ev.Time.UTC().Format(time.RFC3339Nano), ev.Time.Sub(knewWall.Add(-KnownMargin)).Round(time.Millisecond),
						d, c.Domain, ms(t))
				}
				if after := ev.Time.Sub(rWall); after > lastApplied {
					lastApplied = after
				}
				if ev.Time.After(limit) {
					v.add("%s: seq %d: bus.receive PERMIT of %s from %s at ledger time %s, %s after the revocation (bound %s)",
						l.Node, ev.Seq, ev.Subject, ev.Actor, ev.Time.UTC().Format(time.RFC3339Nano), ev.Time.Sub(rWall).Round(time.Millisecond), c.Bound)
				}
			}
		}
	}
	if peerReplicas == 0 {
		v.add("no peer ledger of %s could be read", c.Domain)
	}
	peerText := fmt.Sprintf("peers applied no event of %s after the revocation", c.Domain)
	if lastApplied >= 0 {
		peerText = fmt.Sprintf("peers applied %s's last event %s after the revocation (bound %s)", c.Domain, lastApplied.Round(time.Millisecond), c.Bound)
	}
	for _, d := range sortedKeys(known) {
		peerText += fmt.Sprintf("; %s reported it %s after the revocation and applied nothing of %s after", d, time.Duration(known[d]-r).Round(time.Millisecond), c.Domain)
	}
	// Domain's own gate after its standing ended.
	ownText := ""
	if expiry.IsZero() {
		v.add("no read of %s's passports after the revocation: its standing deadline is unknown", c.Domain)
	} else {
		end := expiry.Add(c.Slack)
		judged, denied := 0, 0
		for i, l := range domainLedgers(in, c.Domains[c.Domain], &v) {
			for _, ev := range l.Events {
				if (ev.Type != EventSyscall && ev.Type != EventBusReceive) || !ev.Time.After(end) {
					continue
				}
				if i == 0 {
					judged++
					if SameDecision(ev.Decision, DecisionDeny) && ev.Reason == ReasonPassportInvalid {
						denied++
					}
				}
				if SameDecision(ev.Decision, DecisionPermit) {
					v.add("%s: seq %d: %s PERMIT of %s at ledger time %s, after %s's standing ended at %s (passport expiry %s + %s)",
						l.Node, ev.Seq, ev.Type, ev.Subject, ev.Time.UTC().Format(time.RFC3339Nano), c.Domain,
						end.UTC().Format(time.RFC3339Nano), expiry.UTC().Format(time.RFC3339Nano), c.Slack)
				}
			}
		}
		nodes := map[string]bool{}
		for _, n := range c.Domains[c.Domain] {
			nodes[n] = true
		}
		for _, p := range ps {
			if (p.Invoke.F != FFedLocal && p.Invoke.F != FFedCall) || !nodes[p.Invoke.Node] || p.Type() != history.OK {
				continue
			}
			if in.StartWall.Add(time.Duration(p.Start())).After(end) {
				v.add("op %d: %s %s invoked at %s on %s, after %s's standing ended, was told PERMIT (seq %d)",
					p.Invoke.Index, p.Invoke.F, p.Invoke.Key, ms(p.Start()), p.Invoke.Node, c.Domain, p.Complete.Seq)
			}
		}
		if judged == 0 {
			ownText = fmt.Sprintf("; %s's own gate NOT JUDGED: it decided nothing after its standing ended at %s (run time %s): the run ended before",
				c.Domain, end.UTC().Format(time.RFC3339Nano), ms(int64(end.Sub(in.StartWall))))
		} else {
			ownText = fmt.Sprintf("; %s's own gate denied all %d decisions after its standing ended at run time %s (%d passport_invalid)",
				c.Domain, judged, ms(int64(end.Sub(in.StartWall))), denied)
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("revoked at run time %s; %s%s", ms(r), peerText, ownText))
	out.Stats = map[string]int{"revoked_at_ms": int(r / 1e6), "last_applied_after_ms": int(lastApplied / time.Millisecond)}
	return out
}
