package bench

import (
	"math"
	"math/rand"
	"sort"
	"testing"
	"time"
)

// exactQuantile is the reference the histogram is held to: the
// ceil(q*n)-th smallest value of a sorted slice.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestBucketBoundsCoverEveryValue(t *testing.T) {
	// Every value lies in its bucket: at most the bucket's high bound and
	// above the previous bucket's.
	check := func(v int64) {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside 0..%d", v, i, histBuckets-1)
		}
		if hi := bucketHigh(i); v > hi && v < maxTracked {
			t.Fatalf("value %d above its bucket %d's high bound %d", v, i, hi)
		}
		if i > 0 && v < maxTracked && bucketHigh(i-1) >= v {
			t.Fatalf("value %d not above bucket %d's high bound %d", v, i-1, bucketHigh(i-1))
		}
	}
	for v := int64(0); v < 1<<16; v++ {
		check(v)
	}
	for shift := 16; shift < 44; shift++ {
		for _, d := range []int64{-1, 0, 1} {
			check(int64(1)<<shift + d)
		}
	}
	if got := bucketOf(maxTracked * 4); got != histBuckets-1 {
		t.Fatalf("huge value in bucket %d, want the last (%d)", got, histBuckets-1)
	}
}

func TestQuantilesMatchSortedSliceWithinOneBucket(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	var h Histogram
	vals := make([]int64, 50_000)
	for i := range vals {
		// Log-uniform between 1 µs and 10 s, like latencies.
		v := int64(math.Exp(math.Log(1e3) + rng.Float64()*(math.Log(1e10)-math.Log(1e3))))
		vals[i] = v
		h.Record(time.Duration(v))
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := exactQuantile(vals, q)
		got := int64(h.Quantile(q))
		// Never understated; overstated by less than one bucket width.
		if got < want || float64(got) > float64(want)*(1+1.0/subBuckets) {
			t.Errorf("q=%v: got %d ns, exact %d ns (allowed %d..%d)", q, got, want, want, int64(float64(want)*(1+1.0/subBuckets)))
		}
	}
	if h.Count() != uint64(len(vals)) || int64(h.Max()) != vals[len(vals)-1] || int64(h.Min()) != vals[0] {
		t.Errorf("count/min/max = %d/%d/%d, want %d/%d/%d", h.Count(), h.Min(), h.Max(), len(vals), vals[0], vals[len(vals)-1])
	}
}

func TestQuantilesOfSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.99: 99, 0.999: 100, 1: 100, 0.01: 1} {
		if got := h.Quantile(q); got != want {
			t.Errorf("q=%v: got %d, want %d", q, got, want)
		}
	}
	if got := h.Mean(); got != 50 { // 50.5 truncated
		t.Errorf("mean %d, want 50", got)
	}
}

func TestMergeEqualsRecordingEverythingInOne(t *testing.T) {
	var a, b, all Histogram
	for i := 0; i < 1000; i++ {
		d := time.Duration(i*i*1013 + 7)
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m.counts != all.counts || m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() || m.Mean() != all.Mean() {
		t.Fatalf("merged histogram differs: n=%d min=%d max=%d, want n=%d min=%d max=%d", m.Count(), m.Min(), m.Max(), all.Count(), all.Min(), all.Max())
	}
}

func TestEmptyAndOutOfRange(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram reports non-zero figures")
	}
	h.Record(-time.Second)
	h.Record(time.Duration(maxTracked) * 8)
	if got := h.Quantile(1); got != time.Duration(maxTracked)*8 {
		t.Fatalf("max quantile %d, want the exact maximum %d", got, time.Duration(maxTracked)*8)
	}
	if got := h.Quantile(0.5); got != 0 {
		t.Fatalf("negative duration recorded as %d, want 0", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 2 may hold spaces and parentheses; utime=250 and stime=50
	// ticks are fields 14 and 15.
	stat := "4242 (dominus (a) b) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.0 {
		t.Fatalf("cpu %v s, want 3 (300 ticks at 100 Hz)", got)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Fatal("short stat line accepted")
	}
	if s, err := CPUSeconds(0); err != nil || s < 0 {
		t.Fatalf("own CPU seconds %v, %v", s, err)
	}
}

func TestParseMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal: busy excludes idle
	// (1000) and iowait (500): 100+10+50+5+5+30 = 200 ticks = 2 s.
	stat := "cpu  100 10 50 1000 500 5 5 30 0 0\ncpu0 50 5 25 500 250 2 3 15 0 0\nintr 1 2 3\n"
	got, err := parseMachineBusy(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Fatalf("busy %v s, want 2", got)
	}
	if _, err := parseMachineBusy("intr 1 2 3\n"); err == nil {
		t.Fatal("stat without a cpu line accepted")
	}
}
