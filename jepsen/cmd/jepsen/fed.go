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
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/nemesis"
	"github.com/dominus-kernel/dominus/jepsen/netfault"
	"github.com/dominus-kernel/dominus/jepsen/runner"
)

// Flags of a federation run only (-federation or JEPSEN_FEDERATION=1).
// The shared flags (-bin, -reports, -seed, -time, -nemesis, -op-timeout,
// -rate, -http-insecure, -keep-data, -chain, -check-timeout, -plan) keep
// their meaning; -nemesis takes the federation kinds.
var (
	fedClientsA  = flag.Int("fed-clients-a", 3, "federation: client processes in domain a (calling b)")
	fedClientsB  = flag.Int("fed-clients-b", 2, "federation: client processes in domain b (calling a)")
	fedSovNodes  = flag.Int("fed-sovereign-nodes", 1, "federation: sovereign nodes (127.0.91.x); domains a and b have 3 each (127.0.92.x, 127.0.93.x)")
	fedLifetime  = flag.Duration("fed-passport-lifetime", 20*time.Second, "federation: the sovereign's --passport-lifetime (the revocation bound is this + 30s)")
	fedRenew     = flag.Duration("fed-renew-every", time.Second, "federation: the domains' --renew-every")
	fedRevokeAt  = flag.Float64("fed-revoke-at", 0.55, "federation: fraction of -time at which b's passport is revoked")
	fedExpiryMax = flag.Duration("fed-expiry-wait", 2*time.Minute, "federation: longest wait after the ops for b's standing to end (to judge b's own gate)")
	fedSmoke     = flag.Bool("fed-smoke", false, "federation: require every requested fault kind to be injected")
)

// fedDefaultKinds: every federation fault.
const fedDefaultKinds = "all"

func flagString(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// runFederation is `jepsen -federation`: one federation run.
func runFederation() int {
	var seed int64
	if s := pick(flagString("seed"), "JEPSEN_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "jepsen: seed %q: %v\n", s, err)
			return 2
		}
		seed = v
	} else {
		seed = rand.Int64N(1_000_000_000)
	}
	dur := 45 * time.Second
	if s := pick(flagString("time"), "JEPSEN_TIME"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, e2 := strconv.Atoi(s); e2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "jepsen: time %q: want a duration like 45s or seconds\n", s)
			return 2
		}
		dur = d
	}
	kindsText := fedDefaultKinds
	if s := pick(flagString("nemesis"), "JEPSEN_NEMESIS"); s != "" {
		kindsText = s
	}
	kinds, err := nemesis.ParseFedKinds(kindsText)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jepsen:", err)
		return 2
	}
	if flagString("plan") == "true" {
		sched := nemesis.FedPlan(nemesis.FedPlanConfig{Seed: seed, Kinds: kinds, Duration: dur, RevokeAt: *fedRevokeAt})
		fmt.Printf("federation: seed %d, %s, nemesis %s: %d steps\n", seed, dur, nemesis.KindNames(kinds), len(sched.Steps))
		for _, st := range sched.Steps {
			fmt.Println(st)
		}
		return 0
	}
	bin := flagString("bin")
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "jepsen: %v (run make build, or pass -bin)\n", err)
		return 2
	}
	opTimeout, _ := time.ParseDuration(flagString("op-timeout"))
	if opTimeout < 3*time.Second {
		opTimeout = 3 * time.Second // a cross-domain call is judged and then shipped: give it room
	}
	rate, _ := strconv.ParseFloat(flagString("rate"), 64)
	checkTimeout, _ := time.ParseDuration(flagString("check-timeout"))
	chain := flagString("chain")
	repro := fmt.Sprintf("go run ./jepsen/cmd/jepsen -federation -seed %d -time %s -nemesis %s", seed, dur, nemesis.KindNames(kinds))
	cfg := runner.FedConfig{
		Bin: bin, ReportsDir: flagString("reports"), Label: "federation", Seed: seed, Duration: dur, Kinds: kinds,
		RequireAllKinds: *fedSmoke, ClientsA: *fedClientsA, ClientsB: *fedClientsB, RatePerClient: rate, OpTimeout: opTimeout,
		SovereignNodes: *fedSovNodes, HTTPS: flagString("http-insecure") != "true", Chain: chain,
		PassportLifetime: *fedLifetime, RenewEvery: *fedRenew, RevokeAt: *fedRevokeAt, MaxExpiryWait: *fedExpiryMax,
		CheckTimeout: checkTimeout, KeepData: flagString("keep-data") == "true", Repro: repro,
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "jepsen: %s: stopping, healing and cleaning up (again to abort)\n", s)
		cancel()
		<-sigs
		_ = netfault.Remove("", chain)
		fmt.Fprintln(os.Stderr, "jepsen: aborted; iptables chain removed")
		os.Exit(130)
	}()

	fmt.Printf("jepsen: federation, seed %d (replay: %s)\n", seed, repro)
	res, err := runner.RunFederation(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jepsen:", err)
		return 2
	}
	passed, failed := 0, 0
	for _, v := range res.Verdicts {
		if v.Valid {
			passed++
		} else {
			failed++
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		fmt.Fprintln(os.Stderr, "jepsen: interrupted")
		return 1
	}
	if !res.Valid {
		fmt.Printf("jepsen: INVALID; reproduce with:\n  %s\n", repro)
		fmt.Printf("jepsen: %d passed, %d failed\n", passed, failed)
		return 1
	}
	fmt.Println("jepsen: VALID")
	fmt.Printf("jepsen: %d passed, %d failed\n", passed, failed)
	return 0
}
