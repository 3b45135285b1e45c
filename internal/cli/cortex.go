package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(cortexCmd) }

// shortNode shortens a hex node key for tables.
func shortNode(node string) string {
	if len(node) > 12 {
		return node[:12]
	}
	return node
}

func cortexCmd() *cobra.Command {
	signals := &cobra.Command{
		Use:   "signals",
		Short: "List the latest gossip signal of every (domain, node, kind) this node holds",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ss, err := c.CortexSignals(cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd, ss, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DOMAIN\tNODE\tKIND\tVALUE\tWINDOW\tSEQ")
				for _, s := range ss {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", s.Domain, shortNode(s.Node), s.Kind, s.Value, s.Window.Format(time.RFC3339), s.Seq)
				}
				return tw.Flush()
			})
		},
	}
	insights := &cobra.Command{
		Use:   "insights",
		Short: "List the master cortex's findings recorded in the sovereign's ledger",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			is, err := c.CortexInsights(cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd, is, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tDOMAINS\tCONFIDENCE\tSUMMARY")
				for _, i := range is {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", i.Seq, i.Time.Format(time.RFC3339), i.Kind, strings.Join(i.Domains, ","), i.Confidence, i.Summary)
				}
				return tw.Flush()
			})
		},
	}
	return group("cortex", "Inspect the cortex: gossip signals and the master cortex's findings", signals, insights)
}
