package kernel

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket per entity, applied before Raft so a
// flood never reaches the ledger. The table is bounded: past maxEntities
// it is reset (buckets start full, so a reset only ever errs toward
// admitting).
type rateLimiter struct {
	mu          sync.Mutex
	perSecond   float64
	burst       float64
	maxEntities int
	buckets     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	return &rateLimiter{perSecond: perSecond, burst: float64(burst), maxEntities: 100_000, buckets: map[string]*bucket{}}
}

// allow takes one token for entity at now.
func (r *rateLimiter) allow(entity string, now time.Time) bool {
	if r == nil || r.perSecond <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[entity]
	if b == nil {
		if len(r.buckets) >= r.maxEntities {
			r.buckets = map[string]*bucket{}
		}
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[entity] = b
	}
	b.tokens += now.Sub(b.last).Seconds() * r.perSecond
	if b.tokens > r.burst {
		b.tokens = r.burst
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
