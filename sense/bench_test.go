package sense

import (
	"fmt"
	"testing"
)

// BenchmarkSensorCall is one gate call's sensing: model 1 (Deviation
// before the decision, Fold after) against model 2 (Judge with the call
// included, Observe after), on an entity with an hour of history, calls
// 200 ms apart.
func BenchmarkSensorCall(b *testing.B) {
	res := make([]string, 16)
	for i := range res {
		res[i] = fmt.Sprintf("p%d/x", i)
	}
	b.Run("model=1", func(b *testing.B) {
		s := newSensor(b, nil)
		at := int64(0)
		step := func(i int) {
			at += 200_000_000
			_ = s.Deviation("bench", at)
			if _, err := s.Fold("bench", Observation{Time: at, Op: "kv.put", Decision: DecisionPermit, Bytes: 256}); err != nil {
				b.Fatal(err)
			}
		}
		for i := range 20_000 {
			step(i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			step(i)
		}
	})
	b.Run("model=2", func(b *testing.B) {
		s := newSensor(b, nil)
		at := int64(0)
		step := func(i int) {
			at += 200_000_000
			r := res[i%16]
			_ = s.Judge("bench", Call{Time: at, Op: "kv.put", Resource: r, Bytes: 256, Peer: "ops:kv.put"})
			if o := s.Observe("bench", Outcome{Time: at, Op: "kv.put", Resource: r, Decision: DecisionPermit, Bytes: 256, Seq: uint64(i), Peer: "ops:kv.put"}); o.Err != nil {
				b.Fatal(o.Err)
			}
		}
		for i := range 20_000 {
			step(i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			step(i)
		}
	})
}
