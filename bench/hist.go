package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below exactBelow nanoseconds have a bucket each;
// above, every power-of-two range is cut into subBuckets equal buckets, so
// a bucket is never wider than 1/subBuckets of its lower bound (< 0.8 %).
// Values at or above maxTracked land in the last bucket. The layout is
// fixed, so memory is bounded (histBuckets counters) whatever the run
// length.
const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // buckets per power of two
	exactBelow    = 2 * subBuckets     // values below this are exact
	maxShift      = 33                 // largest shift: values up to 2^41 ns (~36 min)
	histBuckets   = exactBelow + maxShift*subBuckets
	maxTracked    = int64(1) << (maxShift + subBucketBits + 1)
)

// Histogram counts latencies in fixed log-linear buckets (an HDR-style
// layout with about 2.5 significant digits). The zero value is empty and
// ready; it is not safe for concurrent use: give each worker its own and
// Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sumNs  float64
	minNs  int64
	maxNs  int64
}

// bucketOf returns the bucket index of v nanoseconds (v >= 0).
func bucketOf(v int64) int {
	if v < exactBelow {
		return int(v)
	}
	if v >= maxTracked {
		return histBuckets - 1
	}
	shift := bits.Len64(uint64(v)) - (subBucketBits + 1) // >= 1
	return exactBelow + (shift-1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) int64 {
	if i < exactBelow {
		return int64(i)
	}
	shift := (i-exactBelow)/subBuckets + 1
	m := int64((i-exactBelow)%subBuckets + subBuckets)
	return (m+1)<<shift - 1
}

// Record adds one latency. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.minNs {
		h.minNs = v
	}
	if v > h.maxNs {
		h.maxNs = v
	}
	h.n++
	h.sumNs += float64(v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.minNs < h.minNs {
		h.minNs = o.minNs
	}
	if o.maxNs > h.maxNs {
		h.maxNs = o.maxNs
	}
	h.n += o.n
	h.sumNs += o.sumNs
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest recorded value (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxNs) }

// Min returns the smallest recorded value (exact).
func (h *Histogram) Min() time.Duration { return time.Duration(h.minNs) }

// Mean returns the exact mean of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sumNs / float64(h.n))
}

// Quantile returns the value at quantile q in [0, 1]: the upper bound of
// the bucket holding the ceil(q*n)-th smallest value (the smallest value
// for q = 0; the exact maximum for the overflow bucket), clamped to the
// exact maximum. So it never understates a
// latency, and overstates one by less than one bucket (< 0.8 %). An empty
// histogram returns 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.minNs)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			if i == histBuckets-1 || v > h.maxNs {
				v = h.maxNs
			}
			if v < h.minNs {
				v = h.minNs
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.maxNs)
}
