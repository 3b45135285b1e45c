package sense

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

const streamSeed = 7351

// streamOp is one call on a Sensor.
type streamOp struct {
	kind   byte // 'o' observe, 's' signal, 'a' adjust, 'f' forget
	entity string
	ev     Observation
	signal string
	value  int64
	time   int64
	delta  int64
	reason string
}

// smallConfig makes bounds bite within a short stream.
func smallConfig(c *Config) {
	c.WindowNs = 1_000_000_000
	c.MinWindows = 3
	c.MaxEntities = 8
	c.MaxOps = 4
	c.MaxTransitions = 6
	c.ArchiveCap = 5
}

// randomStream is a seeded mix of valid and invalid calls over 12
// entities (more than smallConfig admits) and 7 ops.
func randomStream(seed uint64, n int) []streamOp {
	r := rand.New(rand.NewPCG(seed, 1))
	ops := []string{"kv.get", "kv.put", "kv.list", "kv.delete", "mail.send", "pay.commit", "admin.grant"}
	decisions := []Decision{DecisionPermit, DecisionPermit, DecisionPermit, DecisionPermit, DecisionDeny, DecisionEscalate, DecisionError}
	kinds := []string{"incident_level", "market_volatility", "error_budget_burn", "threat_level"}
	var out []streamOp
	now := int64(0)
	for range n {
		now += r.Int64N(400_000_000)
		o := streamOp{kind: 'o', entity: fmt.Sprintf("agent-%d", r.IntN(12)), time: now}
		o.ev = Observation{Time: now, Op: ops[r.IntN(len(ops))], Decision: decisions[r.IntN(len(decisions))],
			Bytes: r.Int64N(5000), Effect: r.IntN(10) == 0}
		switch u := r.IntN(100); {
		case u < 3:
			o.kind, o.signal, o.value = 's', kinds[r.IntN(4)], r.Int64N(101)
			if o.signal == "error_budget_burn" {
				o.value *= 10
			}
		case u < 4:
			o.kind, o.signal, o.value = 's', []string{"weather", "incident_level"}[r.IntN(2)], 101+r.Int64N(5)
		case u < 5:
			o.kind, o.delta, o.reason = 'a', r.Int64N(401)-200, "review"
		case u < 6:
			o.kind, o.delta, o.reason = 'a', 5000, "too much"
		case u < 7:
			o.kind = 'f'
		case u < 8:
			o.ev.Op = ""
		case u < 9:
			o.ev.Time = now - 5_000_000_000 // before this entity's last call, usually
		case u < 10:
			o.ev.Decision = 9
		}
		out = append(out, o)
	}
	return out
}

// result is everything a call returns, for comparing replicas.
type result struct {
	step   Step
	change PostureChange
	trust  TrustChange
	forgot bool
	err    string
}

func applyOp(s *Sensor, o streamOp) result {
	var res result
	var err error
	switch o.kind {
	case 'o':
		res.step, err = s.Fold(o.entity, o.ev)
	case 's':
		res.change, err = s.Signal(o.signal, o.value, o.time)
	case 'a':
		res.trust, err = s.AdjustTrust(o.entity, o.delta, o.reason)
	case 'f':
		res.forgot = s.Forget(o.entity)
	}
	if err != nil {
		res.err = err.Error()
	}
	return res
}

