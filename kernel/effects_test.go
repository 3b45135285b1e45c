package kernel

import (
	"context"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/fsm"
)

func effectStatus(n *Node, seq uint64) string {
	var s string
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		if e := l.State().Effects[seq]; e != nil {
			s = e.Status
		}
	})
	return s
}

func waitEffect(t *testing.T, n *Node, seq uint64, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := effectStatus(n, seq); s == want {
			return
		} else if s != fsm.EffectPending && s != "" {
			t.Fatalf("effect %d ended %s, want %s", seq, s, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("effect %d still %q, want %s", seq, effectStatus(n, seq), want)
}

// Drivers run after the permit commits; every external effect gets a
// completion event; a driver killed with kill -9 or hanging never takes
// the kernel down, and its effect is recorded as indeterminate.
func TestEffectsThroughSupervisedDrivers(t *testing.T) {
	n, _ := singleNode(t, 40, func(c *Config) { c.Drivers = []DriverConfig{testDriver(t, "webhook.", time.Second)} })
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	gr, err := root.Grant(ctx, api.GrantRequest{Entity: "agent", Ops: []string{"webhook.call", "exec.run"}, Resources: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	agent, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token})
	call := func(resource string) uint64 {
		r, err := agent.Syscall(ctx, api.SyscallRequest{Op: "webhook.call", Resource: resource, Args: "{}"})
		if err != nil || r.Decision != "permit" {
			t.Fatalf("%s: %v %+v", resource, err, r)
		}
		return r.Seq
	}
	waitEffect(t, n, call("https://x/ok"), fsm.EffectOK)
	waitEffect(t, n, call("https://x/fail"), fsm.EffectFailed)

	// A hanging driver is killed at its timeout; the kernel answers on.
	hang := call("https://x/hang")
	waitEffect(t, n, hang, fsm.EffectIndeterminate)

	// kill -9 of the driver mid-request.
	slow := call("https://x/hang-again")
	sup := n.effects.drivers[0]
	deadline := time.Now().Add(5 * time.Second)
	for sup.Pid() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if pid := sup.Pid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitEffect(t, n, slow, fsm.EffectIndeterminate)
	// A crash of the driver itself.
	waitEffect(t, n, call("https://x/crash"), fsm.EffectIndeterminate)
	// The kernel is fine and the driver comes back.
	time.Sleep(600 * time.Millisecond) // restart backoff
	waitEffect(t, n, call("https://x/ok-again"), fsm.EffectOK)
	// An op without a driver fails cleanly.
	r, err := agent.Syscall(ctx, api.SyscallRequest{Op: "exec.run", Resource: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	waitEffect(t, n, r.Seq, fsm.EffectFailed)
	// Every effect has exactly one completion event.
	completions := map[string]int{}
	_ = n.Events(1, func(ev api.Event) error {
		if ev.Type == "effect.complete" {
			completions[ev.Subject]++
		}
		return nil
	})
	for s, c := range completions {
		if c != 1 {
			t.Fatalf("%s completed %d times", s, c)
		}
	}
	if len(completions) != 7 {
		t.Fatalf("completions: %v", completions)
	}
}

// A permit whose completion never arrives because the leader changed is
// recorded as indeterminate by the next leader.
func TestPendingEffectBecomesIndeterminateAfterLeaderChange(t *testing.T) {
	tc := startCluster(t, 41, 3)
	leader := tc.leader(10 * time.Second)
	ctx := context.Background()
	token, _, err := leader.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	th := TokenHash("dmc_effect-agent")
	if res, err := leader.Apply(ctx, fsm.Envelope{Type: fsm.CmdCapGrant, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.CapGrant{TokenHash: th, Entity: "a", Ops: []string{"webhook.call"}, Resources: []string{"*"}})}); err != nil || res.Decision != fsm.DecisionPermit {
		t.Fatalf("grant: %v %+v", err, res)
	}
	// The leader's runner never dispatches (as if the leader died the
	// moment the permit committed); then the leader is stopped.
	leader.effects.paused.Store(true)
	res, err := leader.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, Auth: th, Payload: fsm.Encode(&fsm.Syscall{Op: "webhook.call", Resource: "https://x/1"})})
	if err != nil || res.Decision != fsm.DecisionPermit {
		t.Fatalf("syscall: %v %+v", err, res)
	}
	for i, n := range tc.nodes {
		if n == leader {
			tc.nodes[i] = nil
		}
	}
	leader.Close()
	next := tc.leader(20 * time.Second)
	waitEffect(t, next, res.Seq, fsm.EffectIndeterminate)
	tc.requireSameHead(10 * time.Second)
	t.Logf("effect %d recorded indeterminate by %s", res.Seq, next.Name())
}
