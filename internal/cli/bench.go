package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/bench"
)

func init() { register(benchCmd) }

func benchCmd() *cobra.Command {
	cfg := bench.DefaultConfig()
	var (
		clients, modes, targets string
		revSizes                string
		bindBase, op            string
		referenceExe            string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the kernel against a reference state machine on local clusters",
		Long: `bench starts fresh local clusters of dominus agent processes on loopback
(mutual TLS between nodes, temp data dirs) and drives a closed-loop load
through the public client: C workers, each issuing requests one after the
other, through one shared keep-alive HTTP client, spread round-robin over
all nodes (--route leader: all to the leader). Each target at each client
count gets its own cluster: "gate" is the real kernel (this binary),
"reference" is the same command built with -tags benchreference
(--reference-binary, by default dominus-bench-reference beside this
binary; make build makes both): a trivial count+hash state machine behind
the same front end, Raft and storage. It prints throughput, p50/p99/p99.9
latency, errors and CPU seconds, and the gate/reference ratios.

The request (--op) is by default the agents' path: POST /v1/syscall
kv.put with a capability token per client, granted before the run. The
reference records no grants, so it takes PUT /v1/kv with the root token
(on /v1/syscall one root entity would hit the per-entity rate limit).
--op kv measures PUT /v1/kv with the root token on both targets.

Modes (--mode, comma-separated):
  put (default; alias quick)  kv.put of --value-bytes values
  read                        kv.get (a ledgered read) of pre-written keys
  mixed                       put and get alternating
  failover                    median of --failover-trials kill -9 of the leader
                              to the first committed write
  replay                      write --replay-events puts, stop the cluster and
                              time 'dominus audit replay --data-dir'
  elections                   term increments during a no-fault run of
                              --elections-duration under load
  snapshot                    ledger snapshot size, encode, write+fsync and
                              restore time after --ledger-events gated puts
                              (in-process ledger, no cluster)
  memory                      ledger heap per 1000 capabilities and per 1M
                              gated puts (in-process)
  revocation                  revoke and descendant-check cost against
                              subtree size (--revocation-sizes, in-process)

--addr URL[,URL...] measures an existing cluster instead (gate only, with
--token; load modes only).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if cfg.Clients, err = parseInts(clients); err != nil {
				return usageError(fmt.Errorf("--clients: %w", err))
			}
			if cfg.RevocationSizes, err = parseInts(revSizes); err != nil {
				return usageError(fmt.Errorf("--revocation-sizes: %w", err))
			}
			cfg.Modes = splitList(modes)
			cfg.Targets = splitList(targets)
			cfg.BindBase = bindBase
			p, ok := bench.PathByName(op)
			if !ok {
				return usageError(fmt.Errorf("--op %q is not syscall or kv", op))
			}
			cfg.Path = p
			if cmd.Flags().Changed("addr") {
				cc := clientConfig(cmd)
				cfg.Addr = splitList(globalsOf(cmd).addr)
				cfg.Token, cfg.CACert = cc.Token, cc.CACert
			} else {
				if cfg.Exe, err = os.Executable(); err != nil {
					return err
				}
				cfg.ReferenceExe = referenceExe
				if !cmd.Flags().Changed("reference-binary") {
					cfg.ReferenceExe = filepath.Join(filepath.Dir(cfg.Exe), bench.ReferenceBinaryName)
				}
			}
			cfg.Log = cmd.ErrOrStderr()
			cfg.Version = Version
			if err := cfg.Validate(); err != nil {
				return usageError(err)
			}
			rep, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				if rep != nil && len(rep.Results) > 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "bench: partial results before the failure:")
					_ = rep.WriteTable(cmd.ErrOrStderr())
				}
				return err
			}
			if jsonMode(cmd) {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each load run (per target and client count)")
	fl.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unrecorded load before each measured run")
	fl.StringVar(&clients, "clients", "1,16,256", "comma-separated client counts")
	fl.StringVar(&modes, "mode", bench.ModePut, "comma-separated: put (quick), read, mixed, failover, replay, elections")
	fl.StringVar(&targets, "targets", "gate,reference", "comma-separated targets of the load modes: gate, reference")
	fl.StringVar(&referenceExe, "reference-binary", "", "binary of the reference target's agents, built with -tags "+bench.ReferenceBuildTag+" (default: "+bench.ReferenceBinaryName+" beside this binary)")
	fl.StringVar(&op, "op", bench.DefaultPath.Name, "syscall (POST /v1/syscall with a capability token per client) or kv (PUT /v1/kv with the root token)")
	fl.StringVar(&cfg.Route, "route", cfg.Route, "spread (round-robin over all nodes) or leader")
	fl.IntVar(&cfg.ValueBytes, "value-bytes", cfg.ValueBytes, "size of each written value")
	fl.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "nodes per local cluster")
	fl.StringVar(&bindBase, "bind-base", cfg.BindBase, "first loopback IP: the gate cluster uses --nodes IPs from here, the reference cluster the next --nodes")
	fl.IntVar(&cfg.HTTPPort, "http-port", cfg.HTTPPort, "HTTP API port on every node IP")
	fl.IntVar(&cfg.RaftPort, "raft-port", cfg.RaftPort, "Raft/RPC port on every node IP")
	fl.Float64Var(&cfg.RaftTimeoutScale, "raft-timeout-scale", cfg.RaftTimeoutScale, "passed to every agent (multiplies Raft heartbeat/election/lease timeouts)")
	fl.IntVar(&cfg.FailoverTrials, "failover-trials", cfg.FailoverTrials, "kills of the leader in failover mode")
	fl.IntVar(&cfg.ReplayEvents, "replay-events", cfg.ReplayEvents, "puts written before the replay in replay mode")
	fl.IntVar(&cfg.LedgerEvents, "ledger-events", cfg.LedgerEvents, "gated puts applied before the snapshot and memory figures")
	fl.StringVar(&revSizes, "revocation-sizes", "10,1000,100000", "comma-separated subtree sizes of the revocation mode")
	fl.IntVar(&cfg.ReplayClients, "replay-clients", cfg.ReplayClients, "concurrent writers building the replay ledger")
	fl.DurationVar(&cfg.ElectionsDuration, "elections-duration", cfg.ElectionsDuration, "length of the no-fault run in elections mode")
	fl.IntVar(&cfg.ElectionsClients, "elections-clients", cfg.ElectionsClients, "clients of the load during the elections run")
	fl.StringVar(&cfg.Dir, "dir", "", "parent of the clusters' temp dirs (default: the system temp dir)")
	return cmd
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no client count")
	}
	return out, nil
}
