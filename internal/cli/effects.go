package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
)

func init() { register(effectsCmd) }

// effectsCmd lists external effects (all with audit.read, otherwise the
// caller's own), or shows one by its syscall seq.
func effectsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "effects [SEQ]",
		Short: "Show how external effects of permitted syscalls ended (pending, ok, failed, indeterminate)",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			var effs []api.Effect
			if len(args) == 1 {
				seq, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil || seq == 0 {
					return usageError(fmt.Errorf("SEQ must be a positive integer"))
				}
				e, err := c.Effect(cmd.Context(), seq)
				if err != nil {
					return err
				}
				if jsonMode(cmd) {
					return writeJSON(cmd, e)
				}
				effs = []api.Effect{*e}
			} else {
				if effs, err = c.Effects(cmd.Context()); err != nil {
					return err
				}
				if jsonMode(cmd) {
					if effs == nil {
						effs = []api.Effect{}
					}
					return writeJSON(cmd, effs)
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tSTATUS\tCODE\tOP\tRESOURCE\tENTITY\tCOMPLETED")
			for _, e := range effs {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%d\n", e.Seq, e.Status, e.Code, e.Op, e.Resource, e.Entity, e.CompletedSeq)
			}
			return tw.Flush()
		},
	}
}
