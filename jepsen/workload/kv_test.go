package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

func TestClassify(t *testing.T) {
	inv := history.Op{Process: 1, F: checker.FCAS, Key: "k", Value: "new", Expect: "old", RequestID: "r"}
	lt := time.Unix(100, 5)
	cases := []struct {
		name string
		f    string
		resp *api.KVResponse
		err  error
		want history.Type
		test func(t *testing.T, out history.Op)
	}{
		{"no leader is definite", checker.FWrite, nil, &client.Error{Status: 503, Code: api.CodeNoLeader}, history.Fail, nil},
		{"clock skew refused before proposing", checker.FWrite, nil, &client.Error{Status: 503, Code: api.CodeClockSkew}, history.Fail, nil},
		{"unavailable is unknown", checker.FWrite, nil, &client.Error{Status: 503, Code: api.CodeUnavailable}, history.Info, nil},
		{"timeout is unknown", checker.FWrite, nil, &client.Error{Status: 503, Code: api.CodeTimeout}, history.Info, nil},
		{"internal is unknown", checker.FWrite, nil, &client.Error{Status: 500, Code: api.CodeInternal}, history.Info, nil},
		{"deadline is unknown", checker.FWrite, nil, context.DeadlineExceeded, history.Info, nil},
		{"reset is unknown", checker.FWrite, nil, &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, history.Info, nil},
		{"refused dial never sent", checker.FWrite, nil, fmt.Errorf("Put: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), history.Fail, nil},
		{"deny is unknown", checker.FWrite, &api.KVResponse{Outcome: api.Outcome{Seq: 4, Decision: "deny", Reason: "forbidden"}}, nil, history.Info,
			func(t *testing.T, out history.Op) {
				if !strings.Contains(out.Error, "unexpected decision deny") {
					t.Errorf("error %q", out.Error)
				}
			}},
		{"read found", checker.FRead, &api.KVResponse{Outcome: api.Outcome{Seq: 7, Decision: "permit", Time: lt}, Found: true, Value: "v"}, nil, history.OK,
			func(t *testing.T, out history.Op) {
				if !out.Found || out.Result != "v" || out.Seq != 7 || out.LedgerTime != lt.UnixNano() {
					t.Errorf("read completion %+v", out)
				}
			}},
		{"permit as earlier kernels spelt it", checker.FWrite, &api.KVResponse{Outcome: api.Outcome{Seq: 5, Decision: "PERMIT", Reason: "ok"}}, nil, history.OK, nil},
		{"read absent", checker.FRead, &api.KVResponse{Outcome: api.Outcome{Seq: 8, Decision: "permit", Reason: "not_found"}}, nil, history.OK,
			func(t *testing.T, out history.Op) {
				if out.Found || out.Result != "" {
					t.Errorf("absent read %+v", out)
				}
			}},
		{"cas mismatch", checker.FCAS, &api.KVResponse{Outcome: api.Outcome{Seq: 9, Decision: "permit", Reason: "cas_mismatch"}, Found: true, Value: "cur"}, nil, history.OK,
			func(t *testing.T, out history.Op) {
				if out.Succeeded || !out.Found || out.Result != "cur" {
					t.Errorf("cas mismatch %+v", out)
				}
			}},
		{"cas swapped", checker.FCAS, &api.KVResponse{Outcome: api.Outcome{Seq: 10, Decision: "permit"}, Succeeded: true, Found: true}, nil, history.OK,
			func(t *testing.T, out history.Op) {
				if !out.Succeeded || out.Result != "" {
					t.Errorf("cas swap %+v", out)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := inv
			in.F = c.f
			out := Classify(in, c.resp, c.err)
			if out.Type != c.want {
				t.Fatalf("type %s, want %s (%+v)", out.Type, c.want, out)
			}
			if out.RequestID != "r" || out.Key != "k" || out.Process != 1 {
				t.Fatalf("inputs not carried over: %+v", out)
			}
			if c.test != nil {
				c.test(t, out)
			}
		})
	}
}

func TestClassifyRealRefusedDial(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now
	c, err := client.New(client.Config{Addr: "http://" + addr, Token: "t", Timeout: time.Second, RetryFor: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.KVPut(context.Background(), "k", "v")
	out := Classify(history.Op{F: checker.FWrite}, nil, err)
	if out.Type != history.Fail {
		t.Fatalf("refused connection classified %s (%v)", out.Type, err)
	}
}

func TestKVGeneratorRotatesKeysAndWritesUniqueValues(t *testing.T) {
	const seed = 99
	t.Logf("seed %d", seed)
	g := KV{Keys: 2, OpsPerKey: 10}.NewGenerator()
	rng := rand.New(rand.NewPCG(seed, 1))
	values := map[string]bool{}
	perKey := map[string]int{}
	for i := 0; i < 400; i++ {
		op := g.Next(i%3, rng)
		perKey[op.Key]++
		switch op.F {
		case checker.FWrite, checker.FCAS:
			if values[op.Value] {
				t.Fatalf("value %q written twice", op.Value)
			}
			values[op.Value] = true
		case checker.FRead:
		default:
			t.Fatalf("unknown op %q", op.F)
		}
		done := op
		done.Type = history.OK
		done.Succeeded = true
		g.Observe(done)
	}
	for k, n := range perKey {
		if n > 10 {
			t.Errorf("key %s got %d ops, more than OpsPerKey", k, n)
		}
	}
	if len(perKey) < 40 {
		t.Errorf("only %d keys used for 400 ops at 10 per key", len(perKey))
	}
	if fin := g.Final(); len(fin) != len(perKey) {
		t.Errorf("final reads %d, keys used %d", len(fin), len(perKey))
	}
}

func TestKVGeneratorCASUsesKnownValues(t *testing.T) {
	g := KV{Keys: 1, CASWeight: 1}.NewGenerator()
	rng := rand.New(rand.NewPCG(3, 3))
	first := g.Next(0, rng)
	if first.F != checker.FCAS || !first.ExpectAbsent {
		t.Fatalf("first cas on a fresh key: %+v, want expect-absent", first)
	}
	g.Observe(history.Op{Type: history.OK, F: checker.FRead, Key: first.Key, Found: true, Result: "seen"})
	hits := 0
	for i := 0; i < 50; i++ {
		if op := g.Next(0, rng); op.Expect == "seen" {
			hits++
		}
	}
	if hits < 25 {
		t.Fatalf("cas expected the observed value %d of 50 times", hits)
	}
}