func TestEncodeDeterministic(t *testing.T) {
	t.Logf("seed %d", streamSeed)
	stream := randomStream(streamSeed, 4000)
	a, b := newSensor(t, smallConfig), newSensor(t, smallConfig)
	var rejected, limited int
	for i, o := range stream {
		before := a.Encode()
		ra, rb := applyOp(a, o), applyOp(b, o)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("op %d: replicas returned %+v and %+v", i, ra, rb)
		}
		if ra.err != "" {
			rejected++
			if strings.Contains(ra.err, ErrEntityLimit.Error()) {
				limited++
			}
			if !bytes.Equal(before, a.Encode()) {
				t.Fatalf("op %d rejected (%s) but changed the state", i, ra.err)
			}
		}
	}
	ea, eb := a.Encode(), b.Encode()
	if !bytes.Equal(ea, eb) || a.Digest() != b.Digest() {
		t.Fatal("replicas fed the same stream encode differently")
	}
	nb, nt := a.Entities()
	t.Logf("%d ops, %d rejected (%d at the entity limit), %d bytes, %d baselines, %d trust, archive %d",
		len(stream), rejected, limited, len(ea), nb, nt, len(a.Archive()))
	if rejected == 0 || limited == 0 {
		t.Error("stream exercised no rejections or no entity limit")
	}
	// A different stream gives a different state (the comparison can fail).
	c := newSensor(t, smallConfig)
	for _, o := range randomStream(streamSeed+1, 4000) {
		applyOp(c, o)
	}
	if bytes.Equal(ea, c.Encode()) {
		t.Error("different streams encode identically")
	}
}

func TestSnapshotContinue(t *testing.T) {
	t.Logf("seed %d", streamSeed)
	stream := randomStream(streamSeed, 3000)
	whole := newSensor(t, smallConfig)
	results := make([]result, len(stream))
	for i, o := range stream {
		results[i] = applyOp(whole, o)
	}
	want := whole.Encode()
	for _, split := range []int{0, 1, 17, 1000, 1777, 2999, 3000} {
		s := newSensor(t, smallConfig)
		for _, o := range stream[:split] {
			applyOp(s, o)
		}
		enc := s.Encode()
		d, err := Decode(enc)
		if err != nil {
			t.Fatalf("split %d: decode: %v", split, err)
		}
		if !bytes.Equal(d.Encode(), enc) {
			t.Fatalf("split %d: decode→encode differs", split)
		}
		for i, o := range stream[split:] {
			if got := applyOp(d, o); !reflect.DeepEqual(got, results[split+i]) {
				t.Fatalf("split %d: op %d after restore returned %+v, uninterrupted %+v", split, split+i, got, results[split+i])
			}
		}
		if !bytes.Equal(d.Encode(), want) {
			t.Errorf("split %d: restored-and-continued state differs from the uninterrupted one", split)
		}
	}
}

// populated returns a Sensor with every part of the state in use.
func populated(t testing.TB) *Sensor { return populatedN(t, 600) }

func populatedN(t testing.TB, n int) *Sensor {
	s := newSensor(t, smallConfig)
	for _, o := range randomStream(streamSeed, n) {
		applyOp(s, o)
	}
	return s
}

