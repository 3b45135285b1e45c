package history

import (
	"context"
	"flag"
	"math/rand"
	"strconv"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
)

var benchBig = flag.Bool("history.big", false, "BenchmarkAsOfRead also on a 1,000,000-event ledger (minutes to build)")

// BenchmarkAsOfRead is an as-of read (verify the checkpoint, replay to
// the seq) at a random seq of ledgers of 10k, 100k (and with
// -history.big 1M) events, with checkpoints every 1,000 and 10,000
// events. It reports the checkpoints' disk cost and the time to build
// them; the read's latency is ns/op.
func BenchmarkAsOfRead(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if *benchBig {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		seed := int64(n)
		b.Logf("seed %d", seed)
		run := buildLedger(b, seed, n)
		last := run.src.ArchivedSeq()
		for _, every := range []uint64{1000, 10_000} {
			b.Run(strconv.Itoa(n)+"events/every"+strconv.FormatUint(every, 10), func(b *testing.B) {
				h, err := Open(run.src, Config{Dir: b.TempDir(), Every: every})
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := h.build(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
				build := time.Since(t0)
				st := h.Status()
				rng := rand.New(rand.NewSource(seed))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					seq := 1 + uint64(rng.Int63n(int64(last)))
					if err := h.At(context.Background(), seq, func(l *fsm.Ledger) {}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(st.Bytes)/float64(st.Checkpoints), "B/checkpoint")
				b.ReportMetric(float64(st.Bytes)/(1<<20), "MiB_checkpoints")
				b.ReportMetric(build.Seconds(), "s_build")
			})
		}
	}
}
