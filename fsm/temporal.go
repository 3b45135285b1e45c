package fsm

import "github.com/dominus-kernel/dominus/temporal"

// ProtocolTemporal is the rule set from which the gate keeps per-entity
// activity counters in replicated state (package temporal) and judges
// every syscall with them as Cedar context.history; kv.get may name an
// as-of seq (KVKey.AsOf), which the event records.
const ProtocolTemporal uint16 = 7

// HistoryContext is context.history of one syscall's Cedar request, as
// recorded in its detail: the entity's calls before this one.
type HistoryContext struct {
	Calls1h             int64 `codec:"calls_1h"`
	Calls24h            int64 `codec:"calls_24h"`
	Denials1h           int64 `codec:"denials_1h"`
	Denials24h          int64 `codec:"denials_24h"`
	Errors1h            int64 `codec:"errors_1h"`
	Escalations24h      int64 `codec:"escalations_24h"`
	OpCalls1h           int64 `codec:"op_calls_1h"`
	OpCalls24h          int64 `codec:"op_calls_24h"`
	DistinctResources1h int64 `codec:"distinct_resources_1h"`
	FirstSeenS          int64 `codec:"first_seen_s"`
}

// Values returns the counters in the order of temporal.Names.
func (h *HistoryContext) Values() []int64 {
	return temporal.Context(*h).Values()
}

func (l *Ledger) temporal() bool { return l.st.Meta.Protocol >= ProtocolTemporal }

// historyBook returns the counters, created on first use.
func (l *Ledger) historyBook() *temporal.Book {
	if l.st.Activity == nil {
		l.st.Activity = temporal.New()
	}
	return l.st.Activity
}

// historyContext is entity's context.history for a call on op at now.
func (l *Ledger) historyContext(entity, op string, now int64) *HistoryContext {
	var c temporal.Context
	if l.st.Activity != nil {
		c = l.st.Activity.Context(entity, op, now)
	}
	h := HistoryContext(c)
	return &h
}

// recordCall folds a syscall decision into the counters (protocol 7 on).
func (l *Ledger) recordCall(entity, op, resource string, d Decision, now int64) {
	if !l.temporal() {
		return
	}
	var out temporal.Outcome
	switch d {
	case DecisionPermit:
		out = temporal.Permit
	case DecisionDeny:
		out = temporal.Deny
	case DecisionEscalate:
		out = temporal.Escalate
	default:
		return
	}
	l.historyBook().Record(entity, op, resource, out, now)
}

// recordError folds an external effect that ended in error.
func (l *Ledger) recordError(entity string, now int64) {
	if l.temporal() {
		l.historyBook().Error(entity, now)
	}
}
