package fsm

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

func tokenHash(name string) []byte { s := sha256.Sum256([]byte("token:" + name)); return s[:] }

// gateLedger is a ledger past genesis with helpers for gate commands.
type gateLedger struct {
	*testLedger
	t   *testing.T
	now int64
}

func newGateLedger(t *testing.T) *gateLedger {
	return &gateLedger{testLedger: newTestLedger(t), t: t, now: t0 + 1e9}
}

func (g *gateLedger) tick() int64 { g.now += 1e6; return g.now }

func (g *gateLedger) as(token []byte, ct CommandType, payload any) Applied {
	return g.apply(env(ct, "", token, g.tick(), payload))
}

func (g *gateLedger) grant(entity string, ops, res []string, uses int64, ttl time.Duration) string {
	g.t.Helper()
	a := g.as(testRootToken[:], CmdCapGrant, &CapGrant{TokenHash: tokenHash(entity), Entity: entity, Ops: ops, Resources: res, Uses: uses, TTLNs: int64(ttl)})
	if a.Result.Decision != DecisionPermit {
		g.t.Fatalf("grant %s: %s", entity, a.Result.Reason)
	}
	return a.Result.ID
}

func (g *gateLedger) call(entity, op, resource string, args []byte, approval string) Applied {
	return g.as(tokenHash(entity), CmdSyscall, &Syscall{Op: op, Resource: resource, Args: args, ApprovalID: approval})
}

func (g *gateLedger) policy(name, mode, text string) Applied {
	return g.as(testRootToken[:], CmdPolicySet, &PolicySet{Name: name, Text: text, Mode: mode})
}

// governed is the state apart from the chain, dedup, the sensing fold and
// the history counters (every decision, a denial included, is folded into
// its entity's baseline, trust and counters as part of its event).
func governed(l *Ledger) string {
	b := l.State().body()
	b.Seq, b.Head, b.Time, b.Dedup, b.Sense, b.History = 0, nil, 0, nil, nil, nil
	return string(Encode(&b))
}

func expect(t *testing.T, a Applied, d Decision, r Reason) {
	t.Helper()
	if a.Event == nil {
		t.Fatalf("no event appended (result %+v)", a.Result)
	}
	if a.Result.Decision != d || a.Result.Reason != r {
		t.Fatalf("got %s %s, want %s %s", a.Result.Decision, a.Result.Reason, d, r)
	}
}

func TestGateDecisionPaths(t *testing.T) {
	g := newGateLedger(t)
	g.grant("agent", []string{"kv.put", "kv.get", "email.send"}, []string{"orders/*"}, 3, time.Hour)

	// Three uses, then exhausted.
	for i := 0; i < 3; i++ {
		expect(t, g.call("agent", "kv.put", fmt.Sprint("orders/", i), []byte("v"), ""), DecisionPermit, ReasonOK)
	}
	before := governed(g.Ledger)
	expect(t, g.call("agent", "kv.put", "orders/4", []byte("v"), ""), DecisionDeny, ReasonUsesExhausted)
	if governed(g.Ledger) != before {
		t.Fatal("a DENY changed state beyond its event")
	}

	g.grant("b", []string{"kv.*"}, []string{"orders/*"}, 0, time.Hour)
	cases := []struct {
		name          string
		entity, op, r string
		want          Reason
		decision      Decision
	}{
		{"op out of scope", "b", "email.send", "orders/1", ReasonOutOfScope, DecisionDeny},
		{"resource out of scope", "b", "kv.put", "invoices/1", ReasonOutOfScope, DecisionDeny},
		{"star covers slashes", "b", "kv.put", "orders/vip/1", ReasonOK, DecisionPermit},
		{"governance op refused as a syscall", "b", "cap.grant", "x", ReasonUnknownOp, DecisionDeny},
		{"unknown kv op", "b", "kv.explode", "orders/1", ReasonUnknownOp, DecisionDeny},
		{"malformed op", "b", "Kv PUT!", "orders/1", ReasonUnknownOp, DecisionDeny},
		{"op without a namespace", "b", "explode", "orders/1", ReasonUnknownOp, DecisionDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := governed(g.Ledger)
			a := g.call(c.entity, c.op, c.r, []byte("v"), "")
			expect(t, a, c.decision, c.want)
			if c.decision == DecisionDeny && governed(g.Ledger) != before {
				t.Fatal("a DENY changed state beyond its event")
			}
		})
	}
	// Unknown token: denied and recorded, actor unknown.
	a := g.as(tokenHash("nobody"), CmdSyscall, &Syscall{Op: "kv.put", Resource: "orders/1"})
	expect(t, a, DecisionDeny, ReasonUnknownToken)
}

