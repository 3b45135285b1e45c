package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// KV is a register workload: reads (kv-get through the ledger), writes
// and compare-and-swaps on Keys registers at a time.
type KV struct {
	Keys      int // registers in use at once; default 5
	OpsPerKey int // invocations before a register moves to a fresh key; default 300
	// Weights of read, write and cas; all zero means 2:2:1.
	ReadWeight, WriteWeight, CASWeight int
	// Prefix of every key; default "jepsen/".
	Prefix string
}

// Name implements Workload.
func (KV) Name() string { return "kv" }

// EventTypes maps every workload's ops to the ledger event types they
// append (op names are unique across workloads).
var EventTypes = map[string]string{
	checker.FRead: "kv.get", checker.FWrite: "kv.put", checker.FCAS: "kv.cas",
	checker.FSyscall: checker.EventSyscall, checker.FGrant: checker.EventCapGrant, checker.FRevoke: checker.EventCapRevoke,
}

// Functions implements Functions.
func (KV) Functions() []string { return []string{checker.FRead, checker.FWrite, checker.FCAS} }

// Checkers implements Workload.
func (KV) Checkers(o CheckOptions) []checker.Checker {
	return []checker.Checker{
		checker.KVLinearizable{Timeout: o.Timeout},
		checker.RequestIDs{EventType: EventTypes, SubjectIsKey: true},
		checker.AckOrder{},
	}
}

// NewGenerator implements Workload.
func (w KV) NewGenerator() Generator {
	if w.Keys <= 0 {
		w.Keys = 5
	}
	if w.OpsPerKey <= 0 {
		w.OpsPerKey = 300
	}
	if w.ReadWeight+w.WriteWeight+w.CASWeight <= 0 {
		w.ReadWeight, w.WriteWeight, w.CASWeight = 2, 2, 1
	}
	if w.Prefix == "" {
		w.Prefix = "jepsen/"
	}
	g := &kvGen{w: w, slots: make([]kvSlot, w.Keys), known: map[string][]string{}}
	for i := range g.slots {
		g.slots[i].key = g.keyName(i, 0)
	}
	return g
}

type kvSlot struct {
	key  string
	gen  int
	used int
}

type kvGen struct {
	w     KV
	mu    sync.Mutex
	slots []kvSlot
	known map[string][]string // key -> recent values seen or written (newest last)
	all   []string            // every key used, in order
	seen  map[string]bool
	count map[int]int // process -> values written
}

func (g *kvGen) keyName(slot, gen int) string { return fmt.Sprintf("%sr%d-%d", g.w.Prefix, slot, gen) }

// Next implements Generator.
func (g *kvGen) Next(process int, rng *rand.Rand) history.Op {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen, g.count = map[string]bool{}, map[int]int{}
	}
	i := rng.IntN(len(g.slots))
	s := &g.slots[i]
	if s.used >= g.w.OpsPerKey {
		s.gen++
		s.used = 0
		s.key = g.keyName(i, s.gen)
	}
	s.used++
	if !g.seen[s.key] {
		g.seen[s.key] = true
		g.all = append(g.all, s.key)
	}
	op := history.Op{Key: s.key}
	x := rng.IntN(g.w.ReadWeight + g.w.WriteWeight + g.w.CASWeight)
	switch {
	case x < g.w.ReadWeight:
		op.F = checker.FRead
	case x < g.w.ReadWeight+g.w.WriteWeight:
		op.F = checker.FWrite
		op.Value = g.value(process)
	default:
		op.F = checker.FCAS
		op.Value = g.value(process)
		vals := g.known[s.key]
		switch {
		case len(vals) == 0:
			op.ExpectAbsent = true
		case rng.IntN(4) == 0: // an older value: usually a mismatch
			op.Expect = vals[rng.IntN(len(vals))]
		default:
			op.Expect = vals[len(vals)-1]
		}
	}
	return op
}

