package fsm

// External effects: a permitted syscall whose op is not in-ledger (not
// kv.*) is recorded as a pending effect; the leader runs it through a
// supervised driver process after the decision is committed and proposes
// an effect.complete with the outcome. A permit whose completion never
// arrives (driver crash, leader change) is completed as indeterminate by
// the next leader, never silently retried unless the driver is idempotent
// on the syscall id.

// Effect statuses.
const (
	EffectPending       = "pending"
	EffectOK            = "ok"
	EffectFailed        = "failed"
	EffectIndeterminate = "indeterminate"
)

// MaxEffects bounds the effect table (pending plus recently completed);
// when it is full of pending effects, new external syscalls are denied
// effect_backlog rather than dropping the oldest.
const MaxEffects = 10_000

// Effect is one external effect of a permitted syscall.
type Effect struct {
	Seq          uint64 `codec:"seq"`   // the syscall's seq: the id drivers see
	Index        uint64 `codec:"index"` // the raft index of the permitting entry
	CapID        string `codec:"cap_id"`
	Entity       string `codec:"entity"`
	Op           string `codec:"op"`
	Resource     string `codec:"resource"`
	Args         []byte `codec:"args"`
	Status       string `codec:"status"`
	Code         int64  `codec:"code"`
	OutputDigest string `codec:"output_digest"`
	Completed    uint64 `codec:"completed"` // seq of the completion event
	// Caller marks an effect its caller executes (protocol 5,
	// callereffect.go): no driver runs it; Reporter is the capability of
	// the gateway that may report it ("" if none), Permitted the ledger
	// time of its permit.
	Caller    bool   `codec:"caller,omitempty"`
	Reporter  string `codec:"reporter,omitempty"`
	Permitted int64  `codec:"permitted,omitempty"`
}

func init() {
	registerTyped(CmdEffectComplete, typedSpec[EffectComplete]{
		proposer: proposerInternal, actor: "kernel",
		subject: func(_ *Ledger, p *EffectComplete) string { return "effect " + itoa(p.Seq) },
		run:     applyEffectComplete,
	})
}

// effectRoom makes room for one more effect by dropping the oldest
// completed ones; it reports false if every slot holds a pending effect.
func (l *Ledger) effectRoom() bool {
	st := l.st
	for len(st.effectQ) >= MaxEffects {
		dropped := false
		for i, seq := range st.effectQ {
			if st.Effects[seq].Status != EffectPending {
				delete(st.Effects, seq)
				st.effectQ = append(st.effectQ[:i:i], st.effectQ[i+1:]...)
				dropped = true
				break
			}
		}
		if !dropped {
			return false
		}
	}
	return true
}

func (l *Ledger) addEffect(e *Effect) {
	l.st.Effects[e.Seq] = e
	l.st.effectQ = append(l.st.effectQ, e.Seq)
}

// PendingEffects returns the pending effects in seq order.
func (s *State) PendingEffects() []Effect {
	var out []Effect
	for _, seq := range s.effectQ {
		if e := s.Effects[seq]; e.Status == EffectPending {
			out = append(out, *e)
		}
	}
	return out
}

func applyEffectComplete(l *Ledger, c *call, p *EffectComplete) outcome {
	e := l.st.Effects[p.Seq]
	if e == nil || e.Status != EffectPending {
		return deny(ReasonNotFound)
	}
	reason := ReasonOK
	switch p.Status {
	case EffectOK:
	case EffectFailed:
		reason = ReasonEffectFailed
	case EffectIndeterminate:
		reason = ReasonIndeterminate
	default:
		return deny(ReasonInvalidArgument)
	}
	if len(p.OutputDigest) > 128 {
		return deny(ReasonInvalidArgument)
	}
	e.Status, e.Code, e.OutputDigest, e.Completed = p.Status, p.Code, p.OutputDigest, l.st.Seq+1
	c.detail = Encode(&GovernanceDetail{Target: itoa(p.Seq), Note: e.Op + " " + e.Resource})
	l.evolveEffect(e.Entity, p.Status != EffectOK, c.now)
	if p.Status != EffectOK && l.sensing() {
		// A failed or lost effect is an error in its entity's record.
		l.observeError(e.Entity, e.Op, c.now)
	}
	if p.Status != EffectOK {
		l.recordError(e.Entity, c.now)
	}
	return outcome{decision: DecisionNone, reason: reason}
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
