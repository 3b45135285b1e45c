package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() {
	register(haltCmd)
	register(resumeCmd)
	register(haltsCmd)
}

// haltTarget names what a halt applies to.
func haltTarget(entity string) string {
	if entity == "" {
		return "the whole kernel"
	}
	return "entity " + entity
}

func haltCmd() *cobra.Command {
	var entity, reason string
	c := &cobra.Command{
		Use:   "halt [--entity E] --reason R",
		Short: "Kill switch: deny every non-governance syscall of an entity, or of the whole kernel",
		Long: `halt stops an entity (--entity) or, without --entity, the whole kernel:
until 'dominus resume', the gate denies every non-governance syscall with
reason halted. The halt is ledgered with its reason.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireString("reason", reason); err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.Halt(cmd.Context(), entity, reason))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "halt of "+haltTarget(entity), r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "halted %s: %s (seq %d)%s\n", haltTarget(entity), reason, r.Seq, retryNote(r.Outcome))
				return err
			})
		},
	}
	c.Flags().StringVar(&entity, "entity", "", "the entity to halt (default: the whole kernel)")
	c.Flags().StringVar(&reason, "reason", "", "why, recorded in the ledger (required)")
	return c
}

func resumeCmd() *cobra.Command {
	var entity, reason string
	c := &cobra.Command{
		Use:   "resume [--entity E] [--reason R]",
		Short: "Lift the halt of an entity, or of the whole kernel",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.Resume(cmd.Context(), entity, reason))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "resume of "+haltTarget(entity), r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "resumed %s (seq %d)%s\n", haltTarget(entity), r.Seq, retryNote(r.Outcome))
				return err
			})
		},
	}
	c.Flags().StringVar(&entity, "entity", "", "the entity to resume (default: the whole kernel)")
	c.Flags().StringVar(&reason, "reason", "", "why, recorded in the ledger")
	return c
}

func haltsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "halts",
		Short: "List the halts in force",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			hs, err := c.Halts(cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd, hs, func() error {
				if len(hs) == 0 {
					_, err := fmt.Fprintln(cmd.OutOrStdout(), "no halts in force")
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TARGET\tREASON\tBY\tSEQ")
				for _, h := range hs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", haltTarget(h.Entity), dash(h.Reason), dash(h.By), h.Seq)
				}
				return tw.Flush()
			})
		},
	}
}
