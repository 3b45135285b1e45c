package temporal

import (
	"testing"

	"github.com/dominus-kernel/dominus/internal/detcheck"
)

// TestDeterminism fails if temporal could read the clock, randomness, the
// environment, files or the network, start goroutines, select, or let map
// order reach its output: the FSM folds it inside Apply.
func TestDeterminism(t *testing.T) {
	vs, err := detcheck.Check("..", "./temporal")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v.String())
	}
}

// TestNoFloatingPoint fails if a non-test file of temporal mentions a float
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
	if files < 3 {
		t.Fatalf("checked only %d files", files)
	}
}
