package fsm

import (
	"testing"
	"time"
)

// authorityLedger is a gate ledger sealed under protocol.
func authorityLedger(t *testing.T, protocol uint16) *recordingGate {
	return newRecordingGate(t, protocol)
}

// grantAs grants entity a capability as the holder of token.
func (g *recordingGate) grantAs(token []byte, entity string, operator bool, ops, res []string, uses int64, ttl time.Duration) Applied {
	return g.as(token, CmdCapGrant, &CapGrant{TokenHash: tokenHash(entity), Entity: entity, Operator: operator, Ops: ops, Resources: res, Uses: uses, TTLNs: int64(ttl)})
}

func mustPermitted(t *testing.T, what string, a Applied) {
	t.Helper()
	if a.Event == nil || a.Result.Decision != DecisionPermit {
		t.Fatalf("%s: %s %s", what, a.Result.Decision, a.Result.Reason)
	}
}

// Finding: a grant is not bounded by its granter. An operator holding
// only cap.grant grants '*' on '*': refused, and nothing changes.
func TestGrantBoundedByGranter(t *testing.T) {
	g := authorityLedger(t, ProtocolAuthority)
	root := testRootToken[:]
	mustPermitted(t, "alice", g.grantAs(root, "alice", true, []string{"cap.grant"}, []string{"*"}, 0, 0))
	alice := tokenHash("alice")
	g.refuse("everything from cap.grant alone", ReasonWiderThanGranter, alice, CmdCapGrant, &CapGrant{TokenHash: tokenHash("x"), Entity: "x", Ops: []string{"*"}, Resources: []string{"*"}})
	g.refuse("a governance op alice lacks", ReasonWiderThanGranter, alice, CmdCapGrant, &CapGrant{TokenHash: tokenHash("x"), Entity: "x", Ops: []string{"policy.set"}, Resources: []string{"*"}})

	mustPermitted(t, "bob", g.grantAs(root, "bob", true, []string{"cap.grant", "kv.*"}, []string{"orders/*"}, 5, time.Hour))
	bob := tokenHash("bob")
	mustPermitted(t, "a subset", g.grantAs(bob, "orders/agent", false, []string{"kv.put"}, []string{"orders/vip/*"}, 2, 30*time.Minute))
	cases := []struct {
		name string
		p    CapGrant
	}{
		{"other ops", CapGrant{Ops: []string{"email.send"}, Resources: []string{"orders/*"}, Uses: 1, TTLNs: int64(time.Minute)}},
		{"other resources", CapGrant{Ops: []string{"kv.put"}, Resources: []string{"invoices/*"}, Uses: 1, TTLNs: int64(time.Minute)}},
		{"outliving the granter", CapGrant{Ops: []string{"kv.put"}, Resources: []string{"orders/1"}, Uses: 1, TTLNs: int64(2 * time.Hour)}},
		{"never expiring", CapGrant{Ops: []string{"kv.put"}, Resources: []string{"orders/1"}, Uses: 1}},
		{"more uses than left", CapGrant{Ops: []string{"kv.put"}, Resources: []string{"orders/1"}, Uses: 6, TTLNs: int64(time.Minute)}},
		{"unlimited uses", CapGrant{Ops: []string{"kv.put"}, Resources: []string{"orders/1"}, TTLNs: int64(time.Minute)}},
	}
	for _, c := range cases {
		p := c.p
		p.TokenHash, p.Entity = tokenHash("orders/"+c.name), "orders/y"
		g.refuse(c.name, ReasonWiderThanGranter, bob, CmdCapGrant, &p)
	}
	// Operator capabilities come only from operators with operator.manage.
	mustPermitted(t, "carol", g.grantAs(root, "carol", false, []string{"cap.grant", "operator.manage", "kv.put"}, []string{"*"}, 0, 0))
	g.refuse("an operator from a non-operator", ReasonWiderThanGranter, tokenHash("carol"), CmdCapGrant, &CapGrant{TokenHash: tokenHash("dave"), Entity: "dave", Operator: true, Ops: []string{"kv.put"}, Resources: []string{"*"}})
	g.refuse("an operator from cap.grant alone", ReasonForbidden, bob, CmdCapGrant, &CapGrant{TokenHash: tokenHash("dave"), Entity: "orders/dave", Operator: true, Ops: []string{"kv.put"}, Resources: []string{"orders/*"}, Uses: 1, TTLNs: int64(time.Minute)})

	// Under protocol 3 the same grant went through (old ledgers replay so).
	old := authorityLedger(t, 3)
	mustPermitted(t, "alice (protocol 3)", old.grantAs(root, "alice", true, []string{"cap.grant"}, []string{"*"}, 0, 0))
	mustPermitted(t, "everything from cap.grant alone (protocol 3)", old.grantAs(alice, "x", false, []string{"*"}, []string{"*"}, 0, 0))
}

