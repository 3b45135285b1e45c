package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

// gateCall is one request the fake gate received.
type gateCall struct {
	route     string // "METHOD /path", the path unescaped
	query     string
	token     string
	requestID string
	body      string
}

// fakeGate answers the gate's /v1 endpoints with canned replies set per
// route by each test, and records every request.
type fakeGate struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	replies map[string]gateReply
	calls   []gateCall
}

type gateReply struct {
	status int
	body   []byte
}

func newFakeGate(t *testing.T) *fakeGate {
	fg := &fakeGate{t: t, replies: map[string]gateReply{}}
	fg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		route := r.Method + " " + r.URL.Path
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		fg.mu.Lock()
		fg.calls = append(fg.calls, gateCall{route: route, query: r.URL.RawQuery, token: token, requestID: r.Header.Get(api.HeaderRequestID), body: string(body)})
		rep, ok := fg.replies[route]
		fg.mu.Unlock()
		if !ok {
			rep = gateReply{http.StatusNotFound, mustJSON(t, api.ErrorBody{Error: api.Error{Code: api.CodeNotFound, Message: "no reply for " + route}})}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}))
	t.Cleanup(fg.srv.Close)
	return fg
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reply sets the answer to route and returns its JSON, forgetting earlier
// calls.
func (fg *fakeGate) reply(route string, status int, v any) []byte {
	b := mustJSON(fg.t, v)
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.replies[route] = gateReply{status, b}
	fg.calls = nil
	return b
}

func (fg *fakeGate) args(more ...string) []string {
	return append([]string{"--addr", fg.srv.URL, "--token", fakeToken, "--timeout", "5s"}, more...)
}

// only returns the single request received since the last reply, forget
// or only, and forgets it.
func (fg *fakeGate) only(t *testing.T) gateCall {
	t.Helper()
	fg.mu.Lock()
	defer fg.mu.Unlock()
	if len(fg.calls) != 1 {
		t.Fatalf("got %d requests, want 1: %+v", len(fg.calls), fg.calls)
	}
	c := fg.calls[0]
	fg.calls = nil
	return c
}

// none checks that no request was sent since the last reply.
func (fg *fakeGate) none(t *testing.T) {
	t.Helper()
	fg.mu.Lock()
	defer fg.mu.Unlock()
	if len(fg.calls) != 0 {
		t.Fatalf("a usage error sent %d requests: %+v", len(fg.calls), fg.calls)
	}
}

// forget drops the recorded calls.
func (fg *fakeGate) forget() {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.calls = nil
}

// decodeStrict decodes a request body into v (zeroed first), rejecting
// unknown fields as the kernel does.
func decodeStrict(t *testing.T, body string, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("request body %s does not decode into %T: %v", body, v, err)
	}
}

// wantSameJSON checks that stdout is exactly one JSON document equal to
// the server's answer.
func (r result) wantSameJSON(t *testing.T, sent []byte) {
	t.Helper()
	var got, want any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", r.stdout)
	}
	if err := json.Unmarshal(sent, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("--json output differs from the server's answer:\ngot  %v\nwant %v", got, want)
	}
}

func (r result) wantStdout(t *testing.T, want string) result {
	t.Helper()
	if r.stdout != want {
		t.Fatalf("stdout %q, want %q", r.stdout, want)
	}
	return r
}

func (r result) wantStderr(t *testing.T, sub string) result {
	t.Helper()
	if !strings.Contains(r.stderr, sub) {
		t.Fatalf("stderr %q lacks %q", r.stderr, sub)
	}
	return r
}

var gateTime = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func outcomeOf(decision, reason string, seq uint64) api.Outcome {
	return api.Outcome{Seq: seq, Time: gateTime, Decision: decision, Reason: reason}
}

func apiError(code, msg string) api.ErrorBody {
	return api.ErrorBody{Error: api.Error{Code: code, Message: msg}}
}

