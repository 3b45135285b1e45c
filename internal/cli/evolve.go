package cli

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(evolveCmd) }

func evolveCmd() *cobra.Command {
	return group("evolve", "Roll a policy change out shadow → canary → promotion, with automatic rollback",
		evolveStartCmd(), evolveStatusCmd(),
		evolveStepCmd("promote", "Promote a candidate awaiting promotion: it becomes the ACTIVE set, a new version"),
		evolveStepCmd("abort", "Abort an evolution in progress: the candidate decides for nobody any more"),
		evolveStepCmd("resume", "Resume a paused evolution (after a relaxation in shadow, or an inconclusive step)"))
}

func evolveStartCmd() *cobra.Command {
	var name, file, steps string
	var window time.Duration
	var minShadow int64
	c := &cobra.Command{
		Use:   "start --name N --file F [--steps 5,25,100] [--window D] [--min-shadow N]",
		Short: "Start a governed evolution of policy set N to the policies of F (policy.set)",
		Long: `start rolls the Cedar policies of --file (- for standard input) out as the
policy set --name, in stages the ledger judges (protocol 8):

  shadow     the candidate is judged beside every decision, never enforced,
             for at least --window and --min-shadow decisions; a candidate
             that would permit what is denied (a relaxation, here or in the
             backtest of recent history the node runs first) pauses for a
             human (evolve resume)
  canary     the candidate decides for a deterministic cohort of entities
             at each weight of --steps, each held for --window of ledger
             time; the canary's deny, escalation and effect error rates are
             compared with the baseline's (one-sided Fisher exact test):
             a breach rolls back automatically, an inconclusive step pauses
  promotion  after the last step the evolution awaits a human (evolve
             promote); policy history lists every version

--json prints {"id": "ev-SEQ", "seq": N, ...}.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireString("name", name); err != nil {
				return err
			}
			if !cmd.Flags().Changed("file") {
				return usageError(errors.New("--file is required"))
			}
			ws, err := parseSteps(steps)
			if err != nil {
				return err
			}
			if window < 0 || (window != 0 && window < time.Second) {
				return usageError(fmt.Errorf("--window %s: want at least 1s", window))
			}
			if minShadow < 0 {
				return usageError(fmt.Errorf("--min-shadow %d: want a positive count", minShadow))
			}
			text, err := readPolicy(cmd, file)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			req := api.EvolveStartRequest{Name: name, Text: text, Steps: ws, WindowMs: window.Milliseconds(), MinShadow: minShadow}
			r, err := gateAnswer(c.EvolveStart(cmd.Context(), req))
			if err != nil {
				return policyError("evolve start "+name, err)
			}
			return printAnswer(cmd, "evolve start "+name, r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "evolution %s of policy %s started in shadow (seq %d); backtest of seq %d..%d: %d evaluated, %d changed, %d relaxations\n",
					r.ID, name, r.Seq, r.Backtest.From, r.Backtest.To, r.Backtest.Evaluated, r.Backtest.Changed, r.Backtest.Relaxations)
				return err
			})
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "the policy set the candidate replaces (or adds) (required)")
	f.StringVar(&file, "file", "", "candidate Cedar policy file (- for standard input) (required)")
	f.StringVar(&steps, "steps", "", "canary weights in percent, strictly increasing (default 5,25,100)")
	f.DurationVar(&window, "window", 0, "each phase's window of ledger time (default 60s)")
	f.Int64Var(&minShadow, "min-shadow", 0, "judged decisions shadow needs before it can end (default 20)")
	return c
}

// parseSteps parses "5,25,100" ("" = the kernel's default).
func parseSteps(s string) ([]int64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int64
	for _, part := range strings.Split(s, ",") {
		w, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(part), "%"), 10, 64)
		if err != nil || w < 1 || w > 100 || (len(out) > 0 && w <= out[len(out)-1]) {
			return nil, usageError(fmt.Errorf("--steps %q: want strictly increasing percentages 1..100, e.g. 5,25,100", s))
		}
		out = append(out, w)
	}
	return out, nil
}

func evolveStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status [ID]",
		Short: "Show an evolution (default: the newest) with its verdicts (audit.read)",
		Long: `status prints the evolution ID, or the newest one: its phase (shadow,
canary, awaiting_promotion, promoted, rolled_back, paused, aborted), the
canary weight in force, and each verdict with its metrics: the canary's
and the baseline's value, the threshold, the test and its p-value.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			e, err := evolutionByID(cmd, c, pos)
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, e)
			}
			return printEvolution(cmd, e)
		},
	}
}

