package cli

// Black-box tests of the outside contract (README "Contract") against a
// real in-process kernel node: every run goes through Run, the client
// package and the kernel's HTTP API, as a script's would.

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/internal/server"
	"github.com/dominus-kernel/dominus/kernel"
)

// liveKernel is one initialized single-node kernel behind an HTTP server.
type liveKernel struct {
	url, root string
	dir       string // for policy files
}

func startLiveKernel(t *testing.T) *liveKernel {
	t.Helper()
	return startLiveKernelWith(t)
}

// startLiveKernelWith is startLiveKernel with extra operator init flags.
func startLiveKernelWith(t *testing.T, initFlags ...string) *liveKernel {
	t.Helper()
	return startLiveKernelCfg(t, nil, initFlags...)
}

// startLiveKernelCfg is startLiveKernelWith with mut applied to the
// node's configuration.
func startLiveKernelCfg(t *testing.T, mut func(*kernel.Config), initFlags ...string) *liveKernel {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bind := ln.Addr().String()
	ln.Close()
	cfg := kernel.DefaultConfig()
	cfg.Name = "cli"
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = bind
	cfg.BootstrapExpect = 1
	cfg.MinFreeDiskBytes = 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.RaftLogOutput = io.Discard
	if os.Getenv("DOMINUS_TEST_LOG") != "" {
		cfg.Logger, cfg.RaftLogOutput = slog.New(slog.NewTextHandler(os.Stderr, nil)), os.Stderr
	}
	if mut != nil {
		mut(&cfg)
	}
	n, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	k := &liveKernel{url: srv.URL, dir: t.TempDir()}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := run(t, "", append([]string{"--addr", k.url, "--json", "operator", "init"}, initFlags...)...)
		if r.code == api.ExitOK {
			k.root = r.jsonObject(t)["root_token"].(string)
			return k
		}
		if time.Now().After(deadline) {
			t.Fatalf("operator init never succeeded: %s", r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// as runs dominus against k with token.
func (k *liveKernel) as(t *testing.T, token string, args ...string) result {
	t.Helper()
	return run(t, "", append([]string{"--addr", k.url, "--token", token, "--timeout", "10s"}, args...)...)
}

// grant issues a capability with the contract's flags and returns its
// token, checking the {"id", "token"} answer.
func (k *liveKernel) grant(t *testing.T, entity, ops, resources string) string {
	t.Helper()
	m := k.as(t, k.root, "--json", "cap", "grant", "--entity", entity, "--ops", ops, "--resources", resources,
		"--uses", "0", "--ttl", "1h").wantCode(t, api.ExitOK).jsonObject(t)
	id, _ := m["id"].(string)
	tok, _ := m["token"].(string)
	if id == "" || tok == "" || m["decision"] != api.DecisionPermit {
		t.Fatalf("cap grant --json: want id, token and decision permit, got %v", m)
	}
	return tok
}

// policy installs text as set name with the extra flags.
func (k *liveKernel) policy(t *testing.T, name, text string, flags ...string) result {
	t.Helper()
	file := filepath.Join(k.dir, name+".cedar")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return k.as(t, k.root, append([]string{"policy", "set", "--name", name, "--file", file}, flags...)...)
}

// wantDecision checks a --json answer's decision, reason and seq.
func wantDecision(t *testing.T, m map[string]any, decision, reason string) {
	t.Helper()
	if m["decision"] != decision || m["reason"] != reason {
		t.Fatalf("want %s %s, got decision %v reason %v: %v", decision, reason, m["decision"], m["reason"], m)
	}
	if seq, _ := m["seq"].(float64); seq < 1 {
		t.Fatalf("answer without a seq: %v", m)
	}
}

// approvalDigests returns the args digest of every approval by id.
func (k *liveKernel) approvalDigests(t *testing.T) map[string]string {
	t.Helper()
	var as []map[string]any
	k.as(t, k.root, "--json", "approvals", "list").wantCode(t, api.ExitOK).decode(t, &as)
	out := map[string]string{}
	for _, a := range as {
		id, _ := a["id"].(string)
		if id == "" {
			t.Fatalf("approvals list item without an id: %v", a)
		}
		out[id], _ = a["args_digest"].(string)
	}
	return out
}

const escalatePolicy = `@escalate("needs a human") forbid(principal, action, resource) when { resource.path like "esc/*" };`

// TestContractSyscallArgs: --arg builds the same arguments as --args (the
// same args digest, so one form's approval redeems the other's call) for
// kv.put, kv.cas and any other op; an escalation names its approval as
// escalation_id and approval_id; kv.get's value is result and value.
func TestContractSyscallArgs(t *testing.T) {
	k := startLiveKernel(t)
	agent := k.grant(t, "agent-a", "kv.put,kv.get,kv.cas,payments.send", "*")
	k.policy(t, "esc", escalatePolicy).wantCode(t, api.ExitOK)
	call := func(code int, args ...string) map[string]any {
		t.Helper()
		return k.as(t, agent, append([]string{"--json", "syscall"}, args...)...).wantCode(t, code).jsonObject(t)
	}
	escalation := func(args ...string) string {
		t.Helper()
		m := call(api.ExitEscalated, args...)
		wantDecision(t, m, api.DecisionEscalate, "approval_required")
		id, _ := m["escalation_id"].(string)
		if id == "" || m["approval_id"] != id {
			t.Fatalf("escalation_id %v, approval_id %v: want the same non-empty id", m["escalation_id"], m["approval_id"])
		}
		return id
	}

	t.Run("permit, result and value", func(t *testing.T) {
		wantDecision(t, call(api.ExitOK, "kv.put", "orders/1", "--arg", "value=hello"), api.DecisionPermit, "ok")
		m := call(api.ExitOK, "kv.get", "orders/1")
		wantDecision(t, m, api.DecisionPermit, "ok")
		if m["result"] != "hello" || m["value"] != "hello" {
			t.Fatalf("kv.get: result %v, value %v; want hello in both", m["result"], m["value"])
		}
		m = call(api.ExitOK, "kv.get", "orders/none")
		wantDecision(t, m, api.DecisionPermit, "not_found")
		if _, ok := m["result"]; ok {
			t.Fatalf("kv.get of a missing key carries a result: %v", m)
		}
		r := k.as(t, agent, "syscall", "kv.get", "orders/1").wantCode(t, api.ExitOK)
		if !strings.HasPrefix(r.stdout, "PERMIT ok (seq ") || !strings.HasSuffix(r.stdout, ", uses left unlimited)\nhello\n") {
			t.Fatalf("kv.get text: %q", r.stdout)
		}
	})

	t.Run("deny", func(t *testing.T) {
		m := call(api.ExitDenied, "kv.delete", "orders/1")
		wantDecision(t, m, api.DecisionDeny, "out_of_scope")
		if _, ok := m["escalation_id"]; ok {
			t.Fatalf("a deny carries an escalation_id: %v", m)
		}
	})

	// Each pair of forms escalates with the same args digest.
	// Each pair of forms escalates with the same args digest; redeemed is
	// the reason of the permitted call (esc/2 does not hold "old").
	sameDigest := []struct {
		name       string
		arg, whole []string
		redeemed   string
	}{
		{"kv.put", []string{"kv.put", "esc/1", "--arg", "value=hello"}, []string{"kv.put", "esc/1", "--args", "hello"}, "ok"},
		{"kv.cas", []string{"kv.cas", "esc/2", "--arg", "expect=old", "--arg", "expect_version=4", "--arg", "value=new"},
			[]string{"kv.cas", "esc/2", "--args", `{"value": "new", "expect_version": 4, "expect": "old"}`}, "cas_mismatch"},
		{"kv.cas expect_absent", []string{"kv.cas", "esc/3", "--arg", "expect_absent=true", "--arg", "value=new"},
			[]string{"kv.cas", "esc/3", "--args", `{"expect_absent": true, "value": "new"}`}, "ok"},
		{"other op", []string{"payments.send", "esc/4", "--arg", "to=bob", "--arg", "amount=900", "--arg", "memo=a&b <c>"},
			[]string{"payments.send", "esc/4", "--args", `{"amount":"900","memo":"a&b <c>","to":"bob"}`}, "ok"},
	}
	for _, tc := range sameDigest {
		t.Run("args digest of --arg equals --args: "+tc.name, func(t *testing.T) {
			byArg, byWhole := escalation(tc.arg...), escalation(tc.whole...)
			d := k.approvalDigests(t)
			if d[byArg] == "" || d[byArg] != d[byWhole] {
				t.Fatalf("args digest of %v: %q; of %v: %q", tc.arg, d[byArg], tc.whole, d[byWhole])
			}
			// The --args form's approval redeems the --arg form's call.
			m := k.as(t, k.root, "--json", "approvals", "approve", byWhole).wantCode(t, api.ExitOK).jsonObject(t)
			wantDecision(t, m, api.DecisionPermit, "approved")
			wantDecision(t, call(api.ExitOK, append(tc.arg, "--approval", byWhole)...), api.DecisionPermit, tc.redeemed)
		})
	}
	t.Run("different --arg values give a different digest", func(t *testing.T) {
		a := escalation("payments.send", "esc/5", "--arg", "amount=900")
		b := escalation("payments.send", "esc/5", "--arg", "amount=901")
		if d := k.approvalDigests(t); d[a] == d[b] {
			t.Fatalf("amount=900 and amount=901 share args digest %q", d[a])
		}
	})
	t.Run("human escalation line names the approval", func(t *testing.T) {
		r := k.as(t, agent, "syscall", "payments.send", "esc/6", "--arg", "amount=1").wantCode(t, api.ExitEscalated)
		if !strings.HasPrefix(r.stdout, "ESCALATE approval_required: approval ") || !strings.Contains(r.stderr, "--approval ") {
			t.Fatalf("escalation output: stdout %q stderr %q", r.stdout, r.stderr)
		}
	})
}

// TestContractGovernance: policy set --shadow records only and --mode
// shadow is its alias; kv, ledger tail, approvals, halt/resume, cap and
// policy backtest answer lower-case decisions in --json and upper-case
// ones to people.
func TestContractGovernance(t *testing.T) {
	k := startLiveKernel(t)
	agent := k.grant(t, "agent-g", "kv.put", "*")
	forbidVIP := `forbid(principal, action, resource) when { resource.path like "vip/*" };`
	put := func(code int, key string) map[string]any {
		t.Helper()
		return k.as(t, agent, "--json", "syscall", "kv.put", key, "--arg", "value=v").wantCode(t, code).jsonObject(t)
	}

	t.Run("kv --json decisions are lower case", func(t *testing.T) {
		wantDecision(t, k.as(t, k.root, "--json", "kv", "put", "plain/1", "v").wantCode(t, api.ExitOK).jsonObject(t), api.DecisionPermit, "ok")
		wantDecision(t, k.as(t, k.root, "--json", "kv", "delete", "plain/1").wantCode(t, api.ExitOK).jsonObject(t), api.DecisionPermit, "ok")
	})

	t.Run("--shadow records only", func(t *testing.T) {
		r := k.policy(t, "vip", forbidVIP, "--shadow").wantCode(t, api.ExitOK)
		if !strings.Contains(r.stdout, "SHADOW") {
			t.Fatalf("policy set --shadow: %q", r.stdout)
		}
		m := put(api.ExitOK, "vip/1")
		wantDecision(t, m, api.DecisionPermit, "ok")
		ev := k.as(t, k.root, "--json", "ledger", "show", fmt.Sprint(m["seq"])).wantCode(t, api.ExitOK).jsonObject(t)
		if fmt.Sprint(ev["shadow"]) != "[vip:deny:policy_forbid]" {
			t.Fatalf("the shadow set's would-be decision: %v", ev["shadow"])
		}
	})
	t.Run("--mode shadow is the same", func(t *testing.T) {
		k.policy(t, "vip", forbidVIP, "--mode", "shadow").wantCode(t, api.ExitOK)
		wantDecision(t, put(api.ExitOK, "vip/2"), api.DecisionPermit, "ok")
	})
	t.Run("the same set active denies", func(t *testing.T) {
		k.policy(t, "vip", forbidVIP).wantCode(t, api.ExitOK)
		wantDecision(t, put(api.ExitDenied, "vip/3"), api.DecisionDeny, "policy_forbid")
		k.as(t, k.root, "policy", "set", "--name", "vip", "--delete").wantCode(t, api.ExitOK)
	})

	t.Run("policy backtest --json", func(t *testing.T) {
		file := filepath.Join(k.dir, "strict.cedar")
		if err := os.WriteFile(file, []byte(forbidVIP), 0o600); err != nil {
			t.Fatal(err)
		}
		var bt struct {
			Evaluated    int            `json:"evaluated"`
			Changed      int            `json:"changed"`
			ByTransition map[string]int `json:"by_transition"`
			Examples     []uint64       `json:"examples"`
			Transitions  []struct {
				From, To string
			} `json:"transitions"`
		}
		k.as(t, k.root, "--json", "policy", "backtest", "--file", file, "--from", "1").wantCode(t, api.ExitOK).decode(t, &bt)
		// vip/1 and vip/2 were permitted; the strict set would deny them.
		if bt.Evaluated < 3 || bt.Changed != 2 || bt.ByTransition["permit->deny"] != 2 || len(bt.Examples) != 2 ||
			len(bt.Transitions) != 1 || bt.Transitions[0].From != "permit" || bt.Transitions[0].To != "deny" {
			t.Fatalf("backtest: %+v", bt)
		}
		r := k.as(t, k.root, "policy", "backtest", "--file", file, "--from", "1").wantCode(t, api.ExitOK)
		if !strings.Contains(r.stdout, "PERMIT→DENY 2") {
			t.Fatalf("backtest text: %q", r.stdout)
		}
	})

	t.Run("halt and resume", func(t *testing.T) {
		m := k.as(t, k.root, "--json", "halt", "--entity", "agent-g", "--reason", "drill").wantCode(t, api.ExitOK).jsonObject(t)
		wantDecision(t, m, api.DecisionPermit, "ok")
		wantDecision(t, put(api.ExitDenied, "plain/2"), api.DecisionDeny, "halted")
		wantDecision(t, k.as(t, k.root, "--json", "resume", "--entity", "agent-g").wantCode(t, api.ExitOK).jsonObject(t), api.DecisionPermit, "ok")
		wantDecision(t, put(api.ExitOK, "plain/2"), api.DecisionPermit, "ok")
	})

	t.Run("cap delegate and revoke", func(t *testing.T) {
		m := k.as(t, agent, "--json", "cap", "delegate", "--entity", "agent-g/helper", "--ops", "kv.put", "--resources", "plain/*",
			"--uses", "1", "--ttl", "30m").wantCode(t, api.ExitOK).jsonObject(t)
		id, _ := m["id"].(string)
		if id == "" || m["token"] == "" || m["decision"] != api.DecisionPermit {
			t.Fatalf("cap delegate --json: %v", m)
		}
		wantDecision(t, k.as(t, k.root, "--json", "cap", "revoke", id).wantCode(t, api.ExitOK).jsonObject(t), api.DecisionPermit, "ok")
		m = k.as(t, m["token"].(string), "--json", "syscall", "kv.put", "plain/3", "--arg", "value=v").wantCode(t, api.ExitDenied).jsonObject(t)
		wantDecision(t, m, api.DecisionDeny, "revoked")
	})

	t.Run("ledger tail --json", func(t *testing.T) {
		var evs []map[string]any
		k.as(t, k.root, "--json", "ledger", "tail", "-n", "100").wantCode(t, api.ExitOK).decode(t, &evs)
		decisions := map[any]int{}
		for _, ev := range evs {
			for _, f := range []string{"seq", "time", "type", "actor", "decision", "reason"} {
				if _, ok := ev[f]; !ok {
					t.Fatalf("event without %s: %v", f, ev)
				}
			}
			decisions[ev["decision"]]++
			if (ev["type"] == "cap.grant" || ev["type"] == "cap.delegate") && ev["decision"] == api.DecisionPermit && ev["granted_by"] == nil {
				t.Fatalf("grant without granted_by: %v", ev)
			}
		}
		for d := range decisions {
			switch d {
			case api.DecisionPermit, api.DecisionDeny, api.DecisionEscalate, api.DecisionNone:
			default:
				t.Fatalf("ledger tail decision %q is not lower case: %v", d, decisions)
			}
		}
		if decisions[api.DecisionPermit] == 0 || decisions[api.DecisionDeny] == 0 {
			t.Fatalf("want permits and denies in the tail, got %v", decisions)
		}
		r := k.as(t, k.root, "ledger", "tail", "-n", "100").wantCode(t, api.ExitOK)
		if !strings.Contains(r.stdout, " PERMIT ") || !strings.Contains(r.stdout, " DENY ") || strings.Contains(r.stdout, " permit ") {
			t.Fatalf("ledger tail text should show PERMIT and DENY:\n%s", r.stdout)
		}
	})
}
