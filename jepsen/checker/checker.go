package checker

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Checker judges one property of a run.
type Checker interface {
	// Name is a short stable identifier (used in verdicts.json).
	Name() string
	// Check judges in. It must return within ctx's deadline; a checker
	// that runs out of time returns an invalid verdict.
	Check(ctx context.Context, in *Input) Verdict
}

// NodeLedger is what one node answered after the faults were healed.
type NodeLedger struct {
	Node      string              `json:"node"`
	Status    *api.Status         `json:"status,omitempty"`
	Verify    *api.VerifyResponse `json:"verify,omitempty"` // `dominus ledger verify --json`
	VerifyErr string              `json:"verify_error,omitempty"`
	Events    []api.Event         `json:"-"` // from seq 1 to the head, in order
	FetchErr  string              `json:"fetch_error,omitempty"`
}

// LeaderClaim is a node's own record that it became leader in a term.
type LeaderClaim struct {
	Node   string `json:"node"`
	Term   uint64 `json:"term"`
	Source string `json:"source"` // file:line
}

// Exit is an agent process's exit.
type Exit struct {
	Node     string `json:"node"`
	Time     int64  `json:"time"` // run clock, ns
	Status   string `json:"status"`
	Expected bool   `json:"expected"` // caused by the nemesis or the harness
}

// Interval is a span of the run, for annotations (faults).
type Interval struct {
	Name  string `json:"name"`
	Start int64  `json:"start"` // run clock, ns
	End   int64  `json:"end"`
}

// Input is everything a checker may look at.
type Input struct {
	History []history.Op
	Ledgers []NodeLedger
	Leaders []LeaderClaim
	Exits   []Exit
	Faults  []Interval
	// StartWall is the wall-clock time at which the run clock read 0.
	StartWall time.Time
	// LedgerFinal: the ledgers were read after every client stopped and
	// the faults were healed, and did not move afterwards, so a request
	// id absent from them was never applied.
	LedgerFinal bool
	// Dir receives artifacts (e.g. a linearizability visualization);
	// empty: write none.
	Dir string
}

// MaxViolations bounds the violations a verdict lists; ViolationCount
// has the total.
const MaxViolations = 20

// Verdict is a checker's judgment.
type Verdict struct {
	Checker        string         `json:"checker"`
	Valid          bool           `json:"valid"`
	Summary        string         `json:"summary"`
	Violations     []string       `json:"violations,omitempty"`
	ViolationCount int            `json:"violation_count"`
	Stats          map[string]int `json:"stats,omitempty"`
	Artifacts      []string       `json:"artifacts,omitempty"`
	ElapsedMs      int64          `json:"elapsed_ms"`
}

// violations collects at most MaxViolations descriptions and counts all.
type violations struct {
	list  []string
	count int
}

func (v *violations) add(format string, args ...any) {
	v.count++
	if len(v.list) < MaxViolations {
		v.list = append(v.list, fmt.Sprintf(format, args...))
	}
}

func (v *violations) verdict(name, okSummary string) Verdict {
	if v.count == 0 {
		return Verdict{Checker: name, Valid: true, Summary: okSummary}
	}
	return Verdict{Checker: name, Valid: false, Violations: v.list, ViolationCount: v.count,
		Summary: fmt.Sprintf("%d violation(s); first: %s", v.count, v.list[0])}
}

// runGrace is how long Run waits past a checker's timeout before it
// gives up on it.
var runGrace = 10 * time.Second

// Run applies each checker to in, each within timeout, and returns the
// verdicts in order. A checker that does not return within its timeout
// plus a grace period is reported invalid.
func Run(ctx context.Context, checkers []Checker, in *Input, timeout time.Duration) []Verdict {
	out := make([]Verdict, 0, len(checkers))
	for _, c := range checkers {
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, timeout)
		done := make(chan Verdict, 1)
		go func() { done <- c.Check(cctx, in) }()
		var v Verdict
		select {
		case v = <-done:
		case <-time.After(timeout + runGrace):
			v = Verdict{Checker: c.Name(), Summary: fmt.Sprintf("did not return within %s: unknown counts as failure", timeout)}
		}
		cancel()
		v.Checker = c.Name()
		v.ElapsedMs = time.Since(start).Milliseconds()
		out = append(out, v)
	}
	return out
}

// AllValid reports whether every verdict is valid.
func AllValid(vs []Verdict) bool {
	for _, v := range vs {
		if !v.Valid {
			return false
		}
	}
	return len(vs) > 0
}

// completed returns the pairs of in's history, or an invalid verdict.
func pairs(name string, in *Input) ([]history.Pair, *Verdict) {
	ps, err := history.Pairs(in.History)
	if err != nil {
		return nil, &Verdict{Checker: name, Summary: "history does not pair: " + err.Error(), ViolationCount: 1, Violations: []string{err.Error()}}
	}
	return ps, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func ms(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }
