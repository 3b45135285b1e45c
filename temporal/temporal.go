package temporal

import (
	"slices"
	"strings"
)

// Window geometry and bounds (see the package comment).
const (
	FineWidthNs   = 300 * 1_000_000_000 // one hour-window bucket: 5 minutes
	FineBuckets   = 12
	CoarseWidthNs = 3600 * 1_000_000_000 // one day-window bucket: 1 hour
	CoarseBuckets = 24
	MaxEntities   = 100_000
	MaxOps        = 32
	MaxResources  = 256
	MaxNameBytes  = 4096 // ops, resources and entities longer than this are not kept
)

// Outcome is what happened to one call.
type Outcome uint8

const (
	Permit Outcome = iota + 1
	Deny
	Escalate
)

// Context is the history of one entity (and one op of it) as policies see
// it: Cedar context.history.<name>.
type Context struct {
	Calls1h             int64
	Calls24h            int64
	Denials1h           int64
	Denials24h          int64
	Errors1h            int64
	Escalations24h      int64
	OpCalls1h           int64
	OpCalls24h          int64
	DistinctResources1h int64
	FirstSeenS          int64
}

// Names are the Cedar attribute names of a Context, in order.
var Names = []string{
	"calls_1h", "calls_24h", "denials_1h", "denials_24h", "errors_1h", "escalations_24h",
	"op_calls_1h", "op_calls_24h", "distinct_resources_1h", "first_seen_s",
}

// Values returns the Context's values in the order of Names.
func (c Context) Values() []int64 {
	return []int64{c.Calls1h, c.Calls24h, c.Denials1h, c.Denials24h, c.Errors1h, c.Escalations24h,
		c.OpCalls1h, c.OpCalls24h, c.DistinctResources1h, c.FirstSeenS}
}

type fineBucket struct {
	idx                    int64
	calls, denials, errors int64
}

type coarseBucket struct {
	idx                         int64
	calls, denials, escalations int64
}

type countBucket struct {
	idx, calls int64
}

type opCounts struct {
	last   int64
	fine   [FineBuckets]countBucket
	coarse [CoarseBuckets]countBucket
}

type entity struct {
	first, last int64
	fine        [FineBuckets]fineBucket
	coarse      [CoarseBuckets]coarseBucket
	ops         map[string]*opCounts
	res         map[string]int64 // resource -> ledger time last touched
	// resQ orders the touches by time (derived from res): an entity's
	// calls have distinct ledger times, so the order is canonical. An
	// entry whose time is no longer its resource's is stale and skipped.
	resQ    []stamp
	resHead int
}

type stamp struct {
	res string
	t   int64
}

// front is the oldest live touch (ok false: none), dropping stale ones.
func (e *entity) front() (stamp, bool) {
	for e.resHead < len(e.resQ) {
		s := e.resQ[e.resHead]
		if t, ok := e.res[s.res]; ok && t == s.t {
			return s, true
		}
		e.resHead++
	}
	return stamp{}, false
}

func (e *entity) popFront() {
	s, ok := e.front()
	if ok {
		delete(e.res, s.res)
		e.resHead++
	}
	if e.resHead > 64 && e.resHead*2 > len(e.resQ) {
		e.resQ = append(e.resQ[:0:0], e.resQ[e.resHead:]...)
		e.resHead = 0
	}
}

// rebuildQueue derives resQ from res (after decoding, or when stale
// entries pile up).
func (e *entity) rebuildQueue() {
	q := make([]stamp, 0, len(e.res))
	for _, r := range names(e.res) {
		q = append(q, stamp{res: r, t: e.res[r]})
	}
	slices.SortFunc(q, func(a, b stamp) int {
		if a.t != b.t {
			if a.t < b.t {
				return -1
			}
			return 1
		}
		return strings.Compare(a.res, b.res)
	})
	e.resQ, e.resHead = q, 0
}

// Book holds every entity's counters.
type Book struct {
	entities map[string]*entity
}

// New returns an empty Book.
func New() *Book { return &Book{entities: map[string]*entity{}} }

// Len is the number of entities with counters.
func (b *Book) Len() int { return len(b.entities) }

