package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/cluster"
	"github.com/dominus-kernel/dominus/jepsen/history"
	"github.com/dominus-kernel/dominus/jepsen/scenario"
)

// ScenarioResult is the outcome of RunScenarios.
type ScenarioResult struct {
	Dir     string            `json:"dir"`
	Valid   bool              `json:"valid"`
	Results []scenario.Result `json:"results"`
}

// RunScenarios runs the given scenarios (nil: scenario.All) in order on
// one fresh kernel and writes scenarios.json and the agents' logs to a
// report folder.
func RunScenarios(ctx context.Context, cfg Config, list []scenario.Scenario) (*ScenarioResult, error) {
	cfg.defaults()
	if list == nil {
		list = scenario.All
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	dir, err := filepath.Abs(filepath.Join(cfg.ReportsDir, fmt.Sprintf("%s-scenarios-seed%d", stamp, cfg.Seed)))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	clock := history.NewClock()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Out, "[%7.2fs] scenarios: %s\n", float64(clock.Now())/1e9, fmt.Sprintf(format, args...))
	}
	res := &ScenarioResult{Dir: dir}
	prefix := cfg.IPPrefix
	if prefix == "" {
		prefix = "127.0.90"
	}
	cl, err := cluster.New(ctx, cluster.Config{Bin: cfg.Bin, Dir: dir, IPPrefix: prefix, Nodes: cfg.Nodes,
		BindPort: cfg.BindPort, HTTPPort: cfg.HTTPPort, HTTPS: cfg.HTTPS, Now: clock.Now, Logf: logf})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	fail := func(err error) (*ScenarioResult, error) {
		res.Results = append(res.Results, scenario.Result{Name: "setup", Summary: err.Error()})
		_ = writeJSON(filepath.Join(dir, "scenarios.json"), res)
		return res, nil
	}
	if err := cl.StartAll(); err != nil {
		return fail(err)
	}
	if err := cl.Init(ctx, 60*time.Second); err != nil {
		return fail(err)
	}
	if _, err := cl.WaitConverged(ctx, 30*time.Second); err != nil {
		return fail(err)
	}
	env := scenario.Env{Cluster: cl, Seed: cfg.Seed, Dir: dir, Logf: logf}
	res.Valid = true
	for _, s := range list {
		if ctx.Err() != nil {
			res.Valid = false
			res.Results = append(res.Results, scenario.Result{Name: s.Name, Summary: "not run: " + ctx.Err().Error()})
			continue
		}
		start := time.Now()
		r := s.Run(ctx, env)
		mark := "PASS"
		if !r.Valid {
			mark = "FAIL"
			res.Valid = false
		}
		logf("%s %s (%s): %s", mark, s.Name, time.Since(start).Round(100*time.Millisecond), r.Summary)
		for _, d := range r.Details {
			logf("    %s", d)
		}
		res.Results = append(res.Results, r)
	}
	cl.Close()
	for _, e := range cl.Exits() {
		if !e.Expected {
			res.Valid = false
			res.Results = append(res.Results, scenario.Result{Name: "process-exits", Summary: fmt.Sprintf("%s exited on its own: %s", e.Node, e.Status)})
		}
	}
	if err := writeJSON(filepath.Join(dir, "scenarios.json"), res); err != nil {
		return res, err
	}
	if res.Valid && !cfg.KeepData {
		os.RemoveAll(filepath.Join(dir, "data"))
		for _, pattern := range []string{"snapshot*.bin"} {
			matches, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, m := range matches {
				os.Remove(m)
			}
		}
	}
	var names []string
	for _, r := range res.Results {
		names = append(names, r.Name)
	}
	logf("%d scenarios (%s): valid=%v; report %s", len(res.Results), strings.Join(names, ", "), res.Valid, dir)
	return res, nil
}
