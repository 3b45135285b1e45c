package workload

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Fed is the federation workload, run by a -federation run across the
// domain kernels of one federation. Setup grants, in every domain, its
// agent (entity Entity) kv.* on every resource, its own and other
// domains' ("DEST:resource"), and every other domain's agent
// ("ORIGIN/Entity") kv.put on Prefix+"*". The clients then make
// cross-domain calls (kv.put DEST:Prefix<unique>, with the grant token
// DEST issued to their domain's agent), each completed at the origin's
// decision with its bus event id; after the heal the run reads every
// event's final state on its origin (fed-status) and each domain's
// ledger.
//
// It is not in Registry: a single kernel has no bus. A Fed value keeps
// the tokens it granted: use a fresh one per run.
type Fed struct {
	Prefix      string // resource prefix of cross-domain calls; default "fed/"
	LocalPrefix string // resource prefix of local calls; default "fedlocal/"
	Entity      string // the agent entity in every domain; default "agent"

	mu    sync.Mutex
	agent map[string]string            // domain -> its agent's token
	grant map[string]map[string]string // dest -> origin -> the grant dest issued to origin's agent
}

func (w *Fed) defaults() {
	if w.Prefix == "" {
		w.Prefix = "fed/"
	}
	if w.LocalPrefix == "" {
		w.LocalPrefix = "fedlocal/"
	}
	if w.Entity == "" {
		w.Entity = "agent"
	}
}

// Name is the workload's name.
func (*Fed) Name() string { return "fed" }

// FedEventTypes maps the federation ops the origin's ledger records to
// their event types (for checker.RequestIDs).
var FedEventTypes = map[string]string{checker.FFedCall: checker.EventSyscall, checker.FFedLocal: checker.EventSyscall}

// Checkers are the federation checkers for domains (domain -> node
// names) where revoked names the domain whose passport the run revokes
// ("" for none), bound is its peers' bound (passport lifetime + slack)
// and slack its own gate's.
func (*Fed) Checkers(domains map[string][]string, revoked string, bound, slack time.Duration) []checker.Checker {
	out := []checker.Checker{
		checker.FedExactlyOnce{Domains: domains},
		checker.FedDelivery{Domains: domains, Revoked: revoked},
	}
	if revoked != "" {
		out = append(out, checker.FedRevocation{Domains: domains, Domain: revoked, Bound: bound, Slack: slack})
	}
	return out
}

// Setup makes the grants with each domain's root client (roots: domain
// -> client sending its root token), each tried up to 10 times.
func (w *Fed) Setup(ctx context.Context, roots map[string]*client.Client) error {
	w.mu.Lock()
	w.defaults()
	w.mu.Unlock()
	domains := make([]string, 0, len(roots))
	for d := range roots {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	agent := map[string]string{}
	grant := map[string]map[string]string{}
	for _, d := range domains {
		tok, err := grantRetry(ctx, roots[d], api.GrantRequest{Entity: w.Entity, Ops: []string{"kv.*"}, Resources: []string{"*"}})
		if err != nil {
			return fmt.Errorf("fed: agent of %s: %w", d, err)
		}
		agent[d] = tok
		grant[d] = map[string]string{}
		for _, o := range domains {
			if o == d {
				continue
			}
			tok, err := grantRetry(ctx, roots[d], api.GrantRequest{Entity: o + "/" + w.Entity, Ops: []string{"kv.put"}, Resources: []string{w.Prefix + "*"}})
			if err != nil {
				return fmt.Errorf("fed: %s's grant to %s/%s: %w", d, o, w.Entity, err)
			}
			grant[d][o] = tok
		}
	}
	w.mu.Lock()
	w.agent, w.grant = agent, grant
	w.mu.Unlock()
	return nil
}

func grantRetry(ctx context.Context, c *client.Client, req api.GrantRequest) (string, error) {
	var last error
	for attempt := 0; attempt < 10; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(300 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", ctx.Err()
			case <-t.C:
			}
		}
		r, err := c.Grant(ctx, req)
		switch {
		case err != nil:
			last = err
		case !checker.SameDecision(r.Decision, checker.DecisionPermit) || r.Token == "":
			last = fmt.Errorf("grant answered %s %s without a token", r.Decision, r.Reason)
		default:
			return r.Token, nil
		}
	}
	return "", last
}

// AgentToken is the token of domain's agent ("" before Setup).
func (w *Fed) AgentToken(domain string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.agent[domain]
}

// CallOp is the invocation of a cross-domain call from origin to dest;
// unique makes the resource unique in the run.
func (w *Fed) CallOp(dest, origin, unique string) history.Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.defaults()
	return history.Op{F: checker.FFedCall, Key: dest + ":" + w.Prefix + origin + "-" + unique, Value: "v-" + unique}
}

