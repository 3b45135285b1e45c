package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(policyCmd) }

func policyCmd() *cobra.Command {
	return group("policy", "Install, list, backtest, version and roll back Cedar policy sets",
		policySetCmd(), policyListCmd(), policyBacktestCmd(), policyHistoryCmd(), policyRollbackCmd())
}

// readPolicy reads a Cedar policy file (- for standard input) and refuses
// an empty one: empty text removes a set, which takes --delete.
func readPolicy(cmd *cobra.Command, path string) (string, error) {
	text, err := readLimitedFile(cmd, "file", path, api.MaxPolicyBytes)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(text) == "" {
		return "", usageError(fmt.Errorf("--file %s is empty (to remove a policy set use --delete)", path))
	}
	return text, nil
}

func policySetCmd() *cobra.Command {
	var name, file, mode string
	var del, shadow bool
	c := &cobra.Command{
		Use:   "set --name N (--file F [--shadow | --mode active|shadow] | --delete)",
		Short: "Install or replace a named Cedar policy set, or remove it",
		Long: `set installs the Cedar policies of --file (- for standard input) as the
policy set --name, replacing a set of that name. An ACTIVE set decides; a
SHADOW set (--shadow, or --mode shadow) is only recorded beside each
decision, so that it can be compared before it is promoted. --delete
removes the set. A policy the kernel cannot compile is refused (exit 1,
code policy_invalid) with the compiler's message. Warnings the kernel
gives about an installed set are printed to standard error, one
"warning: TEXT" line each (with --json too, and in its "warnings").`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := policySetRequest(cmd, name, file, mode, del, shadow)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.PolicySet(cmd.Context(), req))
			if err != nil {
				return policyError("policy set "+name, err)
			}
			for _, w := range r.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			return printAnswer(cmd, "policy set "+name, r, r.Outcome, func() error {
				msg := fmt.Sprintf("policy %s set: %s, version %d (seq %d)", name, req.Mode, r.PolicyVersion, r.Seq)
				if del {
					msg = fmt.Sprintf("policy %s removed (seq %d)", name, r.Seq)
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), msg+retryNote(r.Outcome))
				return err
			})
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "name of the policy set (required)")
	f.StringVar(&file, "file", "", "Cedar policy file (- for standard input)")
	f.BoolVar(&shadow, "shadow", false, "install the set as SHADOW (recorded only); the same as --mode shadow")
	f.StringVar(&mode, "mode", "active", "active (decides) or shadow (recorded only)")
	f.BoolVar(&del, "delete", false, "remove the policy set")
	return c
}

// policySetRequest checks the flags of policy set and reads the file.
func policySetRequest(cmd *cobra.Command, name, file, mode string, del, shadow bool) (api.PolicyRequest, error) {
	req := api.PolicyRequest{Name: name}
	if err := requireString("name", name); err != nil {
		return req, err
	}
	flags := cmd.Flags()
	if flags.Changed("file") == del {
		return req, usageError(errors.New("give exactly one of --file F and --delete"))
	}
	if del {
		for _, f := range []string{"mode", "shadow"} {
			if flags.Changed(f) {
				return req, usageError(fmt.Errorf("--%s goes with --file, not --delete", f))
			}
		}
		return req, nil
	}
	m := strings.ToUpper(mode)
	if m != api.PolicyActive && m != api.PolicyShadow {
		return req, usageError(fmt.Errorf("--mode %q: want active or shadow", mode))
	}
	if flags.Changed("shadow") {
		if !shadow {
			return req, usageError(errors.New("--shadow=false: to install an ACTIVE set, leave out --shadow"))
		}
		if flags.Changed("mode") && m != api.PolicyShadow {
			return req, usageError(fmt.Errorf("--shadow contradicts --mode %s", mode))
		}
		m = api.PolicyShadow
	}
	text, err := readPolicy(cmd, file)
	if err != nil {
		return req, err
	}
	req.Text, req.Mode = text, m
	return req, nil
}

