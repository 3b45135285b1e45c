package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets: what a load run is measured against.
const (
	TargetGate      = "gate"      // the real kernel: ledger FSM, archive, everything Dominus adds
	TargetReference = "reference" // same front end, Raft and storage, FSM = count + hash (ReferenceBuildTag)
)

// Result is one closed-loop run: one target at one client count. The
// first seven fields are the contract of `dominus bench --json`.
type Result struct {
	Target   string  `json:"target"`
	Clients  int     `json:"clients"`
	OpsPerS  float64 `json:"ops_per_s"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	P999Ms   float64 `json:"p999_ms"`
	Errors   uint64  `json:"errors"`
	Mode     string  `json:"mode"`
	Path     string  `json:"path"`
	Ops      uint64  `json:"ops"`
	Seconds  float64 `json:"seconds"`
	MeanMs   float64 `json:"mean_ms"`
	MaxMs    float64 `json:"max_ms"`
	FirstErr string  `json:"first_error,omitempty"`
	// CPU seconds used during the measured phase: by this client process,
	// and by each agent process (absent when the cluster is not ours).
	ClientCPUs float64            `json:"client_cpu_s"`
	ServerCPUs map[string]float64 `json:"server_cpu_s,omitempty"`
	// CPU seconds per 1000 successful ops, all agents together.
	ServerCPUsPerKop float64 `json:"server_cpu_s_per_kop,omitempty"`
	// CPU seconds the rest of the machine used during the measured phase
	// (see LoadResult.OtherCPUs): other work sharing the CPUs shows here.
	OtherCPUs float64 `json:"other_cpu_s"`
	// The machine's 1-minute load average before the cluster started
	// (earlier runs of this benchmark included).
	LoadAvg1m float64 `json:"load_avg_1m"`
}

// Ratio compares the gate with the reference at one client count.
type Ratio struct {
	Mode        string  `json:"mode"`
	Clients     int     `json:"clients"`
	OpsPerS     float64 `json:"ops_per_s"`         // gate / reference
	P99         float64 `json:"p99"`               // gate / reference
	P50DeltaMs  float64 `json:"p50_delta_ms"`      // gate - reference
	P99DeltaMs  float64 `json:"p99_delta_ms"`      // gate - reference
	ServerCPUOp float64 `json:"server_cpu_per_op"` // gate / reference, CPU seconds per op
}

// Settings records how a report was produced.
type Settings struct {
	Nodes            int      `json:"nodes"`
	ValueBytes       int      `json:"value_bytes"`
	Clients          []int    `json:"clients"`
	DurationS        float64  `json:"duration_s"`
	WarmupS          float64  `json:"warmup_s"`
	Modes            []string `json:"modes"`
	Targets          []string `json:"targets"`
	Op               string   `json:"op"`
	Route            string   `json:"route"`
	RouteNote        string   `json:"route_note"`
	ClientNote       string   `json:"client_note"`
	BindBase         string   `json:"bind_base,omitempty"`
	Addr             []string `json:"addr,omitempty"`
	RaftTimeoutScale float64  `json:"raft_timeout_scale"`
	HTTP             string   `json:"http"`
	NodeTLS          bool     `json:"node_tls"`
}

// Machine describes where a report was produced.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model,omitempty"`
	MemoryMiB uint64  `json:"memory_mib,omitempty"`
	Kernel    string  `json:"kernel,omitempty"`
	GoVersion string  `json:"go_version"`
	OS        string  `json:"os"`
	Arch      string  `json:"arch"`
	DataFS    string  `json:"data_fs,omitempty"`
	LoadAvg1m float64 `json:"load_avg_1m_at_start"`
}

// ElectionSettings are the Raft timing settings in force (kernel defaults
// times --raft-timeout-scale).
type ElectionSettings struct {
	HeartbeatTimeoutMs   float64 `json:"heartbeat_timeout_ms"`
	ElectionTimeoutMs    float64 `json:"election_timeout_ms"`
	LeaderLeaseTimeoutMs float64 `json:"leader_lease_timeout_ms"`
	RaftTimeoutScale     float64 `json:"raft_timeout_scale"`
}

// FailoverReport is the kill -9 of the leader, repeated.
type FailoverReport struct {
	Target    string           `json:"target"`
	TrialsMs  []float64        `json:"trials_ms"`
	MedianMs  float64          `json:"median_ms"`
	MaxMs     float64          `json:"max_ms"`
	Measure   string           `json:"measure"`
	Elections ElectionSettings `json:"election_settings"`
}

