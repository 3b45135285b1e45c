package fsm

import (
	"testing"

	"github.com/dominus-kernel/dominus/internal/detcheck"
)

// TestDeterminism fails the build if the replicated core reads the clock,
// randomness, the environment, files or the network, starts goroutines, or
// ranges over a map without a marked, sorted use.
func TestDeterminism(t *testing.T) {
	vs, err := detcheck.Check("..", "./fsm/...", "./canon")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v.String())
	}
}
