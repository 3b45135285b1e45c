package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
)

// Offline figures of the ledger itself, measured in this process on an
// fsm.Ledger fed the entries a leader would propose (no cluster, no
// network): the Raft and HTTP layers add nothing to these costs.
const (
	ModeSnapshot   = "snapshot"   // snapshot size, encode, write (fsync) and restore time of a ledger of --ledger-events gated puts
	ModeMemory     = "memory"     // retained heap per 1000 capabilities and per 1M gated puts
	ModeRevocation = "revocation" // revoke and descendant-check cost against subtree size
)

func isLedgerMode(m string) bool { return m == ModeSnapshot || m == ModeMemory || m == ModeRevocation }

// SnapshotReport is the ledger snapshot of a ledger of Events gated puts.
type SnapshotReport struct {
	Events       int     `json:"events"` // gated puts applied (plus genesis, grants and a policy set)
	BuildSeconds float64 `json:"build_seconds"`
	Bytes        int     `json:"bytes"`
	EncodeMs     float64 `json:"encode_ms"`  // fsm.Ledger.Snapshot: state body, digest, framing
	WriteMs      float64 `json:"write_ms"`   // write to a file and fsync it
	RestoreMs    float64 `json:"restore_ms"` // fsm.Ledger.Restore into a fresh ledger: decode and verify the digest
	KVKeys       int     `json:"kv_keys"`
	DedupEntries int     `json:"dedup_entries"`
}

// MemoryReport is the ledger's retained heap (Go heap in use after a
// full GC, this process).
type MemoryReport struct {
	BytesPer1kCaps int64 `json:"bytes_per_1k_caps"`
	// BytesPer1MEvents is the heap growth over Events gated puts, scaled
	// to 1M. The state the puts leave is bounded (KVKeys keys, at most
	// fsm.MaxDedupEntries dedup entries), so scaled from fewer events it
	// overstates; the default is 1M events.
	BytesPer1MEvents int64 `json:"bytes_per_1m_events"`
	Events           int   `json:"events"`
	KVKeys           int   `json:"kv_keys"`       // what the events leave in state: the bench's key space
	DedupEntries     int   `json:"dedup_entries"` // and the dedup window (at most fsm.MaxDedupEntries)
	HeapAfterGenesis int64 `json:"heap_after_genesis"`
	HeapAfter1kCaps  int64 `json:"heap_after_1k_caps"`
	HeapAfterEvents  int64 `json:"heap_after_events"`
}

// RevocationPoint is the cost of revoking a capability with Subtree
// descendants, and of a descendant's syscall afterwards.
type RevocationPoint struct {
	Subtree       int     `json:"subtree"`
	FirstRevokeUs float64 `json:"first_revoke_us"` // applying the revoke that revokes (one entry, so noisy)
	RevokeUs      float64 `json:"revoke_us"`       // mean of 1000 more revokes of the same capability (the same work)
	CheckUs       float64 `json:"check_us"`        // a leaf's syscall after it (mean of 1000), denied as revoked
	BuildSecs     float64 `json:"build_seconds"`
}

// ledgerT0 is the ledger time of the offline ledgers' genesis.
const ledgerT0 = int64(1_700_000_000_000_000_000)

// offlineLedger feeds an fsm.Ledger as a leader would: consecutive Raft
// indexes, leader stamps 1 µs apart.
type offlineLedger struct {
	l     *fsm.Ledger
	index uint64
	now   int64
	root  []byte
}

func newOfflineLedger() (*offlineLedger, error) {
	root := sha256.Sum256([]byte("bench offline root token"))
	canon := sha256.Sum256([]byte("bench offline canon"))
	o := &offlineLedger{l: fsm.New(), now: ledgerT0, root: root[:]}
	return o, o.must("genesis", fsm.CmdGenesis, "", nil, &fsm.Genesis{
		KernelID: "bench", CanonHash: canon[:], Protocol: fsm.ProtocolVersion, RootTokenHash: root[:], DedupWindowNs: 60e9,
	})
}

