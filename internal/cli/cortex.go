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
	keyStep := func(action, short string) *cobra.Command {
		return &cobra.Command{
			Use:   action + " KEY",
			Short: short,
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, pos []string) error {
				c, err := newClient(cmd)
				if err != nil {
					return err
				}
				r, err := c.CortexKeyring(cmd.Context(), action, pos[0])
				if err != nil {
					return err
				}
				if jsonMode(cmd) {
					return writeJSON(cmd, r)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: keyring %s (primary first)\n", r.Node, strings.Join(r.Keys, ", "))
				return err
			},
		}
	}
	keys := group("key", `Rotate this node's gossip key: install the new key on every node, then use it on every node, then remove the old one (KEY: 32 bytes, hex; see 'openssl rand -hex 32')`,
		keyStep("install", "Add a key to this node's gossip keyring (decrypt with it)"),
		keyStep("use", "Encrypt this node's gossip with an installed key"),
		keyStep("remove", "Drop a key that is no longer the primary"))
	return group("cortex", "Inspect the cortex: gossip signals and the master cortex's findings; rotate gossip keys", signals, insights, keys)
}