func fineIdx(t int64) int64   { return floorDiv(t, FineWidthNs) }
func coarseIdx(t int64) int64 { return floorDiv(t, CoarseWidthNs) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// slot maps a bucket index to its ring position.
func slot(idx int64, n int) int {
	m := idx % int64(n)
	if m < 0 {
		m += int64(n)
	}
	return int(m)
}

// HourStart is the earliest ledger time the 1h counters count at now.
func HourStart(now int64) int64 { return (fineIdx(now) - FineBuckets + 1) * FineWidthNs }

// DayStart is the earliest ledger time the 24h counters count at now.
func DayStart(now int64) int64 { return (coarseIdx(now) - CoarseBuckets + 1) * CoarseWidthNs }

// Context returns entity's history at ledger time now, with the op
// counters of op. An unseen entity has the zero Context.
func (b *Book) Context(name, op string, now int64) Context {
	e := b.entities[name]
	if e == nil {
		return Context{}
	}
	var c Context
	fi, ci := fineIdx(now), coarseIdx(now)
	for _, x := range e.fine {
		if x.idx > fi-FineBuckets && x.idx <= fi {
			c.Calls1h += x.calls
			c.Denials1h += x.denials
			c.Errors1h += x.errors
		}
	}
	for _, x := range e.coarse {
		if x.idx > ci-CoarseBuckets && x.idx <= ci {
			c.Calls24h += x.calls
			c.Denials24h += x.denials
			c.Escalations24h += x.escalations
		}
	}
	if o := e.ops[op]; o != nil {
		for _, x := range o.fine {
			if x.idx > fi-FineBuckets && x.idx <= fi {
				c.OpCalls1h += x.calls
			}
		}
		for _, x := range o.coarse {
			if x.idx > ci-CoarseBuckets && x.idx <= ci {
				c.OpCalls24h += x.calls
			}
		}
	}
	// Every live touch older than the window is at the queue's front.
	start := HourStart(now)
	c.DistinctResources1h = int64(len(e.res))
	for i := e.resHead; i < len(e.resQ) && e.resQ[i].t < start; i++ {
		if s := e.resQ[i]; e.res[s.res] == s.t {
			c.DistinctResources1h--
		}
	}
	if now > e.first {
		c.FirstSeenS = (now - e.first) / 1_000_000_000
	}
	return c
}

// entity returns name's counters, created (evicting the least recently
// seen entity at the bound) when absent.
func (b *Book) entity(name string, now int64) *entity {
	if e := b.entities[name]; e != nil {
		return e
	}
	if len(b.entities) >= MaxEntities {
		victim, vt := "", int64(0)
		for n, e := range b.entities { // detcheck:ordered a minimum with a name tie-break
			if victim == "" || e.last < vt || e.last == vt && n < victim {
				victim, vt = n, e.last
			}
		}
		delete(b.entities, victim)
	}
	e := &entity{first: now, last: now, ops: map[string]*opCounts{}, res: map[string]int64{}}
	b.entities[name] = e
	return e
}

// Record folds one call of entity on op and resource, decided with out,
// at ledger time now. Times must not go backwards.
func (b *Book) Record(name, op, resource string, out Outcome, now int64) {
	if name == "" || len(name) > MaxNameBytes {
		return
	}
	e := b.entity(name, now)
	e.last = now
	f := e.fineAt(now)
	c := e.coarseAt(now)
	f.calls++
	c.calls++
	switch out {
	case Deny:
		f.denials++
		c.denials++
	case Escalate:
		c.escalations++
	}
	if op != "" && len(op) <= MaxNameBytes {
		o := e.op(op, now)
		o.last = now
		fi, ci := fineIdx(now), coarseIdx(now)
		of := &o.fine[slot(fi, FineBuckets)]
		if of.idx != fi {
			*of = countBucket{idx: fi}
		}
		of.calls++
		oc := &o.coarse[slot(ci, CoarseBuckets)]
		if oc.idx != ci {
			*oc = countBucket{idx: ci}
		}
		oc.calls++
	}
	if resource != "" && len(resource) <= MaxNameBytes {
		e.touch(resource, now)
	}
}

// Error folds an external effect of entity that ended in error.
func (b *Book) Error(name string, now int64) {
	if name == "" || len(name) > MaxNameBytes {
		return
	}
	e := b.entity(name, now)
	e.last = now
	e.fineAt(now).errors++
}

func (e *entity) fineAt(now int64) *fineBucket {
	fi := fineIdx(now)
	f := &e.fine[slot(fi, FineBuckets)]
	if f.idx != fi {
		*f = fineBucket{idx: fi}
	}
	return f
}

func (e *entity) coarseAt(now int64) *coarseBucket {
	ci := coarseIdx(now)
	c := &e.coarse[slot(ci, CoarseBuckets)]
	if c.idx != ci {
		*c = coarseBucket{idx: ci}
	}
	return c
}

func (e *entity) op(op string, now int64) *opCounts {
	if o := e.ops[op]; o != nil {
		return o
	}
	if len(e.ops) >= MaxOps {
		victim, vt := "", int64(0)
		for n, o := range e.ops { // detcheck:ordered a minimum with a name tie-break
			if victim == "" || o.last < vt || o.last == vt && n < victim {
				victim, vt = n, o.last
			}
		}
		delete(e.ops, victim)
	}
	o := &opCounts{last: now}
	e.ops[op] = o
	return o
}

// touch records resource at now: touches older than the hour window are
// dropped, then, at the bound, the least recently touched resource.
func (e *entity) touch(resource string, now int64) {
	start := HourStart(now)
	for {
		s, ok := e.front()
		if !ok || s.t >= start {
			break
		}
		e.popFront()
	}
	if _, ok := e.res[resource]; !ok && len(e.res) >= MaxResources {
		e.popFront()
	}
	e.res[resource] = now
	e.resQ = append(e.resQ, stamp{res: resource, t: now})
	if len(e.resQ)-e.resHead > 4*MaxResources {
		e.rebuildQueue()
	}
}

// names returns m's keys sorted.
func names[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m { // detcheck:ordered sorted below
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
