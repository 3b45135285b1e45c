package sense

import (
	"cmp"
	"slices"
)

// Snapshot is one archived posture: the signal vector after a signal, the
// sensitivity and level it produced, and when. Seq numbers snapshots from
// 0 in the order they were added; they survive the ring dropping the
// oldest.
type Snapshot struct {
	Seq         uint64
	Time        int64
	Signals     SignalVector
	Sensitivity int64
	Level       Level
}

// Match is one answer of PostureArchive.Similar: an archived snapshot, its
// squared distance from the query, and the snapshot archived right after
// it ("what happened next"), if the archive still holds one.
type Match struct {
	Snapshot Snapshot
	Distance int64
	Next     Snapshot
	HasNext  bool
}

// PostureArchive is a bounded ring of posture snapshots, oldest first.
// When full, adding drops the oldest.
type PostureArchive struct {
	capacity int
	ring     []Snapshot // logical order starts at head
	head     int
	nextSeq  uint64
}

// NewPostureArchive returns an empty archive holding at most capacity
// snapshots (1..HardMaxArchive; out-of-range values are clamped).
func NewPostureArchive(capacity int) *PostureArchive {
	return &PostureArchive{capacity: int(clamp(int64(capacity), 1, HardMaxArchive))}
}

// Len is the number of snapshots held.
func (a *PostureArchive) Len() int { return len(a.ring) }

// At returns the i-th snapshot held, oldest first; 0 ≤ i < Len().
func (a *PostureArchive) At(i int) Snapshot { return a.ring[(a.head+i)%len(a.ring)] }

// Add archives s with the next sequence number and returns that number.
func (a *PostureArchive) Add(s Snapshot) uint64 {
	s.Seq = a.nextSeq
	a.nextSeq++
	if len(a.ring) < a.capacity {
		a.ring = append(a.ring, s)
	} else {
		a.ring[a.head] = s
		a.head = (a.head + 1) % len(a.ring)
	}
	return s.Seq
}

// Distance is the squared Euclidean distance between two signal vectors,
// each signal first scaled to 0..1000 so that error_budget_burn's wider
// range does not dominate. It is at most 4 000 000.
func Distance(a, b SignalVector) int64 {
	na, nb := normalized(a), normalized(b)
	var d int64
	for k := range na {
		x := na[k] - nb[k]
		d += x * x
	}
	return d
}

// Similar returns the k archived snapshots nearest to v, nearest first;
// equal distances put the more recent snapshot (higher Seq) first. Each
// carries the snapshot archived after it. v must be in range (a
// *SignalError otherwise); k ≤ 0 returns nothing; k beyond Len returns
// every snapshot.
func (a *PostureArchive) Similar(v SignalVector, k int) ([]Match, error) {
	if err := checkVector(v); err != nil {
		return nil, err
	}
	n := len(a.ring)
	if k <= 0 || n == 0 {
		return nil, nil
	}
	ms := make([]Match, n)
	for i := range n {
		s := a.At(i)
		ms[i] = Match{Snapshot: s, Distance: Distance(v, s.Signals)}
		if i+1 < n {
			ms[i].Next, ms[i].HasNext = a.At(i+1), true
		}
	}
	slices.SortFunc(ms, func(x, y Match) int {
		return cmp.Or(cmp.Compare(x.Distance, y.Distance), cmp.Compare(y.Snapshot.Seq, x.Snapshot.Seq))
	})
	return ms[:min(k, n)], nil
}