// Finding: '*' matches every governance op. From protocol 4 an agent's
// '*' covers no governance op: it cannot set policy, halt, grant, make
// operators or decide approvals.
func TestStarDoesNotGovern(t *testing.T) {
	for _, protocol := range []uint16{3, ProtocolAuthority} {
		g := authorityLedger(t, protocol)
		mustPermitted(t, "the agent", g.grantAs(testRootToken[:], "agent", false, []string{"*"}, []string{"*"}, 0, 0))
		agent := tokenHash("agent")
		cmds := []struct {
			name    string
			ct      CommandType
			payload any
		}{
			{"policy.set", CmdPolicySet, &PolicySet{Name: "p", Text: "forbid(principal, action, resource);", Mode: PolicyActive}},
			{"halt", CmdHalt, &HaltCmd{Reason: "takeover"}},
			{"cap.grant", CmdCapGrant, &CapGrant{TokenHash: tokenHash("x"), Entity: "x", Ops: []string{"kv.put"}, Resources: []string{"*"}}},
			{"operator.manage", CmdCapGrant, &CapGrant{TokenHash: tokenHash("op"), Entity: "op", Operator: true, Ops: []string{"*"}, Resources: []string{"*"}}},
			{"signal.ingest", CmdSignalIngest, &SignalIngest{Kind: "incident_level", Value: 100}},
		}
		for _, c := range cmds {
			if protocol >= ProtocolAuthority {
				g.refuse("an agent's * on "+c.name, ReasonForbidden, agent, c.ct, c.payload)
			} else if a := g.as(agent, c.ct, c.payload); a.Result.Decision != DecisionPermit {
				t.Fatalf("protocol 3: an agent's * on %s: %s (the old rule let it through)", c.name, a.Result.Reason)
			}
		}
	}
	// Named, a governance op is the agent's to use.
	g := authorityLedger(t, ProtocolAuthority)
	mustPermitted(t, "the agent", g.grantAs(testRootToken[:], "ingest", false, []string{"signal.ingest"}, []string{"*"}, 0, 0))
	mustPermitted(t, "a named governance op", g.as(tokenHash("ingest"), CmdSignalIngest, &SignalIngest{Kind: "incident_level", Value: 10}))
}

// Finding: an agent approves its own escalation. From protocol 4 only an
// operator outside the caller's delegation chain decides.
func TestNoSelfApproval(t *testing.T) {
	g := authorityLedger(t, ProtocolAuthority)
	root := testRootToken[:]
	mustPermitted(t, "alice", g.grantAs(root, "alice", true, []string{"approval.decide", "payments.send", "policy.set"}, []string{"*"}, 0, 0))
	mustPermitted(t, "bob", g.grantAs(root, "bob", true, []string{"approval.decide"}, []string{"*"}, 0, 0))
	mustPermitted(t, "agent *", g.grantAs(root, "agent", false, []string{"*", "approval.decide"}, []string{"*"}, 0, 0))
	mustPermitted(t, "policy", g.as(tokenHash("alice"), CmdPolicySet, &PolicySet{Name: "p", Mode: PolicyActive,
		Text: `@escalate("human") forbid(principal, action == Dominus::Action::"payments.send", resource);`}))

	escalate := func(who string) string {
		t.Helper()
		a := g.call(who, "payments.send", "acct/1", []byte("1"))
		if a.Result.Decision != DecisionEscalate {
			t.Fatalf("%s's call: %s %s", who, a.Result.Decision, a.Result.Reason)
		}
		return a.Result.ID
	}
	// The agent, holding approval.decide by name, is no operator.
	id := escalate("agent")
	g.refuse("an agent approving its own call", ReasonForbidden, tokenHash("agent"), CmdApprovalDecide, &ApprovalDecide{ID: id, Approve: true})
	// An operator approving its own call, and its delegate's.
	own := escalate("alice")
	g.refuse("alice approving her own call", ReasonSelfApproval, tokenHash("alice"), CmdApprovalDecide, &ApprovalDecide{ID: own, Approve: true})
	mustPermitted(t, "alice's bot", g.as(tokenHash("alice"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash("alice/bot"), Entity: "alice/bot", Ops: []string{"payments.send"}, Resources: []string{"*"}}))
	bot := escalate("alice/bot")
	g.refuse("alice approving her delegate's call", ReasonSelfApproval, tokenHash("alice"), CmdApprovalDecide, &ApprovalDecide{ID: bot, Approve: true})
	// bob, outside the chain, may.
	mustPermitted(t, "bob approving", g.as(tokenHash("bob"), CmdApprovalDecide, &ApprovalDecide{ID: bot, Approve: true}))
	if g.State().Approvals[bot].State != ApprovalApproved {
		t.Fatal("bob's approval did not take")
	}
}

// Finding: halting an entity does not halt its delegates. From protocol 4
// a halt applies along the delegation chain.
func TestHaltAppliesToDelegates(t *testing.T) {
	for _, protocol := range []uint16{3, ProtocolAuthority} {
		g := authorityLedger(t, protocol)
		mustPermitted(t, "agent", g.grantAs(testRootToken[:], "agent", false, []string{"kv.put"}, []string{"*"}, 0, 0))
		mustPermitted(t, "helper", g.as(tokenHash("agent"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash("agent/helper"), Entity: "agent/helper", Ops: []string{"kv.put"}, Resources: []string{"*"}}))
		mustPermitted(t, "halt agent", g.as(testRootToken[:], CmdHalt, &HaltCmd{Entity: "agent", Reason: "compromised"}))
		a := g.call("agent/helper", "kv.put", "k", []byte("v"))
		want := DecisionDeny
		if protocol < ProtocolAuthority {
			want = DecisionPermit // the old rule, kept for old ledgers
		}
		if a.Result.Decision != want {
			t.Fatalf("protocol %d: the halted entity's delegate: %s %s", protocol, a.Result.Decision, a.Result.Reason)
		}
		if protocol >= ProtocolAuthority {
			g.refuse("a delegation from a halted chain", ReasonHalted, tokenHash("agent/helper"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash("agent/helper/2"), Entity: "agent/helper/2", Ops: []string{"kv.put"}, Resources: []string{"*"}})
		}
	}
}
