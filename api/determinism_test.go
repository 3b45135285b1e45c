package api

import (
	"testing"

	"github.com/dominus-kernel/dominus/internal/detcheck"
)

// TestDeterminism fails if api could read the clock, randomness, the
// environment, files or the network, start goroutines, select, or let map
// order reach its output: the FSM builds the signing messages it verifies
// with it inside Apply.
func TestDeterminism(t *testing.T) {
	vs, err := detcheck.Check("..", "./api")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v.String())
	}
}