func TestSyscallRequestBody(t *testing.T) {
	fg := newFakeGate(t)
	argsFile := writeTestFile(t, t.TempDir(), "args", []byte("from a file\n"))
	casArgs := `{"expect": "old", "expect_version": 4, "value": "new"}`
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  api.SyscallRequest
		rid   string // request id header, "" = any fresh id
	}{
		{"put", "", []string{"kv.put", "orders/1", "--args", "v1"}, api.SyscallRequest{Op: "kv.put", Resource: "orders/1", Args: "v1"}, ""},
		{"get without args", "", []string{"kv.get", "orders/1"}, api.SyscallRequest{Op: "kv.get", Resource: "orders/1"}, ""},
		{"args file", "", []string{"kv.put", "orders/2", "--args-file", argsFile}, api.SyscallRequest{Op: "kv.put", Resource: "orders/2", Args: "from a file\n"}, ""},
		{"args from stdin", "piped", []string{"kv.put", "orders/3", "--args-file", "-"}, api.SyscallRequest{Op: "kv.put", Resource: "orders/3", Args: "piped"}, ""},
		{"cas object passed as is", "", []string{"kv.cas", "orders/4", "--args", casArgs}, api.SyscallRequest{Op: "kv.cas", Resource: "orders/4", Args: casArgs}, ""},
		{"approval", "", []string{"kv.delete", "orders/5", "--approval", "apr-9"}, api.SyscallRequest{Op: "kv.delete", Resource: "orders/5", ApprovalID: "apr-9"}, ""},
		{"request id", "", []string{"kv.get", "orders/6", "--request-id", "rid-6"}, api.SyscallRequest{Op: "kv.get", Resource: "orders/6"}, "rid-6"},
		{"arg value is the put's value", "", []string{"kv.put", "orders/7", "--arg", "value=v1"}, api.SyscallRequest{Op: "kv.put", Resource: "orders/7", Args: "v1"}, ""},
		{"arg value may hold =", "", []string{"kv.put", "orders/7", "--arg", "value=a=b"}, api.SyscallRequest{Op: "kv.put", Resource: "orders/7", Args: "a=b"}, ""},
		{"arg empty value", "", []string{"kv.put", "orders/7", "--arg", "value="}, api.SyscallRequest{Op: "kv.put", Resource: "orders/7"}, ""},
		{"cas args typed by field", "", []string{"kv.cas", "orders/8", "--arg", "value=new", "--arg", "expect_version=4", "--arg", "expect=old"},
			api.SyscallRequest{Op: "kv.cas", Resource: "orders/8", Args: `{"expect":"old","expect_version":4,"value":"new"}`}, ""},
		{"cas expect_absent is a bool", "", []string{"kv.cas", "orders/8", "--arg", "expect_absent=true", "--arg", "value=new"},
			api.SyscallRequest{Op: "kv.cas", Resource: "orders/8", Args: `{"expect_absent":true,"value":"new"}`}, ""},
		{"other op: an object of strings, keys sorted", "", []string{"payments.send", "acct/1", "--arg", "to=bob", "--arg", "amount=900", "--arg", "memo=<a&b>"},
			api.SyscallRequest{Op: "payments.send", Resource: "acct/1", Args: `{"amount":"900","memo":"<a&b>","to":"bob"}`}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fg.reply("POST /v1/syscall", http.StatusOK, api.SyscallResponse{Outcome: outcomeOf("permit", "ok", 12), Op: tc.want.Op, Resource: tc.want.Resource, UsesLeft: -1})
			run(t, tc.stdin, fg.args(append([]string{"syscall"}, tc.args...)...)...).wantCode(t, api.ExitOK)
			call := fg.only(t)
			var got api.SyscallRequest
			decodeStrict(t, call.body, &got)
			if got != tc.want {
				t.Fatalf("request %+v, want %+v", got, tc.want)
			}
			if call.token != fakeToken {
				t.Fatalf("token %q, want the agent's own %q", call.token, fakeToken)
			}
			if (tc.rid != "" && call.requestID != tc.rid) || call.requestID == "" {
				t.Fatalf("request id %q, want %q", call.requestID, tc.rid)
			}
		})
	}
}