// evolutionByID fetches pos[0], or the newest evolution.
func evolutionByID(cmd *cobra.Command, c *client.Client, pos []string) (*api.Evolution, error) {
	if len(pos) == 1 {
		return c.Evolution(cmd.Context(), pos[0])
	}
	all, err := c.Evolutions(cmd.Context())
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fail(api.ExitError, api.CodeNotFound, errors.New("no evolution has been started"))
	}
	return &all[len(all)-1], nil
}

func printEvolution(cmd *cobra.Command, e *api.Evolution) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s  policy %s  phase %s", e.ID, e.Name, e.Phase)
	if e.Phase == api.PhaseCanary {
		fmt.Fprintf(w, "  weight %d%%", e.Weight)
	}
	if e.PausedFrom != "" {
		fmt.Fprintf(w, "  (paused after %s)", e.PausedFrom)
	}
	fmt.Fprintf(w, "\nsteps %v  window %s  shadow judged %d, changed %d %v\n", e.Steps, time.Duration(e.WindowMs)*time.Millisecond,
		e.Shadow.Judged, e.Shadow.Changed, transitions(e.Shadow.ByTransition))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range e.Verdicts {
		step := v.Phase
		if v.Phase == api.PhaseCanary {
			step = fmt.Sprintf("canary %d%%", v.Weight)
		}
		fmt.Fprintf(tw, "\n%s\t%s\t%s (seq %d)\n", step, v.Verdict, v.Note, v.Seq)
		if len(v.Metrics) == 0 {
			continue
		}
		fmt.Fprintln(tw, "  METRIC\tCANARY\tBASELINE\tTHRESHOLD\tTEST\tP\tOUTCOME")
		names := make([]string, 0, len(v.Metrics))
		for n := range v.Metrics {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			m := v.Metrics[n]
			p := "-"
			if m.P != nil {
				p = strconv.FormatFloat(*m.P, 'g', 4, 64)
			}
			fmt.Fprintf(tw, "  %s\t%.4g (%d)\t%.4g (%d)\t%.4g\t%s\t%s\t%s\n", n, m.Canary, m.CanaryN, m.Baseline, m.BaselineN, m.Threshold, m.Test, p, m.Outcome)
		}
	}
	return tw.Flush()
}

func transitions(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func evolveStepCmd(action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID",
		Short: short + " (policy.set)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			what := "evolve " + action + " " + pos[0]
			r, err := gateAnswer(c.EvolveStep(cmd.Context(), pos[0], action))
			if err != nil {
				return err
			}
			return printAnswer(cmd, what, r, r.Outcome, func() error {
				msg := fmt.Sprintf("%s: %s (seq %d)", pos[0], dash(r.Phase), r.Seq)
				if r.Version != 0 {
					msg += fmt.Sprintf(", version %d", r.Version)
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), msg+retryNote(r.Outcome))
				return err
			})
		},
	}
}

func policyHistoryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME",
		Short: "List the kept versions of policy set NAME (audit.read)",
		Long: `history lists the versions of the ACTIVE set NAME, oldest first: its
version number, the seq that installed it, who, and via what: the
evolution that promoted it, rollback:N, or nothing for policy set.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			vs, err := c.PolicyHistory(cmd.Context(), pos[0])
			if err != nil {
				return err
			}
			return printList(cmd, vs, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tSEQ\tBY\tVIA\tBYTES")
				for _, v := range vs {
					fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\n", v.Version, v.Seq, dash(v.By), dash(v.Via), len(v.Text))
				}
				return tw.Flush()
			})
		},
	}
}

func policyRollbackCmd() *cobra.Command {
	var to uint64
	c := &cobra.Command{
		Use:   "rollback NAME --to VERSION",
		Short: "Reinstall a kept version of policy set NAME as a new version (policy.set)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if to == 0 {
				return usageError(errors.New("--to VERSION is required (see policy history)"))
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			what := "policy rollback " + pos[0]
			r, err := gateAnswer(c.PolicyRollback(cmd.Context(), pos[0], to))
			if err != nil {
				return err
			}
			return printAnswer(cmd, what, r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "policy %s rolled back to version %d: now version %d (seq %d)%s\n", pos[0], to, r.Version, r.Seq, retryNote(r.Outcome))
				return err
			})
		},
	}
	c.Flags().Uint64Var(&to, "to", 0, "the version to reinstall (required)")
	return c
}
