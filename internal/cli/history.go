package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(historyCmd) }

// asOfFlag adds --as-of to a read command.
func asOfFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "as-of", "", "read the state right after this seq, or at this RFC 3339 ledger time (needs audit.read, except kv get)")
}

// noteAsOf tells a person which point of history a read answered from
// (on stderr, so the output itself stays what it is now).
func noteAsOf(cmd *cobra.Command, at *api.AsOf) {
	if at != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "as of seq %d (%s)\n", at.Seq, at.Time.Format(time.RFC3339Nano))
	}
}

func historyCmd() *cobra.Command {
	var q client.HistoryQuery
	c := &cobra.Command{
		Use:   "history ENTITY [--from SEQ|TIME] [--to SEQ|TIME] [--op OP] [--limit N]",
		Short: "List an entity's gate decisions, each with the state it was judged against (audit.read)",
		Long: `history lists the entity's decisions from the ledger archive, oldest
first: each syscall's decision and reason, the uses its capability had left
after it, and the tier, trust, posture and policy version it was judged
against (tier, trust and posture are empty when the gate refused the call
before the policy stage). --from and --to take a seq or an RFC 3339 ledger
time; --limit bounds the entries (default 1000).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			hs, err := c.History(cmd.Context(), pos[0], q)
			if err != nil {
				return err
			}
			return printList(cmd, hs, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tOP\tRESOURCE\tDECISION\tREASON\tUSES_LEFT\tTIER\tTRUST\tPOSTURE\tPOLICY")
				for _, h := range hs {
					// Tier, trust and posture exist only for calls that
					// reached the policy stage.
					trust := "-"
					if h.Tier != "" {
						trust = fmt.Sprint(h.Trust)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", h.Seq, h.Time.Format(time.RFC3339), h.Op, h.Resource,
						h.Decision, h.Reason, unlimited(h.UsesLeft), dash(h.Tier), trust, dash(h.Posture), h.PolicyVersion)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&q.From, "from", "", "from this seq or RFC 3339 ledger time (default: the start)")
	c.Flags().StringVar(&q.To, "to", "", "to this seq or RFC 3339 ledger time (default: the head)")
	c.Flags().StringVar(&q.Op, "op", "", "only this op")
	c.Flags().IntVar(&q.Limit, "limit", 0, "at most this many entries (default 1000)")
	return c
}