func TestSyscallDecisionsAndExitCodes(t *testing.T) {
	fg := newFakeGate(t)
	permit := api.SyscallResponse{Outcome: outcomeOf("permit", "ok", 12), Op: "kv.put", Resource: "orders/1", CapID: "cap-2", UsesLeft: 4}
	unlimitedGet := api.SyscallResponse{Outcome: outcomeOf("permit", "ok", 15), Op: "kv.get", Resource: "orders/1", CapID: "cap-2", UsesLeft: -1, Value: "hello", Found: true, Version: 3}
	external := api.SyscallResponse{Outcome: outcomeOf("permit", "ok", 17), Op: "http.post", Resource: "hooks/pay", UsesLeft: 2, Effect: "pending"}
	missingGet := api.SyscallResponse{Outcome: outcomeOf("permit", "not_found", 16), Op: "kv.get", Resource: "orders/9", UsesLeft: -1}
	deny := api.SyscallResponse{Outcome: outcomeOf("deny", "uses_exhausted", 13), Op: "kv.put", Resource: "orders/1", CapID: "cap-2"}
	escalate := api.SyscallResponse{Outcome: outcomeOf("escalate", "approval_required", 14), Op: "kv.put", Resource: "orders/1", CapID: "cap-2", EscalationID: "apr-14", ApprovalID: "apr-14", UsesLeft: 3}
	// Kernels before the lower-case API: upper-case decisions, no
	// escalation_id.
	oldDeny := deny
	oldDeny.Decision = "DENY"
	oldEscalate := escalate
	oldEscalate.Decision, oldEscalate.EscalationID = "ESCALATE", ""
	oldGet := unlimitedGet
	oldGet.Decision = "PERMIT"
	cases := []struct {
		name   string
		status int
		answer any
		code   int
		stdout string // exact human stdout
		stderr string // substring of stderr
	}{
		{"permit", http.StatusOK, permit, api.ExitOK, "PERMIT ok (seq 12, uses left 4)\n", ""},
		{"kv.get prints the value", http.StatusOK, unlimitedGet, api.ExitOK, "PERMIT ok (seq 15, uses left unlimited)\nhello\n", ""},
		{"external effect pending", http.StatusOK, external, api.ExitOK, "PERMIT ok (seq 17, uses left 2, effect pending)\n", ""},
		{"kv.get of a missing key", http.StatusOK, missingGet, api.ExitOK, "PERMIT not_found (seq 16, uses left unlimited)\n", ""},
		{"deny", http.StatusOK, deny, api.ExitDenied, "DENY uses_exhausted (seq 13)\n", "denied: uses_exhausted"},
		{"deny sent as 403", http.StatusForbidden, deny, api.ExitDenied, "DENY uses_exhausted (seq 13)\n", "denied: uses_exhausted"},
		{"escalate", http.StatusOK, escalate, api.ExitEscalated, "ESCALATE approval_required: approval apr-14 (seq 14)\n", "--approval apr-14"},
		{"deny from an earlier kernel", http.StatusOK, oldDeny, api.ExitDenied, "DENY uses_exhausted (seq 13)\n", "denied: uses_exhausted"},
		{"escalate from an earlier kernel", http.StatusOK, oldEscalate, api.ExitEscalated, "ESCALATE approval_required: approval apr-14 (seq 14)\n", "--approval apr-14"},
		{"kv.get from an earlier kernel", http.StatusOK, oldGet, api.ExitOK, "PERMIT ok (seq 15, uses left unlimited)\nhello\n", ""},
		{"server error", http.StatusInternalServerError, apiError(api.CodeInternal, "disk on fire"), api.ExitError, "", "disk on fire"},
		{"rate limited", http.StatusTooManyRequests, apiError(api.CodeRateLimited, "rate limit for entity a"), api.ExitError, "", "rate_limited"},
		{"bad request", http.StatusBadRequest, apiError(api.CodeBadRequest, "op must be 1..128 bytes"), api.ExitError, "", "op must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sent := fg.reply("POST /v1/syscall", tc.status, tc.answer)
			r := run(t, "", fg.args("syscall", "kv.put", "orders/1", "--args", "v")...).wantCode(t, tc.code).wantStdout(t, tc.stdout)
			r.wantStderr(t, tc.stderr)
			if tc.code != api.ExitOK && !strings.HasPrefix(r.stderr, "error: ") {
				t.Fatalf("stderr %q does not start with \"error: \"", r.stderr)
			}

			r = run(t, "", fg.args("--json", "syscall", "kv.put", "orders/1", "--args", "v")...).wantCode(t, tc.code)
			if tc.status/100 == 2 || tc.status == http.StatusForbidden {
				r.wantSameJSON(t, sent)
			} else {
				r.wantErrorJSON(t, tc.answer.(api.ErrorBody).Error.Code)
			}
		})
	}
}

