package fsm

// dedupRing is the dedup window's entries in append (ledger time) order,
// in a ring buffer: a steady window appends one entry and drops one per
// remembered call without copying the others (a re-sliced queue copied
// the whole window each time its backing array ran out, ~18 MB at the
// 100k-entry bound).
type dedupRing struct {
	buf  []DedupEntry
	head int // buf index of the oldest entry
	n    int
}

func newDedupRing(entries []DedupEntry) dedupRing {
	if len(entries) == 0 {
		return dedupRing{}
	}
	return dedupRing{buf: append([]DedupEntry(nil), entries...), n: len(entries)}
}

// len is the number of entries.
func (q *dedupRing) len() int { return q.n }

// at returns the i-th oldest entry (0 <= i < len).
func (q *dedupRing) at(i int) *DedupEntry {
	if i < 0 || i >= q.n {
		panic("fsm: dedup position out of range")
	}
	return &q.buf[(q.head+i)%len(q.buf)]
}

// push appends e as the newest entry, doubling the buffer when full.
func (q *dedupRing) push(e DedupEntry) {
	if q.n == len(q.buf) {
		grown := make([]DedupEntry, max(16, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			grown[i] = *q.at(i)
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
}

// drop removes the oldest entry and returns it.
func (q *dedupRing) drop() DedupEntry {
	e := *q.at(0)
	q.buf[q.head] = DedupEntry{} // no longer keeps its strings alive
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return e
}

// slice returns the entries oldest first, nil when there are none (as
// the canonical state body encodes them).
func (q *dedupRing) slice() []DedupEntry {
	if q.n == 0 {
		return nil
	}
	out := make([]DedupEntry, q.n)
	for i := range out {
		out[i] = *q.at(i)
	}
	return out
}
