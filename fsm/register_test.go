package fsm

import (
	"testing"
	"time"
)

// The registration's steps run in the order typedSpec states, which is
// the order each command checked them in before it declared them: a
// denial's reason, subject and actor show which step stopped it.
func TestRegistrationStepOrder(t *testing.T) {
	type step struct {
		what           string
		token          []byte
		ct             CommandType
		payload        any
		raw            []byte // a payload that does not decode, instead of payload
		reason         Reason
		subject, actor string
	}
	root := testRootToken[:]
	check := func(g *recordingGate, steps []step) {
		t.Helper()
		for _, s := range steps {
			e := env(s.ct, "", s.token, g.tick(), s.payload)
			if s.raw != nil {
				e = Encode(&Envelope{Type: s.ct, Auth: s.token, Time: g.tick(), Payload: s.raw})
			}
			a := g.rec(e)
			if a.Event == nil || a.Result.Decision != DecisionDeny || a.Result.Reason != s.reason ||
				a.Event.Subject != s.subject || a.Event.Actor != s.actor {
				t.Errorf("%s: got %s %s subject %q actor %q, want DENY %s subject %q actor %q", s.what,
					a.Result.Decision, a.Result.Reason, eventSubject(a), eventActor(a), s.reason, s.subject, s.actor)
			}
		}
	}

	g := newRecordingGate(t, ProtocolContract)
	check(g, []step{
		{what: "a staged epoch before protocol 4 does not decode", token: root, ct: CmdEpoch,
			payload: &Epoch{Restore: "r1"}, reason: ReasonMalformed, actor: RootOperatorName},
		{what: "limits.set before protocol 4", token: root, ct: CmdLimitsSet, payload: &LimitsSet{},
			reason: ReasonUnsupportedProtocol, subject: OperatorLimits, actor: RootOperatorName},
		{what: "epoch.chunk before protocol 4", token: root, ct: CmdEpochChunk, payload: &EpochChunk{Restore: "r1"},
			reason: ReasonUnsupportedProtocol, subject: "restore r1", actor: RootOperatorName},
	})

	g = newRecordingGate(t, ProtocolVersion)
	g.grant("agent", []string{"kv.*"}, []string{"*"}, time.Hour)
	g.grant("granter", []string{OpCapGrant}, []string{"*"}, time.Hour)
	check(g, []step{
		{what: "genesis again, before its payload decodes", ct: CmdGenesis, raw: []byte{0xc1},
			reason: ReasonAlreadyInitialized, subject: "genesis"},
		{what: "a caller command that does not decode", token: root, ct: CmdKVPut, raw: []byte{0xc1},
			reason: ReasonMalformed, actor: RootOperatorName},
		{what: "an amendment names its id only on the sovereign", token: root, ct: CmdFedAmendPropose,
			payload: &FedAmendPropose{Text: "x"}, reason: ReasonWrongRole, actor: RootOperatorName},
		{what: "a domain is named before the role is checked", token: root, ct: CmdFedDomainCreate,
			payload: &FedDomainCreate{Name: "acme"}, reason: ReasonWrongRole, subject: "acme", actor: RootOperatorName},
		{what: "the role before the scope", token: tokenHash("agent"), ct: CmdFedHalt,
			payload: &FedHaltCmd{}, reason: ReasonWrongRole, subject: "federation", actor: "agent"},
		{what: "revoking an unknown capability is governed on every resource", token: tokenHash("agent"), ct: CmdCapRevoke,
			payload: &CapRevoke{ID: "cap-999"}, reason: ReasonForbidden, subject: "cap-999", actor: "agent"},
		{what: "then is not found", token: root, ct: CmdCapRevoke,
			payload: &CapRevoke{ID: "cap-999"}, reason: ReasonNotFound, subject: "cap-999", actor: RootOperatorName},
		{what: "an operator grant needs operator.manage", token: tokenHash("granter"), ct: CmdCapGrant,
			payload: &CapGrant{TokenHash: tokenHash("op2"), Entity: "op2", Operator: true, Ops: []string{"*"}, Resources: []string{"*"}},
			reason:  ReasonForbidden, subject: "op2", actor: "granter"},
		{what: "an internal command names its actor from the payload before the role", ct: CmdFedKeysSign,
			payload: &FedKeysSign{Epoch: 1, Operator: "alice"}, reason: ReasonWrongRole, subject: "keys epoch 1", actor: "alice"},
		{what: "a bus event names its origin's entity", ct: CmdBusReceive,
			payload: &BusReceive{Origin: "globex", Entity: "bot", Seq: 3}, reason: ReasonWrongRole, subject: "globex/3", actor: "globex/bot"},
		{what: "a federation view on a kernel that is no domain", ct: CmdFedUpdate,
			payload: &FedUpdate{}, reason: ReasonWrongRole, subject: "federation", actor: "kernel"},
	})
}

func eventSubject(a Applied) string {
	if a.Event == nil {
		return ""
	}
	return a.Event.Subject
}

func eventActor(a Applied) string {
	if a.Event == nil {
		return ""
	}
	return a.Event.Actor
}
