package sense

import (
	"fmt"
	"maps"
	"slices"
)

// Model 2 encoding: when model 2 has been used, Encode appends the byte
// 'M', the model version 2, the alert target and the model-2 entities
// sorted by name. A state that never used model 2 encodes exactly as
// before (fsm protocols 1 to 4 replay byte for byte). Peer groups are not
// encoded: they are sums over their established members, rebuilt on
// Decode.
const (
	model2Marker  = 'M'
	model2Version = 2
)

func (e *encoder) counts(c minuteCounts) {
	for _, v := range []int64{c.idx, c.calls, c.denies, c.errors, c.bytes, c.bexp, c.bvar, c.bvs, c.act} {
		e.i(v)
	}
}

func (e *encoder) ints(vs ...int64) {
	for _, v := range vs {
		e.i(v)
	}
}

func (e *encoder) flag(b bool) {
	if b {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

func (e *encoder) model2(m *model2) {
	e.byte(model2Marker)
	e.byte(model2Version)
	e.i(m.targetMilli)
	names := slices.Sorted(maps.Keys(m.entities))
	e.u(uint64(len(names)))
	for _, n := range names {
		e.s(n)
		e.entity2(m.entities[n])
	}
}

func (e *encoder) entity2(x *entity2) {
	e.ints(x.first, x.last, x.calls)
	e.s(x.peer)
	e.s(x.parent)
	e.flag(x.member)
	e.counts(x.cur)
	e.flag(x.curSuspect)
	e.flag(x.curAlerted)
	for _, c := range x.ring {
		e.counts(c)
	}
	for _, c := range x.tens {
		e.counts(c)
	}
	e.ints(x.hour[:]...)
	e.u(uint64(x.hourSeen))
	for _, n := range x.hourN {
		e.u(uint64(n))
	}
	e.ints(x.excess[:]...)
	e.ints(x.fast, x.disp, x.disp10, x.disp60, x.dispAct, x.actRatio, x.lastWin, x.suspectBucket,
		x.sizeMean, x.sizeSq, x.rd, x.re, x.rn, x.opN, x.rec, x.recT, x.novOps, x.novRes, x.sizeN, x.dispN)
	e.u(uint64(len(x.ops)))
	for _, o := range x.ops {
		e.s(o.name)
		e.ints(o.n, o.fast, o.rec, o.recT, o.since, o.streak, o.size, o.sq)
	}
	e.u(uint64(len(x.prefixes)))
	for _, p := range x.prefixes {
		e.s(p.name)
		e.ints(p.since, p.rec, p.recT)
	}
	e.ints(x.novT[:]...)
	e.ints(x.resT[:]...)
	e.ints(x.size[:]...)
	for i := range x.ev {
		e.u(x.ev[i])
		e.i(x.evT[i])
	}
}

func (d *decoder) counts() minuteCounts {
	var c minuteCounts
	for _, p := range []*int64{&c.idx, &c.calls, &c.denies, &c.errors, &c.bytes, &c.bexp, &c.bvar, &c.bvs, &c.act} {
		*p = d.i()
	}
	return c
}

func (d *decoder) ints(ps ...*int64) {
	for _, p := range ps {
		*p = d.i()
	}
}

func (d *decoder) flag() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("flag not 0 or 1")
	return false
}

// model2 decodes the model-2 section (after its marker).
func (d *decoder) model2(maxEntities int) *model2 {
	if v := d.byte(); d.err == nil && v != model2Version {
		d.fail("model version %d, want %d", v, model2Version)
		return nil
	}
	m := newModel2()
	m.targetMilli = d.i()
	if d.err == nil && (m.targetMilli < 1 || m.targetMilli > MaxAlertsPerDayMilli) {
		d.fail("alert target %d", m.targetMilli)
	}
	n := d.count(maxEntities, "model-2 entity")
	prev := ""
	for i := range n {
		name := d.s(MaxEntityLen)
		x := d.entity2()
		if d.err != nil {
			return nil
		}
		if !validName(name, MaxEntityLen) || (i > 0 && name <= prev) {
			d.fail("model-2 entity %q invalid or out of order", name)
			return nil
		}
		if err := x.validate(); err != nil {
			d.fail("model-2 entity %q: %v", name, err)
			return nil
		}
		x.perDay = x.callsPerDay()
		m.entities[name] = x
		prev = name
	}
	for _, name := range slices.Sorted(maps.Keys(m.entities)) {
		x := m.entities[name]
		if x.member {
			x.member = false
			m.joinPeers(name, x, x.last, 0, 0, 0)
		}
	}
	return m
}

func (d *decoder) entity2() *entity2 {
	x := &entity2{}
	d.ints(&x.first, &x.last, &x.calls)
	x.peer = d.s(MaxEntityLen)
	x.parent = d.s(MaxEntityLen)
	x.member = d.flag()
	x.cur = d.counts()
	x.curSuspect = d.flag()
	x.curAlerted = d.flag()
	for i := range x.ring {
		x.ring[i] = d.counts()
	}
	for i := range x.tens {
		x.tens[i] = d.counts()
	}
	for i := range x.hour {
		x.hour[i] = d.i()
	}
	x.hourSeen = d.u32()
	for i := range x.hourN {
		x.hourN[i] = uint16(min(d.u32(), HourDen+1))
	}
	for i := range x.excess {
		x.excess[i] = d.i()
	}
	d.ints(&x.fast, &x.disp, &x.disp10, &x.disp60, &x.dispAct, &x.actRatio, &x.lastWin, &x.suspectBucket,
		&x.sizeMean, &x.sizeSq, &x.rd, &x.re, &x.rn, &x.opN, &x.rec, &x.recT, &x.novOps, &x.novRes, &x.sizeN, &x.dispN)
	n := d.count(maxOps2, "model-2 op")
	for range n {
		o := op2{name: d.s(MaxOpLen)}
		d.ints(&o.n, &o.fast, &o.rec, &o.recT, &o.since, &o.streak, &o.size, &o.sq)
		x.ops = append(x.ops, o)
	}
	n = d.count(maxPrefixes, "resource prefix")
	for range n {
		p := prefix2{name: d.s(maxPrefixLen)}
		d.ints(&p.since, &p.rec, &p.recT)
		x.prefixes = append(x.prefixes, p)
	}
	for i := range x.novT {
		x.novT[i] = d.i()
	}
	for i := range x.resT {
		x.resT[i] = d.i()
	}
	for i := range x.size {
		x.size[i] = d.i()
	}
	for i := range x.ev {
		x.ev[i] = d.u()
		x.evT[i] = d.i()
	}
	return x
}

// validate checks what the write path guarantees of a model-2 entity.
func (x *entity2) validate() error {
	switch {
	case x.first < 0 || x.last < x.first:
		return fmt.Errorf("times %d..%d", x.first, x.last)
	case x.calls < 1 || x.calls > maxCount:
		return fmt.Errorf("calls %d", x.calls)
	case x.hourSeen >= 1<<24:
		return fmt.Errorf("hour mask %#x", x.hourSeen)
	case x.disp < 1000 || x.disp10 < 1000 || x.disp60 < 1000 || x.dispAct < 1000 || x.dispN < 0 || x.dispN > DispDen:
		return fmt.Errorf("dispersion below one")
	case x.rd < 0 || x.re < 0 || x.rd > x.rn || x.re > x.rn || x.opN < 0 || x.sizeN < 0 || x.novOps < 0 || x.novRes < 0:
		return fmt.Errorf("negative or inconsistent counts")
	case x.peer != "" && !validName(x.peer, MaxEntityLen), x.parent != "" && !validName(x.parent, MaxEntityLen):
		return fmt.Errorf("peer %q or parent %q", x.peer, x.parent)
	}
	var sum int64
	for i, o := range x.ops {
		if !validName(o.name, MaxOpLen) || (i > 0 && o.name <= x.ops[i-1].name) || o.n < 0 || o.rec < 0 {
			return fmt.Errorf("op %q invalid or out of order", o.name)
		}
		sum += o.n
	}
	if sum != x.opN {
		return fmt.Errorf("op counts sum to %d, want %d", sum, x.opN)
	}
	var sz int64
	for _, v := range x.size {
		if v < 0 {
			return fmt.Errorf("negative size count")
		}
		sz += v
	}
	if sz != x.sizeN {
		return fmt.Errorf("size counts sum to %d, want %d", sz, x.sizeN)
	}
	for i, p := range x.prefixes {
		for _, q := range x.prefixes[:i] {
			if q.name == p.name {
				return fmt.Errorf("prefix %q twice", p.name)
			}
		}
	}
	return nil
}
