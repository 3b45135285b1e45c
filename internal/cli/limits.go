package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
)

// operatorLimitsCmd is `dominus operator limits show|set`.
func operatorLimitsCmd() *cobra.Command {
	return group("limits", "Show and set the replicated bounds on state and rates (protocol 4)",
		limitsShowCmd(), limitsSetCmd())
}

func limitsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show the limits in force (audit.read or operator.manage)",
		Long: `show prints the replicated limits in force, defaults filled in: the
dedup entries each caller may hold, the bound on the kv store's bytes (and
what it holds now), and each entity's own rate. An entity without a rate
gets the node's default (1,000 calls per second).

  --json: {"dedup_per_caller": N, "kv_bytes": N, "kv_bytes_used": N,
           "rates": [{"entity", "per_second"}], "evolve_auto_promote": "never"|"tightening"}`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.Limits(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, l)
			}
			return printLimits(cmd, *l)
		},
	}
}

func printLimits(cmd *cobra.Command, l api.Limits) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "DEDUP PER CALLER\t%d\n", l.DedupPerCaller)
	fmt.Fprintf(tw, "KV BYTES\t%d (%d used)\n", l.KVBytes, l.KVBytesUsed)
	if l.EvolveAutoPromote != "" {
		fmt.Fprintf(tw, "EVOLUTIONS PROMOTED BY THE KERNEL\t%s\n", l.EvolveAutoPromote)
	}
	if len(l.Rates) > 0 {
		fmt.Fprintln(tw, "\nENTITY\tPER SECOND")
		for _, r := range l.Rates {
			fmt.Fprintf(tw, "%s\t%d\n", r.Entity, r.PerSecond)
		}
	}
	return tw.Flush()
}

// parseRate reads ENTITY=N/s (or ENTITY=N); N=0 removes the entity's rate.
func parseRate(s string) (api.EntityRate, error) {
	ent, val, ok := strings.Cut(s, "=")
	if !ok || ent == "" || val == "" {
		return api.EntityRate{}, usageError(fmt.Errorf("--rate %q: want ENTITY=N/s", s))
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(val, "/s"), 10, 64)
	if err != nil || n < 0 {
		return api.EntityRate{}, usageError(fmt.Errorf("--rate %q: want ENTITY=N/s with N a whole number >= 0", s))
	}
	return api.EntityRate{Entity: ent, PerSecond: n}, nil
}

func limitsSetCmd() *cobra.Command {
	var dedup, kvBytes int64
	var rates []string
	var rid, autoPromote string
	c := &cobra.Command{
		Use:   "set [--dedup-per-caller N] [--kv-bytes N] [--rate ENTITY=N/s ...] [--evolve-auto-promote never|tightening]",
		Short: "Set replicated limits (operator.manage); every node applies them at the same entry",
		Long: `set changes the replicated limits through the ledger, so every node applies
the same bounds from the same entry (they are never per-node flags):

  --dedup-per-caller N  request ids each caller's dedup window holds; a
                        caller at its quota is denied quota_exceeded
  --kv-bytes N          bound on the bytes of keys and values the kv store
                        holds; a write past it is denied quota_exceeded
  --rate ENTITY=N/s     the entity's calls per second on every
                        authenticated route (HTTP 429 rate_limited past
                        it); N=0 removes it. Repeatable.
  --evolve-auto-promote K
                        which evolutions the kernel promotes itself once
                        their last step succeeds: never (the default: a
                        human promotes every one) or tightening (those
                        that relaxed no decision, in shadow or in their
                        backtest); protocol 8

Flags not given keep their values. It needs a token with operator.manage and
a kernel at protocol 4 or later (denied unsupported_protocol before).

Exit status: 0 set, 2 denied, 1 error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.LimitsRequest{DedupPerCaller: dedup, KVBytes: kvBytes, EvolveAutoPromote: autoPromote}
			if autoPromote != "" && autoPromote != "never" && autoPromote != "tightening" {
				return usageError(fmt.Errorf("--evolve-auto-promote %q: want never or tightening", autoPromote))
			}
			if dedup < 0 || kvBytes < 0 {
				return usageError(fmt.Errorf("--dedup-per-caller and --kv-bytes must be positive"))
			}
			for _, s := range rates {
				r, err := parseRate(s)
				if err != nil {
					return err
				}
				req.Rates = append(req.Rates, r)
			}
			if dedup == 0 && kvBytes == 0 && len(req.Rates) == 0 && autoPromote == "" {
				return usageError(fmt.Errorf("nothing to set: give --dedup-per-caller, --kv-bytes, --rate or --evolve-auto-promote"))
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.LimitsSet(cmd.Context(), req, requestOpts(rid)...))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "limits set", r, r.Outcome, func() error {
				if _, err := fmt.Fprintf(cmd.OutOrStdout(), "limits set at seq %d%s\n", r.Seq, retryNote(r.Outcome)); err != nil {
					return err
				}
				return printLimits(cmd, r.Limits)
			})
		},
	}
	c.Flags().Int64Var(&dedup, "dedup-per-caller", 0, "request ids each caller's dedup window holds")
	c.Flags().Int64Var(&kvBytes, "kv-bytes", 0, "bound on the kv store's bytes")
	c.Flags().StringArrayVar(&rates, "rate", nil, "ENTITY=N/s: an entity's calls per second (0 removes); repeatable")
	c.Flags().StringVar(&autoPromote, "evolve-auto-promote", "", "never or tightening: which evolutions the kernel promotes without a human (protocol 8)")
	requestIDFlag(c, &rid)
	return c
}
