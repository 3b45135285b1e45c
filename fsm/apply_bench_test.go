package fsm

import (
	"fmt"
	"testing"
)

// BenchmarkGatePermit is the FSM's share of the permit path: one kv.put
// syscall through capability checks and a small Cedar policy set.
func BenchmarkGatePermit(b *testing.B) {
	tl := &testLedger{Ledger: New()}
	tl.apply(genesisEntry(t0))
	ts := t0
	tl.apply(env(CmdCapGrant, "", testRootToken[:], ts, &CapGrant{TokenHash: tokenHash("bench"), Entity: "bench", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}}))
	tl.apply(env(CmdPolicySet, "", testRootToken[:], ts, &PolicySet{Name: "base", Mode: PolicyActive, Text: `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };
forbid(principal, action == Action::"kv.delete", resource);
@escalate("trust") forbid(principal, action, resource) when { principal.trust < 100 };`}))
	val := make([]byte, 256)
	entries := make([][]byte, b.N)
	for i := range entries {
		entries[i] = env(CmdSyscall, fmt.Sprint("r", i), tokenHash("bench"), ts+int64(i), &Syscall{Op: "kv.put", Resource: fmt.Sprintf("orders/%d", i%1000), Args: val})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if a := tl.apply(entries[i]); a.Result.Decision != DecisionPermit {
			b.Fatal(a.Result.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "permits/s")
}

// BenchmarkGatePermitHistory is BenchmarkGatePermit under protocol 5
// (no history counters), protocol 7 (counters kept and recorded in each
// request) and protocol 7 with a policy that reads context.history, in
// one run. Run with -benchtime Nx, N ≤ 10000 (the default dedup quota).
func BenchmarkGatePermitHistory(b *testing.B) {
	for _, c := range []struct {
		name     string
		protocol uint16
		extra    string
	}{
		{"protocol5", ProtocolCallerEffects, ""},
		{"protocol7", ProtocolTemporal, ""},
		{"protocol7_policy", ProtocolTemporal, `forbid(principal, action, resource) when { context.history.denials_1h > 5 && context.history.distinct_resources_1h > 100 };`},
	} {
		b.Run(c.name, func(b *testing.B) {
			tl := &testLedger{Ledger: New()}
			tl.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: c.protocol, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
			ts := t0
			tl.apply(env(CmdCapGrant, "", testRootToken[:], ts, &CapGrant{TokenHash: tokenHash("bench"), Entity: "bench", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}}))
			a := tl.apply(env(CmdPolicySet, "", testRootToken[:], ts, &PolicySet{Name: "base", Mode: PolicyActive, Text: `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };
@escalate("trust") forbid(principal, action, resource) when { principal.trust < 100 };` + "\n" + c.extra}))
			if a.Result.Decision != DecisionPermit {
				b.Fatal(a.Result.Reason)
			}
			val := make([]byte, 256)
			entries := make([][]byte, b.N)
			for i := range entries {
				entries[i] = env(CmdSyscall, fmt.Sprint("r", i), tokenHash("bench"), ts+int64(i)*1e6, &Syscall{Op: "kv.put", Resource: fmt.Sprintf("orders/%d", i%1000), Args: val})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if a := tl.apply(entries[i]); a.Result.Decision != DecisionPermit {
					b.Fatal(a.Result.Reason)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "permits/s")
		})
	}
}
