// Command jepsen runs Dominus fault tests against real processes: a
// kernel of dominus agents on loopback hosts, concurrent clients, a
// seeded nemesis, independent checkers and a report folder per run.
//
//	go run ./jepsen/cmd/jepsen [-smoke] [-scenarios-only] [flags]
//	go run ./jepsen/cmd/jepsen -federation [flags]   (fed.go: a sovereign and domains a, b)
//
// JEPSEN_TIME, JEPSEN_SEED, JEPSEN_NEMESIS (a comma list of faults, or
// all, partition, pause, none) and JEPSEN_WORKLOAD (a comma list of
// workloads with optional weights: kv, caps, kv:3,caps:1) set the
// duration, the seed, the faults and the client activity; flags win over
// the environment. JEPSEN_EVOLVE=1 (or -evolve) runs a governed policy
// evolution through the run and checks it. Exit status: 0 valid, 1 a
// checker or scenario failed, 2 the harness could not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/nemesis"
	"github.com/dominus-kernel/dominus/jepsen/netfault"
	"github.com/dominus-kernel/dominus/jepsen/runner"
	"github.com/dominus-kernel/dominus/jepsen/workload"
)

// smokeKinds: a couple of partitions, a kill -9, added latency and a
// follower that must install a snapshot.
const smokeKinds = "partition-leader,partition-halves,kill,latency,snapshot-lag"

// defaultWorkload runs the kv registers and the capability workload
// together, three kv ops to one capability op.
const defaultWorkload = "kv:3,caps:1"

func main() { os.Exit(run()) }

