package cli

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
)

// operatorProtocolCmd is `dominus operator protocol status|upgrade|sign`.
func operatorProtocolCmd() *cobra.Command {
	return group("protocol", "Show and move the protocol version (the decision rules) a kernel runs",
		protocolStatusCmd(), protocolUpgradeCmd(), protocolSignCmd())
}

func protocolStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the protocol in force, what each member implements, and the history",
		Long: `status shows the protocol version in force, the newest version each member
of the Raft configuration implements (asked now; 0 when a member does not
answer), and every change since genesis with the seq that made it.

  --json: {"in_force": N, "members": [{"node", "supports", "voter"}],
           "history": [{"version", "seq", "by"}], ...}`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			s, err := c.ProtocolStatus(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, s)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Protocol in force: %d (this node, %s, implements up to %d)\n\n", s.InForce, s.Node, s.Supported)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MEMBER\tVOTER\tSUPPORTS")
			for _, m := range s.Members {
				sup := strconv.Itoa(int(m.Supports))
				if m.Error != "" {
					sup = "? (" + m.Error + ")"
				}
				fmt.Fprintf(tw, "%s\t%v\t%s\n", m.Node, m.Voter, sup)
			}
			fmt.Fprintln(tw, "\nVERSION\tSEQ\tBY")
			for _, h := range s.History {
				fmt.Fprintf(tw, "%d\t%d\t%s\n", h.Version, h.Seq, h.By)
			}
			if len(s.Domains) > 0 {
				fmt.Fprintln(tw, "\nDOMAIN\tACKNOWLEDGED\tSUPPORTS\tSUSPENDED")
				for _, d := range s.Domains {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%v\n", d.Domain, d.Acknowledged, d.Supports, d.Suspended)
				}
			}
			return tw.Flush()
		},
	}
}

func parseProtocolVersion(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, usageError(fmt.Errorf("protocol version %q: want a positive integer", s))
	}
	return uint16(v), nil
}

func protocolUpgradeCmd() *cobra.Command {
	var sigs []string
	var rid string
	c := &cobra.Command{
		Use:   "upgrade N [--signature OPERATOR:SIG ...]",
		Short: "Move the kernel to protocol N at the entry that records it (operator.manage)",
		Long: `upgrade moves the kernel to protocol version N: every entry after the one
that records the upgrade is judged by N's rules, every earlier one replays
under its own. It needs a token with operator.manage, and it is refused
(exit 1, code protocol_unsupported) until every voter's binary implements
N; a node whose binary does not is stopped by the upgrade rather than
diverge, so upgrade the binaries first (dominus operator protocol status
shows what each member implements).

On a federation the upgrade is made on the sovereign, with the signatures
of M of the N federation operators (one sovereign-level), each made with
'dominus operator protocol sign N --key KEY'; every domain verifies them,
takes the version from its next renewal, and acknowledges it. A domain is
refused a direct upgrade.

Exit status: 0 upgraded, 2 denied (a token without operator.manage, too few
signatures), 1 refused before the ledger (a voter lacks N, N not newer).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			v, err := parseProtocolVersion(pos[0])
			if err != nil {
				return err
			}
			for _, s := range sigs {
				if op, sig, ok := strings.Cut(s, ":"); !ok || op == "" || sig == "" {
					return usageError(fmt.Errorf("--signature %q: want OPERATOR:HEX", s))
				}
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.ProtocolUpgrade(cmd.Context(), api.ProtocolUpgradeRequest{Version: v, Signatures: sigs}, requestOpts(rid)...))
			if err != nil {
				return err
			}
			for _, w := range r.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			return printAnswer(cmd, "protocol upgrade", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "protocol %d in force from seq %d%s\n", r.InForce, r.Seq, retryNote(r.Outcome))
				return err
			})
		},
	}
	c.Flags().StringSliceVar(&sigs, "signature", nil, "sovereign: OPERATOR:SIGNATURE from operator protocol sign (M of them)")
	requestIDFlag(c, &rid)
	return c
}

func protocolSignCmd() *cobra.Command {
	var keyFile string
	c := &cobra.Command{
		Use:   "sign N --key YOUR.key",
		Short: "Sign the federation's move to protocol N with your operator key; prints OPERATOR:SIGNATURE",
		Long: `sign signs, with your operator key, the move of the federation of the
sovereign at --addr to protocol N, and prints OPERATOR:SIGNATURE for
'dominus operator protocol upgrade N --signature ...'. The signature names
the sovereign's kernel id and the version, so it is good for that one
upgrade only.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			v, err := parseProtocolVersion(pos[0])
			if err != nil {
				return err
			}
			if keyFile == "" {
				return usageError(errors.New("--key is required"))
			}
			me, key, err := readOperatorKey(keyFile)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			s, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if s.Role != api.RoleSovereign || s.KernelID == "" {
				return usageError(fmt.Errorf("--addr must be an initialized sovereign kernel (it is %q, role %q)", s.KernelID, s.Role))
			}
			sig := ed25519.Sign(key, api.ProtocolMessage(s.KernelID, v))
			if jsonMode(cmd) {
				return writeJSON(cmd, map[string]string{"operator": me, "signature": hex.EncodeToString(sig), "kernel_id": s.KernelID})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s:%s\n", me, hex.EncodeToString(sig))
			return err
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "your operator key file")
	return c
}
