package temporal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Encoding: the magic "DTMP", a version byte, then the entities sorted by
// name. An entity is its name, first and last ledger times, its non-empty
// hour buckets and day buckets (slot ascending: slot, index, counts), its
// ops sorted by name (name, last time, non-empty buckets: slot, index,
// calls) and its resources sorted by name (name, last time). Integers are
// varints (signed zig-zag), strings a uvarint length and the bytes. A
// bucket is non-empty when a count is non-zero. Equal Books encode to
// equal bytes, and Decode accepts exactly the bytes Encode produces.
const (
	codecMagic   = "DTMP"
	codecVersion = 1
)

// ErrDecode is wrapped by every Decode error.
var ErrDecode = errors.New("temporal: invalid encoded state")

type enc struct{ b []byte }

func (e *enc) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) s(v string) { e.u(uint64(len(v))); e.b = append(e.b, v...) }

// Encode returns the canonical bytes of b.
func (b *Book) Encode() []byte {
	e := &enc{b: append(make([]byte, 0, 64+len(b.entities)*128), codecMagic...)}
	e.b = append(e.b, codecVersion)
	ns := names(b.entities)
	e.u(uint64(len(ns)))
	for _, n := range ns {
		x := b.entities[n]
		e.s(n)
		e.i(x.first)
		e.i(x.last)
		var fine, coarse []int
		for i, f := range x.fine {
			if f.calls != 0 || f.denials != 0 || f.errors != 0 {
				fine = append(fine, i)
			}
		}
		e.u(uint64(len(fine)))
		for _, i := range fine {
			f := x.fine[i]
			e.u(uint64(i))
			e.i(f.idx)
			e.i(f.calls)
			e.i(f.denials)
			e.i(f.errors)
		}
		for i, c := range x.coarse {
			if c.calls != 0 || c.denials != 0 || c.escalations != 0 {
				coarse = append(coarse, i)
			}
		}
		e.u(uint64(len(coarse)))
		for _, i := range coarse {
			c := x.coarse[i]
			e.u(uint64(i))
			e.i(c.idx)
			e.i(c.calls)
			e.i(c.denials)
			e.i(c.escalations)
		}
		ops := names(x.ops)
		e.u(uint64(len(ops)))
		for _, on := range ops {
			o := x.ops[on]
			e.s(on)
			e.i(o.last)
			e.counts(o.fine[:])
			e.counts(o.coarse[:])
		}
		rs := names(x.res)
		e.u(uint64(len(rs)))
		for _, r := range rs {
			e.s(r)
			e.i(x.res[r])
		}
	}
	return e.b
}

func (e *enc) counts(bs []countBucket) {
	n := 0
	for _, c := range bs {
		if c.calls != 0 {
			n++
		}
	}
	e.u(uint64(n))
	for i, c := range bs {
		if c.calls != 0 {
			e.u(uint64(i))
			e.i(c.idx)
			e.i(c.calls)
		}
	}
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrDecode}, a...)...)
	}
}

func (d *dec) u() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) s() string {
	n := d.u()
	if d.err != nil {
		return ""
	}
	if n == 0 || n > MaxNameBytes || n > uint64(len(d.b)) {
		d.fail("bad string length %d", n)
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// count reads a bucket count: positive in a bucket that is stored.
func (d *dec) count() int64 {
	v := d.i()
	if v < 0 {
		d.fail("negative count")
	}
	return v
}

// slots reads a list of ring slots, strictly ascending, below n, each
// holding an index that maps to it.
func (d *dec) slots(n int, each func(i int, idx int64)) {
	k := d.u()
	if k > uint64(n) {
		d.fail("%d buckets in a ring of %d", k, n)
		return
	}
	prev := -1
	for j := uint64(0); j < k && d.err == nil; j++ {
		i := d.u()
		idx := d.i()
		if d.err != nil {
			return
		}
		if i >= uint64(n) || int(i) <= prev || slot(idx, n) != int(i) {
			d.fail("bucket slot %d (index %d) out of order", i, idx)
			return
		}
		prev = int(i)
		each(int(i), idx)
	}
}

// Decode parses bytes Encode produced.
func Decode(b []byte) (*Book, error) {
	if len(b) < len(codecMagic)+1 || string(b[:len(codecMagic)]) != codecMagic || b[len(codecMagic)] != codecVersion {
		return nil, fmt.Errorf("%w: bad magic or version", ErrDecode)
	}
	d := &dec{b: b[len(codecMagic)+1:]}
	book := New()
	n := d.u()
	if n > MaxEntities {
		return nil, fmt.Errorf("%w: %d entities", ErrDecode, n)
	}
	prev := ""
	for k := uint64(0); k < n && d.err == nil; k++ {
		name := d.s()
		if d.err == nil && k > 0 && name <= prev {
			d.fail("entities out of order")
		}
		prev = name
		x := &entity{first: d.i(), last: d.i(), ops: map[string]*opCounts{}, res: map[string]int64{}}
		if d.err == nil && x.last < x.first {
			d.fail("entity %q last seen before first seen", name)
		}
		d.slots(FineBuckets, func(i int, idx int64) {
			f := fineBucket{idx: idx, calls: d.count(), denials: d.count(), errors: d.count()}
			if f.calls == 0 && f.denials == 0 && f.errors == 0 {
				d.fail("empty bucket")
			}
			x.fine[i] = f
		})
		d.slots(CoarseBuckets, func(i int, idx int64) {
			c := coarseBucket{idx: idx, calls: d.count(), denials: d.count(), escalations: d.count()}
			if c.calls == 0 && c.denials == 0 && c.escalations == 0 {
				d.fail("empty bucket")
			}
			x.coarse[i] = c
		})
		nops := d.u()
		if nops > MaxOps {
			d.fail("%d ops", nops)
		}
		pop := ""
		for j := uint64(0); j < nops && d.err == nil; j++ {
			on := d.s()
			if d.err == nil && j > 0 && on <= pop {
				d.fail("ops out of order")
			}
			pop = on
			o := &opCounts{last: d.i()}
			d.countSlots(o.fine[:])
			d.countSlots(o.coarse[:])
			x.ops[on] = o
		}
		nres := d.u()
		if nres > MaxResources {
			d.fail("%d resources", nres)
		}
		pr := ""
		for j := uint64(0); j < nres && d.err == nil; j++ {
			r := d.s()
			if d.err == nil && j > 0 && r <= pr {
				d.fail("resources out of order")
			}
			pr = r
			x.res[r] = d.i()
		}
		x.rebuildQueue()
		book.entities[name] = x
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return book, nil
}

func (d *dec) countSlots(bs []countBucket) {
	d.slots(len(bs), func(i int, idx int64) {
		c := countBucket{idx: idx, calls: d.count()}
		if c.calls == 0 {
			d.fail("empty bucket")
		}
		bs[i] = c
	})
}

// Clone returns a deep copy of b.
func (b *Book) Clone() *Book {
	out := &Book{entities: make(map[string]*entity, len(b.entities))}
	for n, e := range b.entities { // detcheck:ordered copies every entry; order does not matter
		c := *e
		c.ops = make(map[string]*opCounts, len(e.ops))
		for on, o := range e.ops { // detcheck:ordered copies every entry
			oc := *o
			c.ops[on] = &oc
		}
		c.res = make(map[string]int64, len(e.res))
		for r, t := range e.res { // detcheck:ordered copies every entry
			c.res[r] = t
		}
		c.resQ, c.resHead = append([]stamp(nil), e.resQ[e.resHead:]...), 0
		out.entities[n] = &c
	}
	return out
}
