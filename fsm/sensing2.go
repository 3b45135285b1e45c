package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/sense"
)

// Sensing model 2 (issue 25): from ProtocolSenseModel2 on, the gate
// judges each call with sense.(*Sensor).Judge, the call itself included,
// and folds its outcome with Observe: tail probabilities per metric,
// combined with a Bonferroni correction and thresholded to the governed
// false-alarm target (sense.target). Report.Alert is what trust is
// charged for and what turns a permit into ESCALATE at critical posture;
// Report.Score is the Cedar context's deviation. Ledgers sealed under an
// earlier protocol replay with model 1 (sense.Fold, Deviation), byte for
// byte: the sensor's model-2 state is absent until model 2 is used.
//
// Who may set the target, and what the FSM checks (sense.target):
//   - an operator with operator.manage on "sense" (an agent, or an
//     operator without that scope, is forbidden);
//   - protocol ≥ ProtocolSenseModel2 (else unsupported_protocol);
//   - 1 ≤ AlertsPerDayMilli ≤ sense.MaxAlertsPerDayMilli (else
//     invalid_argument, with the reason in the detail).
//
// A refused command changes nothing.

// ProtocolSenseModel2 is the first protocol whose gate senses with model
// 2.
const ProtocolSenseModel2 uint16 = 6

// OperatorSense is the resource of sense.target in operator.manage.
const OperatorSense = "sense"

// maxPeerKey bounds the capability-shape key handed to the sensor.
const maxPeerKey = 200

func init() {
	registerTyped(CmdSenseTarget, typedSpec[SenseTarget]{
		proposer: proposerCaller, op: OpOperatorManage, since: (*Ledger).senseModel2,
		subject: func(*Ledger, *SenseTarget) string { return OperatorSense },
		run:     applySenseTarget,
	})
}

// SenseTarget sets the false-alarm target: alerts per entity-day at
// normal posture, in thousandths (100 = 0.1 a day).
type SenseTarget struct {
	AlertsPerDayMilli int64 `codec:"alerts_per_day_milli"`
}

// SenseTargetDetail is the evidence of a target change.
type SenseTargetDetail struct {
	From int64  `codec:"from"`
	To   int64  `codec:"to"`
	Note string `codec:"note,omitempty"`
}

func applySenseTarget(l *Ledger, c *call, p *SenseTarget) outcome {
	if p.AlertsPerDayMilli < 1 || p.AlertsPerDayMilli > sense.MaxAlertsPerDayMilli {
		c.detail = Encode(&SenseTargetDetail{To: p.AlertsPerDayMilli,
			Note: "want 1.." + strconv.FormatInt(sense.MaxAlertsPerDayMilli, 10) + " thousandths of an alert per entity-day"})
		return deny(ReasonInvalidArgument)
	}
	from, err := l.sensor().SetAlertTarget(p.AlertsPerDayMilli)
	if err != nil {
		panic("fsm: sense target refused after its check: " + err.Error())
	}
	c.detail = Encode(&SenseTargetDetail{From: from, To: p.AlertsPerDayMilli})
	return outcome{decision: DecisionPermit, version: uint64(p.AlertsPerDayMilli)}
}

// SenseAlertTarget is the false-alarm target in force (thousandths of an
// alert per entity-day).
func (s *State) SenseAlertTarget() int64 {
	if s.Sense == nil {
		return sense.DefaultAlertsPerDayMilli
	}
	return s.Sense.AlertTarget()
}

// senseModel2 reports whether this ledger's gate senses with model 2.
func (l *Ledger) senseModel2() bool { return l.st.Meta.Protocol >= ProtocolSenseModel2 }

// gateSensing is the measured policy context of a call at the gate: under
// model 2 the call is judged with itself included.
func (l *Ledger) gateSensing(cp *Capability, op, resource string, args []byte, now int64) (tier string, trust int64, posture string, dev sense.Report) {
	if !l.senseModel2() {
		return l.st.SensingContext(cp.Entity, now)
	}
	s := l.sensor()
	t := s.Trust(cp.Entity)
	peer, parent := l.peerOf(cp)
	dev = s.Judge(cp.Entity, sense.Call{Time: now, Op: op, Resource: resource, Bytes: int64(len(args)), Peer: peer, Parent: parent})
	if dev.Err != nil {
		dev = sense.Report{Entity: cp.Entity} // an input the sensor refuses is judged without a deviation
	}
	return t.Tier, t.Score, s.Posture().Level.String(), dev
}

// observeCall folds a decided call into the sensor: model 2 from
// ProtocolSenseModel2 on (resource, bytes of every op), model 1 before.
func (l *Ledger) observeCall(cp *Capability, op, resource string, d Decision, args []byte, now int64) {
	if !l.senseModel2() {
		l.observe(cp.Entity, op, d, args, now)
		return
	}
	if d == DecisionNone {
		return
	}
	peer, parent := l.peerOf(cp)
	_ = l.sensor().Observe(cp.Entity, sense.Outcome{Time: now, Op: op, Resource: resource, Decision: sense.Decision(d),
		Bytes: int64(len(args)), Effect: !strings.HasPrefix(op, "kv.") && d == DecisionPermit, Seq: l.st.Seq + 1, Peer: peer, Parent: parent})
}

// observeError2 folds a failed effect of entity under model 2.
func (l *Ledger) observeError2(entity, op string, now int64) {
	_ = l.sensor().Observe(entity, sense.Outcome{Time: now, Op: op, Decision: sense.DecisionPermit, Error: true, Seq: l.st.Seq + 1})
}

// peerOf is the capability's shape (its sorted ops, hashed when long) and
// the entity that delegated it ("" for a grant).
func (l *Ledger) peerOf(cp *Capability) (peer, parent string) {
	ops := slices.Clone(cp.Ops)
	slices.Sort(ops)
	peer = "ops:" + strings.Join(ops, ",")
	if len(peer) > maxPeerKey {
		h := sha256.Sum256([]byte(peer))
		peer = "ops#" + hex.EncodeToString(h[:16])
	}
	if p := l.st.Caps[cp.Parent]; cp.Parent != "" && p != nil {
		parent = p.Entity
	}
	return peer, parent
}
