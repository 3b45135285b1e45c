package kernel

import (
	"testing"

	"github.com/dominus-kernel/dominus/transport"
)

// BenchmarkBusResend compares, on a one-node receiving kernel (real TLS,
// QUIC on UDP, fsync on), an event b applies ("fresh": the bus exchange,
// b's gate, one Raft entry and its fsync) with a resend of an event b
// already applied ("resent": the bus exchange and the replay window,
// answered with the kept result, no Raft entry).
func BenchmarkBusResend(b *testing.B) {
	fx := startFederationOpts(b, fedOpts{ips: replayFedIPs})
	s := newBusSender(b, fx)
	next := uint64(1)
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			s.mustApply(next)
			next++
		}
	})
	b.Run("resent", func(b *testing.B) {
		dropped := fx.b.fed.windows.dropped.Load()
		for b.Loop() {
			if ack, err := s.send(next-1, "orders/pump"); err != nil || ack.Status != transport.AckDuplicate {
				b.Fatalf("resend of %d: %v %s", next-1, err, ack.Status)
			}
		}
		if got := fx.b.fed.windows.dropped.Load() - dropped; got != uint64(b.N) {
			b.Fatalf("%d of %d resends dropped before Raft", got, b.N)
		}
	})
}