func TestSyscallUsageErrorsSendNothing(t *testing.T) {
	fg := newFakeGate(t)
	fg.reply("POST /v1/syscall", http.StatusOK, api.SyscallResponse{Outcome: outcomeOf("permit", "ok", 1)})
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"args and args file", []string{"kv.put", "k", "--args", "a", "--args-file", "f"}, "at most one of"},
		{"missing args file", []string{"kv.put", "k", "--args-file", filepath.Join(t.TempDir(), "none")}, "--args-file"},
		{"cas without args", []string{"kv.cas", "k"}, "kv.cas needs --args"},
		{"cas not JSON", []string{"kv.cas", "k", "--args", "old->new"}, "JSON object"},
		{"cas misspelt field", []string{"kv.cas", "k", "--args", `{"expected": "a", "value": "b"}`}, "expected"},
		{"cas two values", []string{"kv.cas", "k", "--args", `{"value": "b"} {}`}, "more than one"},
		{"one positional", []string{"kv.put"}, "takes 2 argument"},
		{"arg and args", []string{"kv.put", "k", "--arg", "value=a", "--args", "a"}, "at most one of --arg, --args and --args-file"},
		{"arg and args file", []string{"kv.put", "k", "--arg", "value=a", "--args-file", "-"}, "at most one of --arg, --args and --args-file"},
		{"arg without =", []string{"x.op", "k", "--arg", "amount"}, `--arg "amount": want KEY=VALUE`},
		{"arg with an empty key", []string{"x.op", "k", "--arg", "=1"}, "the key is empty"},
		{"arg given twice", []string{"x.op", "k", "--arg", "a=1", "--arg", "a=2"}, "--arg a is given twice"},
		{"put takes only value", []string{"kv.put", "k", "--arg", "val=x"}, "kv.put takes only --arg value=V"},
		{"cas unknown key", []string{"kv.cas", "k", "--arg", "expected=a", "--arg", "value=b"}, "kv.cas takes only expect, expect_absent, expect_version, value"},
		{"cas expect_absent not a bool", []string{"kv.cas", "k", "--arg", "expect_absent=maybe", "--arg", "value=b"}, "want true or false"},
		{"cas expect_version not a number", []string{"kv.cas", "k", "--arg", "expect=a", "--arg", "expect_version=-1", "--arg", "value=b"}, "want a non-negative integer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, "", fg.args(append([]string{"syscall"}, tc.args...)...)...).wantCode(t, api.ExitError).wantStderr(t, tc.stderr)
			fg.none(t)
		})
	}
}

