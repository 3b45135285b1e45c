// Package detcheck enforces DESIGN.md §2 ("the ledger is a pure function
// of the log") on source code: it loads Go packages with full type
// information and reports every place where they could observe something
// other than their inputs.
//
// # What it owns
//
// The rule set, symbol by symbol rather than by banning packages: the FSM
// imports time for time.Duration and time.Unix(0, ns), so importing time is
// fine, but referencing time.Now is not. Rules (Violation.Rule):
//
//   - "forbidden-import": an import path in Config.ForbiddenImports (blank
//     and dot imports included).
//   - "forbidden-func": a reference to a package-level function or
//     variable in Config.ForbiddenFuncs, whether called or taken as a
//     value, under any import name or a dot import. Resolution is by type
//     information, so `t "time"; t.Now()` is caught and a local variable
//     or method called Now is not.
//   - "map-range": iteration in map order: a `for range` over a map, a
//     named map type or a type parameter whose type set holds a map; or a
//     reference to maps.All, maps.Keys, maps.Values (or the slice-returning
//     golang.org/x/exp/maps.Keys and Values). slices.Sorted(maps.Keys(m))
//     and slices.Sorted(maps.Values(m)) are allowed for non-float elements,
//     since sorting erases the order there. Any other map iteration needs
//     an allow comment (Config.AllowComment) with a reason, on its line or
//     the line above; each comment allows one iteration.
//   - "allow-unused": an allow comment that allows no map iteration.
//   - "goroutine": a go statement. "select": a select statement. Applying
//     a log entry is single-threaded and timing-free.
//
// # Invariants
//
//   - Results are sorted by position (file, line, column, rule, detail),
//     so output is identical from run to run.
//   - A check that cannot see the code does not pass it: if the patterns
//     match nothing, or any matched package fails to load or type-check,
//     Check returns an error and no violations.
//   - Only non-test files of the matched packages are checked. Their
//     dependencies are not, so the patterns must name every package of the
//     module whose code runs inside FSM.Apply.
//
// # Use
//
// There is no command and no testing helper; the FSM's own test calls
// Check and fails on any violation. fsm/determinism_test.go:
//
//	package fsm_test
//
//	import (
//		"testing"
//
//		"github.com/dominus-kernel/dominus/internal/detcheck"
//	)
//
//	// TestDeterminism fails if code that runs inside FSM.Apply can read
//	// the wall clock, randomness, the environment, files or the network,
//	// start goroutines, select, or let map order reach its output.
//	func TestDeterminism(t *testing.T) {
//		// go test runs in the package directory; ".." is the module root.
//		vs, err := detcheck.Check("..", "./fsm/...", "./canon")
//		if err != nil {
//			t.Fatalf("detcheck: %v", err)
//		}
//		for _, v := range vs {
//			t.Error(v) // file:line:col: rule: detail
//		}
//	}
//
// A map range whose order cannot reach the output is marked with the
// reason:
//
//	// detcheck:ordered keys are sorted before use
//	for k := range m {
//
// # Imports
//
// Standard library go/ast, go/token, go/types and
// golang.org/x/tools/go/packages, which runs the go command. Only tests
// import detcheck; no production binary does.
package detcheck
