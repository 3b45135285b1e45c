package sense

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Encoding: the magic "DSNS", a version byte, then the config, posture,
// archive (oldest first), trust (sorted by entity) and baselines (sorted
// by entity). Integers are varints (signed fields zig-zag), strings are a
// uvarint length and the bytes, the seen-set is 32 big-endian uint64s.
// Equal states encode to equal bytes and Decode accepts exactly the bytes
// Encode produces.
const (
	codecMagic   = "DSNS"
	codecVersion = 1
)

// ErrDecode is wrapped by every Decode error.
var ErrDecode = errors.New("sense: invalid encoded state")

type encoder struct{ b []byte }

func (e *encoder) u(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) s(v string)  { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) byte(v byte) { e.b = append(e.b, v) }

func (e *encoder) snapshot(s Snapshot) {
	e.i(s.Time)
	for _, x := range s.Signals {
		e.i(x)
	}
	e.i(s.Sensitivity)
	e.byte(byte(s.Level))
}

// Encode returns the canonical bytes of the whole state.
func (s *Sensor) Encode() []byte {
	e := &encoder{b: make([]byte, 0, 256+64*s.archive.Len()+32*s.trust.Len()+512*s.base.Len())}
	e.b = append(e.b, codecMagic...)
	e.byte(codecVersion)

	c := s.cfg
	e.i(c.WindowNs)
	for _, v := range []uint32{c.MinWindows, c.AlphaNum, c.AlphaDen, c.MaxEntities, c.MaxOps, c.MaxTransitions, c.ArchiveCap} {
		e.u(uint64(v))
	}
	for _, t := range c.Tolerance {
		e.i(t)
	}

	p := s.posture
	if p.set {
		e.byte(1)
	} else {
		e.byte(0)
	}
	e.snapshot(p.snapshot())

	a := s.archive
	e.u(a.nextSeq)
	e.u(uint64(a.Len()))
	for i := range a.Len() {
		e.snapshot(a.At(i))
	}

	names := slices.Sorted(maps.Keys(s.trust.scores))
	e.u(uint64(len(names)))
	for _, n := range names {
		e.s(n)
		e.i(s.trust.scores[n])
	}

	names = slices.Sorted(maps.Keys(s.base.entities))
	e.u(uint64(len(names)))
	for _, n := range names {
		b := s.base.entities[n]
		e.s(n)
		e.i(b.window)
		e.i(b.last)
		e.s(b.lastOp)
		e.u(uint64(b.windows))
		e.i(b.lastNovel)
		for _, v := range []int64{b.events, b.denies, b.errors, b.bytes, b.effects, b.novelOps, b.trans, b.novelTrans, b.peak} {
			e.i(v)
		}
		for _, st := range b.stats {
			e.i(st.Mean)
			e.i(st.MAD)
			e.i(st.Up)
		}
		e.u(uint64(len(b.ops)))
		for _, o := range b.ops {
			e.s(o.name)
			e.i(o.share)
			e.i(o.win)
		}
		e.i(b.other.share)
		e.i(b.other.win)
		e.u(uint64(len(b.tr)))
		for _, t := range b.tr {
			e.s(t.From)
			e.s(t.To)
			e.i(t.Count)
		}
		for _, w := range b.seen {
			e.b = binary.BigEndian.AppendUint64(e.b, w)
		}
	}
	if s.m2 != nil {
		e.model2(s.m2)
	}
	return e.b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrDecode}, args...)...)
	}
}

