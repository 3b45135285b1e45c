package fsm

import (
	"testing"
	"time"
)

const readOp = "mcp.fs.tool.read_file"

func (g *gateLedger) relay(entity, gateway, op, resource string, args []byte, approval string) Applied {
	return g.as(tokenHash(entity), CmdGatewaySyscall, &GatewaySyscall{Op: op, Resource: resource, Args: args, ApprovalID: approval, Gateway: tokenHash(gateway)})
}

func (g *gateLedger) report(entity string, seq uint64, status string) Applied {
	return g.as(tokenHash(entity), CmdEffectReport, &EffectReport{Seq: seq, Status: status, OutputDigest: "sha256:ab"})
}

// refused applies what a, expects DENY r and no change to the governed
// state.
func (g *gateLedger) refused(what string, r Reason, apply func() Applied) {
	g.t.Helper()
	before := governed(g.Ledger)
	a := apply()
	if a.Event == nil || a.Result.Decision != DecisionDeny || a.Result.Reason != r {
		g.t.Fatalf("%s: got %s %s (event %v), want DENY %s", what, a.Result.Decision, a.Result.Reason, a.Event != nil, r)
	}
	if governed(g.Ledger) != before {
		g.t.Fatalf("%s: a refused command changed the state", what)
	}
}

func TestGatewayRelaysAndReportsItsOwnEffects(t *testing.T) {
	g := newGateLedger(t)
	g.grant("agent", []string{"mcp.fs.tool.*", "webhook.call"}, []string{"/srv/*", "https://*"}, 0, time.Hour)
	g.grant("gw", []string{OpEffectReport}, []string{"mcp.fs.*"}, 0, time.Hour)
	g.grant("gw2", []string{OpEffectReport}, []string{"mcp.*"}, 0, time.Hour)

	a := g.relay("agent", "gw", readOp, "/srv/a.txt", []byte(`{"path":"/srv/a.txt"}`), "")
	expect(t, a, DecisionPermit, ReasonOK)
	seq := a.Result.Seq
	e := g.State().Effects[seq]
	gwCap := g.State().CapByToken(hexHash("gw"))
	if e == nil || !e.Caller || e.Reporter != gwCap.ID || e.Status != EffectPending || e.Permitted == 0 {
		t.Fatalf("relayed effect: %+v", e)
	}

	// Attackers: each is refused with its reason and changes nothing.
	g.refused("another gateway reporting an effect it did not serve", ReasonNotReporter, func() Applied { return g.report("gw2", seq, EffectOK) })
	g.refused("the agent reporting its own effect", ReasonNotReporter, func() Applied { return g.report("agent", seq, EffectOK) })
	g.refused("a report for an effect that does not exist", ReasonNotFound, func() Applied { return g.report("gw", seq+1000, EffectOK) })
	g.refused("a report with an unknown status", ReasonInvalidArgument, func() Applied { return g.report("gw", seq, "done") })
	hook := g.call("agent", "webhook.call", "https://hooks.example/x", nil, "")
	expect(t, hook, DecisionPermit, ReasonOK)
	g.refused("a report for a driver's effect", ReasonNotFound, func() Applied { return g.report("gw", hook.Result.Seq, EffectOK) })

	expect(t, g.report("gw", seq, EffectOK), DecisionNone, ReasonOK)
	if e := g.State().Effects[seq]; e.Status != EffectOK || e.OutputDigest != "sha256:ab" || e.Completed == 0 {
		t.Fatalf("reported effect: %+v", e)
	}
	g.refused("a replayed report", ReasonEffectDone, func() Applied { return g.report("gw", seq, EffectFailed) })
	// The same report under the same request id is answered, not applied again.
	rep := env(CmdEffectReport, "rep-1", tokenHash("gw"), g.tick(), &EffectReport{Seq: seq, Status: EffectOK})
	before := governed(g.Ledger)
	if first := g.apply(rep); first.Result.Reason != ReasonEffectDone {
		t.Fatalf("first: %+v", first.Result)
	}
	if again := g.apply(rep); again.Event != nil || !again.Result.Duplicate || governed(g.Ledger) != before {
		t.Fatalf("replayed entry: %+v", again.Result)
	}
}

