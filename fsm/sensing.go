package fsm

import (
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/sense"
)

// ProtocolSensing is the first protocol version whose gate folds every
// decision into the sensing state (package sense) and judges policy with
// the entity's measured tier, trust, deviation and the kernel's posture.
// Ledgers sealed under an earlier version replay with the fixed defaults.
const ProtocolSensing uint16 = 2

// Governance operations of sensing.
const (
	OpSignalIngest = "signal.ingest" // feed an external signal (resource: the signal kind)
	OpTrustAdjust  = "trust.adjust"  // a governed trust adjustment (resource: the entity)
)

func init() {
	registerTyped(CmdSignalIngest, typedSpec[SignalIngest]{
		proposer: proposerCaller, op: OpSignalIngest, since: (*Ledger).sensing,
		subject: func(_ *Ledger, p *SignalIngest) string { return p.Kind },
		run:     applySignalIngest,
	})
	registerTyped(CmdTrustAdjust, typedSpec[TrustAdjust]{
		proposer: proposerCaller, op: OpTrustAdjust, since: (*Ledger).sensing,
		subject: func(_ *Ledger, p *TrustAdjust) string { return p.Entity },
		run:     applyTrustAdjust,
	})
	registerTyped(CmdKnowledge, typedSpec[Knowledge]{
		proposer: proposerInternal, actor: "master-cortex", role: RoleSovereign,
		subject: func(_ *Ledger, p *Knowledge) string { return p.Kind },
		run:     applyKnowledge,
	})
}

// SignalIngest feeds one typed external signal into the posture.
type SignalIngest struct {
	Kind  string `codec:"kind"`
	Value int64  `codec:"value"`
}

// TrustAdjust moves an entity's trust by Delta points, with a reason.
type TrustAdjust struct {
	Entity string `codec:"entity"`
	Delta  int64  `codec:"delta"`
	Reason string `codec:"reason"`
}

// Knowledge is a finding of the sovereign's master cortex: derived from
// gossip signals (their ids are the evidence), never a fact of any
// domain's ledger.
type Knowledge struct {
	Kind       string   `codec:"kind"`
	Domains    []string `codec:"domains"`
	Evidence   []string `codec:"evidence"`   // signal ids: domain/node/kind/seq
	Confidence int64    `codec:"confidence"` // 0..1000
	Summary    string   `codec:"summary"`
	Window     int64    `codec:"window"` // ledger time (ns) of the newest signal it rests on
}

// KnowledgeRecord is a ledgered finding.
type KnowledgeRecord struct {
	Knowledge
	Seq  uint64 `codec:"seq"`
	Time int64  `codec:"time"`
}

// SensingDetail is the detail record of signal ingests and trust
// adjustments: the evidence of the change.
type SensingDetail struct {
	Kind            string  `codec:"kind"`
	Value           int64   `codec:"value"`
	Signals         []int64 `codec:"signals"`
	FromSensitivity int64   `codec:"from_sensitivity"`
	Sensitivity     int64   `codec:"sensitivity"`
	FromLevel       string  `codec:"from_level"`
	Level           string  `codec:"level"`
	FromTrust       int64   `codec:"from_trust"`
	Trust           int64   `codec:"trust"`
	FromTier        string  `codec:"from_tier"`
	Tier            string  `codec:"tier"`
	Note            string  `codec:"note"`
}

// MaxKnowledge bounds the sovereign's knowledge records (oldest dropped).
const MaxKnowledge = 1024

// sensing reports whether this ledger's rules include sensing.
func (l *Ledger) sensing() bool { return l.st.Meta.Protocol >= ProtocolSensing }

// sensor returns the sensing state, created on first use.
func (l *Ledger) sensor() *sense.Sensor {
	if l.st.Sense == nil {
		cfg := sense.DefaultConfig()
		if w := l.st.Meta.SenseWindowNs; w != 0 {
			cfg.WindowNs = w // validated at genesis
		}
		s, err := sense.New(cfg)
		if err != nil {
			panic("fsm: the default sensing configuration is invalid: " + err.Error())
		}
		l.st.Sense = s
	}
	return l.st.Sense
}

