package temporal

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
)

type call struct {
	entity, op, res string
	out             Outcome
	err             bool // an effect error instead of a call
	t               int64
}

// brute computes the Context of entity and op at now from every call
// before it, by the window definitions in the package comment.
func brute(calls []call, entity, op string, now int64) Context {
	var c Context
	hour, day := HourStart(now), DayStart(now)
	first := int64(-1)
	res := map[string]bool{}
	for _, x := range calls {
		if x.entity != entity || x.t > now {
			continue
		}
		if first < 0 {
			first = x.t
		}
		if x.err {
			if x.t >= hour {
				c.Errors1h++
			}
			continue
		}
		if x.t >= hour {
			c.Calls1h++
			if x.out == Deny {
				c.Denials1h++
			}
			if x.op == op {
				c.OpCalls1h++
			}
			res[x.res] = true
		}
		if x.t >= day {
			c.Calls24h++
			if x.out == Deny {
				c.Denials24h++
			}
			if x.out == Escalate {
				c.Escalations24h++
			}
			if x.op == op {
				c.OpCalls24h++
			}
		}
	}
	c.DistinctResources1h = int64(len(res))
	if first >= 0 && now > first {
		c.FirstSeenS = (now - first) / 1e9
	}
	return c
}

// TestContextMatchesBruteForce folds random histories (spanning days,
// with bursts and long gaps) and compares every entity's Context at random
// points with a brute-force count over all calls so far, and checks that
// an encoded and decoded Book answers the same.
func TestContextMatchesBruteForce(t *testing.T) {
	for run := 0; run < 20; run++ {
		seed := int64(1000 + run)
		rng := rand.New(rand.NewSource(seed))
		t.Logf("seed %d", seed)
		b := New()
		var calls []call
		now := int64(1_700_000_000e9) + rng.Int63n(int64(3600e9))
		entities := []string{"agent-a", "agent-b", "svc/c"}
		ops := []string{"kv.get", "kv.put", "mail.send", "pay.charge"}
		for i := 0; i < 3000; i++ {
			switch r := rng.Intn(100); {
			case r < 70:
				now += rng.Int63n(int64(20e9)) + 1
			case r < 95:
				now += rng.Int63n(int64(900e9)) + 1
			default:
				now += rng.Int63n(int64(30*3600e9)) + 1
			}
			x := call{entity: entities[rng.Intn(len(entities))], t: now}
			if rng.Intn(10) == 0 {
				x.err = true
				b.Error(x.entity, now)
			} else {
				x.op = ops[rng.Intn(len(ops))]
				x.res = "r/" + string(rune('a'+rng.Intn(40)))
				x.out = Outcome(1 + rng.Intn(3))
				b.Record(x.entity, x.op, x.res, x.out, now)
			}
			calls = append(calls, x)
			if rng.Intn(20) == 0 {
				at := now + rng.Int63n(int64(2*3600e9))
				for _, e := range append(entities, "never-seen") {
					for _, op := range append(ops, "other.op") {
						got, want := b.Context(e, op, at), brute(calls, e, op, at)
						if got != want {
							t.Fatalf("seed %d call %d: %s/%s at %d: got %+v, want %+v", seed, i, e, op, at, got, want)
						}
					}
				}
				enc := b.Encode()
				d, err := Decode(enc)
				if err != nil {
					t.Fatalf("seed %d: decode: %v", seed, err)
				}
				if !bytes.Equal(d.Encode(), enc) {
					t.Fatalf("seed %d: re-encoding differs", seed)
				}
				if !bytes.Equal(b.Clone().Encode(), enc) {
					t.Fatalf("seed %d: a clone encodes differently", seed)
				}
				for _, e := range entities {
					if d.Context(e, "kv.put", at) != b.Context(e, "kv.put", at) {
						t.Fatalf("seed %d: decoded book answers differently for %s", seed, e)
					}
				}
			}
		}
	}
}

// TestBounds: ops, resources and entities stay within their bounds, and
// eviction picks the least recently seen.
func TestBounds(t *testing.T) {
	b := New()
	now := int64(1e18)
	for i := 0; i < MaxOps+5; i++ {
		now += 1e9
		b.Record("a", "op."+string(rune('A'+i)), "r", Permit, now)
	}
	if n := len(b.entities["a"].ops); n != MaxOps {
		t.Fatalf("ops kept: %d, want %d", n, MaxOps)
	}
	if _, ok := b.entities["a"].ops["op.A"]; ok {
		t.Fatal("the least recently called op was not evicted")
	}
	for i := 0; i < MaxResources+10; i++ {
		now += 1e6
		b.Record("a", "kv.get", "res/"+string(rune(0x100+i)), Permit, now)
	}
	c := b.Context("a", "kv.get", now)
	if c.DistinctResources1h != MaxResources {
		t.Fatalf("distinct resources: %d, want the bound %d", c.DistinctResources1h, MaxResources)
	}
	// An hour later the old resources are dropped first, not the new one.
	now += 2 * 3600e9
	b.Record("a", "kv.get", "fresh", Permit, now)
	if c := b.Context("a", "kv.get", now); c.DistinctResources1h != 1 {
		t.Fatalf("after an hour: %d distinct resources, want 1", c.DistinctResources1h)
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	b := New()
	b.Record("a", "kv.put", "k", Deny, 5e9)
	b.Record("b", "kv.get", "k", Permit, 6e9)
	good := b.Encode()
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0xff
		if d, err := Decode(bad); err == nil && bytes.Equal(d.Encode(), good) {
			t.Fatalf("a flipped byte %d decodes to the same book", i)
		} else if err != nil && !errors.Is(err, ErrDecode) {
			t.Fatalf("error does not wrap ErrDecode: %v", err)
		}
	}
	if _, err := Decode(append(good, 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	if _, err := Decode(good[:len(good)-1]); err == nil {
		t.Fatal("a truncated encoding accepted")
	}
}