func (d *decoder) u() uint64 {
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

func (d *decoder) i() int64 {
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

func (d *decoder) u32() uint32 {
	v := d.u()
	if v > 1<<32-1 {
		d.fail("value %d exceeds uint32", v)
		return 0
	}
	return uint32(v)
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) s(limit int) string {
	n := d.u()
	if d.err != nil {
		return ""
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.fail("string of %d bytes (limit %d, %d left)", n, limit, len(d.b))
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// count reads a collection length, refusing one beyond limit or beyond
// what the remaining bytes could hold (each element takes ≥ 1 byte).
func (d *decoder) count(limit int, what string) int {
	n := d.u()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.fail("%s count %d (limit %d, %d bytes left)", what, n, limit, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) snapshot() Snapshot {
	var s Snapshot
	s.Time = d.i()
	for k := range s.Signals {
		s.Signals[k] = d.i()
	}
	s.Sensitivity = d.i()
	s.Level = Level(d.byte())
	return s
}

// validSnapshot checks a posture snapshot produced by a signal.
func validSnapshot(s Snapshot) error {
	switch {
	case s.Time < 0:
		return fmt.Errorf("negative time %d", s.Time)
	case checkVector(s.Signals) != nil:
		return checkVector(s.Signals)
	case s.Sensitivity != Sensitivity(s.Signals):
		return fmt.Errorf("sensitivity %d, signals give %d", s.Sensitivity, Sensitivity(s.Signals))
	case s.Level >= NumLevels || NextLevel(s.Level, s.Sensitivity) != s.Level:
		return fmt.Errorf("level %s not stable at sensitivity %d", s.Level, s.Sensitivity)
	}
	return nil
}

// Decode rebuilds a Sensor from Encode's bytes. It accepts only canonical
// bytes of a state that satisfies every invariant: whatever it accepts
// re-encodes to the same bytes.
func Decode(data []byte) (*Sensor, error) {
	d := &decoder{b: data}
	if !bytes.HasPrefix(data, []byte(codecMagic)) {
		return nil, fmt.Errorf("%w: bad magic", ErrDecode)
	}
	d.b = d.b[len(codecMagic):]
	if v := d.byte(); d.err == nil && v != codecVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrDecode, v, codecVersion)
	}

	var c Config
	c.WindowNs = d.i()
	for _, p := range []*uint32{&c.MinWindows, &c.AlphaNum, &c.AlphaDen, &c.MaxEntities, &c.MaxOps, &c.MaxTransitions, &c.ArchiveCap} {
		*p = d.u32()
	}
	for l := range c.Tolerance {
		c.Tolerance[l] = d.i()
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	s, err := New(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}

	// Posture.
	set := d.byte()
	ps := d.snapshot()
	if d.err != nil {
		return nil, d.err
	}
	switch set {
	case 0:
		if ps != (Snapshot{Level: LevelNormal}) {
			return nil, fmt.Errorf("%w: posture without signals is not the initial one", ErrDecode)
		}
	case 1:
		if err := validSnapshot(ps); err != nil {
			return nil, fmt.Errorf("%w: posture: %v", ErrDecode, err)
		}
	default:
		return nil, fmt.Errorf("%w: posture flag %d", ErrDecode, set)
	}
	*s.posture = Posture{signals: ps.Signals, sensitivity: ps.Sensitivity, level: ps.Level, time: ps.Time, set: set == 1}

	// Archive: contiguous sequence numbers ending at nextSeq-1, times in
	// order, the newest equal to the current posture.
	next := d.u()
	n := d.count(int(c.ArchiveCap), "archive")
	if d.err == nil && uint64(n) > next {
		d.fail("archive holds %d snapshots but only %d were added", n, next)
	}
	for i := range n {
		sn := d.snapshot()
		if d.err != nil {
			break
		}
		sn.Seq = next - uint64(n) + uint64(i)
		if err := validSnapshot(sn); err != nil {
			d.fail("archive snapshot %d: %v", sn.Seq, err)
			break
		}
		if i > 0 && sn.Time < s.archive.At(i-1).Time {
			d.fail("archive snapshot %d goes back in time", sn.Seq)
			break
		}
		s.archive.ring = append(s.archive.ring, sn)
	}
	s.archive.nextSeq = next
	if d.err != nil {
		return nil, d.err
	}
	if (next > 0) != s.posture.set || (n > 0) != s.posture.set {
		return nil, fmt.Errorf("%w: archive and posture disagree on whether a signal was seen", ErrDecode)
	}
	if n > 0 {
		newest := s.archive.At(n - 1)
		newest.Seq = 0
		if newest != s.posture.snapshot() {
			return nil, fmt.Errorf("%w: newest archived posture differs from the current one", ErrDecode)
		}
	}

	// Trust.
	n = d.count(int(c.MaxEntities), "trust")
	prev := ""
	for i := range n {
		name := d.s(MaxEntityLen)
		m := d.i()
		if d.err != nil {
			break
		}
		if !validName(name, MaxEntityLen) || (i > 0 && name <= prev) {
			d.fail("trust entity %q invalid or out of order", name)
			break
		}
		if m < 0 || m > TrustMax*trustMilli {
			d.fail("trust of %q = %d milli-points, want 0..%d", name, m, TrustMax*trustMilli)
			break
		}
		s.trust.scores[name] = m
		prev = name
	}
	if d.err != nil {
		return nil, d.err
	}

	// Baselines.
	n = d.count(int(c.MaxEntities), "baseline")
	prev = ""
	for i := range n {
		name := d.s(MaxEntityLen)
		b := d.baseline(c)
		if d.err != nil {
			break
		}
		if !validName(name, MaxEntityLen) || (i > 0 && name <= prev) {
			d.fail("baseline entity %q invalid or out of order", name)
			break
		}
		if err := b.validate(c); err != nil {
			d.fail("baseline of %q: %v", name, err)
			break
		}
		s.base.entities[name] = b
		prev = name
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 && d.b[0] == model2Marker {
		d.b = d.b[1:]
		s.m2 = d.model2(int(c.MaxEntities))
		if d.err != nil {
			return nil, d.err
		}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(d.b))
	}
	if !bytes.Equal(s.Encode(), data) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrDecode)
	}
	return s, nil
}

func (d *decoder) baseline(c Config) *baseline {
	b := &baseline{}
	b.window = d.i()
	b.last = d.i()
	b.lastOp = d.s(MaxOpLen)
	b.windows = d.u32()
	b.lastNovel = d.i()
	for _, p := range []*int64{&b.events, &b.denies, &b.errors, &b.bytes, &b.effects, &b.novelOps, &b.trans, &b.novelTrans, &b.peak} {
		*p = d.i()
	}
	for m := range b.stats {
		b.stats[m].Mean = d.i()
		b.stats[m].MAD = d.i()
		b.stats[m].Up = d.i()
	}
	n := d.count(int(c.MaxOps), "op")
	for range n {
		o := opStat{name: d.s(MaxOpLen)}
		o.share = d.i()
		o.win = d.i()
		if d.err != nil {
			return nil
		}
		b.ops = append(b.ops, o)
	}
	b.other.share = d.i()
	b.other.win = d.i()
	n = d.count(int(c.MaxTransitions), "transition")
	for range n {
		t := Transition{From: d.s(MaxOpLen), To: d.s(MaxOpLen)}
		t.Count = d.i()
		if d.err != nil {
			return nil
		}
		b.tr = append(b.tr, t)
	}
	for k := range b.seen {
		if len(d.b) < 8 {
			d.fail("truncated seen-set")
			return nil
		}
		b.seen[k] = binary.BigEndian.Uint64(d.b)
		d.b = d.b[8:]
	}
	return b
}

// statMax bounds every EWMA mean and MAD (metric values stay below 2^53).
const statMax = 1 << 53

// validate checks the invariants Observe and fold maintain.
func (b *baseline) validate(c Config) error {
	switch {
	case b.last < 0:
		return fmt.Errorf("negative last time %d", b.last)
	case !validName(b.lastOp, MaxOpLen) || !b.seen.has('o', b.lastOp, ""):
		return fmt.Errorf("last op %q invalid or unseen", b.lastOp)
	case b.events < 1 || b.events > maxWindowCount:
		return fmt.Errorf("window events %d, want 1..%d", b.events, int64(maxWindowCount))
	case b.window != floorDiv(b.last, c.WindowNs):
		return fmt.Errorf("open window %d does not hold the last observation", b.window)
	case (b.windows == 0 && b.lastNovel != 0) || (b.windows > 0 && b.lastNovel >= b.window):
		return fmt.Errorf("last novel window %d not before the open window %d", b.lastNovel, b.window)
	case b.denies < 0 || b.errors < 0 || b.denies+b.errors > b.events:
		return fmt.Errorf("denies %d + errors %d exceed events %d", b.denies, b.errors, b.events)
	case b.effects < 0 || b.effects > b.events, b.novelOps < 0 || b.novelOps > b.events:
		return fmt.Errorf("effects %d or novel ops %d out of 0..%d", b.effects, b.novelOps, b.events)
	case b.trans < 0 || b.trans > b.events || b.novelTrans < 0 || b.novelTrans > b.trans:
		return fmt.Errorf("transitions %d / novel %d out of range", b.trans, b.novelTrans)
	case b.bytes < 0 || b.bytes > maxWindowBytes:
		return fmt.Errorf("window bytes %d out of range", b.bytes)
	case b.peak < 0 || b.peak > MaxScore:
		return fmt.Errorf("peak score %d out of range", b.peak)
	}
	for m, st := range b.stats {
		if st.Mean < 0 || st.Mean > statMax || st.MAD < 0 || st.MAD > statMax || st.Up < 0 || st.Up > statMax {
			return fmt.Errorf("%s statistics %+v out of range", Metric(m), st)
		}
	}
	sum := b.other.win
	if b.other.share < 0 || b.other.share > Micro || b.other.win < 0 || b.other.win > b.events {
		return fmt.Errorf("other bucket %d/%d out of range", b.other.share, b.other.win)
	}
	for i, o := range b.ops {
		switch {
		case !validName(o.name, MaxOpLen) || (i > 0 && o.name <= b.ops[i-1].name):
			return fmt.Errorf("op %q invalid or out of order", o.name)
		case o.share < 0 || o.share > Micro || o.win < 0 || o.win > b.events || (o.share == 0 && o.win == 0):
			return fmt.Errorf("op %q share %d window count %d out of range", o.name, o.share, o.win)
		case !b.seen.has('o', o.name, ""):
			return fmt.Errorf("op %q missing from the seen-set", o.name)
		}
		sum += o.win
	}
	if sum != b.events {
		return fmt.Errorf("op counts sum to %d, window has %d events", sum, b.events)
	}
	for i, t := range b.tr {
		switch {
		case !validName(t.From, MaxOpLen) || !validName(t.To, MaxOpLen):
			return fmt.Errorf("transition %q→%q has an invalid op", t.From, t.To)
		case i > 0 && compareTransition(b.tr[i-1], t.From, t.To) >= 0:
			return fmt.Errorf("transition %q→%q out of order", t.From, t.To)
		case t.Count < 1 || t.Count > maxWindowCount:
			return fmt.Errorf("transition %q→%q count %d out of range", t.From, t.To, t.Count)
		case !b.seen.has('t', t.From, t.To):
			return fmt.Errorf("transition %q→%q missing from the seen-set", t.From, t.To)
		}
	}
	return nil
}
