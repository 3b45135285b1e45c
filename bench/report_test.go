package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResultJSONShape(t *testing.T) {
	h := &Histogram{}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	lr := &LoadResult{Ops: h.Count(), Errors: 2, Elapsed: 2 * time.Second, Hist: h, Path: KVPath.Describe(TargetGate, ModePut),
		ServerCPUs: map[string]float64{"node1": 1, "node2": 0.5, "node3": 0.5}}
	rep := &Report{Results: []Result{NewResult(TargetGate, 16, ModePut, lr)}}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	results, ok := doc["results"].([]any)
	if !ok || len(results) != 1 {
		t.Fatalf("results = %#v, want a list of one", doc["results"])
	}
	r := results[0].(map[string]any)
	want := map[string]float64{"clients": 16, "ops_per_s": 500, "p50_ms": 0.5, "p99_ms": 0.99, "p999_ms": 0.999, "errors": 2}
	for k, v := range want {
		got, ok := r[k].(float64)
		// p50 etc. are bucket upper bounds: within 0.8 % above the exact value.
		if !ok || got < v || got > v*1.008 {
			t.Errorf("%s = %#v, want a number in [%v, %v]", k, r[k], v, v*1.008)
		}
	}
	if r["target"] != "gate" {
		t.Errorf("target = %#v, want \"gate\"", r["target"])
	}
	if r["path"] != KVPath.Describe(TargetGate, ModePut) || !strings.Contains(r["path"].(string), "root token") {
		t.Errorf("path = %#v", r["path"])
	}
	if got := r["server_cpu_s_per_kop"]; got != 2.0 {
		t.Errorf("server_cpu_s_per_kop = %#v, want 2 (2 CPU s over 1000 ops)", got)
	}
	for _, absent := range []string{"failover_ms", "replay_events_per_s", "elections_no_fault"} {
		if _, ok := doc[absent]; ok {
			t.Errorf("%s present in a report without that mode", absent)
		}
	}

	// An empty report still has a results list, never null.
	buf.Reset()
	if err := (&Report{}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"results": []`) {
		t.Fatalf("empty report: %s", buf.String())
	}
}

func TestRatiosPairGateWithReference(t *testing.T) {
	results := []Result{
		{Target: TargetGate, Mode: ModePut, Clients: 1, OpsPerS: 800, P50Ms: 1.2, P99Ms: 3, ServerCPUsPerKop: 3},
		{Target: TargetReference, Mode: ModePut, Clients: 1, OpsPerS: 1000, P50Ms: 1.0, P99Ms: 2, ServerCPUsPerKop: 2},
		{Target: TargetGate, Mode: ModePut, Clients: 16, OpsPerS: 100},      // no reference: no ratio
		{Target: TargetReference, Mode: ModeRead, Clients: 1, OpsPerS: 100}, // other mode
	}
	rs := ComputeRatios(results)
	if len(rs) != 1 {
		t.Fatalf("ratios %+v, want one", rs)
	}
	r := rs[0]
	if r.Clients != 1 || r.OpsPerS != 0.8 || r.P99 != 1.5 || r.P50DeltaMs != 0.2 || r.P99DeltaMs != 1 || r.ServerCPUOp != 1.5 {
		t.Fatalf("ratio %+v", r)
	}
	var buf bytes.Buffer
	rep := &Report{Results: results, Ratios: rs, Settings: Settings{Nodes: 3, BindBase: "127.0.0.51", RouteNote: "spread"}}
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "C=1    ops/s 0.80x   p99 1.50x") {
		t.Fatalf("table lacks the ratio line:\n%s", buf.String())
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestValidateNamesOffendingValues(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Exe = "/bin/true"
	cfg.Modes = []string{"put", "bogus"}
	cfg.Clients = []int{0}
	cfg.BindBase = "10.0.0.1"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{`mode "bogus"`, "client count 0", `bind base "10.0.0.1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	cfg = DefaultConfig()
	cfg.Addr, cfg.Modes = []string{"http://127.0.0.1:8101"}, []string{ModeFailover}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--token") || !strings.Contains(err.Error(), "failover") {
		t.Fatalf("existing cluster without token, with failover: %v", err)
	}
	cfg = DefaultConfig()
	cfg.Exe, cfg.Modes = "/bin/true", []string{ModeQuick}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "no reference binary") {
		t.Fatalf("reference target without a reference binary: %v", err)
	}
	cfg = DefaultConfig()
	cfg.Exe, cfg.ReferenceExe, cfg.Modes = "/bin/true", "/bin/true", []string{ModeQuick}
	if err := cfg.Validate(); err != nil || cfg.Modes[0] != ModePut {
		t.Fatalf("quick: %v, modes %v", err, cfg.Modes)
	}
}

func TestLogLinesFiltersAgentLogs(t *testing.T) {
	dir := t.TempDir()
	c := &Cluster{}
	for i, text := range []string{
		"level=INFO msg=started\nlevel=WARN msg=\"heartbeat timeout reached, starting election\"\n",
		"level=INFO msg=ok\n",
	} {
		a := &Agent{Name: fmt.Sprintf("node%d", i+1), LogPath: filepath.Join(dir, fmt.Sprintf("n%d.log", i))}
		if err := os.WriteFile(a.LogPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Agents = append(c.Agents, a)
	}
	got := c.LogLines([]string{"heartbeat timeout", "election"}, 10)
	if len(got) != 1 || !strings.HasPrefix(got[0], "node1: ") || !strings.Contains(got[0], "starting election") {
		t.Fatalf("log lines %q, want node1's election line only", got)
	}
}
