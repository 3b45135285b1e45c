// Package senseeval is the evaluation of package sense (issue 25): a
// seeded, realistic workload generator with labelled attack episodes, and
// a driver that feeds it to a sense.Sensor exactly as the FSM does (Judge
// at the gate, then Observe with the decision) and measures recall, delay,
// false alarms, batch-job flags and escalations at critical posture.
//
// It is not part of the FSM: it uses math/rand/v2 (seeded; every seed is
// printed) and floating point for its statistics.
package senseeval

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Params describe a workload. Tuning and HeldOut differ in their seeds
// and in several parameters, so the model is judged on traffic it was not
// tuned on.
type Params struct {
	Name               string
	Seeds              []uint64
	Entities           int
	Days               int     // the first day warms up; episodes and counts are on the later days
	RateMin            float64 // calls per minute, log-uniform between RateMin and RateMax (before the diurnal factor)
	RateMax            float64
	DenseShare         float64 // share of dense entities: log-uniform between DenseMin and DenseMax calls per minute
	DenseMin, DenseMax float64
	Diurnal            float64 // peak/trough ratio of the diurnal profile
	BurstMean          float64 // calls per burst (geometric)
	ParetoShare        float64 // share of entities with Pareto gaps (others lognormal)
	BatchShare         float64 // share of entities with an hourly batch job
	DriftShare         float64 // share of entities that drift on day 2
	DenyMax            float64 // background deny ratio, uniform 0..DenyMax
	ErrorMax           float64
	EpisodesPer        int // episodes of each class per seed
	Shapes             int // capability shapes (peer groups)
}

// Tuning is the workload the model was tuned on.
func Tuning() Params {
	return Params{Name: "tuning", Seeds: []uint64{1, 2, 3}, Entities: 240, Days: 2, RateMin: 0.05, RateMax: 8, DenseShare: 0.15, DenseMin: 15, DenseMax: 40,
		Diurnal: 5, BurstMean: 3, ParetoShare: 0.5, BatchShare: 1.0 / 3, DriftShare: 0.1, DenyMax: 0.03, ErrorMax: 0.03,
		EpisodesPer: 8, Shapes: 12}
}

// HeldOut is the evaluation workload: other seeds, other parameters.
func HeldOut() Params {
	return Params{Name: "held-out", Seeds: []uint64{9001, 9002, 9003}, Entities: 240, Days: 2, RateMin: 0.04, RateMax: 10, DenseShare: 0.12, DenseMin: 14, DenseMax: 50,
		Diurnal: 4, BurstMean: 4, ParetoShare: 0.35, BatchShare: 0.3, DriftShare: 0.12, DenyMax: 0.025, ErrorMax: 0.035,
		EpisodesPer: 8, Shapes: 10}
}

// Smoke scales p down for a CI-sized run.
func (p Params) Smoke() Params {
	p.Name += "-smoke"
	p.Entities = 48
	p.EpisodesPer = 4
	return p
}

// Episode classes.
const (
	ClassNone = iota
	ClassNewOps
	ClassNewResources
	ClassExfilKV
	ClassExfilOther
	ClassBurst
	ClassProbing
	ClassErrorStorm
	ClassLowSlow
	NumClasses
)

// ClassNames name the episode classes.
var ClassNames = [NumClasses]string{"none", "new_ops", "new_resources", "exfil_kv", "exfil_non_kv", "burst_x10", "probing_40pct", "error_storm_30pct", "low_and_slow"}

// Event is one syscall of the workload.
type Event struct {
	T        int64
	Entity   int32
	Op       string
	Resource string
	Bytes    int64
	Deny     bool
	Err      bool
	Episode  int32 // index+1 of the attack episode the call belongs to; 0 = normal
	Batch    int32 // index+1 of the batch run the call belongs to
	Attack   bool  // the call is the attacker's (not the entity's normal traffic)
}

// Entity is one agent of the workload.
type Entity struct {
	Name, Peer, Parent string
	Rate               float64 // calls per minute (mean)
	Ops                []string
	Shares             []float64
	Sizes              []float64 // median bytes per op
	Prefixes           []string
	Deny, Err          float64
	Batch              bool
	BatchMinute        int
	Drift              int // 0 none, 1 rate ×3, 2 op mix reversed
	Pareto             bool
	phase              float64
}

