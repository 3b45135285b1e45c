package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Caps is the capability workload. Setup grants Slots capabilities with
// the root token, each limited to Uses uses of kv.put on Prefix+"*".
// The clients then call the gate (kv.put on Prefix+<random>, with request
// ids of their own) with a random slot's capability. Every other
// capability of a slot is revoked by the operator once RevokeAfter
// syscalls were invoked with it, while other clients keep using it; after
// OpsPerCap syscalls a slot's capability is replaced by a fresh grant.
// Once the faults are healed, every revoked capability is tried once
// more.
//
// A Caps value keeps the tokens of the capabilities it granted: use a
// fresh one (&Caps{...}) per run.
type Caps struct {
	Slots       int    // capabilities in use at once; default 4
	Uses        int64  // use limit of each capability; default 20
	OpsPerCap   int    // syscalls before a slot's capability is replaced; default 3*Uses
	RevokeAfter int    // syscalls invoked before a capability chosen for revocation is revoked; default Uses/2
	RevokeEvery int    // every RevokeEvery-th capability of a slot is revoked; default 2
	Prefix      string // resource prefix; default "caps/"
	Entity      string // entity name prefix; default "jepsen-agent"

	mu        sync.Mutex
	nodeNames []string
	connect   func(node, token string) (*client.Client, error)
	clients   map[string]map[string]*client.Client // capability -> node -> client with its token
	gen       *capsGen
}

// CapsOp is the operation every syscall of the workload asks for.
const CapsOp = "kv.put"

// maxFinalRetries bounds the revoked capabilities tried after the heal.
const maxFinalRetries = 32

func (w *Caps) defaults() {
	if w.Slots <= 0 {
		w.Slots = 4
	}
	if w.Uses <= 0 {
		w.Uses = 20
	}
	if w.OpsPerCap <= 0 {
		w.OpsPerCap = 3 * int(w.Uses)
	}
	if w.RevokeAfter <= 0 {
		w.RevokeAfter = max(1, int(w.Uses)/2)
	}
	if w.RevokeEvery <= 0 {
		w.RevokeEvery = 2
	}
	if w.Prefix == "" {
		w.Prefix = "caps/"
	}
	if w.Entity == "" {
		w.Entity = "jepsen-agent"
	}
}

// Name implements Workload.
func (*Caps) Name() string { return "caps" }

// Functions implements Functions.
func (*Caps) Functions() []string { return []string{checker.FGrant, checker.FSyscall, checker.FRevoke} }

// Checkers implements Workload.
func (*Caps) Checkers(o CheckOptions) []checker.Checker {
	return []checker.Checker{
		checker.RequestIDs{EventType: EventTypes, SubjectIsKey: true},
		checker.AckOrder{},
		checker.CapLimit{},
		checker.CapRevoke{},
	}
}

// NewGenerator implements Workload.
func (w *Caps) NewGenerator() Generator {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.defaults()
	g := &capsGen{w: w, slots: make([]capSlot, w.Slots), bySlot: map[string]int{}, count: map[int]int{}}
	w.gen = g
	return g
}

// Setup implements Setup: it grants every slot its first capability
// (each grant is tried up to 10 times).
func (w *Caps) Setup(ctx context.Context, env Env) error {
	w.mu.Lock()
	w.connect, w.nodeNames = env.Client, append([]string(nil), env.Nodes...)
	g := w.gen
	w.mu.Unlock()
	if g == nil {
		return errors.New("caps: Setup before NewGenerator")
	}
	for i := range w.Slots {
		var last history.Op
		for attempt := 0; attempt < 10 && !g.hasCap(i); attempt++ {
			if attempt > 0 {
				t := time.NewTimer(300 * time.Millisecond)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
			last = env.Perform(ctx, g.grant(i))
		}
		if !g.hasCap(i) {
			return fmt.Errorf("caps: no capability granted for slot %d after 10 attempts; last: %s %s %s", i, last.Type, last.Reason, last.Error)
		}
	}
	return nil
}

// client returns the client of node that holds capability id's token.
func (w *Caps) client(id, node string) *client.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clients[id][node]
}

// register keeps token's clients, one per node.
func (w *Caps) register(id, token string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connect == nil {
		return errors.New("no client factory (Setup was not called)")
	}
	if w.clients == nil {
		w.clients = map[string]map[string]*client.Client{}
	}
	byNode := map[string]*client.Client{}
	for _, node := range w.nodeNames {
		c, err := w.connect(node, token)
		if err != nil {
			return err
		}
		byNode[node] = c
	}
	w.clients[id] = byNode
	return nil
}

// Invoke implements Workload: grant and revoke with the root token c;
// syscalls with the capability's own token on the same node.
func (w *Caps) Invoke(ctx context.Context, c *client.Client, inv history.Op) history.Op {
	opt := client.WithRequestID(inv.RequestID)
	switch inv.F {
	case checker.FGrant:
		resp, err := c.Grant(ctx, api.GrantRequest{Entity: inv.Key, Ops: []string{CapsOp}, Resources: []string{w.Prefix + "*"}, Uses: inv.Limit}, opt)
		out := ClassifyGate(inv, &resp.Outcome, err)
		if out.Type == history.OK {
			out.CapID = resp.ID
			switch {
			case resp.Token == "":
				out.Error = "the grant's answer carries no token: the capability cannot be used"
			default:
				if err := w.register(resp.ID, resp.Token); err != nil {
					out.Error = "capability granted but unusable here: " + err.Error()
				}
			}
		}
		return out
	case checker.FRevoke:
		resp, err := c.Revoke(ctx, inv.CapID, opt)
		return ClassifyGate(inv, &resp.Outcome, err)
	case checker.FSyscall:
		cl := w.client(inv.CapID, inv.Node)
		if cl == nil {
			out := inv
			out.Type, out.Error = history.Fail, "no client holds the token of "+inv.CapID
			return out
		}
		resp, err := cl.Syscall(ctx, api.SyscallRequest{Op: CapsOp, Resource: inv.Key, Args: inv.Value}, opt)
		out := ClassifyGate(inv, &resp.Outcome, err)
		if err == nil && resp.CapID != "" && resp.CapID != inv.CapID {
			out.Type = history.Info
			out.Error = fmt.Sprintf("answered for capability %s, not %s", resp.CapID, inv.CapID)
		}
		return out
	}
	out := inv
	out.Type, out.Error = history.Fail, "unknown op "+inv.F
	return out
}