func TestExpiryJudgedAtLedgerTime(t *testing.T) {
	g := newGateLedger(t)
	g.grant("a", []string{"kv.put"}, []string{"*"}, 0, time.Second)
	expect(t, g.call("a", "kv.put", "k", nil, ""), DecisionPermit, ReasonOK)
	g.now += 2e9
	expect(t, g.call("a", "kv.put", "k", nil, ""), DecisionDeny, ReasonExpired)
}

func TestDomainMismatch(t *testing.T) {
	g := newGateLedger(t)
	a := g.as(testRootToken[:], CmdCapGrant, &CapGrant{TokenHash: tokenHash("x"), Entity: "x", Domain: "globex", Ops: []string{"*"}, Resources: []string{"*"}})
	expect(t, a, DecisionPermit, ReasonOK)
	expect(t, g.call("x", "kv.put", "k", nil, ""), DecisionDeny, ReasonDomainMismatch)
}

func TestDelegationReservesUsesAndNeverWidens(t *testing.T) {
	g := newGateLedger(t)
	parent := g.grant("p", []string{"kv.put"}, []string{"orders/*"}, 5, time.Hour)
	del := func(entity string, ops, res []string, uses int64, ttl time.Duration) Applied {
		return g.as(tokenHash("p"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash(entity), Entity: entity, Ops: ops, Resources: res, Uses: uses, TTLNs: int64(ttl)})
	}
	expect(t, del("c1", []string{"kv.put"}, []string{"orders/vip/*"}, 1, 0), DecisionPermit, ReasonOK)
	if left := g.State().Caps[parent].Remaining(); left != 4 {
		t.Fatalf("parent has %d uses left after reserving 1, want 4", left)
	}
	expect(t, g.call("c1", "kv.put", "orders/vip/7", nil, ""), DecisionPermit, ReasonOK)
	expect(t, g.call("c1", "kv.put", "orders/vip/8", nil, ""), DecisionDeny, ReasonUsesExhausted)
	if left := g.State().Caps[parent].Remaining(); left != 4 {
		t.Fatalf("the child's use touched the parent: %d left", left)
	}
	expect(t, del("w1", []string{"kv.*"}, []string{"orders/*"}, 1, 0), DecisionDeny, ReasonWiderThanParent)
	expect(t, del("w2", []string{"kv.put"}, []string{"*"}, 1, 0), DecisionDeny, ReasonWiderThanParent)
	expect(t, del("w3", []string{"kv.put"}, []string{"orders/*"}, 5, 0), DecisionDeny, ReasonWiderThanParent)
	expect(t, del("w4", []string{"kv.put"}, []string{"orders/*"}, 0, 0), DecisionDeny, ReasonWiderThanParent)
	expect(t, del("w5", []string{"kv.put"}, []string{"orders/*"}, 1, 2*time.Hour), DecisionDeny, ReasonWiderThanParent)
	for i := 0; i < 4; i++ {
		expect(t, g.call("p", "kv.put", "orders/x", nil, ""), DecisionPermit, ReasonOK)
	}
	expect(t, del("w6", []string{"kv.put"}, []string{"orders/*"}, 1, 0), DecisionDeny, ReasonUsesExhausted)
}

func TestDelegationDepthBounded(t *testing.T) {
	g := newGateLedger(t)
	g.grant("d0", []string{"*"}, []string{"*"}, 0, 0)
	for i := 1; i <= MaxDelegationDepth+1; i++ {
		a := g.as(tokenHash(fmt.Sprint("d", i-1)), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash(fmt.Sprint("d", i)), Entity: fmt.Sprint("d", i), Ops: []string{"*"}, Resources: []string{"*"}})
		if i <= MaxDelegationDepth {
			expect(t, a, DecisionPermit, ReasonOK)
		} else {
			expect(t, a, DecisionDeny, ReasonDepthExceeded)
		}
	}
}