// EpisodeInfo labels one attack episode.
type EpisodeInfo struct {
	Class      int
	Entity     int32
	Start, End int64
	Dense      bool // the entity has ≥ 2 events per 10 s window at the episode's time
}

// Workload is one seed's traffic.
type Workload struct {
	Seed      uint64
	Entities  []Entity
	Events    []Event
	Episodes  []EpisodeInfo
	BatchRuns []int64 // start times of batch runs, by Batch-1
	BatchEnt  []int32
	DayNs     int64
}

const (
	minuteNs = int64(60e9)
	dayNs    = 24 * 60 * minuteNs
)

var shapeOps = []string{"kv.get", "kv.put", "kv.cas", "kv.delete", "http.get", "http.post", "mail.send", "db.query",
	"db.write", "queue.push", "queue.pop", "file.read", "file.write", "llm.call", "search.query", "calendar.read"}

// Generate builds the workload of one seed.
func Generate(p Params, seed uint64) *Workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &Workload{Seed: seed, DayNs: dayNs}
	shapes := make([][]string, p.Shapes)
	for i := range shapes {
		n := 6 + rng.IntN(6)
		perm := rng.Perm(len(shapeOps))
		for _, j := range perm[:n] {
			shapes[i] = append(shapes[i], shapeOps[j])
		}
		if !slices.ContainsFunc(shapes[i], isKV) {
			shapes[i] = append(shapes[i], "kv.put")
		}
	}
	for i := range p.Entities {
		s := rng.IntN(p.Shapes)
		e := Entity{Name: fmt.Sprintf("agent-%03d", i), Peer: fmt.Sprintf("shape-%02d", s)}
		if i > 10 && rng.Float64() < 0.2 { // a delegate of an earlier entity of the same shape
			for _, j := range rng.Perm(i) {
				if w.Entities[j].Peer == e.Peer && w.Entities[j].Parent == "" {
					e.Parent = w.Entities[j].Name
					break
				}
			}
		}
		e.Rate = p.RateMin * math.Pow(p.RateMax/p.RateMin, rng.Float64())
		if rng.Float64() < p.DenseShare {
			e.Rate = p.DenseMin * math.Pow(p.DenseMax/p.DenseMin, rng.Float64())
		}
		ops := slices.Clone(shapes[s])
		rng.Shuffle(len(ops), func(a, b int) { ops[a], ops[b] = ops[b], ops[a] })
		n := 2 + rng.IntN(min(7, len(ops)-2)) // 2..8, leaving ≥ 2 unused ops in the shape
		e.Ops = ops[:n]
		if !slices.ContainsFunc(e.Ops, isKV) {
			e.Ops[0] = "kv.put"
		}
		if !slices.ContainsFunc(e.Ops, func(o string) bool { return !isKV(o) }) && n > 1 {
			e.Ops[1] = firstNonKV(ops[n:])
		}
		var tot float64
		for range e.Ops {
			x := math.Pow(rng.Float64()+0.05, 2)
			e.Shares = append(e.Shares, x)
			tot += x
		}
		for k := range e.Shares {
			e.Shares[k] /= tot
			e.Sizes = append(e.Sizes, 64*math.Pow(64, rng.Float64())) // 64 B .. 4 KiB medians
		}
		np := 1 + rng.IntN(4)
		for k := range np {
			e.Prefixes = append(e.Prefixes, fmt.Sprintf("%s-%d", []string{"orders", "users", "docs", "cache", "jobs", "reports"}[rng.IntN(6)], k))
		}
		e.Deny, e.Err = rng.Float64()*p.DenyMax, rng.Float64()*p.ErrorMax
		e.Batch = rng.Float64() < p.BatchShare
		e.BatchMinute = rng.IntN(60)
		e.Pareto = rng.Float64() < p.ParetoShare
		e.phase = rng.Float64() * 24
		w.Entities = append(w.Entities, e)
	}
	// Drifting entities and attacked entities are disjoint.
	perm := rng.Perm(p.Entities)
	nd := int(float64(p.Entities) * p.DriftShare)
	for k, i := range perm[:nd] {
		w.Entities[i].Drift = 1 + k%2
	}
	// Victims alternate between dense and sparse entities.
	var dense, sparse []int
	for _, i := range perm[nd:] {
		if w.Entities[i].Rate >= p.DenseMin {
			dense = append(dense, i)
		} else {
			sparse = append(sparse, i)
		}
	}
	var victims []int
	for len(dense)+len(sparse) > 0 {
		if len(dense) > 0 && len(victims)%2 == 0 || len(sparse) == 0 {
			victims, dense = append(victims, dense[0]), dense[1:]
		} else {
			victims, sparse = append(victims, sparse[0]), sparse[1:]
		}
	}
	// Normal traffic.
	for i := range w.Entities {
		w.normal(rng, p, int32(i))
	}
	// Episodes on day ≥ 2, one victim each.
	v := 0
	for c := ClassNewOps; c < NumClasses; c++ {
		for range p.EpisodesPer {
			if v >= len(victims) {
				break
			}
			i := int32(victims[v])
			v++
			w.episode(rng, p, c, i)
		}
	}
	slices.SortStableFunc(w.Events, func(a, b Event) int { return cmp.Compare(a.T, b.T) })
	return w
}