// ClassifyGate turns a gate answer into inv's completion, assuming
// exactly one attempt: PERMIT is OK; DENY is Fail with its seq and reason
// (the ledger recorded the refusal, which changes nothing else); any
// other decision is Info; an error is Fail when it proves the request
// never reached the log (NotSent), otherwise Info.
func ClassifyGate(inv history.Op, o *api.Outcome, err error) history.Op {
	out := inv
	if err != nil {
		out.Error = err.Error()
		out.Type = history.Info
		if NotSent(err) {
			out.Type = history.Fail
		}
		return out
	}
	out.Seq, out.Decision, out.Reason, out.Duplicate = o.Seq, o.Decision, o.Reason, o.Duplicate
	if !o.Time.IsZero() {
		out.LedgerTime = o.Time.UnixNano()
	}
	switch {
	case checker.SameDecision(o.Decision, checker.DecisionPermit):
		out.Type = history.OK
	case checker.SameDecision(o.Decision, checker.DecisionDeny):
		out.Type = history.Fail
	default:
		out.Type = history.Info
		out.Error = fmt.Sprintf("unexpected decision %q (%s) at seq %d", o.Decision, o.Reason, o.Seq)
	}
	return out
}

// capSlot is one capability in use and its lifecycle.
type capSlot struct {
	id       string // the capability in use; "" until a grant is acknowledged
	gen      int    // grants asked for this slot
	invoked  int    // syscalls invoked with id
	revoke   bool   // id is revoked once RevokeAfter syscalls were invoked
	revoking bool   // its revoke was issued
	granting bool   // a grant for the slot is outstanding
}

type capsGen struct {
	w       *Caps
	mu      sync.Mutex
	slots   []capSlot
	bySlot  map[string]int // entity -> slot
	count   map[int]int    // process -> values written
	revoked []string       // capabilities whose revoke was issued, in order
}

func (g *capsGen) hasCap(i int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.slots[i].id != ""
}

// grant returns a grant for slot i; g.mu must not be held.
func (g *capsGen) grant(i int) history.Op {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grantLocked(i)
}

func (g *capsGen) grantLocked(i int) history.Op {
	s := &g.slots[i]
	s.gen++
	s.granting = true
	entity := fmt.Sprintf("%s-s%d-g%d", g.w.Entity, i, s.gen)
	g.bySlot[entity] = i
	return history.Op{F: checker.FGrant, Key: entity, Limit: g.w.Uses}
}

// Next implements Generator.
func (g *capsGen) Next(process int, rng *rand.Rand) history.Op {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := rng.IntN(len(g.slots))
	s := &g.slots[i]
	if (s.id == "" || s.invoked >= g.w.OpsPerCap) && !s.granting {
		return g.grantLocked(i)
	}
	if s.id == "" { // its first grant is outstanding: use another slot's capability
		for j := range g.slots {
			if g.slots[j].id != "" {
				s = &g.slots[j]
				break
			}
		}
		if s.id == "" {
			return g.grantLocked(i)
		}
	}
	if s.revoke && !s.revoking && s.invoked >= g.w.RevokeAfter {
		s.revoking = true
		g.revoked = append(g.revoked, s.id)
		return history.Op{F: checker.FRevoke, Key: s.id, CapID: s.id}
	}
	s.invoked++
	g.count[process]++
	return history.Op{F: checker.FSyscall, Key: fmt.Sprintf("%s%d", g.w.Prefix, rng.IntN(1000)),
		Value: fmt.Sprintf("c%d-%d", process, g.count[process]), CapID: s.id}
}

// Observe implements Generator: an acknowledged grant replaces its
// slot's capability.
func (g *capsGen) Observe(c history.Op) {
	if c.F != checker.FGrant {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	i, ok := g.bySlot[c.Key]
	if !ok {
		return
	}
	s := &g.slots[i]
	s.granting = false
	if c.Type != history.OK || c.CapID == "" || c.Error != "" {
		return
	}
	s.id, s.invoked, s.revoking = c.CapID, 0, false
	s.revoke = (s.gen+i)%g.w.RevokeEvery == 0
}

// Final implements Generator: one more syscall with each of the last
// revoked capabilities.
func (g *capsGen) Final() []history.Op {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := g.revoked
	if len(ids) > maxFinalRetries {
		ids = ids[len(ids)-maxFinalRetries:]
	}
	out := make([]history.Op, 0, len(ids))
	for n, id := range ids {
		out = append(out, history.Op{F: checker.FSyscall, Key: fmt.Sprintf("%sfinal-%d", g.w.Prefix, n), Value: "final-" + id, CapID: id})
	}
	return out
}
