package fsm

import (
	"fmt"
	"testing"
)

// BenchmarkGatePermitSensing is the FSM's share of the permit path (as
// BenchmarkGatePermit) under each sensing model: protocol 1 (no sensing),
// protocol 4 (model 1: Deviation before Cedar, Fold after) and protocol 6
// (model 2: Judge with the call included before Cedar, Observe after).
// Calls are 200 ms apart over 16 resources prefixes, so the model's
// minutes roll and its profiles learn as they would in service.
func BenchmarkGatePermitSensing(b *testing.B) {
	for _, protocol := range []uint16{1, ProtocolAuthority, ProtocolSenseModel2} {
		b.Run(fmt.Sprintf("protocol=%d", protocol), func(b *testing.B) {
			tl := &testLedger{Ledger: New()}
			tl.apply(env(CmdGenesis, "", nil, t0, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: protocol, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9}))
			ts := t0 + 1
			tl.apply(env(CmdCapGrant, "", testRootToken[:], ts, &CapGrant{TokenHash: tokenHash("bench"), Entity: "bench", Ops: []string{"kv.put"}, Resources: []string{"*"}}))
			tl.apply(env(CmdPolicySet, "", testRootToken[:], ts, &PolicySet{Name: "base", Mode: PolicyActive, Text: `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };
forbid(principal, action == Action::"kv.delete", resource);
@escalate("trust") forbid(principal, action, resource) when { principal.trust < 100 };`}))
			val := make([]byte, 256)
			warm := 20_000 // about 67 minutes of history: model 2 is established
			entries := make([][]byte, warm+b.N)
			for i := range entries {
				entries[i] = env(CmdSyscall, fmt.Sprint("r", i), tokenHash("bench"), ts+int64(i+1)*200_000_000,
					&Syscall{Op: "kv.put", Resource: fmt.Sprintf("p%d/%d", i%16, i%1000), Args: val})
			}
			for _, e := range entries[:warm] {
				tl.apply(e)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if a := tl.apply(entries[warm+i]); a.Result.Decision != DecisionPermit {
					b.Fatal(a.Result.Reason)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "permits/s")
		})
	}
}