func isKV(o string) bool { return len(o) > 3 && o[:3] == "kv." }

func firstNonKV(ops []string) string {
	for _, o := range ops {
		if !isKV(o) {
			return o
		}
	}
	return "http.get"
}

// rateAt is the entity's mean calls per minute at t.
func (e *Entity) rateAt(p Params, t int64) float64 {
	h := float64(t%dayNs) / float64(60*minuteNs)
	// diurnal: log-sinusoid between 1/√D and √D
	f := math.Exp(math.Log(p.Diurnal) / 2 * math.Sin(2*math.Pi*(h-e.phase)/24))
	r := e.Rate * f
	if e.Drift == 1 && t >= dayNs+6*60*minuteNs { // ×3 over two hours from 06:00 on day 2
		x := math.Min(1, float64(t-dayNs-6*60*minuteNs)/float64(120*minuteNs))
		r *= 1 + 2*x
	}
	return r
}

func (e *Entity) pickOp(rng *rand.Rand, t int64) int {
	sh := e.Shares
	if e.Drift == 2 && t >= dayNs+6*60*minuteNs { // op mix reversed over two hours
		x := math.Min(1, float64(t-dayNs-6*60*minuteNs)/float64(120*minuteNs))
		rev := make([]float64, len(sh))
		for k := range sh {
			rev[k] = (1-x)*sh[k] + x*sh[len(sh)-1-k]
		}
		sh = rev
	}
	u := rng.Float64()
	for k, s := range sh {
		if u < s {
			return k
		}
		u -= s
	}
	return len(sh) - 1
}

func (e *Entity) size(rng *rand.Rand, k int) int64 {
	return int64(min(32768, max(16, e.Sizes[k]*math.Exp(0.8*rng.NormFloat64()))))
}

func (w *Workload) call(rng *rand.Rand, i int32, t int64, k int) Event {
	e := &w.Entities[i]
	return Event{T: t, Entity: i, Op: e.Ops[k], Resource: fmt.Sprintf("%s/%d", e.Prefixes[rng.IntN(len(e.Prefixes))], rng.IntN(1000)),
		Bytes: e.size(rng, k), Deny: rng.Float64() < e.Deny, Err: rng.Float64() < e.Err}
}

// normal generates the entity's own traffic: bursts separated by
// heavy-tailed gaps, at the diurnal rate; and its hourly batch job.
func (w *Workload) normal(rng *rand.Rand, p Params, i int32) {
	e := &w.Entities[i]
	end := int64(p.Days) * dayNs
	t := int64(rng.Float64() * float64(10*minuteNs))
	for t < end {
		n := 1
		for rng.Float64() > 1/p.BurstMean {
			n++
		}
		for range n {
			w.Events = append(w.Events, w.call(rng, i, t, e.pickOp(rng, t)))
			t += int64((0.2 + 2*rng.Float64()) * 1e9)
		}
		mean := p.BurstMean / e.rateAt(p, t) * float64(minuteNs) // ns between bursts
		var g float64
		if e.Pareto { // Pareto α = 1.5, mean = xm·α/(α−1)
			g = mean / 3 / math.Pow(1-rng.Float64(), 1/1.5)
		} else { // lognormal σ = 1.2 with that mean
			g = mean * math.Exp(1.2*rng.NormFloat64()-0.72)
		}
		t += int64(g)
	}
	if !e.Batch {
		return
	}
	size := 20 + rng.IntN(60)
	for h := int64(0); h < int64(p.Days)*24; h++ {
		start := h*60*minuteNs + int64(e.BatchMinute)*minuteNs + int64(rng.IntN(20))*1e9
		w.BatchRuns = append(w.BatchRuns, start)
		w.BatchEnt = append(w.BatchEnt, i)
		b := int32(len(w.BatchRuns))
		t := start
		for range size + rng.IntN(5) {
			ev := Event{T: t, Entity: i, Op: "batch.export", Resource: "reports/" + fmt.Sprint(h), Bytes: 2048 + int64(rng.IntN(2048)), Batch: b}
			ev.Err = rng.Float64() < e.Err
			w.Events = append(w.Events, ev)
			t += int64((0.3 + rng.Float64()) * 1e9)
		}
	}
}

