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
				if err := a.Append(batch); err != nil {
					b.Fatal(err)
				}
				records += batchSize
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
