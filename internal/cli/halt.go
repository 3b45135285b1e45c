package cli

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
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
	var federation bool
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
			if federation {
				if entity != "" {
					return usageError(errors.New("--federation halts every domain; it takes no --entity"))
				}
				r, err := gateAnswer(c.FedHalt(cmd.Context(), reason))
				if err != nil {
					return err
				}
				return printAnswer(cmd, "federation halt", r, r.Outcome, func() error {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "federation halted: %s (%s, seq %d); resuming needs M operators' keys: dominus resume --federation --key FILE\n", reason, r.HaltID, r.Seq)
					return err
				})
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
	c.Flags().BoolVar(&federation, "federation", false, "halt every domain of the federation (on the sovereign, by a sovereign operator)")
	return c
}

func resumeCmd() *cobra.Command {
	var entity, reason, keyFile string
	var federation bool
	c := &cobra.Command{
		Use:   "resume [--entity E] [--reason R]",
		Short: "Lift the halt of an entity, or of the whole kernel",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			if federation {
				return resumeFederation(cmd, c, keyFile)
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
	c.Flags().BoolVar(&federation, "federation", false, "sign the federation resume with --key; it takes effect once M operators have signed")
	c.Flags().StringVar(&keyFile, "key", "", "with --federation: the operator's key file")
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

func resumeFederation(cmd *cobra.Command, c *client.Client, keyFile string) error {
	if keyFile == "" {
		return usageError(errors.New("--federation needs --key OPERATOR.key"))
	}
	name, key, err := readOperatorKey(keyFile)
	if err != nil {
		return err
	}
	st, err := c.FedHaltState(cmd.Context())
	if err != nil {
		return err
	}
	if !st.Halted {
		return fail(api.ExitError, "not_halted", errors.New("the federation is not halted"))
	}
	sig := ed25519.Sign(key, api.ResumeMessage(st.ID))
	r, err := gateAnswer(c.FedResume(cmd.Context(), api.FedResumeRequest{HaltID: st.ID, Operator: name, Signature: hex.EncodeToString(sig)}))
	if err != nil {
		return err
	}
	return printAnswer(cmd, "federation resume", r, r.Outcome, func() error {
		state := "signed; waiting for more operators"
		if r.Resumed {
			state = "federation resumed"
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s signed the resume of %s: %s (seq %d)\n", name, st.ID, state, r.Seq)
		return err
	})
}
