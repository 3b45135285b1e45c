package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/bench"
)

// The offline ledger modes run without a cluster and report figures that
// hold together: a snapshot that restores, heap that grows with
// capabilities, and a revoked subtree whose leaf is refused; the text and
// JSON reports carry them.
func TestLedgerModes(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Modes = []string{bench.ModeSnapshot, bench.ModeMemory, bench.ModeRevocation}
	cfg.LedgerEvents = 3000
	cfg.RevocationSizes = []int{100, 10}
	cfg.Dir = t.TempDir()
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Snapshot
	if s == nil || s.Events != 3000 || s.Bytes <= 0 || s.KVKeys <= 0 || s.KVKeys > 256*64 || s.DedupEntries != 3000 || s.RestoreMs <= 0 {
		t.Fatalf("snapshot report %+v", s)
	}
	m := rep.Memory
	if m == nil || m.BytesPer1kCaps <= 0 || m.HeapAfter1kCaps <= m.HeapAfterGenesis || m.DedupEntries != 3000 {
		t.Fatalf("memory report %+v", m)
	}
	if len(rep.Revocation) != 2 || rep.Revocation[0].Subtree != 10 || rep.Revocation[1].Subtree != 100 {
		t.Fatalf("revocation points %+v", rep.Revocation)
	}
	for _, p := range rep.Revocation {
		if p.RevokeUs <= 0 || p.CheckUs <= 0 {
			t.Fatalf("revocation point %+v", p)
		}
	}
	if len(rep.Results) != 0 {
		t.Fatalf("offline modes started load runs: %+v", rep.Results)
	}
	var text bytes.Buffer
	if err := rep.WriteTable(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ledger snapshot after 3000 gated puts", "bytes per 1000 capabilities", "subtree 100"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("text report lacks %q:\n%s", want, text.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"snapshot":{`, `"memory":{`, `"revocation":[`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Fatalf("JSON report lacks %s", key)
		}
	}
}

func TestLedgerModesValidate(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Modes = []string{bench.ModeRevocation}
	cfg.RevocationSizes = []int{0}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "revocation subtree size 0") {
		t.Fatalf("size 0: %v", err)
	}
	cfg.Modes = []string{bench.ModeSnapshot}
	cfg.LedgerEvents = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ledger events") {
		t.Fatalf("0 events: %v", err)
	}
}
