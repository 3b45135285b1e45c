package history

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

func TestRecorderOrdersConcurrentOps(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(NewClock(), &buf)
	const procs, each = 8, 200
	var wg sync.WaitGroup
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				inv, err := rec.Invoke(Op{Process: p, F: "write", Key: "k"})
				if err != nil {
					t.Error(err)
					return
				}
				c := inv
				c.Type = OK
				if _, err := rec.Complete(c); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	ops, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2*procs*each {
		t.Fatalf("%d ops read back, want %d", len(ops), 2*procs*each)
	}
	for i, op := range ops {
		if op.Index != i {
			t.Fatalf("op %d has index %d", i, op.Index)
		}
		if i > 0 && op.Time < ops[i-1].Time {
			t.Fatalf("time goes backwards at op %d", i)
		}
	}
	ps, err := Pairs(ops)
	if err != nil {
		t.Fatal(err)
	}
	if c := Count(ps); c.OK != procs*each || c.Fail+c.Info != 0 {
		t.Fatalf("counts %+v", c)
	}
}

func TestRecorderRejectsOverlappingInvocations(t *testing.T) {
	rec := NewRecorder(NewClock(), nil)
	if _, err := rec.Invoke(Op{Process: 1, F: "read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Invoke(Op{Process: 1, F: "read"}); !errors.Is(err, ErrProcessBusy) {
		t.Fatalf("second invocation of a busy process: %v, want ErrProcessBusy", err)
	}
	if _, err := rec.Complete(Op{Process: 2, Type: OK}); err == nil {
		t.Fatal("a completion without an invocation was accepted")
	}
	if _, err := rec.Complete(Op{Process: 1, Type: Invoke}); err == nil {
		t.Fatal("a completion of type invoke was accepted")
	}
	if rec.Outstanding() != 1 {
		t.Fatalf("outstanding %d, want 1", rec.Outstanding())
	}
}

func TestPairsCompletesDanglingInvocationsAsInfo(t *testing.T) {
	ops := []Op{
		{Index: 0, Process: 0, Type: Invoke, F: "write", Time: 1},
		{Index: 1, Process: 1, Type: Invoke, F: "read", Time: 2},
		{Index: 2, Process: 1, Type: Fail, F: "read", Time: 3},
		{Index: 3, Process: 2, Type: Invoke, F: "read", Time: 4},
		{Index: 4, Process: 2, Type: OK, F: "read", Time: 9},
	}
	ps, err := Pairs(ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[0].Type() != Info || ps[0].End() != 9 || ps[1].Type() != Fail || ps[2].Type() != OK {
		t.Fatalf("pairs %+v", ps)
	}
	if _, err := Pairs([]Op{{Process: 0, Type: Invoke}, {Process: 0, Type: Invoke}}); err == nil {
		t.Fatal("two invocations of one process without a completion were paired")
	}
	if _, err := Pairs([]Op{{Process: 0, Type: OK}}); err == nil {
		t.Fatal("a completion without an invocation was paired")
	}
}

func TestWriteDecodeRoundTrip(t *testing.T) {
	ops := []Op{{Index: 0, Process: 3, Type: Invoke, F: "cas", Key: "k", Value: "v", Expect: "e", RequestID: "r", Node: "n1", Time: 5},
		{Index: 1, Process: 3, Type: OK, F: "cas", Key: "k", Value: "v", Expect: "e", RequestID: "r", Node: "n1", Time: 6, Seq: 9, Found: true, Result: "x", LedgerTime: 77}}
	var buf bytes.Buffer
	if err := Write(&buf, ops); err != nil {
		t.Fatal(err)
	}
	back, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[1] != ops[1] || back[0] != ops[0] {
		t.Fatalf("round trip: %+v", back)
	}
	if _, err := Decode(bytes.NewBufferString("{\"index\":0}\nnot json\n")); err == nil {
		t.Fatal("a malformed line was accepted")
	}
}