func TestRevokingAParentRevokesTheSubtree(t *testing.T) {
	g := newGateLedger(t)
	root := g.grant("r", []string{"kv.put"}, []string{"*"}, 0, 0)
	g.as(tokenHash("r"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash("c"), Entity: "c", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	g.as(tokenHash("c"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash("gc"), Entity: "gc", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	expect(t, g.call("gc", "kv.put", "k", nil, ""), DecisionPermit, ReasonOK)
	expect(t, g.as(testRootToken[:], CmdCapRevoke, &CapRevoke{ID: root}), DecisionPermit, ReasonOK)
	for _, e := range []string{"r", "c", "gc"} {
		expect(t, g.call(e, "kv.put", "k", nil, ""), DecisionDeny, ReasonRevoked)
	}
	// A revoked holder cannot delegate either.
	a := g.as(tokenHash("c"), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash("late"), Entity: "late", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	expect(t, a, DecisionDeny, ReasonRevoked)
	// The break-glass root cannot be revoked.
	expect(t, g.as(testRootToken[:], CmdCapRevoke, &CapRevoke{ID: "cap-1"}), DecisionDeny, ReasonForbidden)
}

func TestPolicyForbidShadowAndError(t *testing.T) {
	g := newGateLedger(t)
	g.grant("a", []string{"kv.put"}, []string{"orders/*"}, 0, 0)
	vip := `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };`
	expect(t, g.policy("guard", PolicyShadow, vip), DecisionPermit, ReasonOK)
	a := g.call("a", "kv.put", "orders/vip/1", []byte("x"), "")
	expect(t, a, DecisionPermit, ReasonOK)
	var d SyscallDetail
	if err := Decode(a.Event.Detail, &d); err != nil || len(d.Shadow) != 1 || d.Shadow[0].Outcome.Reason != ReasonPolicyForbid {
		t.Fatalf("shadow outcome not recorded: %+v %v", d, err)
	}
	expect(t, g.policy("guard", PolicyActive, vip), DecisionPermit, ReasonOK)
	before := governed(g.Ledger)
	expect(t, g.call("a", "kv.put", "orders/vip/2", []byte("x"), ""), DecisionDeny, ReasonPolicyForbid)
	if governed(g.Ledger) != before {
		t.Fatal("policy denial changed state")
	}
	expect(t, g.call("a", "kv.put", "orders/1", []byte("x"), ""), DecisionPermit, ReasonOK)
	// A forbid that reads a missing attribute errors: DENY policy_error,
	// never the silent permit cedar-go would give by skipping it.
	expect(t, g.policy("broken", PolicyActive, `forbid(principal, action, resource) when { principal.clearance > 3 };`), DecisionPermit, ReasonOK)
	expect(t, g.call("a", "kv.put", "orders/1", []byte("x"), ""), DecisionDeny, ReasonPolicyError)
	// Malformed Cedar is refused and changes nothing.
	before = governed(g.Ledger)
	expect(t, g.policy("bad", PolicyActive, `forbid(principal, action resource);`), DecisionDeny, ReasonInvalidArgument)
	if governed(g.Ledger) != before {
		t.Fatal("malformed policy changed state")
	}
}

func TestEscalationApprovalBindsToTheExactCall(t *testing.T) {
	g := newGateLedger(t)
	g.grant("a", []string{"payments.send"}, []string{"*"}, 0, 0)
	g.policy("money", PolicyActive, `@escalate("payments over the limit need a human")
forbid(principal, action == Action::"payments.send", resource);`)
	args := []byte(`{"amount":900}`)
	a := g.call("a", "payments.send", "acct/1", args, "")
	expect(t, a, DecisionEscalate, ReasonApprovalRequired)
	apr := a.Result.ID
	if apr == "" || g.State().Approvals[apr].State != ApprovalPending {
		t.Fatalf("no pending approval: %q", apr)
	}
	expect(t, g.call("a", "payments.send", "acct/1", args, apr), DecisionDeny, ReasonApprovalInvalid) // not yet approved
	expect(t, g.as(testRootToken[:], CmdApprovalDecide, &ApprovalDecide{ID: apr, Approve: true}), DecisionPermit, ReasonApprovalApproved)
	expect(t, g.call("a", "payments.send", "acct/1", []byte(`{"amount":901}`), apr), DecisionDeny, ReasonApprovalInvalid)
	expect(t, g.call("a", "payments.send", "acct/2", args, apr), DecisionDeny, ReasonApprovalInvalid)
	expect(t, g.call("a", "payments.send", "acct/1", args, apr), DecisionPermit, ReasonOK)
	expect(t, g.call("a", "payments.send", "acct/1", args, apr), DecisionDeny, ReasonApprovalInvalid) // single use
	expect(t, g.as(testRootToken[:], CmdApprovalDecide, &ApprovalDecide{ID: apr, Approve: true}), DecisionDeny, ReasonApprovalInvalid)
}

func TestHaltDeniesAllButGovernance(t *testing.T) {
	g := newGateLedger(t)
	g.grant("a", []string{"kv.put"}, []string{"*"}, 0, 0)
	g.grant("b", []string{"kv.put"}, []string{"*"}, 0, 0)
	expect(t, g.as(testRootToken[:], CmdHalt, &HaltCmd{Entity: "a", Reason: "misbehaving"}), DecisionPermit, ReasonOK)
	expect(t, g.call("a", "kv.put", "k", nil, ""), DecisionDeny, ReasonHalted)
	expect(t, g.call("b", "kv.put", "k", nil, ""), DecisionPermit, ReasonOK)
	expect(t, g.as(testRootToken[:], CmdHalt, &HaltCmd{Reason: "incident"}), DecisionPermit, ReasonOK)
	expect(t, g.call("b", "kv.put", "k", nil, ""), DecisionDeny, ReasonHalted)
	// Governance still works while halted.
	g.grant("c", []string{"kv.put"}, []string{"*"}, 0, 0)
	expect(t, g.as(testRootToken[:], CmdResume, &HaltCmd{}), DecisionPermit, ReasonOK)
	expect(t, g.call("b", "kv.put", "k", nil, ""), DecisionPermit, ReasonOK)
	expect(t, g.call("a", "kv.put", "k", nil, ""), DecisionDeny, ReasonHalted)
	expect(t, g.as(testRootToken[:], CmdResume, &HaltCmd{Entity: "a"}), DecisionPermit, ReasonOK)
	expect(t, g.call("a", "kv.put", "k", nil, ""), DecisionPermit, ReasonOK)
	expect(t, g.as(testRootToken[:], CmdResume, &HaltCmd{Entity: "a"}), DecisionDeny, ReasonNotHalted)
}

func TestOperatorsNeedScopedGovernance(t *testing.T) {
	// Under protocol 3 an operator granted what its governance scope
	// allowed, whatever it held itself.
	g := &gateLedger{testLedger: &testLedger{Ledger: New()}, t: t, now: t0 + 1e9}
	g.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: 3, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
	operatorScopeCases(t, g, []string{"cap.grant", "cap.revoke"}, []string{"agents/*"}, []string{"*"})

	// From protocol 4 a grant lies within the granter's own scope too.
	g = newGateLedger(t)
	operatorScopeCases(t, g, []string{"cap.grant", "cap.revoke", "kv.put"}, []string{"agents/*", "orders/*"}, []string{"orders/*"})
	expect(t, g.as(tokenHash("alice"), CmdCapGrant, &CapGrant{TokenHash: tokenHash("w"), Entity: "agents/w", Ops: []string{"kv.put"}, Resources: []string{"*"}}), DecisionDeny, ReasonWiderThanGranter)
	expect(t, g.as(tokenHash("alice"), CmdCapGrant, &CapGrant{TokenHash: tokenHash("v"), Entity: "agents/v", Ops: []string{"kv.get"}, Resources: []string{"orders/*"}}), DecisionDeny, ReasonWiderThanGranter)
}

// operatorScopeCases: alice, an operator holding ops on resources, may
// grant inside agents/* what her scope holds, and nothing else.
func operatorScopeCases(t *testing.T, g *gateLedger, ops, resources, granted []string) {
	t.Helper()
	a := g.as(testRootToken[:], CmdCapGrant, &CapGrant{TokenHash: tokenHash("alice"), Entity: "alice", Operator: true, Ops: ops, Resources: resources})
	expect(t, a, DecisionPermit, ReasonOK)
	ok := g.as(tokenHash("alice"), CmdCapGrant, &CapGrant{TokenHash: tokenHash("agents/x"), Entity: "agents/x", Ops: []string{"kv.put"}, Resources: granted})
	expect(t, ok, DecisionPermit, ReasonOK)
	if g.State().Caps[ok.Result.ID].GrantedBy != "alice" {
		t.Fatal("grant does not record its human")
	}
	expect(t, g.as(tokenHash("alice"), CmdCapGrant, &CapGrant{TokenHash: tokenHash("y"), Entity: "other", Ops: []string{"kv.put"}, Resources: granted}), DecisionDeny, ReasonForbidden)
	expect(t, g.as(tokenHash("alice"), CmdPolicySet, &PolicySet{Name: "p", Text: "permit(principal, action, resource);", Mode: PolicyActive}), DecisionDeny, ReasonForbidden)
	expect(t, g.as(tokenHash("alice"), CmdCapGrant, &CapGrant{TokenHash: tokenHash("bob"), Entity: "agents/bob", Operator: true, Ops: []string{"*"}, Resources: []string{"*"}}), DecisionDeny, ReasonForbidden)
	expect(t, g.as(tokenHash("agents/x"), CmdCapGrant, &CapGrant{TokenHash: tokenHash("z"), Entity: "agents/z", Ops: []string{"kv.put"}, Resources: granted}), DecisionDeny, ReasonForbidden)
}

// Property: over seeded random delegation trees, no capability ever holds
// a scope, expiry or use budget wider than its parent's, the uses a tree
// can spend never exceed its root's, and after revoking any node nothing
// in its subtree is permitted.
func TestDelegationProperties(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	ops := []string{"kv.put", "kv.*", "*", "kv.get"}
	res := []string{"*", "orders/*", "orders/vip/*", "orders/vip/1", "invoices/*"}
	for round := 0; round < 20; round++ {
		g := newGateLedger(t)
		rootID := g.grant("n0", []string{"kv.*"}, []string{"orders/*"}, 40, time.Hour)
		names := []string{"n0"}
		for i := 1; i < 30; i++ {
			parent := names[rng.Intn(len(names))]
			name := fmt.Sprint("n", i)
			a := g.as(tokenHash(parent), CmdCapDelegate, &CapDelegate{TokenHash: tokenHash(name), Entity: name,
				Ops: []string{ops[rng.Intn(len(ops))]}, Resources: []string{res[rng.Intn(len(res))]},
				Uses: int64(rng.Intn(6)), TTLNs: int64(rng.Intn(3)) * int64(time.Hour)})
			if a.Result.Decision == DecisionPermit {
				names = append(names, name)
			}
		}
		st := g.State()
		for _, c := range st.Caps {
			if c.Parent == "" {
				continue
			}
			p := st.Caps[c.Parent]
			if !scopeWithin(c.Ops, p.Ops) || !scopeWithin(c.Resources, p.Resources) {
				t.Fatalf("seed %d: %s scope %v/%v wider than parent %v/%v", seed, c.ID, c.Ops, c.Resources, p.Ops, p.Resources)
			}
			if p.Expires != 0 && (c.Expires == 0 || c.Expires > p.Expires) {
				t.Fatalf("seed %d: %s outlives its parent", seed, c.ID)
			}
			if p.Uses > 0 && (c.Uses == 0 || p.Used+p.Reserved > p.Uses) {
				t.Fatalf("seed %d: %s use budget exceeds its parent's", seed, c.ID)
			}
		}
		// Spend everything everywhere; total permits never exceed the root's 40.
		permits := 0
		for i := 0; i < 200; i++ {
			if g.call(names[rng.Intn(len(names))], "kv.put", "orders/vip/1", nil, "").Result.Decision == DecisionPermit {
				permits++
			}
		}
		if permits > 40 {
			t.Fatalf("seed %d: %d permits from a tree whose root allowed 40", seed, permits)
		}
		// Revoke a random node; its whole subtree is denied from then on.
		victim := names[rng.Intn(len(names))]
		vid := st.CapByToken(fmt.Sprintf("%x", tokenHash(victim))).ID
		expect(t, g.as(testRootToken[:], CmdCapRevoke, &CapRevoke{ID: vid}), DecisionPermit, ReasonOK)
		for _, n := range names {
			c := st.CapByToken(fmt.Sprintf("%x", tokenHash(n)))
			inSubtree := false
			for x := c; x != nil; x = st.Caps[x.Parent] {
				if x.ID == vid {
					inSubtree = true
				}
				if x.Parent == "" {
					break
				}
			}
			if inSubtree && g.call(n, "kv.put", "orders/vip/1", nil, "").Result.Decision == DecisionPermit {
				t.Fatalf("seed %d: %s permitted after %s was revoked", seed, n, victim)
			}
		}
		_ = rootID
	}
}
