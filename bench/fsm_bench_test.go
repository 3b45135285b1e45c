package bench_test

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/dominus-kernel/dominus/fsm"
)

// In-process micro-benchmarks of the ledger's hot functions, each
// reporting its rate with b.ReportMetric. Profile them with
//
//	go test -run '^$' -bench Ledger -cpuprofile cpu.out ./bench
//
// Entries are pre-encoded before the timer starts: kv.put envelopes with
// 256-byte values, distinct request ids (so dedup never answers) and
// leader stamps 1 µs apart, as a leader would propose them.

const benchT0 = int64(1_700_000_000_000_000_000)

var (
	benchRoot  = sha256.Sum256([]byte("bench root token"))
	benchCanon = sha256.Sum256([]byte("bench canon"))
)

func genesisEntry() []byte {
	return fsm.Encode(&fsm.Envelope{Type: fsm.CmdGenesis, Time: benchT0, Payload: fsm.Encode(&fsm.Genesis{
		KernelID: "bench", CanonHash: benchCanon[:], Protocol: fsm.ProtocolVersion, RootTokenHash: benchRoot[:],
	})})
}

// putEntries returns n kv.put entries over a key space of 16384 keys.
func putEntries(n int) [][]byte {
	val := make([]byte, 256)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = fsm.Encode(&fsm.Envelope{
			Type: fsm.CmdKVPut, RequestID: fmt.Sprintf("%032x", i), Auth: benchRoot[:], Time: benchT0 + int64(i+1)*1000,
			Payload: fsm.Encode(&fsm.KVPut{Key: fmt.Sprintf("bench/%d", i%16384), Value: val}),
		})
	}
	return out
}

func newGenesisLedger(b *testing.B) *fsm.Ledger {
	b.Helper()
	l := fsm.New()
	if a := l.Apply(1, genesisEntry()); a.Result.Decision != fsm.DecisionPermit {
		b.Fatalf("genesis: %+v", a.Result)
	}
	return l
}

// BenchmarkLedgerApplyKVPut is fsm.Ledger.Apply of one kv.put: decode,
// authenticate, dedup, handler, chain record.
func BenchmarkLedgerApplyKVPut(b *testing.B) {
	entries := putEntries(b.N)
	l := newGenesisLedger(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if a := l.Apply(uint64(i+2), entries[i]); a.Result.Decision != fsm.DecisionPermit {
			b.Fatalf("entry %d: %+v", i, a.Result)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkLedgerApplyArchived is what the kernel's FSM does per entry
// before the archive write: Apply plus encoding the archive record.
func BenchmarkLedgerApplyArchived(b *testing.B) {
	entries := putEntries(b.N)
	l := newGenesisLedger(b)
	b.ReportAllocs()
	b.ResetTimer()
	var bytes int
	for i := 0; i < b.N; i++ {
		a := l.Apply(uint64(i+2), entries[i])
		bytes += len(fsm.EncodeArchived(entries[i], a))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "archived_B/event")
}

// BenchmarkLedgerReplayStep is the CPU part of `dominus audit replay`:
// fsm.ReplayStep of archived records (decode, re-apply, compare the
// re-encoded record and head), no file I/O.
func BenchmarkLedgerReplayStep(b *testing.B) {
	entries := putEntries(b.N)
	src := newGenesisLedger(b)
	genesis := genesisEntry()
	archived := make([][]byte, b.N)
	for i := range entries {
		archived[i] = fsm.EncodeArchived(entries[i], src.Apply(uint64(i+2), entries[i]))
	}
	l := fsm.New()
	ga := fsm.New().Apply(1, genesis)
	if err := fsm.ReplayStep(l, 1, 1, fsm.EncodeArchived(genesis, ga)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fsm.ReplayStep(l, uint64(i+2), uint64(i+2), archived[i]); err != nil {
			b.Fatalf("record %d: %v", i, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if l.Head().String() != src.Head().String() {
		b.Fatalf("replayed head %s, source head %s", l.Head(), src.Head())
	}
}

// BenchmarkReferenceApply is the reference state machine's whole work per
// entry (count + SHA-256 over the previous hash and the entry), the
// ceiling the ledger is compared with.
func BenchmarkReferenceApply(b *testing.B) {
	entries := putEntries(b.N)
	var count uint64
	var head [32]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		count++
		h := sha256.New()
		h.Write(head[:])
		h.Write(entries[i])
		h.Sum(head[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if count != uint64(b.N) {
		b.Fatal("count mismatch")
	}
}

// BenchmarkLedgerDigestAfter100k is fsm.Ledger.Digest on a ledger that has
// applied 100,000 kv.puts (16,384 keys, the dedup table at its bound): the
// work GET /v1/status does under the FSM's lock whenever the ledger moved
// since the last call. Each iteration applies one more put (so the cached
// digest is stale) and digests.
func BenchmarkLedgerDigestAfter100k(b *testing.B) {
	const warm = 100_000
	entries := putEntries(warm + b.N)
	l := newGenesisLedger(b)
	for i := 0; i < warm; i++ {
		l.Apply(uint64(i+2), entries[i])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Apply(uint64(warm+i+2), entries[warm+i])
		_ = l.Digest()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/digest")
}
