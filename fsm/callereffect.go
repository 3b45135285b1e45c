package fsm

import (
	"encoding/hex"
	"strings"
)

// Caller-executed effects (protocol 5).
//
// Some ops are executed by the caller's own infrastructure, not by a
// kernel driver: a gateway in front of an agent's tools (an MCP gateway)
// asks the gate first and runs the tool only on PERMIT. From
// ProtocolCallerEffects an op matching CallerExecutedOps ("mcp.*") leaves
// its permitted effect pending, marked Caller, for the kernel's drivers
// to leave alone, until its executor reports how it ended:
//
//   - syscall.gateway (caller command): an agent's syscall that a gateway
//     relays, naming the gateway by the hash of the gateway's own token.
//     Who may propose it: the agent, with its own token (the gateway holds
//     both). The ledger checks, before the gate: protocol 5; the op is
//     caller-executed; the named gateway capability exists, is usable
//     (not revoked or expired along its chain, of this domain), is not
//     halted, holds effect.report by name on the op, and is neither the
//     agent's capability nor in its delegation chain (gateway_invalid).
//     Then the gate judges the call exactly as a syscall. A PERMIT
//     records the gateway's capability as the effect's reporter.
//   - effect.report (caller command): the gateway's report of an effect's
//     completion: status ok, failed or indeterminate, a numeric code and
//     the digest of the result. Who may propose it: the capability the
//     effect names as its reporter, holding effect.report on the op. The
//     ledger checks: protocol 5; the caller's capability is usable; the
//     effect exists and is caller-executed (not_found); the caller is its
//     reporter (not_reporter: another gateway, the agent itself, a
//     capability of another domain's ledger never resolves at all); the
//     effect is still pending (effect_done: a replayed or second report).
//     A report changes the effect's status once; a refused one changes
//     nothing but its own DENY event.
//
// An effect nobody reports (the gateway died with it) is completed as
// indeterminate by the leader after a timeout (effect.complete, as for a
// driver's effect lost with its leader).

// ProtocolCallerEffects is the first protocol with caller-executed
// effects, syscall.gateway and effect.report.
const ProtocolCallerEffects uint16 = 5

// OpEffectReport is the scope a gateway needs to relay syscalls and report
// their effects: by name (never through "*"), on the ops it executes.
const OpEffectReport = "effect.report"

// CallerExecutedOps are the op patterns whose effects the caller executes
// (protocol 5).
var CallerExecutedOps = []string{"mcp.*"}

func init() {
	// Both judge the caller's capability in run: syscall.gateway through
	// the gate, effect.report against the effect's recorded reporter.
	registerTyped(CmdGatewaySyscall, typedSpec[GatewaySyscall]{
		proposer: proposerCaller,
		subject:  func(_ *Ledger, p *GatewaySyscall) string { return p.Resource },
		since:    (*Ledger).callerEffects,
		run:      applyGatewaySyscall,
	})
	registerTyped(CmdEffectReport, typedSpec[EffectReport]{
		proposer: proposerCaller,
		subject:  func(_ *Ledger, p *EffectReport) string { return "effect " + itoa(p.Seq) },
		since:    (*Ledger).callerEffects,
		run:      applyEffectReport,
	})
}

// GatewaySyscall is a syscall relayed by a gateway: the agent's call,
// and Gateway, the SHA-256 of the gateway's own token.
type GatewaySyscall struct {
	Op         string `codec:"op"`
	Resource   string `codec:"resource"`
	Args       []byte `codec:"args"`
	ApprovalID string `codec:"approval_id"`
	Gateway    []byte `codec:"gateway"`
}

// EffectReport is a gateway's report of how the caller-executed effect of
// the syscall at Seq ended. No error text enters the ledger: Code is the
// executor's numeric result, OutputDigest the digest of its output.
type EffectReport struct {
	Seq          uint64 `codec:"seq"`
	Status       string `codec:"status"`
	Code         int64  `codec:"code"`
	OutputDigest string `codec:"output_digest"`
}

// callerEffects reports whether the rules of ProtocolCallerEffects are in
// force.
func (l *Ledger) callerEffects() bool { return l.st.Meta.Protocol >= ProtocolCallerEffects }

// IsCallerExecuted reports whether op's effects are the caller's to
// execute under protocol.
func IsCallerExecuted(op string, protocol uint16) bool {
	return protocol >= ProtocolCallerEffects && matchAny(CallerExecutedOps, op)
}

// governanceOp reports whether op is a governance op under protocol:
// effect.report is one from ProtocolCallerEffects (earlier ledgers judged
// it as any other op, and replay so).
func governanceOp(op string, protocol uint16) bool {
	return IsGovernanceOp(op) || protocol >= ProtocolCallerEffects && op == OpEffectReport
}

// markCallerExecuted marks a permitted effect as the caller's to execute
// (protocol 5), reported by the gateway that relayed it, if any.
func (l *Ledger) markCallerExecuted(c *call, e *Effect) {
	if !IsCallerExecuted(e.Op, l.st.Meta.Protocol) {
		return
	}
	e.Caller, e.Permitted = true, c.now
	if c.gateway != nil {
		e.Reporter = c.gateway.ID
	}
}

// gatewayReason judges the gateway a relayed syscall names.
func (l *Ledger) gatewayReason(c *call, hash []byte, op string) Reason {
	st := l.st
	if !validTokenHash(hash) {
		return ReasonInvalidArgument
	}
	g := st.CapByToken(hex.EncodeToString(hash))
	switch {
	case g == nil, st.Usable(g, c.now) != ReasonOK, l.haltedCap(g):
		return ReasonGatewayInvalid
	case !l.covers(g, OpEffectReport, op), st.inChain(g, c.cap):
		return ReasonGatewayInvalid
	}
	c.gateway = g
	return ReasonOK
}

func applyGatewaySyscall(l *Ledger, c *call, p *GatewaySyscall) outcome {
	if len(p.ApprovalID) > 64 || !validOp(p.Op) || !IsCallerExecuted(p.Op, l.st.Meta.Protocol) {
		return deny(ReasonInvalidArgument)
	}
	if r := l.gatewayReason(c, p.Gateway, p.Op); r != ReasonOK {
		return deny(r)
	}
	return l.syscall(c, p.Op, p.Resource, p.Args, p.ApprovalID)
}

func applyEffectReport(l *Ledger, c *call, p *EffectReport) outcome {
	st := l.st
	if r := st.Usable(c.cap, c.now); r != ReasonOK {
		return deny(r)
	}
	e := st.Effects[p.Seq]
	switch {
	case e == nil || !e.Caller:
		return deny(ReasonNotFound)
	case e.Reporter != c.cap.ID:
		return deny(ReasonNotReporter)
	case !l.covers(c.cap, OpEffectReport, e.Op):
		return deny(ReasonForbidden)
	case e.Status != EffectPending:
		return deny(ReasonEffectDone)
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
	if len(p.OutputDigest) > 128 || strings.ContainsAny(p.OutputDigest, " \n") {
		return deny(ReasonInvalidArgument)
	}
	e.Status, e.Code, e.OutputDigest, e.Completed = p.Status, p.Code, p.OutputDigest, st.Seq+1
	c.detail = Encode(&GovernanceDetail{Target: itoa(p.Seq), Note: e.Op + " " + e.Resource})
	l.evolveEffect(e.Entity, p.Status != EffectOK, c.now)
	if p.Status != EffectOK && l.sensing() {
		l.observeError(e.Entity, e.Op, c.now)
	}
	if p.Status != EffectOK {
		l.recordError(e.Entity, c.now)
	}
	return outcome{decision: DecisionNone, reason: reason}
}
