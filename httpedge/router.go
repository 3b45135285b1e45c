package httpedge

import (
	"context"
	"net/http"
	"strings"

	"github.com/dominus-kernel/dominus/fsm"
)

// Caller is an authenticated request's principal: the bearer token and a
// copy of the capability it named when the request was admitted.
type Caller struct {
	Token string
	Cap   fsm.Capability
}

// Entity is the caller's entity.
func (c *Caller) Entity() string { return c.Cap.Entity }

// Handler serves an authenticated route.
type Handler func(w http.ResponseWriter, r *http.Request, c *Caller)

// Route is one HTTP route and what it needs before its handler runs.
//
//   - Open: no token; Serve gets the request as it came.
//   - Otherwise the bearer token must name a live capability, the caller
//     is admitted under its entity's rate, and, when Scopes is not empty,
//     one of the scopes must hold on leader-confirmed state (which also
//     makes what the handler reads next linearizable). A route without
//     Scopes leaves the decision to the ledger (a command) or checks
//     itself (a holder reading its own capability).
type Route struct {
	Pattern string
	Scopes  []string
	Open    http.HandlerFunc
	Handler Handler
}

// Gate is what the router asks of the kernel.
type Gate interface {
	// Authenticate returns the capability token names, catching up with
	// the leader once when this node does not know it yet.
	Authenticate(ctx context.Context, token string) (*fsm.Capability, error)
	// Admit is nil when the caller may proceed under its entity's rate.
	Admit(c *Caller) error
	// RequireScope is nil when one of ops holds for the caller on
	// state confirmed by the leader.
	RequireScope(ctx context.Context, c *Caller, ops ...string) error
}

// Router serves routes behind a Gate.
type Router struct {
	gate   Gate
	mux    *http.ServeMux
	onDeny func(reason string)
}

// NewRouter returns an empty router; onDeny (may be nil) is told why a
// request was turned away before its handler ("unauthenticated",
// "rate_limited", "scope").
func NewRouter(g Gate, onDeny func(reason string)) *Router {
	if onDeny == nil {
		onDeny = func(string) {}
	}
	return &Router{gate: g, mux: http.NewServeMux(), onDeny: onDeny}
}

// Add registers routes; a pattern registered twice panics (net/http).
func (rt *Router) Add(routes ...Route) {
	for _, r := range routes {
		if r.Open != nil {
			rt.mux.HandleFunc(r.Pattern, r.Open)
			continue
		}
		rt.mux.HandleFunc(r.Pattern, rt.authed(r))
	}
}

func (rt *Router) authed(route Route) http.HandlerFunc {
	h, scopes := route.Handler, route.Scopes
	return func(w http.ResponseWriter, r *http.Request) {
		token := Bearer(r)
		cp, err := rt.gate.Authenticate(r.Context(), token)
		if err != nil {
			rt.onDeny("unauthenticated")
			WriteErr(w, err)
			return
		}
		c := &Caller{Token: token, Cap: *cp}
		if err := rt.gate.Admit(c); err != nil {
			rt.onDeny("rate_limited")
			WriteErr(w, err)
			return
		}
		if len(scopes) > 0 {
			if err := rt.gate.RequireScope(r.Context(), c, scopes...); err != nil {
				rt.onDeny("scope")
				WriteErr(w, err)
				return
			}
		}
		h(w, r, c)
	}
}

// ServeHTTP implements http.Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// Bearer is the request's bearer token, or "".
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}
