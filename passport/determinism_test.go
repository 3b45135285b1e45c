package passport

import (
	"testing"

	"github.com/dominus-kernel/dominus/internal/detcheck"
)

// TestDeterminism fails if the package can read the clock, randomness,
// the environment, files or the network, starts goroutines, selects, or
// ranges over a map: it runs inside the sovereign's FSM.
func TestDeterminism(t *testing.T) {
	vs, err := detcheck.Check("..", "./passport")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v.String())
	}
}
