package archive

import "sort"

// slot is the in-memory index entry of one record: 12 bytes. Index and seq
// are stored as deltas from the segment's first record, and the offset is
// the frame's start in the segment file. A segment rolls over before any of
// the three would leave uint32. The kind is not stored: the ordering rules
// make it a function of the seq delta from the previous record (event iff
// +1), and the segment keeps its first record's kind.
type slot struct {
	index uint32
	seq   uint32
	off   uint32
}

// segment is the index of one segment file. A segment reachable from a
// published state is never modified: Append publishes a new segment value
// for the active segment, whose recs may share a backing array with the old
// value's recs but only writes past the old length.
type segment struct {
	path       string
	firstIndex uint64
	firstSeq   uint64
	firstKind  Kind
	size       int64 // bytes of valid frames; the file has exactly this size
	recs       []slot
}

func (s *segment) indexAt(i int) uint64 { return s.firstIndex + uint64(s.recs[i].index) }
func (s *segment) seqAt(i int) uint64   { return s.firstSeq + uint64(s.recs[i].seq) }
func (s *segment) lastIndex() uint64    { return s.indexAt(len(s.recs) - 1) }
func (s *segment) lastSeq() uint64      { return s.seqAt(len(s.recs) - 1) }

func (s *segment) kindAt(i int) Kind {
	if i == 0 {
		return s.firstKind
	}
	if s.recs[i].seq == s.recs[i-1].seq+1 {
		return KindEvent
	}
	return KindNoop
}

// frameEnd is the end offset of record i's frame.
func (s *segment) frameEnd(i int) int64 {
	if i+1 < len(s.recs) {
		return int64(s.recs[i+1].off)
	}
	return s.size
}

// state is an immutable snapshot of the archive's index, published through
// an atomic pointer so readers never take a lock. sealed segments are never
// modified; sealed may share a backing array with a newer state's sealed,
// which only appends. Every segment holds at least one record.
type state struct {
	sealed []*segment
	active *segment // nil when the archive is empty
}

func (st *state) nseg() int {
	if st.active == nil {
		return 0
	}
	return len(st.sealed) + 1
}

func (st *state) seg(i int) *segment {
	if i == len(st.sealed) {
		return st.active
	}
	return st.sealed[i]
}

func (st *state) last() position {
	if st.active == nil {
		return position{}
	}
	return position{have: true, index: st.active.lastIndex(), seq: st.active.lastSeq()}
}

// seqBefore is the seq of the record before (si, ri), or 0 when there is
// none.
func (st *state) seqBefore(si, ri int) uint64 {
	switch {
	case ri > 0:
		return st.seg(si).seqAt(ri - 1)
	case si > 0:
		return st.seg(si - 1).lastSeq()
	default:
		return 0
	}
}

// lowerIndex finds the first record whose Index >= index. si == nseg()
// when there is none.
func (st *state) lowerIndex(index uint64) (si, ri int) {
	n := st.nseg()
	si = sort.Search(n, func(i int) bool { return st.seg(i).lastIndex() >= index })
	if si == n {
		return n, 0
	}
	s := st.seg(si)
	ri = sort.Search(len(s.recs), func(j int) bool { return s.indexAt(j) >= index })
	return si, ri
}

// lowerSeq finds the first record whose Seq >= seq. si == nseg() when
// there is none. Seqs never decrease, so this is a binary search too.
func (st *state) lowerSeq(seq uint64) (si, ri int) {
	n := st.nseg()
	si = sort.Search(n, func(i int) bool { return st.seg(i).lastSeq() >= seq })
	if si == n {
		return n, 0
	}
	s := st.seg(si)
	ri = sort.Search(len(s.recs), func(j int) bool { return s.seqAt(j) >= seq })
	return si, ri
}