func TestGatewayMustBeAnotherCapabilityScopedToTheOp(t *testing.T) {
	g := newGateLedger(t)
	g.grant("agent", []string{"mcp.fs.tool.*", OpEffectReport}, []string{"*"}, 10, time.Hour)
	g.grant("star", []string{"*"}, []string{"*"}, 0, time.Hour)
	g.grant("gitgw", []string{OpEffectReport}, []string{"mcp.git.*"}, 0, time.Hour)
	g.grant("gw", []string{OpEffectReport}, []string{"mcp.*"}, 0, time.Hour)
	g.as(testRootToken[:], CmdCapGrant, &CapGrant{TokenHash: tokenHash("foreign"), Entity: "foreign", Domain: "globex", Ops: []string{OpEffectReport}, Resources: []string{"*"}})
	child := g.as(tokenHash("agent"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash("child"), Entity: "child", Ops: []string{OpEffectReport}, Resources: []string{"mcp.*"}, Uses: 2})
	expect(t, child, DecisionPermit, ReasonOK)
	args := []byte(`{"path":"/srv/a"}`)
	for _, c := range []struct{ what, gateway string }{
		{"the agent naming itself", "agent"},
		{"the agent naming its own delegate", "child"},
		{"a capability whose * does not cover effect.report", "star"},
		{"a gateway scoped to other ops", "gitgw"},
		{"a gateway of another domain", "foreign"},
		{"a token no capability holds", "nobody"},
	} {
		g.refused(c.what, ReasonGatewayInvalid, func() Applied { return g.relay("agent", c.gateway, readOp, "/srv/a", args, "") })
	}
	g.refused("a relayed op that is not caller-executed", ReasonInvalidArgument, func() Applied {
		return g.relay("agent", "gw", "webhook.call", "/srv/a", args, "")
	})
	expect(t, g.as(testRootToken[:], CmdHalt, &HaltCmd{Entity: "gw"}), DecisionPermit, ReasonOK)
	g.refused("a halted gateway", ReasonGatewayInvalid, func() Applied { return g.relay("agent", "gw", readOp, "/srv/a", args, "") })
	expect(t, g.as(testRootToken[:], CmdResume, &HaltCmd{Entity: "gw"}), DecisionPermit, ReasonOK)

	// A caller-executed op through the plain syscall has no gateway: no
	// one can report it, and the leader's timeout will.
	a := g.call("agent", readOp, "/srv/a", args, "")
	expect(t, a, DecisionPermit, ReasonOK)
	if e := g.State().Effects[a.Result.Seq]; !e.Caller || e.Reporter != "" {
		t.Fatalf("plain syscall's effect: %+v", e)
	}
	g.refused("a gateway reporting a call it did not relay", ReasonNotReporter, func() Applied { return g.report("gw", a.Result.Seq, EffectOK) })
	// A revoked gateway reports nothing more.
	r := g.relay("agent", "gw", readOp, "/srv/b", args, "")
	expect(t, r, DecisionPermit, ReasonOK)
	expect(t, g.as(testRootToken[:], CmdCapRevoke, &CapRevoke{ID: g.State().CapByToken(hexHash("gw")).ID}), DecisionPermit, ReasonOK)
	g.refused("a revoked gateway's report", ReasonRevoked, func() Applied { return g.report("gw", r.Result.Seq, EffectOK) })
	// The timeout's completion still lands.
	expect(t, g.apply(env(CmdEffectComplete, "", nil, g.tick(), &EffectComplete{Seq: r.Result.Seq, Status: EffectIndeterminate, Code: -1})), DecisionNone, ReasonIndeterminate)
}

func TestRelayedEscalationRedeemedOnTheIdenticalCall(t *testing.T) {
	g := newGateLedger(t)
	g.grant("agent", []string{"mcp.fs.tool.*"}, []string{"/srv/*"}, 0, time.Hour)
	g.grant("gw", []string{OpEffectReport}, []string{"mcp.fs.*"}, 0, time.Hour)
	g.policy("writes", PolicyActive, `@escalate("writes need a human")
forbid(principal, action == Action::"mcp.fs.tool.write_file", resource);`)
	args := []byte(`{"content":"x","path":"/srv/a"}`)
	a := g.relay("agent", "gw", "mcp.fs.tool.write_file", "/srv/a", args, "")
	expect(t, a, DecisionEscalate, ReasonApprovalRequired)
	if len(g.State().PendingEffects()) != 0 {
		t.Fatal("an escalated call left an effect")
	}
	expect(t, g.as(testRootToken[:], CmdApprovalDecide, &ApprovalDecide{ID: a.Result.ID, Approve: true}), DecisionPermit, ReasonApprovalApproved)
	g.refused("other args under the approval", ReasonApprovalInvalid, func() Applied {
		return g.relay("agent", "gw", "mcp.fs.tool.write_file", "/srv/a", []byte(`{"content":"y","path":"/srv/a"}`), a.Result.ID)
	})
	p := g.relay("agent", "gw", "mcp.fs.tool.write_file", "/srv/a", args, a.Result.ID)
	expect(t, p, DecisionPermit, ReasonOK)
	if e := g.State().Effects[p.Result.Seq]; e == nil || !e.Caller {
		t.Fatalf("approved effect: %+v", e)
	}
}

// Ledgers before protocol 5 replay as they were written: no relayed
// syscalls, no reports, mcp.* effects for the drivers, effect.report an
// ordinary op.
func TestCallerEffectsNeedProtocol5(t *testing.T) {
	g := &gateLedger{testLedger: &testLedger{Ledger: New()}, t: t, now: t0 + 1e9}
	g.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: ProtocolAuthority, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
	g.grant("agent", []string{"mcp.fs.tool.*", OpEffectReport}, []string{"*"}, 0, time.Hour)
	g.grant("gw", []string{OpEffectReport}, []string{"*"}, 0, time.Hour)
	g.refused("syscall.gateway under protocol 4", ReasonUnsupportedProtocol, func() Applied { return g.relay("agent", "gw", readOp, "/srv/a", nil, "") })
	a := g.call("agent", readOp, "/srv/a", nil, "")
	expect(t, a, DecisionPermit, ReasonOK)
	if e := g.State().Effects[a.Result.Seq]; e.Caller || e.Reporter != "" || e.Permitted != 0 {
		t.Fatalf("protocol 4 effect: %+v", e)
	}
	g.refused("effect.report under protocol 4", ReasonUnsupportedProtocol, func() Applied { return g.report("gw", a.Result.Seq, EffectOK) })
	expect(t, g.call("agent", OpEffectReport, "x", nil, ""), DecisionPermit, ReasonOK)
}
