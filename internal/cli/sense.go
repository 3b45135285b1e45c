package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dominus-kernel/dominus/client"
	"github.com/spf13/cobra"
)

func init() {
	register(baselineCmd)
	register(trustCmd)
	register(postureCmd)
	register(signalCmd)
}

func baselineCmd() *cobra.Command {
	var baselineAsOf string
	show := &cobra.Command{
		Use:   "show ENTITY",
		Short: "Show an entity's behavioural baseline and its deviation now",
		Long: `show prints the entity's baseline: how many ledger-time windows it was
built from (observations), whether it is established (comparisons start
then), and the deviation of the current window — per metric and overall,
in hundredths of a deviation unit over tolerance (0 = normal).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			b, err := c.Baseline(cmd.Context(), pos[0], client.WithAsOf(baselineAsOf))
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, b)
			}
			noteAsOf(cmd, b.AsOf)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Entity\t%s\nObservations\t%d windows\nEstablished\t%v\nDeviation\t%d\nEscalate\t%v\n", b.Entity, b.Observations, b.Established, b.Deviation, b.Escalate)
			fmt.Fprintln(tw, "\nMETRIC\tVALUE\tMEAN\tSCALE\tSCORE")
			for _, m := range b.Metrics {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", m.Metric, m.Value, m.Mean, m.Scale, m.Score)
			}
			return tw.Flush()
		},
	}
	asOfFlag(show, &baselineAsOf)
	return group("baseline", "Inspect behavioural baselines", show)
}

func trustCmd() *cobra.Command {
	var asOf string
	show := &cobra.Command{
		Use:   "show ENTITY",
		Short: "Show an entity's trust score (0-1000) and tier (probation, standard, trusted)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			t, err := c.Trust(cmd.Context(), pos[0], client.WithAsOf(asOf))
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, t)
			}
			noteAsOf(cmd, t.AsOf)
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: trust %d, tier %s\n", t.Entity, t.Score, t.Tier)
			return err
		},
	}
	var delta int64
	var reason string
	adjust := &cobra.Command{
		Use:   "adjust ENTITY --delta N --reason R",
		Short: "A governed trust adjustment (a token holding trust.adjust), ledgered with its reason",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := requireString("reason", reason); err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.TrustAdjust(cmd.Context(), pos[0], delta, reason))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "trust adjustment", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: trust %d, tier %s (seq %d)\n", r.Entity, r.Score, r.Tier, r.Seq)
				return err
			})
		},
	}
	adjust.Flags().Int64Var(&delta, "delta", 0, "points to add (negative to lower)")
	adjust.Flags().StringVar(&reason, "reason", "", "why, recorded in the ledger (required)")
	asOfFlag(show, &asOf)
	return group("trust", "Inspect and adjust entity trust", show, adjust)
}

func postureCmd() *cobra.Command {
	var asOf string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the kernel's posture (relaxed, normal, elevated, critical) and its score",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.Posture(cmd.Context(), client.WithAsOf(asOf))
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, p)
			}
			noteAsOf(cmd, p.AsOf)
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "posture %s (score %d) signals %s\n", p.Level, p.Score, formatSignals(p.Signals))
			return err
		},
	}
	history := &cobra.Command{
		Use:   "history",
		Short: "List the archived postures, oldest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			hs, err := c.PostureHistory(cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd, hs, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tLEVEL\tSCORE\tSIGNALS")
				for _, h := range hs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", h.Seq, h.Time.Format(time.RFC3339), h.Level, h.Score, formatSignals(h.Signals))
				}
				return tw.Flush()
			})
		},
	}
	var signals []string
	var k int
	similar := &cobra.Command{
		Use:   "similar [--signal kind=value ...] [-k N]",
		Short: "Have we seen this before, and what happened next? (nearest archived postures)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vals := map[string]int64{}
			for _, s := range signals {
				kind, v, ok := strings.Cut(s, "=")
				var n int64
				if _, err := fmt.Sscan(v, &n); !ok || err != nil {
					return usageError(fmt.Errorf("--signal %q: want kind=integer", s))
				}
				vals[kind] = n
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ms, err := c.PostureSimilar(cmd.Context(), vals, k)
			if err != nil {
				return err
			}
			return printList(cmd, ms, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DISTANCE\tSEQ\tLEVEL\tSIGNALS\tNEXT")
				for _, m := range ms {
					next := "-"
					if m.Next != nil {
						next = fmt.Sprintf("%s at seq %d", m.Next.Level, m.Next.Seq)
					}
					fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", m.Distance, m.Snapshot.Seq, m.Snapshot.Level, formatSignals(m.Snapshot.Signals), next)
				}
				return tw.Flush()
			})
		},
	}
	similar.Flags().StringSliceVar(&signals, "signal", nil, "signal value to match, kind=value (default: the current posture's)")
	similar.Flags().IntVarP(&k, "k", "k", 3, "how many matches")
	asOfFlag(show, &asOf)
	return group("posture", "Show the posture, its history, and similar past postures", show, history, similar)
}

func formatSignals(m map[string]int64) string {
	var parts []string
	for _, k := range []string{"incident_level", "market_volatility", "error_budget_burn", "threat_level"} {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func signalCmd() *cobra.Command {
	var kind string
	var value int64
	ingest := &cobra.Command{
		Use:   "ingest --kind KIND --value N",
		Short: "Feed an external signal (a token holding signal.ingest); it moves the posture",
		Long: `ingest records one typed external signal: incident_level (0-100),
market_volatility (0-100), error_budget_burn (0-1000) or threat_level
(0-100). incident_level 100 alone drives the posture to critical. Unknown
kinds and out-of-range values are denied and change nothing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireString("kind", kind); err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.Signal(cmd.Context(), kind, value))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "signal "+kind, r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s=%d: posture %s (score %d, seq %d)\n", kind, value, r.Level, r.Score, r.Seq)
				return err
			})
		},
	}
	ingest.Flags().StringVar(&kind, "kind", "", "signal kind (required)")
	ingest.Flags().Int64Var(&value, "value", 0, "signal value")
	return group("signal", "Feed external signals into the posture", ingest)
}
