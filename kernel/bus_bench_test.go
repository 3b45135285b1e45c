package kernel

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
)

// BenchmarkCrossDomainCall measures cross-domain calls end to end on one
// machine: a's gate and outbox entry, a's leader shipping the event over
// the QUIC bus, b's bus.receive through b's gate, the ack and a's
// bus.delivered — one-node kernels with fsync on, real TLS and UDP. It
// reports the latency from a's PERMIT to a's recorded delivery (p50, p99)
// and the delivered events per second with all b.N calls queued at once
// (events to one destination ship in sequence order, one at a time).
func BenchmarkCrossDomainCall(b *testing.B) {
	fx := startFederationWith(b, 63, false)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	permitted := make([]time.Time, b.N)
	ids := make([]string, b.N)
	for i := 0; i < b.N; i++ {
		res, err := fx.a.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, Auth: TokenHash(fx.agentA), Payload: fsm.Encode(&fsm.Syscall{
			Op: "kv.put", Resource: fmt.Sprintf("b:orders/%d", i), Args: []byte("v"), RemoteTokenHash: TokenHash(fx.grantForA)})})
		if err != nil || res.Decision != fsm.DecisionPermit {
			b.Fatalf("call %d: %v %+v", i, err, res)
		}
		permitted[i], ids[i] = time.Now(), res.ID
	}
	lat := make([]time.Duration, b.N)
	deadline := time.Now().Add(time.Duration(b.N)*50*time.Millisecond + 30*time.Second)
	for i := 0; i < b.N; i++ {
		for {
			if e, ok := outEvent(fx.a, ids[i]); ok && e.Status != fsm.BusStatePending {
				if e.Remote.Decision != fsm.DecisionPermit {
					b.Fatalf("event %s: remote %s %s", ids[i], e.Remote.Decision, e.Remote.Reason)
				}
				lat[i] = time.Since(permitted[i])
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("event %s not delivered", ids[i])
			}
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "delivered/s")
}

// BenchmarkCrossDomainCallOneAtATime is the latency of a lone
// cross-domain call: a's PERMIT to a's recorded delivery, the next call
// issued only after the previous one was delivered (the shipper wakes
// every 100 ms, which bounds the wait for a lone event).
func BenchmarkCrossDomainCallOneAtATime(b *testing.B) {
	fx := startFederationWith(b, 64, false)
	ctx := context.Background()
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := fx.a.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, Auth: TokenHash(fx.agentA), Payload: fsm.Encode(&fsm.Syscall{
			Op: "kv.put", Resource: fmt.Sprintf("b:orders/%d", i), Args: []byte("v"), RemoteTokenHash: TokenHash(fx.grantForA)})})
		if err != nil || res.Decision != fsm.DecisionPermit {
			b.Fatalf("call %d: %v %+v", i, err, res)
		}
		start, deadline := time.Now(), time.Now().Add(30*time.Second)
		for {
			if e, ok := outEvent(fx.a, res.ID); ok && e.Status != fsm.BusStatePending {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("event %s not delivered", res.ID)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat[i] = time.Since(start)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
