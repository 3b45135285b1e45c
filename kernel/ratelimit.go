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

// allowAt takes one token for entity at now; perSecond > 0 is the
// entity's own replicated rate (burst: two seconds of it), else the
// node's default applies.
func (r *rateLimiter) allowAt(entity string, now time.Time, perSecond float64) bool {
	if r == nil {
		return true
	}
	burst := r.burst
	if perSecond > 0 {
		burst = 2 * perSecond
	} else {
		perSecond = r.perSecond
	}
	if perSecond <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[entity]
	if b == nil {
		if len(r.buckets) >= r.maxEntities {
			r.buckets = map[string]*bucket{}
		}
		b = &bucket{tokens: burst, last: now}
		r.buckets[entity] = b
	}
	b.tokens += now.Sub(b.last).Seconds() * perSecond
	if b.tokens > burst {
		b.tokens = burst
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
