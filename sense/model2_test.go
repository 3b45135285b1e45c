package sense

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// traffic2 drives n entities for the given minutes of ledger time with
// seeded, bursty traffic through Judge and Observe, as the FSM does, and
// calls each(i) after every outcome.
func traffic2(t testing.TB, s *Sensor, seed uint64, entities int, from, minutes int64, each func(k int, r Report)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	ops := []string{"kv.get", "kv.put", "http.get", "mail.send"}
	k := 0
	for m := from; m < from+minutes; m++ {
		for e := range entities {
			if rng.IntN(3) != 0 {
				continue
			}
			name := fmt.Sprintf("agent-%d", e)
			n := 1 + rng.IntN(4)
			for j := range n {
				at := m*MinuteNs + int64(e)*1000 + int64(j)*1_000_000_000
				op := ops[rng.IntN(2+e%3)]
				c := Call{Time: at, Op: op, Resource: fmt.Sprintf("orders/%d", rng.IntN(50)), Bytes: int64(64 + rng.IntN(2000)),
					Peer: "shape-a", Parent: ""}
				if jr := s.Judge(name, c); jr.Err != nil {
					t.Fatal(jr.Err)
				}
				d := DecisionPermit
				if rng.IntN(50) == 0 {
					d = DecisionDeny
				}
				k++
				r := s.Observe(name, Outcome{Time: at, Op: op, Resource: c.Resource, Decision: d, Bytes: c.Bytes, Error: rng.IntN(60) == 0,
					Seq: uint64(k), Peer: c.Peer})
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				if each != nil {
					each(k, r)
				}
			}
		}
	}
}

// A Sensor decoded mid-stream continues exactly as the original, and
// Decode(Encode(s)) re-encodes to the same bytes.
func TestModel2EncodeDecodeContinues(t *testing.T) {
	a := newSensor(t, nil)
	traffic2(t, a, 7, 6, 0, 150, nil)
	b, err := Decode(a.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Encode(), b.Encode()) {
		t.Fatal("decoded state re-encodes differently")
	}
	var ra, rb []Report
	traffic2(t, a, 8, 6, 150, 150, func(_ int, r Report) { ra = append(ra, r) })
	traffic2(t, b, 8, 6, 150, 150, func(_ int, r Report) { rb = append(rb, r) })
	if a.Digest() != b.Digest() {
		t.Fatal("decoded sensor diverged")
	}
	for i := range ra {
		if fmt.Sprint(ra[i]) != fmt.Sprint(rb[i]) {
			t.Fatalf("report %d differs:\n%v\n%v", i, ra[i], rb[i])
		}
	}
}

// Replaying the same inputs gives the same bytes (no clock, randomness or
// map order inside).
func TestModel2Deterministic(t *testing.T) {
	a, b := newSensor(t, nil), newSensor(t, nil)
	traffic2(t, a, 3, 8, 0, 200, nil)
	traffic2(t, b, 3, 8, 0, 200, nil)
	if a.Digest() != b.Digest() {
		t.Fatal("same inputs, different state")
	}
}

// A sensor that never used model 2 encodes exactly as before: the
// model-2 section is absent (fsm protocols 1 to 4 replay byte for byte).
func TestModel2AbsentKeepsModel1Encoding(t *testing.T) {
	s := newSensor(t, nil)
	if _, err := s.Fold("a", Observation{Time: 1, Op: "kv.get", Decision: DecisionPermit}); err != nil {
		t.Fatal(err)
	}
	before := s.Encode()
	if _, err := s.Signal("incident_level", 10, 2); err != nil {
		t.Fatal(err)
	}
	if s.m2 != nil || bytes.Contains(before[len(before)-1:], []byte{model2Marker}) && s.m2 != nil {
		t.Fatal("model 2 created by model-1 calls")
	}
	if s.AlertTarget() != DefaultAlertsPerDayMilli || s.m2 != nil {
		t.Fatal("reading the target created model-2 state")
	}
}

// Judge scores the call under evaluation itself: a stolen token's first
// never-seen op carries a non-zero score at the gate, names its metric,
// and Judge learns nothing.
func TestJudgeIncludesTheCall(t *testing.T) {
	s := newSensor(t, nil)
	traffic2(t, s, 11, 4, 0, 24*60, nil)
	now := int64(24*60+1) * MinuteNs
	before := s.Encode()
	r := s.Judge("agent-0", Call{Time: now, Op: "admin.export", Resource: "orders/1", Bytes: 100, Peer: "shape-a"})
	if r.Err != nil || !r.Established || r.Score == 0 {
		t.Fatalf("first never-seen op: %+v", r)
	}
	if r.Call.Op != "admin.export" {
		t.Fatalf("report does not carry the call: %+v", r.Call)
	}
	_ = before
	r2 := s.Judge("agent-0", Call{Time: now, Op: "kv.get", Resource: "orders/1", Bytes: 100, Peer: "shape-a"})
	if r2.Alert {
		t.Fatalf("an ordinary call alerts: %+v", r2)
	}
}