// countToken counts the occurrences of token in s.
func countToken(s, token string) int { return strings.Count(s, token) }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestCapGrantPrintsTokenOnceLast(t *testing.T) {
	fg := newFakeGate(t)
	const token = "dmc_0123456789abcdef"
	answer := api.GrantResponse{Outcome: outcomeOf("permit", "ok", 21), ID: "cap-7", Token: token, GrantedBy: "root"}
	sent := fg.reply("POST /v1/caps", http.StatusOK, answer)

	r := run(t, "", fg.args("cap", "grant", "--entity", "agent-1", "--ops", "kv.put,kv.get", "--resources", "orders/*",
		"--ttl", "1h", "--uses", "5", "--domain", "eu")...).wantCode(t, api.ExitOK)
	var req api.GrantRequest
	call := fg.only(t)
	decodeStrict(t, call.body, &req)
	want := api.GrantRequest{Entity: "agent-1", Ops: []string{"kv.put", "kv.get"}, Resources: []string{"orders/*"}, TTL: "1h", Uses: 5, Domain: "eu"}
	if !reflect.DeepEqual(req, want) || call.route != "POST /v1/caps" || call.token != fakeToken {
		t.Fatalf("request %s %+v with token %q, want %+v", call.route, req, call.token, want)
	}
	if lastLine(r.stdout) != token || countToken(r.stdout, token) != 1 || countToken(r.stderr, token) != 0 {
		t.Fatalf("the token must be printed once, alone on the last line of stdout:\nstdout %q\nstderr %q", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "cap-7") || !strings.Contains(r.stdout, "granted by root") {
		t.Fatalf("stdout lacks the id and granter: %q", r.stdout)
	}

	// --json prints the answer as sent, the token in it once.
	r = run(t, "", fg.args("--json", "cap", "grant", "--entity", "agent-1", "--ops", "kv.put", "--ops", "kv.get", "--resources", "orders/*")...).wantCode(t, api.ExitOK)
	r.wantSameJSON(t, sent)
	if countToken(r.stdout, token) != 1 {
		t.Fatalf("--json output holds the token %d times", countToken(r.stdout, token))
	}
	decodeStrict(t, fg.only(t).body, &req)
	if want := []string{"kv.put", "kv.get"}; !reflect.DeepEqual(req.Ops, want) || req.TTL != "" || req.Uses != 0 || req.Domain != "" {
		t.Fatalf("repeated --ops: request %+v", req)
	}
}

func TestCapGrantAndDelegateRefusals(t *testing.T) {
	fg := newFakeGate(t)
	deny := api.GrantResponse{Outcome: outcomeOf("deny", "wider_than_parent", 30), ID: ""}
	sent := fg.reply("POST /v1/caps/delegate", http.StatusOK, deny)
	args := []string{"--token", "dmc_parent", "cap", "delegate", "--entity", "agent-2", "--ops", "kv.put", "--resources", "orders/*", "--uses", "3", "--ttl", "30m"}
	run(t, "", fg.args(args...)...).wantCode(t, api.ExitDenied).wantStdout(t, "").wantStderr(t, "wider_than_parent")
	call := fg.only(t)
	var req api.GrantRequest
	decodeStrict(t, call.body, &req)
	if want := (api.GrantRequest{Entity: "agent-2", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}, TTL: "30m", Uses: 3}); !reflect.DeepEqual(req, want) {
		t.Fatalf("delegate request %+v, want %+v", req, want)
	}
	if call.token != "dmc_parent" {
		t.Fatalf("delegate sent token %q, want the parent's", call.token)
	}
	run(t, "", fg.args(append([]string{"--json"}, args...)...)...).wantCode(t, api.ExitDenied).wantSameJSON(t, sent)

	// A permitted answer without a token (a retry of a request whose first
	// answer was lost) is an error: the token is gone.
	fg.reply("POST /v1/caps", http.StatusOK, api.GrantResponse{Outcome: api.Outcome{Seq: 31, Time: gateTime, Decision: "permit", Reason: "ok", Duplicate: true}, ID: "cap-8"})
	run(t, "", fg.args("cap", "grant", "--entity", "a", "--ops", "kv.put", "--resources", "*")...).wantCode(t, api.ExitError).wantStderr(t, "revoke it")
	run(t, "", fg.args("--json", "cap", "grant", "--entity", "a", "--ops", "kv.put", "--resources", "*")...).wantCode(t, api.ExitError)

	// An operator token without cap.grant: 403 forbidden, exit 2.
	fg.reply("POST /v1/caps", http.StatusForbidden, apiError(api.CodeForbidden, "cap.grant requires a usable capability"))
	run(t, "", fg.args("--json", "cap", "grant", "--entity", "a", "--ops", "kv.put", "--resources", "*")...).wantCode(t, api.ExitDenied).wantErrorJSON(t, api.CodeForbidden)

	fg.forget()
	for _, bad := range [][]string{
		{"cap", "grant", "--ops", "kv.put", "--resources", "*"},
		{"cap", "grant", "--entity", "a", "--resources", "*"},
		{"cap", "grant", "--entity", "a", "--ops", "kv.put"},
		{"cap", "grant", "--entity", "a", "--ops", "kv.put,", "--resources", "*"},
		{"cap", "grant", "--entity", "a", "--ops", "kv.put", "--resources", "*", "--ttl", "soon"},
		{"cap", "grant", "--entity", "a", "--ops", "kv.put", "--resources", "*", "--ttl", "-1h"},
		{"cap", "grant", "--entity", "a", "--ops", "kv.put", "--resources", "*", "--uses", "-1"},
		{"cap", "delegate", "--entity", "a", "--ops", "kv.put", "--resources", "*", "--domain", "eu"},
		{"cap", "grant", "extra", "--entity", "a", "--ops", "kv.put", "--resources", "*"},
	} {
		run(t, "", fg.args(bad...)...).wantCode(t, api.ExitError)
		fg.none(t)
	}
}