func policyListCmd() *cobra.Command {
	var asOf string
	c := &cobra.Command{
		Use:   "list",
		Short: "List the policy sets (audit.read); --json includes their text",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ps, err := c.Policies(cmd.Context(), client.WithAsOf(asOf))
			if err != nil {
				return err
			}
			return printList(cmd, ps, func() error {
				if len(ps) > 0 {
					noteAsOf(cmd, ps[0].AsOf)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tMODE\tVERSION\tSET_BY\tBYTES")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", p.Name, p.Mode, p.Version, dash(p.SetBy), len(p.Text))
				}
				return tw.Flush()
			})
		},
	}
	asOfFlag(c, &asOf)
	return c
}

func policyBacktestCmd() *cobra.Command {
	var name, file string
	var from, to uint64
	c := &cobra.Command{
		Use:   "backtest [--name N] --file F --from SEQ [--to SEQ]",
		Short: "Re-judge recorded syscalls against a candidate policy set (read-only)",
		Long: `backtest re-judges the syscalls recorded between --from and --to (default:
the head) against the ACTIVE policy sets with set --name replaced by the
policies of --file (without --name, the file is added as a new set), and
reports how many decisions would change, grouped by transition:

  evaluated 120, changed 3
  PERMIT→DENY 3 (e.g. seq 12, 15, 19)

--json prints {"evaluated": 120, "changed": 3, "by_transition":
{"permit->deny": 3}, "examples": [12, 15, 19], "transitions": [...]}.
Nothing is written to the ledger.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("file") {
				return usageError(errors.New("--file is required"))
			}
			if !cmd.Flags().Changed("from") || from == 0 {
				return usageError(errors.New("--from SEQ is required (1: from genesis)"))
			}
			if cmd.Flags().Changed("to") && to < from {
				return usageError(fmt.Errorf("--to %d is before --from %d", to, from))
			}
			text, err := readPolicy(cmd, file)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := c.Backtest(cmd.Context(), api.BacktestRequest{Name: name, Text: text, From: from, To: to})
			if err != nil {
				return policyError("policy backtest", err)
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, backtestJSON(r))
			}
			return printBacktest(cmd, r)
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "the ACTIVE set the file replaces (default: add the file as a new set)")
	f.StringVar(&file, "file", "", "candidate Cedar policy file (- for standard input)")
	f.Uint64Var(&from, "from", 0, "first ledger seq to re-judge")
	f.Uint64Var(&to, "to", 0, "last ledger seq to re-judge (default: the head)")
	return c
}

// backtestJSON returns r with its lists never null, and by_transition and
// examples derived from the transitions when the kernel did not send them
// (kernels before they were added): each transition holds its first
// examples, so the first of all is among them.
func backtestJSON(r *api.BacktestResponse) *api.BacktestResponse {
	if r.Transitions == nil {
		r.Transitions = []api.BacktestTransition{}
	}
	if r.ByTransition == nil {
		r.ByTransition = map[string]int{}
		for _, t := range r.Transitions {
			r.ByTransition[strings.ToLower(t.From)+"->"+strings.ToLower(t.To)] += t.Count
		}
	}
	if r.Examples == nil {
		r.Examples = []uint64{}
		for _, t := range r.Transitions {
			r.Examples = append(r.Examples, t.Examples...)
		}
		slices.Sort(r.Examples)
		r.Examples = r.Examples[:min(len(r.Examples), api.MaxBacktestExamples)]
	}
	return r
}

func printBacktest(cmd *cobra.Command, r *api.BacktestResponse) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "seq %d..%d: evaluated %d, changed %d\n", r.From, r.To, r.Evaluated, r.Changed)
	for _, t := range r.Transitions {
		line := fmt.Sprintf("%s→%s %d", humanDecision(t.From), humanDecision(t.To), t.Count)
		if len(t.Examples) > 0 {
			seqs := make([]string, len(t.Examples))
			for i, s := range t.Examples {
				seqs[i] = fmt.Sprint(s)
			}
			line += " (e.g. seq " + strings.Join(seqs, ", ") + ")"
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