// A burst of new ops alerts, explains itself, and escalates only at
// critical posture.
func TestNewOpsAlertWithExplanation(t *testing.T) {
	s := newSensor(t, nil)
	traffic2(t, s, 12, 10, 0, 24*60, nil)
	now := int64(24*60+1) * MinuteNs
	var alert Report
	for i, op := range []string{"admin.export", "secrets.read", "user.delete", "admin.export", "secrets.read", "admin.export"} {
		at := now + int64(i)*2_000_000_000
		r := s.Judge("agent-1", Call{Time: at, Op: op, Resource: "orders/1", Bytes: 100, Peer: "shape-a"})
		if r.Alert && !alert.Alert {
			alert = r
		}
		s.Observe("agent-1", Outcome{Time: at, Op: op, Resource: "orders/1", Decision: DecisionPermit, Bytes: 100, Seq: uint64(1e6 + i), Peer: "shape-a"})
	}
	if !alert.Alert {
		t.Fatal("six calls of three never-seen ops raised no alert")
	}
	if alert.Metric.String() == "" || alert.P <= 0 && alert.Surprise == 0 || alert.Threshold <= 0 || alert.Escalate {
		t.Fatalf("explanation incomplete or escalated at normal posture: %+v", alert)
	}
	if _, err := s.Signal("incident_level", 100, now+time60s); err != nil {
		t.Fatal(err)
	}
	r := s.Judge("agent-1", Call{Time: now + time60s, Op: "ops.wipe", Resource: "orders/1", Bytes: 100, Peer: "shape-a"})
	if r.Alert && !r.Escalate {
		t.Fatalf("alert at critical posture does not escalate: %+v", r)
	}
}

const time60s = 60 * 1_000_000_000

// Rejected inputs change nothing and say why.
func TestModel2RejectsBadInput(t *testing.T) {
	s := newSensor(t, nil)
	traffic2(t, s, 5, 2, 0, 30, nil)
	digest := s.Digest()
	for name, r := range map[string]Report{
		"empty entity": s.Observe("", Outcome{Time: 1e12, Op: "kv.get", Decision: DecisionPermit}),
		"bad op":       s.Observe("agent-0", Outcome{Time: 1e12, Op: "", Decision: DecisionPermit}),
		"bad decision": s.Observe("agent-0", Outcome{Time: 1e12, Op: "kv.get", Decision: 9}),
		"neg bytes":    s.Observe("agent-0", Outcome{Time: 1e12, Op: "kv.get", Decision: DecisionPermit, Bytes: -1}),
		"time back":    s.Observe("agent-0", Outcome{Time: 0, Op: "kv.get", Decision: DecisionPermit}),
		"judge back":   s.Judge("agent-0", Call{Time: 0, Op: "kv.get"}),
	} {
		if r.Err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s.Digest() != digest {
		t.Fatal("a rejected input changed the state")
	}
	if _, err := s.SetAlertTarget(0); !errors.Is(err, ErrTarget) {
		t.Fatalf("target 0: %v", err)
	}
	if _, err := s.SetAlertTarget(MaxAlertsPerDayMilli + 1); !errors.Is(err, ErrTarget) {
		t.Fatalf("target too large: %v", err)
	}
	if s.Digest() != digest {
		t.Fatal("a rejected target changed the state")
	}
	if prev, err := s.SetAlertTarget(250); err != nil || prev != DefaultAlertsPerDayMilli || s.AlertTarget() != 250 {
		t.Fatalf("set target: %d %v", prev, err)
	}
}

// An entity's own delegates never count in its peer group, and young
// entities never count at all.
func TestPeerGroupExcludesDelegatesAndYoung(t *testing.T) {
	s := newSensor(t, nil)
	m := s.model()
	traffic2(t, s, 21, 3, 0, 120, nil) // agent-0..2 established in shape-a
	base, _, _ := m.peer("agent-0", m.entities["agent-0"])
	// agent-0 spawns a delegate that runs a lot in the same shape.
	for i := range int64(400) {
		at := int64(121)*MinuteNs + i*200_000_000
		s.Observe("agent-0/d1", Outcome{Time: at, Op: "kv.get", Resource: "orders/1", Decision: DecisionPermit, Peer: "shape-a", Parent: "agent-0"})
	}
	// Young: still not a member after 80 s.
	if m.entities["agent-0/d1"].member {
		t.Fatal("a young delegate joined its peer group")
	}
	for i := range int64(100) {
		at := int64(190)*MinuteNs + i*MinuteNs/10
		s.Observe("agent-0/d1", Outcome{Time: at, Op: "kv.get", Resource: "orders/1", Decision: DecisionPermit, Peer: "shape-a", Parent: "agent-0"})
	}
	if !m.entities["agent-0/d1"].member {
		t.Fatal("an established delegate did not join")
	}
	after, _, _ := m.peer("agent-0", m.entities["agent-0"])
	if after != base {
		t.Fatalf("agent-0's peer calls moved from %d to %d by its own delegate", base, after)
	}
	other, _, _ := m.peer("agent-1", m.entities["agent-1"])
	if other <= base {
		t.Fatalf("agent-1 does not see agent-0's delegate as a peer: %d", other)
	}
}

// Deviation reads a model-2 entity without changing anything.
func TestModel2DeviationIsARead(t *testing.T) {
	s := newSensor(t, nil)
	traffic2(t, s, 4, 3, 0, 120, nil)
	d := s.Digest()
	r := s.Deviation("agent-0", 200*MinuteNs)
	if !r.Known || r.Err != nil {
		t.Fatalf("model-2 entity read: %+v", r)
	}
	if s.Digest() != d {
		t.Fatal("Deviation changed the state")
	}
}
