package cli

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

const testPolicy = "forbid(principal, action == Action::\"kv.delete\", resource);\n"

func TestPolicySet(t *testing.T) {
	fg := newFakeGate(t)
	dir := t.TempDir()
	file := writeTestFile(t, dir, "guard.cedar", []byte(testPolicy))
	empty := writeTestFile(t, dir, "empty.cedar", []byte(" \n"))
	answer := api.PolicyResponse{Outcome: outcomeOf("permit", "ok", 50), Name: "guard", PolicyVersion: 3}
	cases := []struct {
		name   string
		stdin  string
		args   []string
		want   api.PolicyRequest
		stdout string
	}{
		{"shadow", "", []string{"--name", "guard", "--file", file, "--mode", "shadow"}, api.PolicyRequest{Name: "guard", Text: testPolicy, Mode: "SHADOW"}, "policy guard set: SHADOW, version 3 (seq 50)\n"},
		{"active by default", "", []string{"--name", "guard", "--file", file}, api.PolicyRequest{Name: "guard", Text: testPolicy, Mode: "ACTIVE"}, "policy guard set: ACTIVE, version 3 (seq 50)\n"},
		{"from stdin", testPolicy, []string{"--name", "guard", "--file", "-", "--mode", "ACTIVE"}, api.PolicyRequest{Name: "guard", Text: testPolicy, Mode: "ACTIVE"}, "policy guard set: ACTIVE, version 3 (seq 50)\n"},
		{"delete", "", []string{"--name", "guard", "--delete"}, api.PolicyRequest{Name: "guard"}, "policy guard removed (seq 50)\n"},
		{"--shadow", "", []string{"--name", "guard", "--file", file, "--shadow"}, api.PolicyRequest{Name: "guard", Text: testPolicy, Mode: "SHADOW"}, "policy guard set: SHADOW, version 3 (seq 50)\n"},
		{"--shadow with --mode shadow", "", []string{"--name", "guard", "--file", file, "--shadow", "--mode", "shadow"}, api.PolicyRequest{Name: "guard", Text: testPolicy, Mode: "SHADOW"}, "policy guard set: SHADOW, version 3 (seq 50)\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sent := fg.reply("POST /v1/policies", http.StatusOK, answer)
			run(t, tc.stdin, fg.args(append([]string{"policy", "set"}, tc.args...)...)...).wantCode(t, api.ExitOK).wantStdout(t, tc.stdout)
			var got api.PolicyRequest
			decodeStrict(t, fg.only(t).body, &got)
			if got != tc.want {
				t.Fatalf("request %+v, want %+v", got, tc.want)
			}
			run(t, tc.stdin, fg.args(append([]string{"--json", "policy", "set"}, tc.args...)...)...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
		})
	}

	// A policy the kernel cannot compile: exit 1 with the server's message.
	msg := `guard: parse error at line 1: unexpected token "forbidd"`
	fg.reply("POST /v1/policies", http.StatusBadRequest, apiError(api.CodePolicyInvalid, msg))
	run(t, "", fg.args("policy", "set", "--name", "guard", "--file", file)...).wantCode(t, api.ExitError).wantStdout(t, "").wantStderr(t, msg)
	r := run(t, "", fg.args("--json", "policy", "set", "--name", "guard", "--file", file)...).wantCode(t, api.ExitError)
	r.wantErrorJSON(t, api.CodePolicyInvalid)
	if m := r.jsonObject(t)["error"].(map[string]any); !strings.Contains(m["message"].(string), msg) {
		t.Fatalf("JSON error message %q lacks the server's %q", m["message"], msg)
	}

	// A token without policy.set is refused by the ledger: exit 2.
	fg.reply("POST /v1/policies", http.StatusOK, api.PolicyResponse{Outcome: outcomeOf("deny", "forbidden", 51), Name: "guard"})
	run(t, "", fg.args("policy", "set", "--name", "guard", "--file", file)...).wantCode(t, api.ExitDenied).wantStderr(t, "forbidden")

	fg.forget()
	for _, bad := range [][]string{
		{"--file", file},    // no name
		{"--name", "guard"}, // neither file nor delete
		{"--name", "guard", "--file", file, "--delete"},
		{"--name", "guard", "--delete", "--mode", "shadow"},
		{"--name", "guard", "--file", file, "--mode", "dry-run"},
		{"--name", "guard", "--file", empty}, // empty text would delete
		{"--name", "guard", "--file", dir + "/none.cedar"},
		{"--name", "guard", "--file", file, "--shadow", "--mode", "active"},
		{"--name", "guard", "--delete", "--shadow"},
		{"--name", "guard", "--file", file, "--shadow=false"},
	} {
		run(t, "", fg.args(append([]string{"policy", "set"}, bad...)...)...).wantCode(t, api.ExitError)
		fg.none(t)
	}
}

