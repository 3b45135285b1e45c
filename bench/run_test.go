package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/bench"
)

// freePort returns a TCP port that is free on every one of ips now.
func freePort(t *testing.T, ips []string) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		ln.Close()
		for _, l := range held {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return 0
}

// TestRealRunGateOneClient starts a real 3-node gate cluster (copies of
// this test binary acting as `dominus agent`), drives one client for one
// second, and checks the report: ops were measured, nothing failed, the
// percentiles are ordered, every agent's CPU was accounted.
func TestRealRunGateOneClient(t *testing.T) {
	ips := []string{"127.0.0.231", "127.0.0.232", "127.0.0.233"}
	cfg := bench.DefaultConfig()
	cfg.Exe = os.Args[0]
	cfg.Env = []string{"DOMINUS_BENCH_TEST_AS_CLI=1"}
	cfg.Dir = t.TempDir()
	cfg.BindBase = ips[0]
	cfg.HTTPPort = freePort(t, ips)
	cfg.RaftPort = freePort(t, ips)
	cfg.Clients = []int{1}
	cfg.Targets = []string{bench.TargetGate}
	cfg.Duration = time.Second
	cfg.Warmup = 200 * time.Millisecond
	var log bytes.Buffer
	cfg.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	rep, err := bench.Run(ctx, cfg)
	t.Logf("run took %s; progress:\n%s", time.Since(start), log.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	r := rep.Results[0]
	t.Logf("result %+v", r)
	if r.Target != bench.TargetGate || r.Clients != 1 || r.Mode != bench.ModePut {
		t.Errorf("result is %s/%d/%s, want gate/1/put", r.Target, r.Clients, r.Mode)
	}
	if r.Ops < 10 || r.OpsPerS <= 0 {
		t.Errorf("%d ops (%.1f/s) in one second: the load did not run", r.Ops, r.OpsPerS)
	}
	if r.Errors != 0 {
		t.Errorf("%d errors, first: %s", r.Errors, r.FirstErr)
	}
	if !(0 < r.P50Ms && r.P50Ms <= r.P99Ms && r.P99Ms <= r.P999Ms && r.P999Ms <= r.MaxMs) {
		t.Errorf("percentiles out of order: p50 %v p99 %v p99.9 %v max %v", r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	}
	if len(r.ServerCPUs) != 3 {
		t.Errorf("server CPU of %d agents, want 3: %v", len(r.ServerCPUs), r.ServerCPUs)
	}
	for name, s := range r.ServerCPUs {
		if s <= 0 {
			t.Errorf("agent %s used %v CPU s under load", name, s)
		}
	}
	if r.Path != bench.SyscallPath.Describe(bench.TargetGate, bench.ModePut) || !strings.Contains(r.Path, "capability token") {
		t.Errorf("path %q does not say what was measured", r.Path)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("JSON report does not parse to one result: %v\n%s", err, buf.String())
	}
	for _, k := range []string{"target", "clients", "ops_per_s", "p50_ms", "p99_ms", "p999_ms", "errors"} {
		if _, ok := doc.Results[0][k]; !ok {
			t.Errorf("result lacks %q", k)
		}
	}
	// The clusters' dirs are gone.
	left, _ := os.ReadDir(cfg.Dir)
	if len(left) != 0 {
		t.Errorf("%d entries left in the clusters' parent dir", len(left))
	}
}

// referenceBinary builds cmd/dominus with the reference build tag into a
// test temp dir.
func referenceBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), bench.ReferenceBinaryName)
	cmd := exec.Command("go", "build", "-tags", bench.ReferenceBuildTag, "-o", out, "./cmd/dominus")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", bench.ReferenceBuildTag, err, b)
	}
	return out
}

// TestRealRunReference builds the reference binary, starts a 3-node
// cluster of it and checks every agent announces the reference state
// machine, then runs the reference target for one second at one client
// and checks the result is reported as the reference.
func TestRealRunReference(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary and starts real clusters")
	}
	ips := []string{"127.0.0.234", "127.0.0.235", "127.0.0.236"}
	ref := referenceBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cl, err := bench.StartCluster(ctx, bench.ClusterConfig{
		Exe: ref, Dir: t.TempDir(), Nodes: 3, FirstIP: ips[0],
		HTTPPort: freePort(t, ips), RaftPort: freePort(t, ips),
	})
	if err != nil {
		t.Fatal(err)
	}
	const warning = "benchmark reference state machine"
	deadline := time.Now().Add(10 * time.Second)
	lines := cl.LogLines([]string{warning}, 10)
	for len(lines) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		lines = cl.LogLines([]string{warning}, 10)
	}
	cl.Close()
	if len(lines) != 3 {
		t.Fatalf("%d of 3 agents logged %q: %q", len(lines), warning, lines)
	}

	cfg := bench.DefaultConfig()
	cfg.Exe = os.Args[0] // checked, not run: only the reference target runs
	cfg.ReferenceExe = ref
	cfg.Dir = t.TempDir()
	cfg.BindBase = "127.0.0.231" // the reference cluster takes the next three: ips
	cfg.HTTPPort = freePort(t, ips)
	cfg.RaftPort = freePort(t, ips)
	cfg.Clients = []int{1}
	cfg.Targets = []string{bench.TargetReference}
	cfg.Duration = time.Second
	cfg.Warmup = 200 * time.Millisecond
	var log bytes.Buffer
	cfg.Log = &log
	rep, err := bench.Run(ctx, cfg)
	t.Logf("progress:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	r := rep.Results[0]
	if r.Target != bench.TargetReference || r.Ops < 10 || r.Errors != 0 || len(r.ServerCPUs) != 3 {
		t.Errorf("result %+v, want the reference target with ops, no errors and 3 agents' CPU", r)
	}
}