// ReplayReport is the offline replay of one stopped node's data dir.
type ReplayReport struct {
	Events       uint64  `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerS   float64 `json:"events_per_s"`
	CPUs         float64 `json:"cpu_s"`
	ArchiveBytes int64   `json:"archive_bytes"`
	BuildSeconds float64 `json:"build_seconds"` // writing the events through the cluster
	BuildClients int     `json:"build_clients"`
	Command      string  `json:"command"`
	OK           bool    `json:"ok"`
}

// ElectionsReport is a no-fault run under load.
type ElectionsReport struct {
	Seconds      float64 `json:"seconds"`
	Clients      int     `json:"clients"`
	TermStart    uint64  `json:"term_start"`
	TermEnd      uint64  `json:"term_end"`
	TermIncrease uint64  `json:"term_increments"`
	LeaderStart  string  `json:"leader_start"`
	LeaderEnd    string  `json:"leader_end"`
	// LogExcerpt holds the agents' log lines about elections when the
	// term moved (the cluster's dir is removed after the run).
	LogExcerpt []string `json:"log_excerpt,omitempty"`
}

// Report is the output of `dominus bench`.
type Report struct {
	Results []Result `json:"results"`
	Ratios  []Ratio  `json:"ratios"`
	// Figures of the failover, replay and elections modes.
	FailoverMs       *float64         `json:"failover_ms,omitempty"`
	Failover         *FailoverReport  `json:"failover,omitempty"`
	ReplayEventsPerS *float64         `json:"replay_events_per_s,omitempty"`
	Replay           *ReplayReport    `json:"replay,omitempty"`
	ElectionsNoFault *uint64          `json:"elections_no_fault,omitempty"`
	Elections        *ElectionsReport `json:"elections,omitempty"`
	// Offline ledger figures (in-process fsm.Ledger).
	Snapshot   *SnapshotReport   `json:"snapshot,omitempty"`
	Memory     *MemoryReport     `json:"memory,omitempty"`
	Revocation []RevocationPoint `json:"revocation,omitempty"`
	Settings   Settings          `json:"settings"`
	Machine    Machine           `json:"machine"`
	Version    string            `json:"version,omitempty"`
	StartedAt  time.Time         `json:"started_at"`
	Seconds    float64           `json:"seconds"`
}

// ms converts a duration to float milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// round3 rounds to three decimals.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// NewResult turns a load run into a Result.
func NewResult(target string, clients int, mode string, lr *LoadResult) Result {
	secs := lr.Elapsed.Seconds()
	r := Result{
		Target: target, Clients: clients, Mode: mode, Errors: lr.Errors,
		Ops: lr.Ops, Seconds: round3(secs),
		P50Ms: ms(lr.Hist.Quantile(0.50)), P99Ms: ms(lr.Hist.Quantile(0.99)), P999Ms: ms(lr.Hist.Quantile(0.999)),
		MeanMs: ms(lr.Hist.Mean()), MaxMs: ms(lr.Hist.Max()),
		FirstErr: lr.ErrorNote, ClientCPUs: round3(lr.ClientCPUs), OtherCPUs: round3(lr.OtherCPUs),
		Path: lr.Path,
	}
	if secs > 0 {
		r.OpsPerS = math.Round(float64(lr.Ops)/secs*10) / 10
	}
	r.setServerCPU(lr.ServerCPUs)
	return r
}

// setServerCPU records the agents' CPU seconds during a run.
func (r *Result) setServerCPU(used map[string]float64) {
	if used == nil {
		return
	}
	r.ServerCPUs = map[string]float64{}
	var total float64
	for name, d := range used {
		r.ServerCPUs[name] = round3(d)
		total += d
	}
	if r.Ops > 0 {
		r.ServerCPUsPerKop = round3(total / float64(r.Ops) * 1000)
	}
}

// ComputeRatios pairs gate and reference results of the same mode and
// client count.
func ComputeRatios(results []Result) []Ratio {
	type k struct {
		mode    string
		clients int
	}
	ref := map[k]Result{}
	for _, r := range results {
		if r.Target == TargetReference {
			ref[k{r.Mode, r.Clients}] = r
		}
	}
	out := []Ratio{}
	for _, g := range results {
		if g.Target != TargetGate {
			continue
		}
		r, ok := ref[k{g.Mode, g.Clients}]
		if !ok {
			continue
		}
		out = append(out, Ratio{
			Mode: g.Mode, Clients: g.Clients,
			OpsPerS:     ratio(g.OpsPerS, r.OpsPerS),
			P99:         ratio(g.P99Ms, r.P99Ms),
			P50DeltaMs:  round3(g.P50Ms - r.P50Ms),
			P99DeltaMs:  round3(g.P99Ms - r.P99Ms),
			ServerCPUOp: ratio(g.ServerCPUsPerKop, r.ServerCPUsPerKop),
		})
	}
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

// WriteJSON prints r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	if r.Results == nil {
		r.Results = []Result{}
	}
	if r.Ratios == nil {
		r.Ratios = []Ratio{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteTable prints r for people: one row per run, then the gate/reference
// ratio lines and the failover, replay and elections figures.
func (r *Report) WriteTable(w io.Writer) error {
	s := r.Settings
	where := fmt.Sprintf("%d local nodes from %s", s.Nodes, s.BindBase)
	if len(s.Addr) > 0 {
		where = "existing cluster " + strings.Join(s.Addr, ",")
	}
	fmt.Fprintf(w, "dominus bench (%s): %s; %d-byte values; %s per run after %s warm-up; %s\n",
		r.Version, where, s.ValueBytes, secs(s.DurationS), secs(s.WarmupS), s.RouteNote)
	fmt.Fprintf(w, "machine: %d CPUs %s, %d MiB, kernel %s, %s, data on %s, load average %.2f at start\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemoryMiB, r.Machine.Kernel, r.Machine.GoVersion, r.Machine.DataFS, r.Machine.LoadAvg1m)
	paths := map[string]bool{}
	for _, res := range r.Results {
		if !paths[res.Path] {
			paths[res.Path] = true
			fmt.Fprintf(w, "measured path (%s): %s\n", res.Mode, res.Path)
		}
	}
	if len(r.Results) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "mode\ttarget\tclients\tops/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tclient cpu s\tserver cpu s/kop\tother cpu s\t")
		for _, res := range r.Results {
			srv := "-"
			if res.ServerCPUs != nil {
				srv = fmt.Sprintf("%.3f", res.ServerCPUsPerKop)
			}
			other := "-"
			if res.ServerCPUs != nil {
				other = fmt.Sprintf("%.2f", res.OtherCPUs)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%d\t%.2f\t%s\t%s\t\n",
				res.Mode, res.Target, res.Clients, res.OpsPerS, res.P50Ms, res.P99Ms, res.P999Ms, res.Errors, res.ClientCPUs, srv, other)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w, "\ngate / reference:")
		for _, q := range r.Ratios {
			fmt.Fprintf(w, "  %-5s C=%-4d ops/s %.2fx   p99 %.2fx (%+.3f ms)   p50 %+.3f ms   server CPU per op %.2fx\n",
				q.Mode, q.Clients, q.OpsPerS, q.P99, q.P99DeltaMs, q.P50DeltaMs, q.ServerCPUOp)
		}
	}
	for _, res := range r.Results {
		if res.FirstErr != "" {
			fmt.Fprintf(w, "first error (%s %s C=%d): %s\n", res.Mode, res.Target, res.Clients, res.FirstErr)
		}
	}
	if f := r.Failover; f != nil {
		e := f.Elections
		fmt.Fprintf(w, "\nfailover (%s): median %.0f ms, max %.0f ms over %d kill -9 of the leader %v ms\n  %s\n  raft: heartbeat %.0f ms, election %.0f ms, leader lease %.0f ms (scale %g)\n",
			f.Target, f.MedianMs, f.MaxMs, len(f.TrialsMs), f.TrialsMs, f.Measure,
			e.HeartbeatTimeoutMs, e.ElectionTimeoutMs, e.LeaderLeaseTimeoutMs, e.RaftTimeoutScale)
	}
	if p := r.Replay; p != nil {
		fmt.Fprintf(w, "\nreplay: %d events in %.2f s = %.0f events/s (%.2f CPU s, archive %d MiB, ok=%v)\n  %s\n  ledger built in %.1f s by %d clients writing to the leader\n",
			p.Events, p.Seconds, p.EventsPerS, p.CPUs, p.ArchiveBytes>>20, p.OK, p.Command, p.BuildSeconds, p.BuildClients)
	}
	if s := r.Snapshot; s != nil {
		fmt.Fprintf(w, "\nledger snapshot after %d gated puts (%d keys, %d dedup entries; built in %.1f s in-process): %d bytes, encode %.1f ms, write+fsync %.1f ms, restore+verify %.1f ms\n",
			s.Events, s.KVKeys, s.DedupEntries, s.BuildSeconds, s.Bytes, s.EncodeMs, s.WriteMs, s.RestoreMs)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "\nledger memory (Go heap after GC, in-process): %d bytes per 1000 capabilities; %d bytes per 1M gated puts (%d puts leave %d keys and %d dedup entries)\n",
			m.BytesPer1kCaps, m.BytesPer1MEvents, m.Events, m.KVKeys, m.DedupEntries)
	}
	if len(r.Revocation) > 0 {
		fmt.Fprintln(w, "\nrevocation against subtree size (in-process):")
		for _, p := range r.Revocation {
			fmt.Fprintf(w, "  subtree %-7d revoke %.1f µs (the first %.1f µs)   a leaf's syscall after it %.1f µs\n", p.Subtree, p.RevokeUs, p.FirstRevokeUs, p.CheckUs)
		}
	}
	if e := r.Elections; e != nil {
		fmt.Fprintf(w, "\nelections under load, no faults: %d term increments (term %d -> %d; leader %s -> %s) in %.0f s with %d clients\n",
			e.TermIncrease, e.TermStart, e.TermEnd, e.LeaderStart, e.LeaderEnd, e.Seconds, e.Clients)
		for _, l := range e.LogExcerpt {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	return nil
}

func secs(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

// median returns the median of vs (the mean of the middle two for an even
// count); 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
