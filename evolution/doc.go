// Package evolution is the kernel service of governed evolution
// (protocol 8): the HTTP routes that start, inspect, promote, abort and
// resume a staged rollout of a candidate Cedar policy set, list a set's
// kept versions and roll one back, and the leader duty that closes an
// evolution's windows.
//
// The rules live in the ledger (fsm/evolve.go, fsm/evolvegate.go,
// fsm/evolvestat.go): who may propose each command, the cohort, the
// analysis and its verdicts. This service only builds commands, reads
// state, and, before a start, backtests the candidate on recent history
// (backtest.go: the latest BacktestSpan seqs of the archive, each judged
// request re-judged by today's ACTIVE sets and by the candidate) so the
// ledger can hold a relaxing candidate in shadow; the backtest can only
// add that hold, never lift it.
//
// The leader duty proposes evolve.tick when the evolution's window has
// ended by the leader's clock (the clock that stamps ledger time); the
// ledger re-checks it at the entry's own ledger time and refuses a tick
// that is early (not_due), so a skewed or repeated tick changes nothing.
//
// Imports: kernel, httpedge, fsm, api. internal/server composes it.
package evolution