func run() int {
	var (
		bin       = flag.String("bin", "bin/dominus", "dominus binary")
		reports   = flag.String("reports", "jepsen/reports", "folder for report folders")
		smoke     = flag.Bool("smoke", false, "short run ("+smokeKinds+", 60s) followed by the targeted scenarios")
		scenOnly  = flag.Bool("scenarios-only", false, "run only the targeted scenarios")
		noScen    = flag.Bool("no-scenarios", false, "with -smoke: skip the targeted scenarios")
		planOnly  = flag.Bool("plan", false, "print the schedule the seed gives and exit")
		seedFlag  = flag.String("seed", "", "seed (env JEPSEN_SEED; default: random)")
		timeFlag  = flag.String("time", "", "time of ops under faults (env JEPSEN_TIME; default 3m, smoke 60s)")
		nemFlag   = flag.String("nemesis", "", "faults, comma-separated (env JEPSEN_NEMESIS; default all, smoke "+smokeKinds+")")
		wlFlag    = flag.String("workload", "", "workloads, comma-separated with optional weights (env JEPSEN_WORKLOAD; default "+defaultWorkload+"; known: "+strings.Join(workload.Names(), ", ")+")")
		clients   = flag.Int("clients", 5, "concurrent client processes")
		opTimeout = flag.Duration("op-timeout", 2*time.Second, "bound on one client op")
		rate      = flag.Float64("rate", 0, "ops/s per client (0: as fast as answered)")
		ipPrefix  = flag.String("ip-prefix", "127.0.90", "nodes listen on PREFIX.1, PREFIX.2, ...")
		nodes     = flag.Int("nodes", 3, "number of nodes")
		plainHTTP = flag.Bool("http-insecure", false, "serve the API without TLS (node-to-node traffic keeps mutual TLS)")
		keep      = flag.Bool("keep-data", false, "keep the agents' data dirs of valid runs")
		chain     = flag.String("chain", netfault.DefaultChain, "iptables chain of this run (one run per chain at a time)")
		chkTime   = flag.Duration("check-timeout", 0, "bound on each checker; a checker that times out fails (default 2m, smoke 30s)")
		evolve    = flag.Bool("evolve", false, "start a governed evolution of a policy set at set-up and check every node agrees on it at the end (env JEPSEN_EVOLVE=1; see jepsen/README.md)")
		fed       = flag.Bool("federation", false, "a federation run (env JEPSEN_FEDERATION=1): sovereign and domains a, b; nemesis "+nemesis.KindNames(nemesis.FedKinds)+"; see jepsen/README.md")
	)
	flag.Parse()
	if *fed || os.Getenv("JEPSEN_FEDERATION") == "1" {
		return runFederation()
	}

	var seed int64
	if s := pick(*seedFlag, "JEPSEN_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "jepsen: seed %q: %v\n", s, err)
			return 2
		}
		seed = v
	} else {
		seed = rand.Int64N(1_000_000_000)
	}
	dur := 3 * time.Minute
	kindsText := "all"
	if *smoke {
		dur, kindsText = 60*time.Second, smokeKinds
	}
	checkTimeout := 2 * time.Minute
	if *smoke {
		checkTimeout = 30 * time.Second
	}
	if *chkTime > 0 {
		checkTimeout = *chkTime
	}
	if s := pick(*timeFlag, "JEPSEN_TIME"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, e2 := strconv.Atoi(s); e2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "jepsen: time %q: want a duration like 3m or seconds\n", s)
			return 2
		}
		dur = d
	}
	if s := pick(*nemFlag, "JEPSEN_NEMESIS"); s != "" {
		kindsText = s
	}
	kinds, err := nemesis.ParseKinds(kindsText)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jepsen:", err)
		return 2
	}
	wlText := defaultWorkload
	if s := pick(*wlFlag, "JEPSEN_WORKLOAD"); s != "" {
		wlText = s
	}
	wl, err := workload.Parse(wlText)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jepsen:", err)
		return 2
	}
	if *planOnly {
		sched := nemesis.Plan(nemesis.PlanConfig{Seed: seed, Kinds: kinds, Duration: dur, Nodes: *nodes})
		fmt.Printf("seed %d, %s, nemesis %s: %d steps\n", seed, dur, nemesis.KindNames(kinds), len(sched.Steps))
		for _, st := range sched.Steps {
			fmt.Println(st)
		}
		return 0
	}
	if _, err := os.Stat(*bin); err != nil {
		fmt.Fprintf(os.Stderr, "jepsen: %v (run make build, or pass -bin)\n", err)
		return 2
	}

	repro := fmt.Sprintf("JEPSEN_SEED=%d JEPSEN_TIME=%s JEPSEN_NEMESIS=%s make jepsen", seed, dur, nemesis.KindNames(kinds))
	label := "jepsen"
	if *smoke {
		label = "smoke"
		repro = fmt.Sprintf("JEPSEN_SEED=%d JEPSEN_TIME=%s JEPSEN_NEMESIS=%s make jepsen-smoke", seed, dur, nemesis.KindNames(kinds))
	}
	if wlText != defaultWorkload {
		repro = "JEPSEN_WORKLOAD=" + wlText + " " + repro
	}
	withEvolve := *evolve || os.Getenv("JEPSEN_EVOLVE") == "1"
	if withEvolve {
		repro = "JEPSEN_EVOLVE=1 " + repro
	}
	cfg := runner.Config{
		Bin: *bin, ReportsDir: *reports, Label: label, Seed: seed, Duration: dur, Kinds: kinds, Workload: wl,
		RequireAllKinds: *smoke, Clients: *clients, OpTimeout: *opTimeout, RatePerClient: *rate,
		Nodes: *nodes, IPPrefix: *ipPrefix, HTTPS: !*plainHTTP, CheckTimeout: checkTimeout, KeepData: *keep,
		Repro: repro, Chain: *chain, Evolve: withEvolve,
	}

	// SIGINT/SIGTERM: cancel the run, which heals, removes its iptables
	// chain and stops its agents before returning. A second signal
	// removes the chain at once and exits (agents die with the harness).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "jepsen: %s: stopping, healing and cleaning up (again to abort)\n", s)
		cancel()
		<-sigs
		_ = netfault.Remove("", *chain)
		fmt.Fprintln(os.Stderr, "jepsen: aborted; iptables chain removed")
		os.Exit(130)
	}()

	fmt.Printf("jepsen: seed %d (replay: JEPSEN_SEED=%d)\n", seed, seed)
	valid := true
	passed, failed := 0, 0
	if !*scenOnly {
		res, err := runner.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jepsen:", err)
			return 2
		}
		valid = res.Valid
		for _, v := range res.Verdicts {
			if v.Valid {
				passed++
			} else {
				failed++
			}
		}
	}
	if (*smoke && !*noScen) || *scenOnly {
		sr, err := runner.RunScenarios(ctx, cfg, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jepsen: scenarios:", err)
			return 2
		}
		for _, r := range sr.Results {
			mark := "PASS"
			if !r.Valid {
				mark = "FAIL"
				failed++
			} else {
				passed++
			}
			fmt.Printf("  %s scenario %-22s %s\n", mark, r.Name, r.Summary)
		}
		valid = valid && sr.Valid
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		fmt.Fprintln(os.Stderr, "jepsen: interrupted")
		return 1
	}
	if !valid {
		fmt.Printf("jepsen: INVALID; reproduce with:\n  %s\n", repro)
		fmt.Printf("jepsen: %d passed, %d failed\n", passed, failed)
		return 1
	}
	fmt.Println("jepsen: VALID")
	fmt.Printf("jepsen: %d passed, %d failed\n", passed, failed)
	return 0
}

func pick(flagValue, env string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv(env)
}
