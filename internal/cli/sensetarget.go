package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
)

func init() { register(senseCmd) }

// senseCmd is `dominus sense target show|set`.
func senseCmd() *cobra.Command {
	return group("sense", "Govern sensing: the false-alarm target of the deviation model (protocol 6)",
		group("target", "Show and set the false-alarm target (alerts per entity-day)", senseTargetShowCmd(), senseTargetSetCmd()))
}

func senseTargetShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show the false-alarm target in force (audit.read or operator.manage)",
		Long: `show prints the governed false-alarm target of sensing: the alerts per
entity-day at normal posture the deviation model is calibrated to, in
thousandths (100 = 0.1 a day), and the sensing model the gate runs (1
before protocol 6, 2 from it; the target is used by model 2).

  --json: {"alerts_per_day_milli": N, "protocol": N, "model": N}`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			t, err := c.SenseTarget(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, t)
			}
			return printSenseTarget(cmd, *t)
		},
	}
}

func printSenseTarget(cmd *cobra.Command, t api.SenseTarget) error {
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "ALERTS PER ENTITY-DAY  %d.%03d\nPROTOCOL               %d\nMODEL                  %d\n",
		t.AlertsPerDayMilli/1000, t.AlertsPerDayMilli%1000, t.Protocol, t.Model)
	return err
}

func senseTargetSetCmd() *cobra.Command {
	var milli int64
	var rid string
	c := &cobra.Command{
		Use:   "set --alerts-per-day-milli N",
		Short: "Set the false-alarm target (operator.manage on sense); every node applies it at the same entry",
		Long: `set changes the false-alarm target through the ledger (sense.target):

  --alerts-per-day-milli N  alerts per entity-day at normal posture, in
                            thousandths: 1..1000000 (default 100 = 0.1)

A lower target raises the evidence an alert needs; posture scales it
(relaxed ×0.5, elevated ×4, critical ×16). It needs a token with
operator.manage on sense and a kernel at protocol 6 or later (denied
unsupported_protocol before).

Exit status: 0 set, 2 denied, 1 error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if milli < 1 || milli > 1_000_000 {
				return usageError(fmt.Errorf("--alerts-per-day-milli %d: want 1..1000000", milli))
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.SenseTargetSet(cmd.Context(), api.SenseTargetRequest{AlertsPerDayMilli: milli}, requestOpts(rid)...))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "sense target set", r, r.Outcome, func() error {
				if _, err := fmt.Fprintf(cmd.OutOrStdout(), "sense target set at seq %d%s\n", r.Seq, retryNote(r.Outcome)); err != nil {
					return err
				}
				return printSenseTarget(cmd, r.Target)
			})
		},
	}
	c.Flags().Int64Var(&milli, "alerts-per-day-milli", 0, "alerts per entity-day at normal posture, thousandths (1..1000000)")
	requestIDFlag(c, &rid)
	return c
}
