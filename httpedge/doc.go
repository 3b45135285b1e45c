// Package httpedge is the kernel's HTTP edge: routing, authentication,
// per-entity admission, error mapping and JSON.
//
// A route is declared once with what it needs: open (no token), or
// authenticated with the scopes it requires. The Router authenticates
// the bearer token through the kernel's Gate, admits the caller under its
// entity's rate, checks the route's scopes on leader-confirmed state, and
// hands the handler a Caller that carries the token and its capability,
// so no handler looks the token up again. Services (package kernel's
// Service) declare their routes the same way.
//
// Errors become API error bodies in one place: an error that carries an
// API code (Coder) keeps it; transport and Raft errors whose outcome is
// unknown become unavailable, so clients retry with the same request id
// and the ledger deduplicates. Status maps each API code to its HTTP
// status.
//
// httpedge imports only api and fsm (for the capability a caller holds);
// kernel imports it, never the other way round.
package httpedge
