package senseeval

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/sense"
)

// Result is the measurement of one or more seeds.
type Result struct {
	Name  string
	Seeds []uint64

	Episodes [NumClasses][2]int // [class][dense?] episodes with at least one labelled call
	Detected [NumClasses][2]int
	Delays   [NumClasses][]float64 // seconds from the start to the first alert

	FirstCallEpisodes, FirstCallNonZero int // new-op misuse: the first attacker call judged with Score > 0

	NormalEntityDays, NormalAlerts float64 // alerting minutes of normal entities on days ≥ 2
	DriftEntityDays, DriftAlerts   float64
	BatchRuns, BatchFlagged        int            // runs after the first day
	NormalCalls, CriticalEscalate  int            // normal calls after the first day; those that would escalate at critical posture
	NormalEntities, ProbationFall  int            // normal entities; those whose trust fell to probation
	ByMetric                       map[string]int // alerts of normal entities on days ≥ 2 by metric
	Calls                          int
	Elapsed                        time.Duration
}

// Run drives one seed's workload through a Sensor as the FSM does.
func Run(p Params, seed uint64) Result {
	w := Generate(p, seed)
	start := time.Now()
	s, err := sense.New(sense.DefaultConfig())
	if err != nil {
		panic(err)
	}
	n := len(w.Entities)
	attacked := make([]bool, n)
	for _, e := range w.Episodes {
		attacked[e.Entity] = true
	}
	alertMin := map[[2]int64]bool{} // (entity, minute) with an alert
	epAlert := make([]int64, len(w.Episodes))
	epCalls := make([]int, len(w.Episodes))
	firstSeen := make([]bool, len(w.Episodes))
	batchFlag := make([]bool, len(w.BatchRuns))
	r := Result{Name: p.Name, Seeds: []uint64{seed}, Calls: len(w.Events), ByMetric: map[string]int{}}
	for k, ev := range w.Events {
		e := &w.Entities[ev.Entity]
		call := sense.Call{Time: ev.T, Op: ev.Op, Resource: ev.Resource, Bytes: ev.Bytes, Peer: e.Peer, Parent: e.Parent}
		jr := s.Judge(e.Name, call)
		d := sense.DecisionPermit
		if ev.Deny {
			d = sense.DecisionDeny
		}
		or := s.Observe(e.Name, sense.Outcome{Time: ev.T, Op: ev.Op, Resource: ev.Resource, Decision: d, Bytes: ev.Bytes,
			Error: ev.Err, Seq: uint64(k + 1), Peer: e.Peer, Parent: e.Parent})
		if jr.Err != nil || or.Err != nil {
			panic(fmt.Sprint(jr.Err, or.Err))
		}
		alert := jr.Alert || or.Alert
		later := ev.T >= w.DayNs
		if alert {
			alertMin[[2]int64{int64(ev.Entity), ev.T / minuteNs}] = true
		}
		if ev.Episode > 0 {
			i := ev.Episode - 1
			epCalls[i]++
			if ev.Attack && !firstSeen[i] {
				firstSeen[i] = true
				if w.Episodes[i].Class == ClassNewOps {
					r.FirstCallEpisodes++
					if jr.Score > 0 {
						r.FirstCallNonZero++
					}
				}
			}
		}
		if alert {
			for i, ep := range w.Episodes {
				if ep.Entity == ev.Entity && ev.T >= ep.Start && ev.T <= ep.End+10*minuteNs && epAlert[i] == 0 {
					epAlert[i] = ev.T - ep.Start + 1
				}
			}
		}
		if ev.Batch > 0 && alert {
			batchFlag[ev.Batch-1] = true
		}
		if later && ev.Episode == 0 && !attacked[ev.Entity] && e.Drift == 0 {
			if alert {
				m := jr
				if !m.Alert {
					m = or
				}
				r.ByMetric[m.Metric.String()]++
			}
			r.NormalCalls++
			// At critical posture the threshold is lg(PostureTargetPct) bits lower.
			if !ev.Deny && jr.Surprise > jr.Threshold-4000 {
				r.CriticalEscalate++
			}
		}
	}
	r.Elapsed = time.Since(start)
	days := float64(p.Days - 1)
	for i, e := range w.Entities {
		switch {
		case attacked[i]:
		case e.Drift != 0:
			r.DriftEntityDays += days
		default:
			r.NormalEntityDays += days
			r.NormalEntities++
			if s.Trust(e.Name).Tier == sense.TierProbation {
				r.ProbationFall++
			}
		}
	}
	for k := range alertMin {
		e := w.Entities[k[0]]
		if k[1]*minuteNs < w.DayNs || attacked[k[0]] {
			continue
		}
		if e.Drift != 0 {
			r.DriftAlerts++
		} else {
			r.NormalAlerts++
		}
	}
	for i, ep := range w.Episodes {
		if epCalls[i] == 0 {
			continue
		}
		b := 0
		if ep.Dense {
			b = 1
		}
		r.Episodes[ep.Class][b]++
		if epAlert[i] > 0 {
			r.Detected[ep.Class][b]++
			r.Delays[ep.Class] = append(r.Delays[ep.Class], float64(epAlert[i]-1)/1e9)
		}
	}
	for i, t := range w.BatchRuns {
		if t >= w.DayNs && !attacked[w.BatchEnt[i]] {
			r.BatchRuns++
			if batchFlag[i] {
				r.BatchFlagged++
			}
		}
	}
	return r
}