// TestPolicySetWarnings: the kernel's warnings go to stderr, one
// "warning: " line each, in text and --json mode alike; with --json
// stdout is exactly the answer, warnings included.
func TestPolicySetWarnings(t *testing.T) {
	fg := newFakeGate(t)
	file := writeTestFile(t, t.TempDir(), "guard.cedar", []byte(testPolicy))
	answer := api.PolicyResponse{Outcome: outcomeOf("permit", "ok", 52), Name: "guard", PolicyVersion: 4,
		Warnings: []string{"policy0: action kv.delet is not an op", "policy1: always false"}}
	sent := fg.reply("POST /v1/policies", http.StatusOK, answer)
	const warnings = "warning: policy0: action kv.delet is not an op\nwarning: policy1: always false\n"
	r := run(t, "", fg.args("policy", "set", "--name", "guard", "--file", file)...).wantCode(t, api.ExitOK)
	r.wantStdout(t, "policy guard set: ACTIVE, version 4 (seq 52)\n")
	if r.stderr != warnings {
		t.Fatalf("stderr %q, want %q", r.stderr, warnings)
	}
	r = run(t, "", fg.args("--json", "policy", "set", "--name", "guard", "--file", file, "--shadow")...).wantCode(t, api.ExitOK)
	r.wantSameJSON(t, sent)
	if r.stderr != warnings {
		t.Fatalf("--json stderr %q, want %q", r.stderr, warnings)
	}
	// No warnings: nothing on stderr, and no "warnings" in the answer.
	sent = fg.reply("POST /v1/policies", http.StatusOK, api.PolicyResponse{Outcome: outcomeOf("permit", "ok", 53), Name: "guard", PolicyVersion: 5})
	if strings.Contains(string(sent), "warnings") {
		t.Fatalf("an answer without warnings carries the field: %s", sent)
	}
	r = run(t, "", fg.args("--json", "policy", "set", "--name", "guard", "--file", file)...).wantCode(t, api.ExitOK)
	r.wantSameJSON(t, sent)
	if r.stderr != "" {
		t.Fatalf("stderr %q without warnings", r.stderr)
	}
}

