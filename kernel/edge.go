package kernel

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// edgeGate is what the HTTP edge asks of this node (httpedge.Gate).
type edgeGate struct{ n *Node }

// Authenticate looks token up; a node that lags the leader (a grant or
// init that just committed) catches up to a linearizable read index once.
func (g edgeGate) Authenticate(ctx context.Context, token string) (*fsm.Capability, error) {
	c, err := g.n.Authenticate(token)
	if err == nil || token == "" {
		return c, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if rerr := g.n.ConsistentRead(ctx); rerr != nil {
		// Unknown here, and this node cannot catch up right now: say so,
		// rather than call a valid token unknown.
		return nil, fmt.Errorf("%w: %v", errCatchingUp, rerr)
	}
	return g.n.Authenticate(token)
}

// Admit applies, before anything reaches Raft, the entity's replicated
// rate, else this node's default.
func (g edgeGate) Admit(c *httpedge.Caller) error {
	var rate int64
	g.n.fsm.read(func(l *fsm.Ledger, _ uint64) { rate = l.State().RateOf(c.Cap.Entity) })
	if !g.n.limiter.allowAt(c.Cap.Entity, time.Now(), float64(rate)) {
		return httpedge.Errorf(api.CodeRateLimited, "rate limit for entity %s", c.Cap.Entity)
	}
	return nil
}

// RequireScope is requireAnyScope for the caller's token.
func (g edgeGate) RequireScope(ctx context.Context, c *httpedge.Caller, ops ...string) error {
	return g.n.requireAnyScope(ctx, c.Token, ops...)
}

func edgeDenied(reason string) {
	switch reason {
	case "unauthenticated":
		metricInc("http.unauthenticated")
	case "rate_limited":
		metricInc("gate.rate_limited")
	}
}

// Handler returns the HTTP API: the kernel's routes and its services'.
func (n *Node) Handler() http.Handler {
	rt := httpedge.NewRouter(edgeGate{n}, edgeDenied)
	rt.Add(n.routes()...)
	for _, s := range n.services {
		rt.Add(s.Routes()...)
	}
	if reg, err := SetupMetrics(n.cfg.Name); err == nil && reg != nil {
		ph := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		rt.Add(httpedge.Route{Pattern: "GET /metrics", Handler: func(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) { ph.ServeHTTP(w, r) }})
	}
	limited := http.MaxBytesHandler(rt, n.cfg.MaxRequestBytes)
	restore := http.MaxBytesHandler(rt, n.cfg.MaxRestoreBytes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/snapshot/restore" {
			restore.ServeHTTP(w, r)
			return
		}
		limited.ServeHTTP(w, r)
	})
}
