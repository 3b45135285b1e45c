package bench_test

import (
	"os"
	"testing"

	"github.com/dominus-kernel/dominus/internal/cli"
)

// agentEnv, when set in a child's environment, makes the test binary run
// the dominus CLI with its arguments instead of the tests: the package's
// real runs start agents (and `audit replay`) as copies of the test
// binary, so they need no separately built dominus binary.
const agentEnv = "DOMINUS_BENCH_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}