// Merge adds o's counts to r.
func (r *Result) Merge(o Result) {
	r.Seeds = append(r.Seeds, o.Seeds...)
	for c := range NumClasses {
		for b := range 2 {
			r.Episodes[c][b] += o.Episodes[c][b]
			r.Detected[c][b] += o.Detected[c][b]
		}
		r.Delays[c] = append(r.Delays[c], o.Delays[c]...)
	}
	r.FirstCallEpisodes += o.FirstCallEpisodes
	r.FirstCallNonZero += o.FirstCallNonZero
	r.NormalEntityDays += o.NormalEntityDays
	r.NormalAlerts += o.NormalAlerts
	r.DriftEntityDays += o.DriftEntityDays
	r.DriftAlerts += o.DriftAlerts
	r.BatchRuns += o.BatchRuns
	r.BatchFlagged += o.BatchFlagged
	r.NormalCalls += o.NormalCalls
	r.CriticalEscalate += o.CriticalEscalate
	r.NormalEntities += o.NormalEntities
	r.ProbationFall += o.ProbationFall
	r.Calls += o.Calls
	if r.ByMetric == nil {
		r.ByMetric = map[string]int{}
	}
	for k, v := range o.ByMetric {
		r.ByMetric[k] += v
	}
	r.Elapsed += o.Elapsed
}

// Recall is detected/episodes of class c in band b (0 sparse, 1 dense,
// 2 both); -1 when there were none.
func (r *Result) Recall(c, b int) float64 {
	var d, n int
	for x := range 2 {
		if b == 2 || b == x {
			d += r.Detected[c][x]
			n += r.Episodes[c][x]
		}
	}
	if n == 0 {
		return -1
	}
	return float64(d) / float64(n)
}

// NormalFA is alerting minutes per normal entity-day.
func (r *Result) NormalFA() float64 { return r.NormalAlerts / max(r.NormalEntityDays, 1) }

// DriftFA is alerting minutes per drifting entity-day.
func (r *Result) DriftFA() float64 { return r.DriftAlerts / max(r.DriftEntityDays, 1) }

// BatchRate is the share of batch runs flagged after the first day.
func (r *Result) BatchRate() float64 { return float64(r.BatchFlagged) / float64(max(r.BatchRuns, 1)) }

// EscalateRate is the share of normal calls escalated at critical posture.
func (r *Result) EscalateRate() float64 {
	return float64(r.CriticalEscalate) / float64(max(r.NormalCalls, 1))
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return -1
	}
	y := slices.Clone(x)
	slices.Sort(y)
	return y[len(y)/2]
}

// Print writes r as a markdown table.
func (r *Result) Print(out io.Writer) {
	fmt.Fprintf(out, "### %s, seeds %v (%d calls, %.1fs in the sensor)\n\n", r.Name, r.Seeds, r.Calls, r.Elapsed.Seconds())
	fmt.Fprintln(out, "| class | episodes (dense/sparse) | recall dense (≥ 2 calls per 10 s) | recall sparse | recall all | median delay s |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- |")
	f := func(v float64) string {
		if v < 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", v)
	}
	for c := ClassNewOps; c < NumClasses; c++ {
		fmt.Fprintf(out, "| %s | %d/%d | %s | %s | %s | %s |\n", ClassNames[c], r.Episodes[c][1], r.Episodes[c][0],
			f(r.Recall(c, 1)), f(r.Recall(c, 0)), f(r.Recall(c, 2)), f(median(r.Delays[c])))
	}
	fmt.Fprintln(out)
	rows := [][2]string{
		{"normal entities: alerting minutes per entity-day (day 2)", fmt.Sprintf("%.3f (%d minutes over %.0f entity-days)", r.NormalFA(), int(r.NormalAlerts), r.NormalEntityDays)},
		{"drifting entities (rate ×3 or op mix reversed over 2 h): alerting minutes per entity-day", fmt.Sprintf("%.3f (%d over %.0f)", r.DriftFA(), int(r.DriftAlerts), r.DriftEntityDays)},
		{"hourly batch runs flagged after the first day", fmt.Sprintf("%.2f %% (%d of %d)", 100*r.BatchRate(), r.BatchFlagged, r.BatchRuns)},
		{"normal calls that escalate at critical posture", fmt.Sprintf("%.3f %% (%d of %d)", 100*r.EscalateRate(), r.CriticalEscalate, r.NormalCalls)},
		{"normal entities in probation at the end", fmt.Sprintf("%d of %d", r.ProbationFall, r.NormalEntities)},
		{"new-op misuse: first call judged with a non-zero deviation", fmt.Sprintf("%d of %d", r.FirstCallNonZero, r.FirstCallEpisodes)},
	}
	fmt.Fprintln(out, "| measure | value |")
	fmt.Fprintln(out, "| --- | --- |")
	for _, row := range rows {
		fmt.Fprintf(out, "| %s | %s |\n", row[0], strings.TrimSpace(row[1]))
	}
	fmt.Fprintln(out)
	keys := slices.Sorted(maps.Keys(r.ByMetric))
	fmt.Fprint(out, "alerting calls of normal entities by metric:")
	for _, k := range keys {
		fmt.Fprintf(out, " %s %d", k, r.ByMetric[k])
	}
	fmt.Fprint(out, "\n\n")
}

// RunAll runs every seed of p and merges the results.
func RunAll(p Params, log io.Writer) Result {
	var all Result
	all.Name = p.Name
	for _, seed := range p.Seeds {
		fmt.Fprintf(log, "sense-eval: %s seed %d\n", p.Name, seed)
		all.Merge(Run(p, seed))
	}
	return all
}