// episode adds one labelled attack on entity i.
func (w *Workload) episode(rng *rand.Rand, p Params, class int, i int32) {
	e := &w.Entities[i]
	dur := int64(10+rng.IntN(21)) * minuteNs
	if class == ClassLowSlow {
		dur = 120 * minuteNs
	}
	start := dayNs + int64(60+rng.IntN((p.Days-1)*24*60-60-int(dur/minuteNs)-30))*minuteNs
	idx := int32(len(w.Episodes) + 1)
	info := EpisodeInfo{Class: class, Entity: i, Start: start, End: start + dur, Dense: e.rateAt(p, start) >= 12}
	w.Episodes = append(w.Episodes, info)
	rate := max(e.rateAt(p, start), 0.3) // attacker calls per minute
	add := func(ev Event) {
		ev.Episode, ev.Attack = idx, true
		w.Events = append(w.Events, ev)
	}
	gap := func(r float64) int64 { return int64(rng.ExpFloat64() / r * float64(minuteNs)) }
	switch class {
	case ClassNewOps:
		var unused []string
		for _, o := range shapeOps {
			if !slices.Contains(e.Ops, o) {
				unused = append(unused, o)
			}
		}
		for t := start; t < start+dur; t += gap(max(rate/2, 0.5)) {
			ev := w.call(rng, i, t, rng.IntN(len(e.Ops)))
			ev.Op = unused[rng.IntN(min(3, len(unused)))]
			add(ev)
		}
	case ClassNewResources:
		for t := start; t < start+dur; t += gap(max(rate/2, 0.5)) {
			ev := w.call(rng, i, t, e.pickOp(rng, t))
			ev.Resource = fmt.Sprintf("secrets-%d/%d", rng.IntN(3), rng.IntN(100))
			add(ev)
		}
	case ClassExfilKV, ClassExfilOther:
		var ks []int
		for k, o := range e.Ops {
			if isKV(o) == (class == ClassExfilKV) {
				ks = append(ks, k)
			}
		}
		if len(ks) == 0 {
			ks = []int{0}
		}
		for t := start; t < start+dur; t += gap(max(rate/2, 0.5)) {
			k := ks[rng.IntN(len(ks))]
			ev := w.call(rng, i, t, k)
			ev.Bytes = int64(20 * e.Sizes[k] * math.Exp(0.3*rng.NormFloat64()))
			add(ev)
		}
	case ClassBurst:
		for t := start; t < start+dur; t += gap(9 * e.rateAt(p, t)) {
			add(w.call(rng, i, t, e.pickOp(rng, t)))
		}
	case ClassProbing:
		for t := start; t < start+dur; t += gap(max(rate, 0.5)) {
			ev := w.call(rng, i, t, e.pickOp(rng, t))
			ev.Deny = rng.Float64() < 0.4
			add(ev)
		}
	case ClassErrorStorm: // 30 % of the entity's own calls fail
		for j := range w.Events {
			ev := &w.Events[j]
			if ev.Entity == i && ev.T >= start && ev.T < start+dur && ev.Batch == 0 {
				ev.Err = rng.Float64() < 0.3
				ev.Episode = idx
			}
		}
	case ClassLowSlow:
		k := 0
		for j := range e.Shares {
			if e.Shares[j] < e.Shares[k] {
				k = j
			}
		}
		r := 4 * e.Shares[k] * e.rateAt(p, start) // the rare op at 5× its rate
		r = max(r, 1.0/15)
		for t := start + gap(r); t < start+dur; t += gap(r) {
			add(w.call(rng, i, t, k))
		}
	}
}