func TestPolicyListAndBacktest(t *testing.T) {
	fg := newFakeGate(t)
	file := writeTestFile(t, t.TempDir(), "candidate.cedar", []byte(testPolicy))
	ps := []api.Policy{{Name: "base", Mode: "ACTIVE", Version: 2, SetBy: "alice", Text: "permit(principal, action, resource);"}}
	sent := fg.reply("GET /v1/policies", http.StatusOK, ps)
	run(t, "", fg.args("--json", "policy", "list")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	r := run(t, "", fg.args("policy", "list")...).wantCode(t, api.ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "base ") || !strings.Contains(lines[1], "alice") {
		t.Fatalf("policy list output:\n%s", r.stdout)
	}

	bt := api.BacktestResponse{From: 5, To: 40, Evaluated: 30, Changed: 4,
		ByTransition: map[string]int{"escalate->permit": 1, "permit->deny": 3}, Examples: []uint64{12, 15, 19, 33},
		Transitions: []api.BacktestTransition{
			{From: "escalate", To: "permit", Count: 1, Examples: []uint64{33}},
			{From: "permit", To: "deny", Count: 3, Examples: []uint64{12, 15, 19}},
		}}
	sent = fg.reply("POST /v1/policies/backtest", http.StatusOK, bt)
	run(t, "", fg.args("policy", "backtest", "--name", "base", "--file", file, "--from", "5", "--to", "40")...).wantCode(t, api.ExitOK).
		wantStdout(t, "seq 5..40: evaluated 30, changed 4\nESCALATE→PERMIT 1 (e.g. seq 33)\nPERMIT→DENY 3 (e.g. seq 12, 15, 19)\n")
	var req api.BacktestRequest
	decodeStrict(t, fg.only(t).body, &req)
	if want := (api.BacktestRequest{Name: "base", Text: testPolicy, From: 5, To: 40}); req != want {
		t.Fatalf("backtest request %+v, want %+v", req, want)
	}
	run(t, "", fg.args("--json", "policy", "backtest", "--file", file, "--from", "5")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	decodeStrict(t, fg.only(t).body, &req)
	if want := (api.BacktestRequest{Text: testPolicy, From: 5}); req != want {
		t.Fatalf("backtest request %+v, want %+v", req, want)
	}

	// A kernel from before by_transition and examples, spelling decisions
	// in upper case: the CLI derives both from the transitions.
	old := bt
	old.ByTransition, old.Examples = nil, nil
	old.Transitions = []api.BacktestTransition{
		{From: "ESCALATE", To: "PERMIT", Count: 1, Examples: []uint64{33}},
		{From: "PERMIT", To: "DENY", Count: 3, Examples: []uint64{12, 15, 19}},
	}
	fg.reply("POST /v1/policies/backtest", http.StatusOK, old)
	var got api.BacktestResponse
	run(t, "", fg.args("--json", "policy", "backtest", "--file", file, "--from", "5")...).wantCode(t, api.ExitOK).decode(t, &got)
	if !reflect.DeepEqual(got.ByTransition, bt.ByTransition) || !reflect.DeepEqual(got.Examples, bt.Examples) {
		t.Fatalf("derived by_transition %v examples %v, want %v %v", got.ByTransition, got.Examples, bt.ByTransition, bt.Examples)
	}
	run(t, "", fg.args("policy", "backtest", "--file", file, "--from", "5")...).wantCode(t, api.ExitOK).
		wantStdout(t, "seq 5..40: evaluated 30, changed 4\nESCALATE→PERMIT 1 (e.g. seq 33)\nPERMIT→DENY 3 (e.g. seq 12, 15, 19)\n")

	fg.reply("POST /v1/policies/backtest", http.StatusOK, api.BacktestResponse{From: 1, To: 9, Evaluated: 4, Transitions: []api.BacktestTransition{}})
	run(t, "", fg.args("policy", "backtest", "--file", file, "--from", "1")...).wantCode(t, api.ExitOK).wantStdout(t, "seq 1..9: evaluated 4, changed 0\n")
	// With nothing changed, --json still holds every field of the contract.
	m := run(t, "", fg.args("--json", "policy", "backtest", "--file", file, "--from", "1")...).wantCode(t, api.ExitOK).jsonObject(t)
	for _, k := range []string{"evaluated", "changed", "by_transition", "examples", "transitions"} {
		if m[k] == nil {
			t.Fatalf("backtest --json lacks %q: %v", k, m)
		}
	}

	fg.reply("POST /v1/policies/backtest", http.StatusBadRequest, apiError(api.CodePolicyInvalid, "backtest: unknown action"))
	run(t, "", fg.args("--json", "policy", "backtest", "--file", file, "--from", "1")...).wantCode(t, api.ExitError).wantErrorJSON(t, api.CodePolicyInvalid)

	fg.forget()
	for _, bad := range [][]string{
		{"--file", file},
		{"--file", file, "--from", "0"},
		{"--from", "3"},
		{"--file", file, "--from", "9", "--to", "3"},
	} {
		run(t, "", fg.args(append([]string{"policy", "backtest"}, bad...)...)...).wantCode(t, api.ExitError)
		fg.none(t)
	}
}

func TestApprovalsCommands(t *testing.T) {
	fg := newFakeGate(t)
	as := []api.Approval{{ID: "apr-14", CapID: "cap-2", Entity: "agent-1", Op: "kv.delete", Resource: "orders/1", ArgsDigest: "ab",
		PolicyVersion: 3, Why: "deletes need a human", RequestedSeq: 14, Expires: gateTime.Add(15 * time.Minute), State: "pending"}}
	sent := fg.reply("GET /v1/approvals", http.StatusOK, as)
	run(t, "", fg.args("--json", "approvals", "list", "--state", "pending")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	if q := fg.only(t).query; q != "state=pending" {
		t.Fatalf("approvals list query %q", q)
	}
	r := run(t, "", fg.args("approvals", "list")...).wantCode(t, api.ExitOK)
	if q := fg.only(t).query; q != "" {
		t.Fatalf("approvals list without --state sent query %q", q)
	}
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "apr-14 ") || !strings.Contains(lines[1], "deletes need a human") {
		t.Fatalf("approvals list output:\n%s", r.stdout)
	}
	fg.forget()
	run(t, "", fg.args("approvals", "list", "--state", "open")...).wantCode(t, api.ExitError)
	fg.none(t)

	sent = fg.reply("POST /v1/approvals/apr-14/approve", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("permit", "approved", 20), ID: "apr-14"})
	run(t, "", fg.args("approvals", "approve", "apr-14")...).wantCode(t, api.ExitOK).wantStdout(t, "approved apr-14 (seq 20)\n")
	if c := fg.only(t); c.token != fakeToken || len(c.body) == 0 {
		t.Fatalf("approve request %+v", c)
	}
	run(t, "", fg.args("--json", "approvals", "approve", "apr-14")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)

	fg.reply("POST /v1/approvals/apr-14/deny", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("permit", "denied", 21), ID: "apr-14"})
	run(t, "", fg.args("approvals", "deny", "apr-14")...).wantCode(t, api.ExitOK).wantStdout(t, "denied apr-14 (seq 21)\n")
	// Deciding an approval that is no longer pending is refused: exit 2.
	sent = fg.reply("POST /v1/approvals/apr-14/deny", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("deny", "approval_invalid", 22), ID: "apr-14"})
	run(t, "", fg.args("approvals", "deny", "apr-14")...).wantCode(t, api.ExitDenied).wantStderr(t, "approval_invalid")
	run(t, "", fg.args("--json", "approvals", "deny", "apr-14")...).wantCode(t, api.ExitDenied).wantSameJSON(t, sent)
	run(t, "", fg.args("approvals", "approve")...).wantCode(t, api.ExitError)
}

