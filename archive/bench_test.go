package archive

import (
	"fmt"
	"log/slog"
	"testing"
)

// BenchmarkAppend measures durable appends (fsync on) of 256-byte records
// in batches of 1 and 64, as the kernel appends after applying a batch of
// Raft entries, and reports records per second.
func BenchmarkAppend(b *testing.B) {
	benchmarkAppend(b, func(a *Archive, batch []Record) error { return a.Append(batch) })
}

// BenchmarkAppendNoSync measures the kernel's answer path: AppendNoSync,
// no fsync; Sync runs off that path (BenchmarkAppendNoSyncThenSync).
func BenchmarkAppendNoSync(b *testing.B) {
	benchmarkAppend(b, func(a *Archive, batch []Record) error { return a.AppendNoSync(batch) })
}

// BenchmarkAppendNoSyncThenSync measures AppendNoSync followed by a Sync
// every 64 batches (one fsync per 64 answer-path appends), the cost of
// both together.
func BenchmarkAppendNoSyncThenSync(b *testing.B) {
	n := 0
	benchmarkAppend(b, func(a *Archive, batch []Record) error {
		if err := a.AppendNoSync(batch); err != nil {
			return err
		}
		if n++; n%64 == 0 {
			return a.Sync()
		}
		return nil
	})
}

func benchmarkAppend(b *testing.B, appendFn func(*Archive, []Record) error) {
	const recordBytes = 256
	for _, batchSize := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batchSize), func(b *testing.B) {
			a, err := Open(b.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			data := make([]byte, recordBytes)
			for i := range data {
				data[i] = byte(i)
			}
			batch := make([]Record, batchSize)
			var next uint64 = 1
			records := 0
			b.SetBytes(int64(batchSize * recordBytes))
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					batch[i] = Record{Index: next, Seq: next, Kind: KindEvent, Data: data}
					next++
				}
				if err := appendFn(a, batch); err != nil {
					b.Fatal(err)
				}
				records += batchSize
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