func TestDecodeRejects(t *testing.T) {
	s := populated(t)
	good := s.Encode()
	if _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrDecode) {
			t.Fatalf("prefix of %d/%d bytes: err %v", n, len(good), err)
		}
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	wlen := binary.PutVarint(make([]byte, 10), s.cfg.WindowNs)
	cases := map[string][]byte{
		"trailing byte": append(bytes.Clone(good), 0),
		"bad magic":     mut(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version 2":     mut(func(b []byte) []byte { b[4] = 2; return b }),
		"non-minimal varint": mut(func(b []byte) []byte {
			at := 5 + wlen // MinWindows, one byte (3)
			return append(b[:at:at], append([]byte{b[at] | 0x80, 0}, b[at+1:]...)...)
		}),
	}
	// Invariant violations, written by mutating a decoded copy's fields.
	edit := func(f func(d *Sensor)) []byte {
		d, err := Decode(good)
		if err != nil {
			t.Fatal(err)
		}
		f(d)
		return d.Encode()
	}
	anyEntity := func(d *Sensor) *baseline {
		for _, n := range []string{"agent-0", "agent-1", "agent-2", "agent-3", "agent-4", "agent-5", "agent-6", "agent-7", "agent-8", "agent-9", "agent-10", "agent-11"} {
			if b, ok := d.base.entities[n]; ok && len(b.ops) >= 2 {
				return b
			}
		}
		t.Fatal("no entity with two ops")
		return nil
	}
	cases["invalid config"] = edit(func(d *Sensor) { d.cfg.MaxOps = 0 })
	cases["trust above max"] = edit(func(d *Sensor) { d.trust.scores["agent-x"] = TrustMax*trustMilli + 1 })
	cases["bad trust name"] = edit(func(d *Sensor) { d.trust.scores["bad\nname"] = 1 })
	cases["sensitivity mismatch"] = edit(func(d *Sensor) { d.posture.sensitivity++ })
	cases["unstable level"] = edit(func(d *Sensor) {
		d.posture.level = LevelCritical
		d.posture.signals = SignalVector{}
		d.posture.sensitivity = 0
	})
	cases["signal out of range"] = edit(func(d *Sensor) { d.posture.signals[0] = 101 })
	cases["archive newest not current"] = edit(func(d *Sensor) {
		a := d.archive
		a.ring[(a.head+len(a.ring)-1)%len(a.ring)].Time = d.posture.time + 1
	})
	cases["archive seq gap"] = edit(func(d *Sensor) { d.archive.nextSeq = 2 })
	cases["ops out of order"] = edit(func(d *Sensor) { b := anyEntity(d); b.ops[0], b.ops[1] = b.ops[1], b.ops[0] })
	cases["op counts do not sum"] = edit(func(d *Sensor) { anyEntity(d).ops[0].win++ })
	cases["op missing from seen-set"] = edit(func(d *Sensor) { anyEntity(d).seen = bloom{} })
	cases["window not holding last"] = edit(func(d *Sensor) { anyEntity(d).window++ })
	cases["denies exceed events"] = edit(func(d *Sensor) { b := anyEntity(d); b.denies = b.events + 1 })
	cases["negative stat"] = edit(func(d *Sensor) { anyEntity(d).stats[MetricRate].MAD = -1 })
	cases["share above one"] = edit(func(d *Sensor) { anyEntity(d).ops[0].share = Micro + 1 })
	for name, b := range cases {
		if bytes.Equal(b, good) {
			t.Errorf("%s: mutation did not change the bytes", name)
			continue
		}
		if _, err := Decode(b); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: Decode err = %v, want ErrDecode", name, err)
		}
	}
	// Any single-byte change is either rejected or is itself canonical.
	for i := range good {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(good)
			b[i] ^= x
			if d, err := Decode(b); err == nil && !bytes.Equal(d.Encode(), b) {
				t.Fatalf("byte %d ^ %#x decoded to a state that re-encodes differently", i, x)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(newSensor(f, nil).Encode())
	f.Add(populatedN(f, 60).Encode()) // small: the fuzzer mutates and minimizes it quickly
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Encode(), b) {
			t.Fatal("accepted bytes re-encode differently")
		}
		// A decoded state is usable: it accepts the next calls and still
		// encodes canonically.
		last := int64(0)
		if p := s.Posture(); p.Set {
			last = p.Time
		}
		for _, e := range s.base.entities {
			last = max(last, e.last)
		}
		s.Fold("fuzz", Observation{Time: last, Op: "x", Decision: DecisionError, Bytes: 1})
		s.Signal("incident_level", 50, last)
		if _, err := Decode(s.Encode()); err != nil {
			t.Fatalf("state after calls does not decode: %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		mod   func(*Config)
	}{
		{"WindowNs", func(c *Config) { c.WindowNs = 0 }},
		{"MinWindows", func(c *Config) { c.MinWindows = 0 }},
		{"AlphaDen", func(c *Config) { c.AlphaDen = 1 }},
		{"AlphaNum", func(c *Config) { c.AlphaNum = c.AlphaDen }},
		{"MaxEntities", func(c *Config) { c.MaxEntities = HardMaxEntities + 1 }},
		{"MaxOps", func(c *Config) { c.MaxOps = 0 }},
		{"MaxTransitions", func(c *Config) { c.MaxTransitions = HardMaxTransitions + 1 }},
		{"ArchiveCap", func(c *Config) { c.ArchiveCap = 0 }},
		{"Tolerance[critical]", func(c *Config) { c.Tolerance[LevelCritical] = 450 }},
		{"Tolerance[relaxed]", func(c *Config) { c.Tolerance[LevelRelaxed] = -1 }},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: Validate() = %v, want ErrConfig naming it", c.field, err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", c.field)
		}
	}
}
