package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/driver"
)

func init() { register(driverCmd) }

// driverCmd runs a built-in effect driver on stdin/stdout. The agent
// starts and supervises these; they are not meant to be run by hand.
func driverCmd() *cobra.Command {
	var allow string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:    "driver webhook|exec",
		Short:  "Run a built-in effect driver (started and supervised by the agent)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			list := splitList(allow)
			var h driver.Handler
			switch args[0] {
			case "webhook":
				h = driver.Webhook(list, timeout)
			case "exec":
				h = driver.Exec(list, timeout)
			default:
				return usageError(fmt.Errorf("unknown driver %q (webhook or exec)", args[0]))
			}
			return driver.Serve(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), h)
		},
	}
	cmd.Flags().StringVar(&allow, "allow", "", "comma-separated allow list (URL prefixes for webhook, exact command paths for exec)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "time limit of one effect")
	return cmd
}

// driverArgv is the command line the agent uses to start a built-in driver.
func driverArgv(kind, allow string, timeout time.Duration) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return []string{exe, "driver", kind, "--allow", allow, "--timeout", timeout.String()}, nil
}
