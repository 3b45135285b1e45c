package kernel

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
)

// The replicated limits over HTTP: only operator.manage sets them; an
// entity's replicated rate bounds every authenticated route it calls
// (kv reads and writes, syscalls, listings), refused 429 before Raft; the
// kv bound denies quota_exceeded; another entity is not slowed.
func TestLimitsOverHTTP(t *testing.T) {
	n, _ := singleNode(t, 140, nil)
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	grant := func(entity string) *client.Client {
		gr, err := root.Grant(ctx, api.GrantRequest{Entity: entity, Ops: []string{"kv.*", "email.send"}, Resources: []string{"*"}})
		if err != nil || gr.Decision != api.DecisionPermit {
			t.Fatalf("grant %s: %v %+v", entity, err, gr)
		}
		c, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token, RetryFor: time.Millisecond})
		return c
	}
	agent, other := grant("agent"), grant("other")

	l, err := root.Limits(ctx)
	if err != nil || l.DedupPerCaller != fsm.DefaultDedupPerCaller || l.KVBytes != fsm.DefaultKVBytes || l.Rates == nil || len(l.Rates) != 0 {
		t.Fatalf("default limits: %+v %v", l, err)
	}
	// An agent cannot set them.
	if r, err := agent.LimitsSet(ctx, api.LimitsRequest{KVBytes: 1 << 40}); err == nil && r.Decision == api.DecisionPermit {
		t.Fatalf("an agent set the limits: %+v", r)
	}
	if l, _ := root.Limits(ctx); l.KVBytes != fsm.DefaultKVBytes {
		t.Fatalf("a refused limits set changed them: %+v", l)
	}

	r, err := root.LimitsSet(ctx, api.LimitsRequest{KVBytes: 256, Rates: []api.EntityRate{{Entity: "agent", PerSecond: 2}}})
	if err != nil || r.Decision != api.DecisionPermit || r.Limits.KVBytes != 256 || len(r.Limits.Rates) != 1 || r.Limits.Rates[0] != (api.EntityRate{Entity: "agent", PerSecond: 2}) {
		t.Fatalf("limits set: %v %+v", err, r)
	}

	// The kv bound: a write past it is denied before it changes anything.
	if res, err := other.KVPut(ctx, "big", strings.Repeat("x", 300)); err != nil || res.Decision != api.DecisionDeny || res.Reason != "quota_exceeded" {
		t.Fatalf("a write past the kv bound: %v %+v", err, res)
	}
	if res, _ := root.KVGet(ctx, "big"); res == nil || res.Found {
		t.Fatalf("the refused write is visible: %+v", res)
	}

	// 2/s with a burst of two seconds' worth: of 12 quick calls across
	// routes, at most 4 plus what refills while they run pass.
	start := time.Now()
	calls := []func() error{
		func() error { _, err := agent.KVPut(ctx, "k", "v"); return err },
		func() error { _, err := agent.KVGet(ctx, "k"); return err },
		func() error {
			_, err := agent.Syscall(ctx, api.SyscallRequest{Op: "email.send", Resource: "ops", Args: "{}"})
			return err
		},
		func() error { _, err := agent.Caps(ctx, "agent"); return err },
	}
	var admitted, limited int
	for i := 0; i < 12; i++ {
		err := calls[i%len(calls)]()
		switch {
		case client.IsCode(err, api.CodeRateLimited):
			limited++
		default:
			admitted++ // answered (a listing may be forbidden: it passed the limiter)
		}
	}
	bound := 4 + int(time.Since(start).Seconds()*2) + 1
	t.Logf("agent at 2/s: %d admitted, %d refused 429 in %s", admitted, limited, time.Since(start).Round(time.Millisecond))
	if admitted > bound || limited == 0 {
		t.Fatalf("agent at 2/s: %d admitted (bound %d), %d limited", admitted, bound, limited)
	}
	// Another entity keeps the node's default rate.
	for i := 0; i < 12; i++ {
		if _, err := other.KVGet(ctx, "k"); err != nil {
			t.Fatalf("other entity's read %d: %v", i, err)
		}
	}
	// Removing the rate (0) gives the agent the node's default again.
	if r, err := root.LimitsSet(ctx, api.LimitsRequest{Rates: []api.EntityRate{{Entity: "agent", PerSecond: 0}}}); err != nil || len(r.Limits.Rates) != 0 {
		t.Fatalf("rate removed: %v %+v", err, r)
	}
}
