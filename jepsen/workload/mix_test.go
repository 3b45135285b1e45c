package workload

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

func TestParse(t *testing.T) {
	w, err := Parse("kv")
	if err != nil || w.Name() != "kv" {
		t.Fatalf("kv: %v %v", w, err)
	}
	if w, err := Parse("caps"); err != nil || w.Name() != "caps" {
		t.Fatalf("caps: %v %v", w, err)
	}
	w, err = Parse(" kv:3, caps:1 ")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := w.(*Mix)
	if !ok || m.Name() != "kv+caps" || m.total != 4 {
		t.Fatalf("kv:3,caps:1 gave %T %q", w, w.Name())
	}
	for _, bad := range []string{"", "nope", "kv:0", "kv:x", "kv,kv", "kv:1001"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// two Parse calls give separate capability workloads (each keeps its tokens)
	a, _ := Parse("caps")
	b, _ := Parse("caps")
	if a.(*Caps) == b.(*Caps) {
		t.Error("Parse returned the same *Caps twice")
	}
}

func TestMixDrawsByWeightAndRoutesByOp(t *testing.T) {
	const seed = 8
	t.Logf("seed %d", seed)
	w, err := Parse("kv:3,caps:1")
	if err != nil {
		t.Fatal(err)
	}
	m := w.(*Mix)
	g := m.NewGenerator()
	rng := rand.New(rand.NewPCG(seed, 1))
	byWorkload := map[string]int{}
	for i := 0; i < 4000; i++ {
		op := g.Next(i%5, rng)
		owner := OwnerOf(m, op.F)
		if owner == "" {
			t.Fatalf("op %q has no owner", op.F)
		}
		byWorkload[owner]++
		done := op
		done.Type = history.OK
		if op.F == checker.FGrant {
			done.CapID = "cap-1"
		}
		g.Observe(done)
	}
	if kv := float64(byWorkload["kv"]) / 4000; kv < 0.70 || kv > 0.80 {
		t.Errorf("kv share %.2f of ops (%v), want about 3/4", kv, byWorkload)
	}
	if OwnerOf(KV{}, checker.FSyscall) != "kv" || m.Owner("nope") != "" {
		t.Error("OwnerOf: a single workload owns its ops; a mix owns only its parts' ops")
	}
	names := map[string]int{}
	for _, c := range m.Checkers(CheckOptions{}) {
		names[c.Name()]++
	}
	for _, want := range []string{"linearizable", "request-ids", "ack-order", "cap-limit", "cap-revoke"} {
		if names[want] != 1 {
			t.Errorf("checker %s appears %d times in %v, want once", want, names[want], names)
		}
	}
	if len(names) != 5 {
		t.Errorf("checkers %v", names)
	}
	// an op no part owns is refused without a request
	out := m.Invoke(context.Background(), (*client.Client)(nil), history.Op{F: "nope"})
	if out.Type != history.Fail || !strings.Contains(out.Error, "unknown op") {
		t.Errorf("unknown op: %+v", out)
	}
}

func TestNewMixRejectsOverlappingOps(t *testing.T) {
	if _, err := NewMix([]Workload{KV{}, KV{}}, nil); err == nil || !strings.Contains(err.Error(), "belongs to both") {
		t.Fatalf("two workloads with the same ops: %v", err)
	}
	if _, err := NewMix([]Workload{KV{}, &Caps{}}, []int{1}); err == nil {
		t.Fatal("weights that do not match the parts accepted")
	}
}