// SensingContext is the measured policy context of an entity.
func (s *State) SensingContext(entity string, now int64) (tier string, trust int64, posture string, dev sense.Report) {
	if s.Sense == nil {
		return DefaultTier, DefaultTrust, DefaultPosture, sense.Report{Entity: entity}
	}
	t := s.Sense.Trust(entity)
	return t.Tier, t.Score, s.Sense.Posture().Level.String(), s.Sense.Deviation(entity, now)
}

// observe folds one gate decision into the entity's baseline and trust.
// An observation the sensor refuses (its entity table is full) changes
// nothing; the decision stands.
func (l *Ledger) observe(entity, op string, d Decision, args []byte, now int64) {
	ev := sense.Observation{Time: now, Op: op, Decision: sense.Decision(d)}
	switch {
	case op == "kv.put" || op == "kv.cas":
		ev.Bytes = int64(len(args))
	case !strings.HasPrefix(op, "kv."):
		ev.Effect = d == DecisionPermit
	}
	if d == DecisionNone {
		return
	}
	_, _ = l.sensor().Fold(entity, ev)
}

// observeError folds an error of entity's op (an external effect that
// failed or was lost) into its baseline and trust.
func (l *Ledger) observeError(entity, op string, now int64) {
	if l.senseModel2() {
		l.observeError2(entity, op, now)
		return
	}
	_, _ = l.sensor().Fold(entity, sense.Observation{Time: now, Op: op, Decision: sense.DecisionError})
}

func applySignalIngest(l *Ledger, c *call, p *SignalIngest) outcome {
	ch, err := l.sensor().Signal(p.Kind, p.Value, c.now)
	if err != nil {
		c.detail = Encode(&SensingDetail{Kind: p.Kind, Value: p.Value, Note: err.Error()})
		return deny(ReasonInvalidArgument)
	}
	c.detail = Encode(&SensingDetail{Kind: p.Kind, Value: p.Value, Signals: ch.Signals[:], FromSensitivity: ch.FromSensitivity,
		Sensitivity: ch.Sensitivity, FromLevel: ch.From.String(), Level: ch.To.String()})
	return outcome{decision: DecisionPermit, id: ch.To.String(), version: uint64(ch.Sensitivity)}
}

func applyTrustAdjust(l *Ledger, c *call, p *TrustAdjust) outcome {
	if !validName(p.Entity) {
		return deny(ReasonInvalidArgument)
	}
	ch, err := l.sensor().AdjustTrust(p.Entity, p.Delta, p.Reason)
	if err != nil {
		c.detail = Encode(&SensingDetail{Note: err.Error(), Value: p.Delta})
		return deny(ReasonInvalidArgument)
	}
	c.detail = Encode(&SensingDetail{Value: p.Delta, FromTrust: ch.From, Trust: ch.To, FromTier: ch.FromTier, Tier: ch.ToTier, Note: p.Reason})
	return outcome{decision: DecisionPermit, id: ch.ToTier, version: uint64(ch.To)}
}

func applyKnowledge(l *Ledger, c *call, p *Knowledge) outcome {
	f := l.st.Fed
	if !validName(p.Kind) || len(p.Domains) == 0 || len(p.Domains) > MaxDomains || len(p.Evidence) == 0 || len(p.Evidence) > 256 ||
		p.Confidence < 0 || p.Confidence > 1000 || len(p.Summary) > 1024 {
		return deny(ReasonInvalidArgument)
	}
	for _, e := range p.Evidence {
		if e == "" || len(e) > 512 {
			return deny(ReasonInvalidArgument)
		}
	}
	rec := KnowledgeRecord{Knowledge: *p, Seq: l.st.Seq + 1, Time: c.now}
	rec.Domains = append([]string(nil), p.Domains...)
	rec.Evidence = append([]string(nil), p.Evidence...)
	f.Knowledge = append(f.Knowledge, rec)
	if len(f.Knowledge) > MaxKnowledge {
		f.Knowledge = append([]KnowledgeRecord(nil), f.Knowledge[len(f.Knowledge)-MaxKnowledge:]...)
	}
	fedDetail(c, p.Kind, p.Summary, strings.Join(p.Domains, ",")+" confidence "+strconv.FormatInt(p.Confidence, 10))
	return outcome{decision: DecisionPermit}
}