func TestHaltResumeHalts(t *testing.T) {
	fg := newFakeGate(t)
	sent := fg.reply("POST /v1/halt", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("permit", "ok", 60)})
	run(t, "", fg.args("halt", "--reason", "incident 7")...).wantCode(t, api.ExitOK).wantStdout(t, "halted the whole kernel: incident 7 (seq 60)\n")
	var req api.HaltRequest
	call := fg.only(t)
	decodeStrict(t, call.body, &req)
	if req != (api.HaltRequest{Reason: "incident 7"}) || strings.Contains(call.body, "entity") {
		t.Fatalf("kernel-wide halt sent %s", call.body)
	}
	run(t, "", fg.args("--json", "halt", "--entity", "agent-1", "--reason", "runaway")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	decodeStrict(t, fg.only(t).body, &req)
	if req != (api.HaltRequest{Entity: "agent-1", Reason: "runaway"}) {
		t.Fatalf("entity halt sent %+v", req)
	}
	fg.forget()
	run(t, "", fg.args("halt", "--entity", "agent-1")...).wantCode(t, api.ExitError).wantStderr(t, "--reason")
	fg.none(t)

	fg.reply("POST /v1/halt", http.StatusForbidden, apiError(api.CodeForbidden, "halt requires a usable capability"))
	run(t, "", fg.args("halt", "--reason", "x")...).wantCode(t, api.ExitDenied)

	fg.reply("POST /v1/resume", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("permit", "ok", 61), ID: "agent-1"})
	run(t, "", fg.args("resume", "--entity", "agent-1")...).wantCode(t, api.ExitOK).wantStdout(t, "resumed entity agent-1 (seq 61)\n")
	decodeStrict(t, fg.only(t).body, &req)
	if req != (api.HaltRequest{Entity: "agent-1"}) {
		t.Fatalf("resume sent %+v", req)
	}
	fg.reply("POST /v1/resume", http.StatusOK, api.GrantResponse{Outcome: outcomeOf("deny", "not_halted", 62)})
	run(t, "", fg.args("resume")...).wantCode(t, api.ExitDenied).wantStderr(t, "resume of the whole kernel denied: not_halted")

	hs := []api.Halt{{Entity: "", Reason: "incident 7", By: "alice", Seq: 60}, {Entity: "agent-1", Reason: "runaway", By: "alice", Seq: 63}}
	sent = fg.reply("GET /v1/halts", http.StatusOK, hs)
	run(t, "", fg.args("--json", "halts")...).wantCode(t, api.ExitOK).wantSameJSON(t, sent)
	r := run(t, "", fg.args("halts")...).wantCode(t, api.ExitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "the whole kernel ") || !strings.HasPrefix(lines[2], "entity agent-1 ") {
		t.Fatalf("halts output:\n%s", r.stdout)
	}
	fg.reply("GET /v1/halts", http.StatusOK, []api.Halt{})
	run(t, "", fg.args("--json", "halts")...).wantCode(t, api.ExitOK).wantStdout(t, "[]\n")
	run(t, "", fg.args("halts")...).wantCode(t, api.ExitOK).wantStdout(t, "no halts in force\n")
}

