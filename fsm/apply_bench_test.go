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