func (g *kvGen) value(process int) string {
	g.count[process]++
	return fmt.Sprintf("p%d-%d", process, g.count[process])
}

// Observe implements Generator.
func (g *kvGen) Observe(c history.Op) {
	if c.Type != history.OK {
		return
	}
	var v string
	switch {
	case c.F == checker.FRead && c.Found:
		v = c.Result
	case c.F == checker.FWrite:
		v = c.Value
	case c.F == checker.FCAS && c.Succeeded:
		v = c.Value
	default:
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	vals := append(g.known[c.Key], v)
	if len(vals) > 5 {
		vals = vals[len(vals)-5:]
	}
	g.known[c.Key] = vals
}

// Final implements Generator: one read of every key used.
func (g *kvGen) Final() []history.Op {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]history.Op, 0, len(g.all))
	for _, k := range g.all {
		out = append(out, history.Op{F: checker.FRead, Key: k})
	}
	return out
}

// Invoke implements Workload.
func (KV) Invoke(ctx context.Context, c *client.Client, inv history.Op) history.Op {
	opt := client.WithRequestID(inv.RequestID)
	var resp *api.KVResponse
	var err error
	switch inv.F {
	case checker.FRead:
		resp, err = c.KVGet(ctx, inv.Key, opt)
	case checker.FWrite:
		resp, err = c.KVPut(ctx, inv.Key, inv.Value, opt)
	case checker.FCAS:
		resp, err = c.KVCAS(ctx, inv.Key, api.KVCASRequest{Expect: inv.Expect, ExpectAbsent: inv.ExpectAbsent, Value: inv.Value}, opt)
	default:
		out := inv
		out.Type, out.Error = history.Fail, "unknown op "+inv.F
		return out
	}
	return Classify(inv, resp, err)
}

// definite are the API error codes answered before anything could reach
// the Raft log: the request certainly did not happen.
var definite = map[string]bool{
	api.CodeBadRequest:     true,
	api.CodeUnauthorized:   true,
	api.CodeForbidden:      true,
	api.CodeTooLarge:       true,
	api.CodeNotInitialized: true,
	api.CodeNoLeader:       true, // the node retries only where the entry certainly did not reach the log
	api.CodeClockSkew:      true, // refused before proposing
	api.CodeDiskFull:       true, // refused before proposing
	api.CodeRateLimited:    true, // the gate's rate limit is applied before proposing
}

// NotSent reports whether err proves the request never reached the log:
// an API error answered before proposing, or a failure to connect at
// all (the HTTP transport does not resend a request it has written).
func NotSent(err error) bool {
	var ce *client.Error
	if errors.As(err, &ce) {
		return definite[ce.Code]
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Classify turns a kv answer into inv's completion. It assumes exactly
// one attempt was made (the cluster's clients do not retry).
func Classify(inv history.Op, resp *api.KVResponse, err error) history.Op {
	out := inv
	if err != nil {
		out.Error = err.Error()
		out.Type = history.Info
		if NotSent(err) {
			out.Type = history.Fail
		}
		return out
	}
	if resp == nil || !checker.SameDecision(resp.Decision, checker.DecisionPermit) {
		out.Type = history.Info
		if resp != nil {
			out.Error = fmt.Sprintf("unexpected decision %s (%s) at seq %d", resp.Decision, resp.Reason, resp.Seq)
			out.Seq = resp.Seq
		} else {
			out.Error = "no answer"
		}
		return out
	}
	out.Type = history.OK
	out.Seq, out.Duplicate = resp.Seq, resp.Duplicate
	if !resp.Time.IsZero() {
		out.LedgerTime = resp.Time.UnixNano()
	}
	switch inv.F {
	case checker.FRead:
		out.Found, out.Result = resp.Found, resp.Value
	case checker.FCAS:
		out.Succeeded = resp.Succeeded
		if !resp.Succeeded {
			out.Found, out.Result = resp.Found, resp.Value
		}
	}
	return out
}
