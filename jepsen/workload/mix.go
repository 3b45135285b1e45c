package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Registry names the workloads `-workload` selects; each function
// returns a fresh workload.
var Registry = map[string]func() Workload{
	"kv":   func() Workload { return KV{} },
	"caps": func() Workload { return &Caps{} },
}

// Names lists Registry's names, sorted.
func Names() []string {
	out := make([]string, 0, len(Registry))
	for n := range Registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Parse builds the workload a comma list of Registry names selects, each
// optionally weighted ("kv", "caps", "kv:3,caps:1"): one name is that
// workload; several are a Mix whose clients pick each op's workload by
// weight (default 1).
func Parse(spec string) (Workload, error) {
	var parts []Workload
	var weights []int
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, weightText, hasWeight := strings.Cut(item, ":")
		weight := 1
		if hasWeight {
			w, err := strconv.Atoi(weightText)
			if err != nil || w <= 0 || w > 1000 {
				return nil, fmt.Errorf("workload %q: weight %q is not an integer in 1..1000", name, weightText)
			}
			weight = w
		}
		mk, ok := Registry[name]
		if !ok {
			return nil, fmt.Errorf("unknown workload %q (known: %s)", name, strings.Join(Names(), ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("workload %q named twice", name)
		}
		seen[name] = true
		parts = append(parts, mk())
		weights = append(weights, weight)
	}
	switch len(parts) {
	case 0:
		return nil, fmt.Errorf("no workload in %q (known: %s)", spec, strings.Join(Names(), ", "))
	case 1:
		return parts[0], nil
	}
	return NewMix(parts, weights)
}

// Mix runs several workloads at once: each client op belongs to one
// part, drawn by weight. Parts must implement Functions with disjoint op
// names, which route completions and invocations to their part.
type Mix struct {
	parts   []Workload
	weights []int
	total   int
	owner   map[string]int // op name -> part
}

// NewMix returns a mix of parts with weights (nil: 1 each).
func NewMix(parts []Workload, weights []int) (*Mix, error) {
	if weights == nil {
		weights = make([]int, len(parts))
		for i := range weights {
			weights[i] = 1
		}
	}
	if len(parts) == 0 || len(weights) != len(parts) {
		return nil, fmt.Errorf("mix: %d parts and %d weights", len(parts), len(weights))
	}
	m := &Mix{parts: parts, weights: weights, owner: map[string]int{}}
	for i, p := range parts {
		if weights[i] <= 0 {
			return nil, fmt.Errorf("mix: weight %d of %s is not positive", weights[i], p.Name())
		}
		m.total += weights[i]
		fs, ok := p.(Functions)
		if !ok {
			return nil, fmt.Errorf("mix: %s does not name its op names (Functions)", p.Name())
		}
		for _, f := range fs.Functions() {
			if j, dup := m.owner[f]; dup {
				return nil, fmt.Errorf("mix: op %q belongs to both %s and %s", f, parts[j].Name(), p.Name())
			}
			m.owner[f] = i
		}
	}
	return m, nil
}

// Name implements Workload: the parts' names joined by "+".
func (m *Mix) Name() string {
	names := make([]string, len(m.parts))
	for i, p := range m.parts {
		names[i] = p.Name()
	}
	return strings.Join(names, "+")
}

// Functions implements Functions.
func (m *Mix) Functions() []string { return sortedKeys(m.owner) }

// Owner names the part that generates op name f ("" if none does).
func (m *Mix) Owner(f string) string {
	if i, ok := m.owner[f]; ok {
		return m.parts[i].Name()
	}
	return ""
}

// Checkers implements Workload: every part's checkers, each name once
// (parts that share a checker configure it alike).
func (m *Mix) Checkers(o CheckOptions) []checker.Checker {
	var out []checker.Checker
	seen := map[string]bool{}
	for _, p := range m.parts {
		for _, c := range p.Checkers(o) {
			if !seen[c.Name()] {
				seen[c.Name()] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// Setup implements Setup: every part's setup, in order.
func (m *Mix) Setup(ctx context.Context, env Env) error {
	for _, p := range m.parts {
		if s, ok := p.(Setup); ok {
			if err := s.Setup(ctx, env); err != nil {
				return fmt.Errorf("%s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

// Invoke implements Workload.
func (m *Mix) Invoke(ctx context.Context, c *client.Client, inv history.Op) history.Op {
	i, ok := m.owner[inv.F]
	if !ok {
		out := inv
		out.Type, out.Error = history.Fail, "unknown op "+inv.F
		return out
	}
	return m.parts[i].Invoke(ctx, c, inv)
}

// NewGenerator implements Workload.
func (m *Mix) NewGenerator() Generator {
	g := &mixGen{m: m, gens: make([]Generator, len(m.parts))}
	for i, p := range m.parts {
		g.gens[i] = p.NewGenerator()
	}
	return g
}

type mixGen struct {
	m    *Mix
	gens []Generator
}

// Next implements Generator.
func (g *mixGen) Next(process int, rng *rand.Rand) history.Op {
	x := rng.IntN(g.m.total)
	for i, w := range g.m.weights {
		if x < w {
			return g.gens[i].Next(process, rng)
		}
		x -= w
	}
	return g.gens[len(g.gens)-1].Next(process, rng)
}

// Observe implements Generator.
func (g *mixGen) Observe(c history.Op) {
	if i, ok := g.m.owner[c.F]; ok {
		g.gens[i].Observe(c)
	}
}

// Final implements Generator: every part's final ops.
func (g *mixGen) Final() []history.Op {
	var out []history.Op
	for _, gen := range g.gens {
		out = append(out, gen.Final()...)
	}
	return out
}

// OwnerOf names the workload of w that generates op name f: the part of
// a Mix, or w itself.
func OwnerOf(w Workload, f string) string {
	if m, ok := w.(*Mix); ok {
		return m.Owner(f)
	}
	return w.Name()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
