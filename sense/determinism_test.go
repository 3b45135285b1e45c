package sense

import (
	"testing"

	"github.com/dominus-kernel/dominus/internal/detcheck"
)

// TestDeterminism fails if sense could read the clock, randomness, the
// environment, files or the network, start goroutines, select, or let map
// order reach its output: the FSM runs it inside Apply.
func TestDeterminism(t *testing.T) {
	vs, err := detcheck.Check("..", "./sense")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v.String())
	}
}

// TestNoFloatingPoint fails if a non-test file of sense mentions a float
// type or imports math: numbers that decide policy inputs are integers or
// fixed point. Every .go file in the directory is read whatever its build
// tags, so a file built only under some tag is held to the same rule.
func TestNoFloatingPoint(t *testing.T) {
	found, files, err := detcheck.Floats(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
	if files < 5 {
		t.Fatalf("checked only %d files", files)
	}
}