func TestCapRevokeListInspect(t *testing.T) {
	fg := newFakeGate(t)
	sent := fg.reply("POST /v1/caps/cap-7/revoke", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("permit", "ok", 40), ID: "cap-7"})
	run(t, "", fg.args("cap", "revoke", "cap-7")...).wantCode(t, api.ExitOK).wantStdout(t, "revoked cap-7 and its delegations (seq 40)\n")
	run(t, "", fg.args("--json", "cap", "revoke", "cap-7")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	fg.reply("POST /v1/caps/cap-7/revoke", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("deny", "forbidden", 41), ID: "cap-7"})
	run(t, "", fg.args("cap", "revoke", "cap-7")...).wantCode(t, api.ExitDenied).wantStderr(t, "revoke cap-7 denied: forbidden (seq 41)")

	caps := []api.Capability{
		{ID: "cap-1", Entity: "alice", Operator: true, Ops: []string{"cap.grant"}, Resources: []string{"*"}, Remaining: -1, GrantedBy: "root", Effective: "ok", Created: 2},
		{ID: "cap-7", Entity: "agent-1", Ops: []string{"kv.put", "kv.get"}, Resources: []string{"orders/*"}, Expires: gateTime.Add(time.Hour),
			Uses: 5, Used: 2, Remaining: 3, GrantedBy: "alice", Effective: "ok", Created: 21},
	}
	sent = fg.reply("GET /v1/caps", http.StatusOK, caps[1:])
	r := run(t, "", fg.args("--json", "cap", "list", "--entity", "agent-1")...).wantCode(t, api.ExitOK)
	r.wantSameJSON(t, sent)
	if q := fg.only(t).query; q != "entity=agent-1" {
		t.Fatalf("cap list query %q", q)
	}
	r = run(t, "", fg.args("cap", "list", "--entity", "agent-1")...).wantCode(t, api.ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "cap-7 ") ||
		!strings.Contains(lines[1], "kv.put,kv.get") || !strings.Contains(lines[1], "2026-11-26T11:00:00Z") {
		t.Fatalf("cap list output:\n%s", r.stdout)
	}
	fg.reply("GET /v1/caps", http.StatusOK, caps)
	run(t, "", fg.args("cap", "list")...).wantCode(t, api.ExitOK)
	if q := fg.only(t).query; q != "" {
		t.Fatalf("cap list without --entity sent query %q", q)
	}
	fg.reply("GET /v1/caps", http.StatusOK, []api.Capability{})
	run(t, "", fg.args("--json", "cap", "list")...).wantCode(t, api.ExitOK).wantStdout(t, "[]\n")

	sent = fg.reply("GET /v1/caps/cap-7", http.StatusOK, caps[1])
	run(t, "", fg.args("--json", "cap", "inspect", "cap-7")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	r = run(t, "", fg.args("cap", "inspect", "cap-7")...).wantCode(t, api.ExitOK)
	for _, want := range []string{"agent-1", "orders/*", "Remaining", "alice"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("inspect output lacks %q:\n%s", want, r.stdout)
		}
	}
	run(t, "", fg.args("--json", "cap", "inspect", "cap-99")...).wantCode(t, api.ExitError).wantErrorJSON(t, api.CodeNotFound)
}