func TestLedgerTailShowsGateDetail(t *testing.T) {
	fg := newFakeGate(t)
	evs := []api.Event{
		{Seq: 7, Time: gateTime, Type: "cap.grant", Actor: "alice", Decision: "permit", Reason: "ok", Subject: "agent-1", GrantedBy: "alice", CapID: "cap-7"},
		{Seq: 8, Time: gateTime, Type: "syscall", Actor: "agent-1", Decision: "deny", Reason: "policy_forbid", Subject: "orders/1", Op: "kv.delete", CapID: "cap-7"},
		{Seq: 9, Time: gateTime, Type: "kv.put", Actor: "root", Decision: "permit", Reason: "ok", Subject: "a"},
	}
	fg.reply("GET /v1/ledger/tail", http.StatusOK, evs)
	r := run(t, "", fg.args("ledger", "tail")...).wantCode(t, api.ExitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[0], "DETAIL") {
		t.Fatalf("tail output:\n%s", r.stdout)
	}
	for i, want := range []string{"granted_by=alice", "op=kv.delete", "-"} {
		fields := strings.Fields(lines[i+1])
		if d := strings.ToUpper(evs[i].Decision); fields[4] != d {
			t.Fatalf("event %d decision column %q, want %q for people:\n%s", evs[i].Seq, fields[4], d, r.stdout)
		}
		if got := strings.Join(fields[7:], " "); got != want {
			t.Fatalf("event %d detail %q, want %q:\n%s", evs[i].Seq, got, want, r.stdout)
		}
	}
	var got []api.Event
	run(t, "", fg.args("--json", "ledger", "tail")...).wantCode(t, api.ExitOK).decode(t, &got)
	if !reflect.DeepEqual(got, evs) {
		t.Fatalf("tail JSON %+v, want %+v", got, evs)
	}
}
