package fsm

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// The ring behaves as the plain queue it replaces: random pushes and
// drops (through wrap-arounds and growth) leave the same entries in the
// same order, and an empty ring lists nil, as the state body encodes it.
func TestDedupRingMatchesAQueue(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	var q dedupRing
	var model []DedupEntry
	if q.slice() != nil {
		t.Fatal("empty ring lists a non-nil slice")
	}
	for step := 0; step < 20000; step++ {
		if len(model) > 0 && rng.Intn(100) < 45+len(model)%10 {
			got, want := q.drop(), model[0]
			model = model[1:]
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: dropped %+v, want %+v", step, got, want)
			}
		} else {
			e := DedupEntry{Caller: fmt.Sprint("c", step%7), RequestID: fmt.Sprint("r", step), Time: int64(step)}
			q.push(e)
			model = append(model, e)
		}
		if q.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, q.len(), len(model))
		}
		if len(model) > 0 {
			i := rng.Intn(len(model))
			if !reflect.DeepEqual(*q.at(i), model[i]) {
				t.Fatalf("step %d: at(%d) = %+v, want %+v", step, i, *q.at(i), model[i])
			}
		}
	}
	want := model
	if len(want) == 0 {
		want = nil
	}
	if got := q.slice(); !reflect.DeepEqual(got, want) {
		t.Fatalf("slice: %d entries, want %d", len(got), len(want))
	}
	r := newDedupRing(q.slice())
	if !reflect.DeepEqual(r.slice(), q.slice()) {
		t.Fatal("a ring rebuilt from its slice differs")
	}
}