func (o *offlineLedger) apply(t fsm.CommandType, rid string, auth []byte, payload any) fsm.Applied {
	o.index++
	o.now += 1000
	return o.l.Apply(o.index, fsm.Encode(&fsm.Envelope{Type: t, RequestID: rid, Auth: auth, Time: o.now, Payload: fsm.Encode(payload)}))
}

func (o *offlineLedger) must(what string, t fsm.CommandType, rid string, auth []byte, payload any) error {
	if a := o.apply(t, rid, auth, payload); a.Result.Decision != fsm.DecisionPermit {
		return fmt.Errorf("bench: offline ledger: %s: %s %s", what, a.Result.Decision, a.Result.Reason)
	}
	return nil
}

func benchToken(kind string, i int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(append([]byte(kind), b[:]...))
	return h[:]
}

// offlinePolicy is a small Cedar set like the gate micro-benchmark's:
// three forbids, none of which matches a bench put.
const offlinePolicy = `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };
forbid(principal, action == Dominus::Action::"kv.delete", resource);
@escalate("trust") forbid(principal, action, resource) when { principal.trust < 0 };`

// gatedPuts grants 256 workers (entity bench-W, kv.put on bench/W/*),
// installs offlinePolicy, and applies n kv.put syscalls of valueBytes
// values, worker w's i-th on key bench/W/(i mod 64) as the load modes do.
func (o *offlineLedger) gatedPuts(n, valueBytes int) error {
	const workers, keys = 256, 64
	for w := 0; w < workers; w++ {
		if err := o.must("grant", fsm.CmdCapGrant, "", o.root, &fsm.CapGrant{TokenHash: benchToken("worker", w), Entity: fmt.Sprintf("bench-%d", w),
			Ops: []string{"kv.put"}, Resources: []string{fmt.Sprintf("bench/%d/*", w)}}); err != nil {
			return err
		}
	}
	if err := o.must("policy", fsm.CmdPolicySet, "", o.root, &fsm.PolicySet{Name: "bench", Mode: fsm.PolicyActive, Text: offlinePolicy}); err != nil {
		return err
	}
	val := make([]byte, valueBytes)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	for i := 0; i < n; i++ {
		w := i % workers
		sc := &fsm.Syscall{Op: "kv.put", Resource: fmt.Sprintf("bench/%d/%d", w, (i/workers)%keys), Args: val}
		if a := o.apply(fsm.CmdSyscall, fmt.Sprintf("p%d", i), benchToken("worker", w), sc); a.Result.Decision != fsm.DecisionPermit {
			return fmt.Errorf("bench: offline ledger: put %d: %s %s", i, a.Result.Decision, a.Result.Reason)
		}
	}
	return nil
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func (c *Config) snapshotFigures() (*SnapshotReport, error) {
	c.logf("snapshot: applying %d gated puts to an in-process ledger", c.LedgerEvents)
	o, err := newOfflineLedger()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := o.gatedPuts(c.LedgerEvents, c.ValueBytes); err != nil {
		return nil, err
	}
	rep := &SnapshotReport{Events: c.LedgerEvents, BuildSeconds: round3(time.Since(start).Seconds()),
		KVKeys: len(o.l.State().KV), DedupEntries: o.l.State().DedupLen()}
	t := time.Now()
	snap := o.l.Snapshot()
	rep.EncodeMs, rep.Bytes = ms(time.Since(t)), len(snap)
	f, err := os.CreateTemp(c.Dir, "dominus-bench-snapshot-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	t = time.Now()
	_, werr := f.Write(snap)
	if werr == nil {
		werr = f.Sync()
	}
	rep.WriteMs = ms(time.Since(t))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("bench: write snapshot %s: %w", filepath.Base(f.Name()), werr)
	}
	t = time.Now()
	if _, err := fsm.New().Restore(snap); err != nil {
		return nil, fmt.Errorf("bench: restore the snapshot: %w", err)
	}
	rep.RestoreMs = ms(time.Since(t))
	return rep, nil
}

func (c *Config) memoryFigures() (*MemoryReport, error) {
	c.logf("memory: 1000 capabilities, then %d gated puts, in an in-process ledger", c.LedgerEvents)
	o, err := newOfflineLedger()
	if err != nil {
		return nil, err
	}
	rep := &MemoryReport{Events: c.LedgerEvents, HeapAfterGenesis: heapInUse()}
	for i := 0; i < 1000; i++ {
		if err := o.must("grant", fsm.CmdCapGrant, "", o.root, &fsm.CapGrant{TokenHash: benchToken("cap", i), Entity: fmt.Sprintf("agent-%d", i),
			Ops: []string{"kv.get", "kv.put"}, Resources: []string{fmt.Sprintf("agents/%d/*", i)}}); err != nil {
			return nil, err
		}
	}
	rep.HeapAfter1kCaps = heapInUse()
	rep.BytesPer1kCaps = rep.HeapAfter1kCaps - rep.HeapAfterGenesis
	if err := o.gatedPuts(c.LedgerEvents, c.ValueBytes); err != nil {
		return nil, err
	}
	rep.HeapAfterEvents = heapInUse()
	rep.BytesPer1MEvents = int64(float64(rep.HeapAfterEvents-rep.HeapAfter1kCaps) * 1e6 / float64(c.LedgerEvents))
	rep.KVKeys, rep.DedupEntries = len(o.l.State().KV), o.l.State().DedupLen()
	runtime.KeepAlive(o)
	return rep, nil
}

// revocationFigures builds, for each size, a capability P with size
// descendants (children of P, each the head of a chain of up to 7 more,
// as deep as delegation allows), revokes P and times a leaf's syscall.
func (c *Config) revocationFigures() ([]RevocationPoint, error) {
	var out []RevocationPoint
	for _, size := range c.RevocationSizes {
		c.logf("revocation: subtree of %d", size)
		o, err := newOfflineLedger()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		g := o.apply(fsm.CmdCapGrant, "", o.root, &fsm.CapGrant{TokenHash: benchToken("tree", 0), Entity: "p", Ops: []string{"kv.*"}, Resources: []string{"*"}})
		if g.Result.Decision != fsm.DecisionPermit {
			return nil, fmt.Errorf("bench: revocation: grant: %s", g.Result.Reason)
		}
		parentOf := func(i int) []byte {
			if i%fsm.MaxDelegationDepth == 1 {
				return benchToken("tree", 0)
			}
			return benchToken("tree", i-1)
		}
		for i := 1; i <= size; i++ {
			if err := o.must("delegate", fsm.CmdCapDelegate, "", parentOf(i), &fsm.CapDelegate{TokenHash: benchToken("tree", i),
				Entity: fmt.Sprintf("c%d", i), Ops: []string{"kv.put"}, Resources: []string{"*"}}); err != nil {
				return nil, err
			}
		}
		// The deepest node of the last full chain (or the last node).
		leaf := min(size, size-(size-1)%fsm.MaxDelegationDepth+fsm.MaxDelegationDepth-2)
		p := RevocationPoint{Subtree: size, BuildSecs: round3(time.Since(start).Seconds())}
		const checks = 1000
		for r := 0; r <= checks; r++ {
			t := time.Now()
			if a := o.apply(fsm.CmdCapRevoke, "", o.root, &fsm.CapRevoke{ID: g.Result.ID}); a.Result.Decision != fsm.DecisionPermit {
				return nil, fmt.Errorf("bench: revocation: revoke: %s", a.Result.Reason)
			}
			if us := float64(time.Since(t).Nanoseconds()) / 1e3; r == 0 {
				p.FirstRevokeUs = us
			} else {
				p.RevokeUs += us / checks
			}
		}
		t := time.Now()
		for i := 0; i < checks; i++ {
			if a := o.apply(fsm.CmdSyscall, "", benchToken("tree", leaf), &fsm.Syscall{Op: "kv.put", Resource: "k", Args: []byte("v")}); a.Result.Reason != fsm.ReasonRevoked {
				return nil, fmt.Errorf("bench: revocation: leaf %d after the revoke: %s %s", leaf, a.Result.Decision, a.Result.Reason)
			}
		}
		p.CheckUs = round3(float64(time.Since(t).Nanoseconds()) / 1e3 / checks)
		p.FirstRevokeUs, p.RevokeUs = round3(p.FirstRevokeUs), round3(p.RevokeUs)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b RevocationPoint) int { return a.Subtree - b.Subtree })
	return out, nil
}
