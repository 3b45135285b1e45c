package httpedge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
)

// fakeGate knows one token; its entity is admitted until limited, and
// holds the scopes in ops.
type fakeGate struct {
	token   string
	limited bool
	ops     map[string]bool
	calls   []string
}

func (g *fakeGate) Authenticate(_ context.Context, token string) (*fsm.Capability, error) {
	g.calls = append(g.calls, "auth")
	if token == "" || token != g.token {
		return nil, Errorf(api.CodeUnauthorized, "missing or unknown token")
	}
	return &fsm.Capability{ID: "c1", Entity: "agent"}, nil
}

func (g *fakeGate) Admit(c *Caller) error {
	g.calls = append(g.calls, "admit")
	if g.limited {
		return Errorf(api.CodeRateLimited, "rate limit for entity %s", c.Entity())
	}
	return nil
}

func (g *fakeGate) RequireScope(_ context.Context, _ *Caller, ops ...string) error {
	g.calls = append(g.calls, "scope")
	for _, op := range ops {
		if g.ops[op] {
			return nil
		}
	}
	return Errorf(api.CodeForbidden, "%s requires a scope", ops[0])
}

func serve(t *testing.T, rt *Router, method, path, token string) (int, api.ErrorBody, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	var eb api.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	return rec.Code, eb, rec.Body.String()
}

// A route runs its handler only after authentication, admission and its
// declared scopes, in that order, and the handler gets the capability
// the token named; each refusal is the right code and status, and says
// why to onDeny.
func TestRouterAuthenticatesAdmitsAndChecksScopesBeforeTheHandler(t *testing.T) {
	g := &fakeGate{token: "t1", ops: map[string]bool{"audit.read": true}}
	var denied []string
	rt := NewRouter(g, func(reason string) { denied = append(denied, reason) })
	var got *Caller
	h := func(w http.ResponseWriter, _ *http.Request, c *Caller) {
		got = c
		WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	}
	rt.Add(
		Route{Pattern: "GET /open", Open: func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, "open") }},
		Route{Pattern: "GET /read", Scopes: []string{"audit.read"}, Handler: h},
		Route{Pattern: "GET /manage", Scopes: []string{"operator.manage"}, Handler: h},
		Route{Pattern: "GET /any", Scopes: []string{"operator.manage", "audit.read"}, Handler: h},
		Route{Pattern: "POST /cmd", Handler: h},
	)
	if code, _, _ := serve(t, rt, "GET", "/open", ""); code != http.StatusOK || len(g.calls) != 0 {
		t.Fatalf("open route: %d, gate asked %v", code, g.calls)
	}
	cases := []struct {
		path, token string
		limited     bool
		status      int
		code        string
		calls       string
		denied      string
	}{
		{"/read", "", false, http.StatusUnauthorized, api.CodeUnauthorized, "auth", "unauthenticated"},
		{"/read", "forged", false, http.StatusUnauthorized, api.CodeUnauthorized, "auth", "unauthenticated"},
		{"/read", "t1", true, http.StatusTooManyRequests, api.CodeRateLimited, "auth admit", "rate_limited"},
		{"/manage", "t1", false, http.StatusForbidden, api.CodeForbidden, "auth admit scope", "scope"},
		{"/read", "t1", false, http.StatusOK, "", "auth admit scope", ""},
		{"/any", "t1", false, http.StatusOK, "", "auth admit scope", ""},
		{"/cmd", "t1", false, http.StatusOK, "", "auth admit", ""},
	}
	for _, tc := range cases {
		g.calls, g.limited, denied, got = nil, tc.limited, nil, nil
		method := "GET"
		if tc.path == "/cmd" {
			method = "POST"
		}
		status, eb, body := serve(t, rt, method, tc.path, tc.token)
		if status != tc.status || eb.Error.Code != tc.code {
			t.Fatalf("%s with %q: %d %s, want %d %q", tc.path, tc.token, status, body, tc.status, tc.code)
		}
		if strings.Join(g.calls, " ") != tc.calls || strings.Join(denied, " ") != tc.denied {
			t.Fatalf("%s with %q: gate asked %v, denied %v; want %q, %q", tc.path, tc.token, g.calls, denied, tc.calls, tc.denied)
		}
		if (tc.status == http.StatusOK) != (got != nil) {
			t.Fatalf("%s with %q: handler ran %v with status %d", tc.path, tc.token, got != nil, status)
		}
		if got != nil && (got.Token != "t1" || got.Cap.ID != "c1" || got.Entity() != "agent") {
			t.Fatalf("caller handed to the handler: %+v", got)
		}
	}
}

func TestCodeOfAndStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{BadRequest("x"), api.CodeBadRequest, 400},
		{Errorf(api.CodeNotFound, "x"), api.CodeNotFound, 404},
		{Errorf(api.CodeRateLimited, "x"), api.CodeRateLimited, 429},
		{Errorf(api.CodeStale, "x"), api.CodeStale, 503},
		{Errorf(api.CodeDiskFull, "x"), api.CodeDiskFull, 507},
		{Errorf(api.CodeProtocolUnsupported, "x"), api.CodeProtocolUnsupported, 409},
		{&http.MaxBytesError{Limit: 1}, api.CodeTooLarge, 413},
		{context.DeadlineExceeded, api.CodeTimeout, 503},
		{raft.ErrLeadershipLost, api.CodeUnavailable, 503},
		{errors.Join(errors.New("wrapped"), Errorf(api.CodeForbidden, "x")), api.CodeForbidden, 403},
		{errors.New("anything else"), api.CodeInternal, 500},
	} {
		if c := CodeOf(tc.err); c != tc.code || Status(c) != tc.status {
			t.Errorf("%v: code %q status %d, want %q %d", tc.err, c, Status(c), tc.code, tc.status)
		}
	}
}
