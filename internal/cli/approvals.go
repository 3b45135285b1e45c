package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
)

func init() { register(approvalsCmd) }

func approvalsCmd() *cobra.Command {
	return group("approvals", "List and decide escalated syscalls",
		approvalsListCmd(), approvalsDecideCmd(true), approvalsDecideCmd(false))
}

// approvalStates are the states an approval can be listed in.
var approvalStates = []string{api.ApprovalPending, api.ApprovalApproved, api.ApprovalDenied, api.ApprovalUsed}

func approvalsListCmd() *cobra.Command {
	var state string
	c := &cobra.Command{
		Use:   "list [--state pending|approved|denied|used]",
		Short: "List escalations (approval.decide or audit.read)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state != "" && !contains(approvalStates, state) {
				return usageError(fmt.Errorf("--state %q: want one of %v", state, approvalStates))
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			as, err := c.Approvals(cmd.Context(), state)
			if err != nil {
				return err
			}
			return printList(cmd, as, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATE\tENTITY\tOP\tRESOURCE\tREQUESTED_SEQ\tEXPIRES\tWHY\tDECIDED_BY")
				for _, a := range as {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.ID, a.State, a.Entity, a.Op, a.Resource,
						a.RequestedSeq, formatExpiry(a.Expires), dash(a.Why), dash(a.DecidedBy))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&state, "state", "", "only approvals in this state")
	return c
}

func approvalsDecideCmd(approve bool) *cobra.Command {
	verb, done, short := "deny", "denied", "Deny an escalated syscall"
	if approve {
		verb, done, short = "approve", "approved", "Approve an escalated syscall: the agent may then repeat it with --approval ID"
	}
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.Decide(cmd.Context(), args[0], approve))
			if err != nil {
				return err
			}
			return printAnswer(cmd, verb+" "+args[0], r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s (seq %d)%s\n", done, args[0], r.Seq, retryNote(r.Outcome))
				return err
			})
		},
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