func TestOperatorGateCommands(t *testing.T) {
	fg := newFakeGate(t)
	const token = "dmo_fedcba9876543210"
	sent := fg.reply("POST /v1/operators", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("permit", "ok", 5), ID: "cap-3", Token: token, GrantedBy: "root"})
	r := run(t, "", fg.args("operator", "add", "alice", "--scopes", "cap.grant,cap.revoke,halt", "--ttl", "720h")...).wantCode(t, api.ExitOK)
	var req api.OperatorRequest
	decodeStrict(t, fg.only(t).body, &req)
	if want := (api.OperatorRequest{Name: "alice", Scopes: []string{"cap.grant", "cap.revoke", "halt"}, TTL: "720h"}); !reflect.DeepEqual(req, want) {
		t.Fatalf("operator add request %+v, want %+v", req, want)
	}
	if lastLine(r.stdout) != token || countToken(r.stdout, token) != 1 || countToken(r.stderr, token) != 0 {
		t.Fatalf("operator token not printed once, last:\nstdout %q\nstderr %q", r.stdout, r.stderr)
	}
	r = run(t, "", fg.args("--json", "operator", "add", "alice", "--scopes", "audit.read", "--resources", "*")...).wantCode(t, api.ExitOK)
	r.wantSameJSON(t, sent)
	decodeStrict(t, fg.only(t).body, &req)
	if !reflect.DeepEqual(req.Resources, []string{"*"}) {
		t.Fatalf("--resources sent as %q", req.Resources)
	}
	fg.forget()
	run(t, "", fg.args("operator", "add", "alice")...).wantCode(t, api.ExitError).wantStderr(t, "--scopes")
	run(t, "", fg.args("operator", "add", "--scopes", "halt")...).wantCode(t, api.ExitError)
	fg.none(t)

	ops := []api.Capability{{ID: "cap-3", Entity: "alice", Operator: true, Ops: []string{"halt"}, Resources: []string{"*"}, Remaining: -1, GrantedBy: "root", Effective: "ok"}}
	sent = fg.reply("GET /v1/operators", http.StatusOK, ops)
	run(t, "", fg.args("--json", "operator", "list")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	r = run(t, "", fg.args("operator", "list")...).wantCode(t, api.ExitOK)
	if !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "cap-3") {
		t.Fatalf("operator list output:\n%s", r.stdout)
	}

	fg.reply("POST /v1/operators/alice/revoke", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("permit", "ok", 9), ID: "cap-3"})
	run(t, "", fg.args("operator", "revoke", "alice")...).wantCode(t, api.ExitOK).wantStdout(t, "revoked operator alice (seq 9)\n")
	fg.reply("POST /v1/operators/bob/revoke", http.StatusNotFound, apiError(api.CodeNotFound, "no active operator bob"))
	run(t, "", fg.args("operator", "revoke", "bob")...).wantCode(t, api.ExitError).wantStderr(t, "no active operator bob")

	// The group keeps its existing commands.
	fg.reply("POST /v1/operator/init", http.StatusOK, api.InitResponse{RootToken: "root-token", KernelID: "k"})
	run(t, "", fg.args("--json", "operator", "init")...).wantCode(t, api.ExitOK)
	fg.reply("GET /v1/operator/raft/peers", http.StatusOK, []api.Peer{})
	run(t, "", fg.args("operator", "raft", "list-peers")...).wantCode(t, api.ExitOK)
}