// LocalOp is the invocation of a local call; unique makes the resource
// unique in the run.
func (w *Fed) LocalOp(unique string) history.Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.defaults()
	return history.Op{F: checker.FFedLocal, Key: w.LocalPrefix + unique, Value: "v-" + unique}
}

// Call performs a cross-domain call from origin through c, a client of
// an origin node sending origin's agent token. PERMIT is OK with the
// bus event id in Result; DENY is Fail with its seq; the rest is
// classified as ClassifyGate does.
func (w *Fed) Call(ctx context.Context, c *client.Client, origin string, inv history.Op) history.Op {
	dest, _, ok := strings.Cut(inv.Key, ":")
	w.mu.Lock()
	remote := w.grant[dest][origin]
	w.mu.Unlock()
	if !ok || remote == "" {
		out := inv
		out.Type, out.Error = history.Fail, fmt.Sprintf("no grant of %q to %s's agent (Setup not run?)", dest, origin)
		return out
	}
	resp, err := c.Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: inv.Key, Args: inv.Value, RemoteToken: remote}, client.WithRequestID(inv.RequestID))
	out := ClassifyGate(inv, &resp.Outcome, err)
	if out.Type == history.OK {
		out.Result = resp.EventID
		if resp.EventID == "" {
			out.Type, out.Error = history.Info, "PERMIT without a bus event id"
		}
	}
	return out
}

// Local performs a local kv.put through c (a client sending the
// domain's agent token).
func (w *Fed) Local(ctx context.Context, c *client.Client, inv history.Op) history.Op {
	resp, err := c.Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: inv.Key, Args: inv.Value}, client.WithRequestID(inv.RequestID))
	return ClassifyGate(inv, &resp.Outcome, err)
}

// ErrNoEvent is returned by Status for an event id the origin does not
// know: the outbox holds no such event.
var ErrNoEvent = errors.New("fed: no such bus event")

// Status reads event inv.Key's final state on its origin through c (a
// client sending a token that may read it), with a consistent read. An
// unknown event is Fail and returns ErrNoEvent.
func (w *Fed) Status(ctx context.Context, c *client.Client, inv history.Op) (history.Op, error) {
	out := inv
	e, err := c.BusEvent(ctx, inv.Key, true)
	if err != nil {
		out.Error = err.Error()
		out.Type = history.Info
		if client.IsCode(err, api.CodeNotFound) {
			out.Type = history.Fail
			return out, ErrNoEvent
		}
		return out, err
	}
	out.Type, out.Result, out.Value = history.OK, e.Status, e.Resource
	if e.Remote != nil {
		out.Decision, out.Reason, out.Seq = e.Remote.Decision, e.Remote.Reason, e.Remote.Seq
	}
	return out, nil
}

// Revoke revokes passport inv.Key (of domain inv.Value) through c, a
// client of the sovereign sending an operator token with
// federation.manage.
func (w *Fed) Revoke(ctx context.Context, c *client.Client, inv history.Op) history.Op {
	resp, err := c.PassportRevoke(ctx, inv.Key, client.WithRequestID(inv.RequestID))
	return ClassifyGate(inv, &resp.Outcome, err)
}

// PassportRead reads domain inv.Key's passports as lister's kernel
// knows them (the sovereign: every passport it issued; a peer domain:
// its view of the domain's) and, when own is not nil, the passport the
// domain itself holds (own: a client of one of its nodes): Result is the
// latest passport id, Value the latest expiry of either (RFC 3339 ns),
// Found whether the latest passport is revoked.
func (w *Fed) PassportRead(ctx context.Context, lister, own *client.Client, inv history.Op) history.Op {
	out := inv
	ps, err := lister.Passports(ctx)
	if err != nil {
		out.Type, out.Error = history.Info, err.Error()
		return out
	}
	var latest *api.Passport
	var expiry time.Time
	for i := range ps {
		p := &ps[i]
		if p.Domain != inv.Key {
			continue
		}
		if latest == nil || p.Serial > latest.Serial {
			latest = p
		}
		if p.Expires.After(expiry) {
			expiry = p.Expires
		}
	}
	if latest == nil {
		out.Type, out.Error = history.Fail, "no passport of "+inv.Key+" is listed"
		return out
	}
	if own != nil {
		if st, err := own.Status(ctx); err == nil && st.Passport != nil && st.Passport.Expires.After(expiry) {
			expiry = st.Passport.Expires
		}
	}
	out.Type, out.Result, out.Found, out.Value = history.OK, latest.ID, latest.Revoked, expiry.UTC().Format(time.RFC3339Nano)
	return out
}
