package clustertests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/internal/proctest"
)

// TestProtocolUpgradeOnALiveCluster moves a 3-node kernel of real
// processes from protocol 2 to 3 while agents write through it: every
// decision recorded before the upgrade entry follows protocol 2's rules,
// every one after it protocol 3's; the upgrade is refused while a voter's
// binary implements only protocol 2; that node, replicating as a
// non-voter, stops at the upgrade entry naming the version it needs, and
// applies on from it with a binary that implements it; an offline replay
// of the whole ledger reproduces the live head.
func TestProtocolUpgradeOnALiveCluster(t *testing.T) {
	if raceEnabled {
		t.Skip("real processes only: the test process orchestrates and has nothing for the race detector; it runs in the plain pass")
	}
	full, old := proctest.Binary(t, ""), proctest.Binary(t, "dominus_protocol2")
	c := newProcCluster(t, 70, "n1", "n2", "n3", "n4")
	for _, n := range []string{"n1", "n2", "n3"} {
		c.start(n, full, 3)
	}
	proctest.Eventually(t, 20*time.Second, "a leader", func() bool { s, ok := c.status("n1"); return ok && s.Leader != "" })

	var ir api.InitResponse
	c.json("n1", 0, &ir, "operator", "init", "--protocol", "2")
	c.env = append(c.env, "DOMINUS_TOKEN="+ir.RootToken)
	c.joinSecret = ir.JoinSecret
	if s, _ := c.status("n1"); s.Protocol != 2 || s.ProtocolSupported < 3 {
		t.Fatalf("after init --protocol 2: protocol %d, this binary implements %d", s.Protocol, s.ProtocolSupported)
	}

	// A policy valid under both protocols that decides differently:
	// context.args_digest exists only from protocol 3.
	policy := filepath.Join(c.dir, "guard.cedar")
	if err := os.WriteFile(policy, []byte(`forbid (principal, action, resource) when { context has args_digest && resource.path like "locked/*" };`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.cli("n1", "policy", "set", "--name", "guard", "--file", policy); r.Code != 0 {
		t.Fatalf("policy set: %s", r.Stderr)
	}
	var grant api.GrantResponse
	c.json("n1", 0, &grant, "cap", "grant", "--entity", "agent", "--ops", "kv.put", "--resources", "*", "--ttl", "1h")

	// The workload: two agents, one per node, writing until stopped.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i, node := range []string{"n2", "n3"} {
		cl := c.client(node, grant.Token)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; !stop.Load() && j < 5000; j++ {
				for _, prefix := range []string{"locked", "open"} {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := cl.Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: fmt.Sprintf("%s/%d-%d", prefix, i, j), Args: "v"})
					cancel()
					if err == nil {
						acked.Add(1)
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	// n4 runs a binary that implements only protocol 2 and joins as a
	// voter: the upgrade is refused while it is one.
	c.start("n4", old, 0)
	proctest.Eventually(t, 30*time.Second, "n4 a voter", func() bool {
		var ps api.ProtocolStatus
		r := proctest.Run(t, full, c.env, "operator", "protocol", "status", "--json", "--addr", c.url("n1"))
		if r.Code != 0 || jsonUnmarshal(r.Stdout, &ps) != nil {
			return false
		}
		for _, m := range ps.Members {
			if m.Node == "n4" && m.Voter && m.Supports == 2 {
				return true
			}
		}
		return false
	})
	r := c.cli("n1", "operator", "protocol", "upgrade", "3")
	if r.Code != api.ExitError || !strings.Contains(r.Stderr, "n4") || !strings.Contains(r.Stderr, "up to 2") || !strings.Contains(r.Stderr, "protocol_unsupported") && !strings.Contains(r.Stderr, "implements protocols up to 2") {
		t.Fatalf("upgrade with a protocol-2 voter: exit %d, %s", r.Code, r.Stderr)
	}
	if s, _ := c.status("n1"); s.Protocol != 2 {
		t.Fatalf("a refused upgrade moved the protocol to %d", s.Protocol)
	}

	// n4 comes back as a non-voter (a fresh data dir, the same binary):
	// it replicates and applies the ledger but no longer blocks the
	// upgrade, which goes through while the agents write.
	p4 := c.procs["n4"]
	p4.Stop(syscall.SIGTERM)
	if r := c.cli("n1", "operator", "raft", "remove-peer", "n4"); r.Code != 0 {
		t.Fatalf("remove-peer n4: %s", r.Stderr)
	}
	if err := os.RemoveAll(p4.DataDir); err != nil {
		t.Fatal(err)
	}
	c.start("n4", old, 0, "--non-voter")
	proctest.Eventually(t, 30*time.Second, "n4 caught up as a non-voter", func() bool {
		s1, ok1 := c.status("n1")
		s4, ok4 := c.status("n4")
		return ok1 && ok4 && s4.Head.Seq > 0 && s4.Head.Seq+20 >= s1.Head.Seq
	})
	before := acked.Load()
	var up api.ProtocolUpgradeResponse
	r = c.json("n2", 0, &up, "operator", "protocol", "upgrade", "3")
	if up.InForce != 3 || !strings.EqualFold(up.Decision, "permit") || len(up.Warnings) != 1 || !strings.Contains(up.Warnings[0], "non-voter n4") ||
		!strings.Contains(r.Stderr, "warning: non-voter n4") {
		t.Fatalf("upgrade: %+v (stderr %q)", up, r.Stderr)
	}

	// n4 stops at the upgrade entry rather than judge past it.
	code, exited := p4.Exited(30 * time.Second)
	if !exited {
		t.Fatalf("the protocol-2 node kept running past the upgrade:\n%s", tail(p4.LogText(), 30))
	}
	log := p4.LogText()
	if code != 1 || !strings.Contains(log, "moved to protocol 3") || !strings.Contains(log, "implements protocols up to 2") {
		t.Fatalf("the protocol-2 node exited %d without naming the version it needs:\n%s", code, tail(log, 20))
	}
	t.Logf("n4 stopped: %s", tail(log, 1))

	proctest.Eventually(t, 20*time.Second, "writes after the upgrade", func() bool { return acked.Load() > before+40 })
	stop.Store(true)
	wg.Wait()

	var ps api.ProtocolStatus
	c.json("n3", 0, &ps, "operator", "protocol", "status")
	if ps.InForce != 3 || len(ps.History) != 2 || ps.History[0].Version != 2 || ps.History[0].By != "genesis" ||
		ps.History[1].Version != 3 || ps.History[1].Seq != up.Seq || ps.History[1].By != "root" {
		t.Fatalf("protocol status after the upgrade: %+v", ps)
	}

	// Every decision follows the rules in force at its seq.
	var events []api.Event
	c.json("n1", 0, &events, "ledger", "tail", "-n", "10000")
	counts := map[string]int{}
	for _, ev := range events {
		if ev.Type != "syscall" {
			continue
		}
		locked := strings.HasPrefix(ev.Subject, "locked/")
		after := ev.Seq > up.Seq
		want, reason := "permit", "ok"
		if locked && after {
			want, reason = "deny", "policy_forbid"
		}
		if !strings.EqualFold(ev.Decision, want) || ev.Reason != reason {
			t.Fatalf("seq %d %s (upgrade at %d): %s %s, want %s %s", ev.Seq, ev.Subject, up.Seq, ev.Decision, ev.Reason, want, reason)
		}
		counts[fmt.Sprintf("locked=%v after=%v", locked, after)]++
	}
	for _, k := range []string{"locked=true after=false", "locked=true after=true", "locked=false after=false", "locked=false after=true"} {
		if counts[k] == 0 {
			t.Fatalf("no %s decision in the ledger (counts %v): the workload did not straddle the upgrade", k, counts)
		}
	}
	t.Logf("decisions around the upgrade at seq %d: %v", up.Seq, counts)

	// Restarted with its protocol-2 binary it stops at the same entry; with
	// one that implements protocol 3 it applies on from there.
	c.start("n4", old, 0, "--non-voter")
	if code, exited := p4.Exited(30 * time.Second); !exited || code != 1 {
		t.Fatalf("the protocol-2 node, restarted, exited %v (code %d)", exited, code)
	}
	c.start("n4", full, 0, "--non-voter")
	live := c.sameHeads(60*time.Second, "n1", "n2", "n3", "n4")

	// An offline replay of the whole ledger reproduces the live head.
	export := filepath.Join(c.dir, "ledger.export")
	if r := c.cli("n1", "ledger", "export", "--from", "1", export); r.Code != 0 {
		t.Fatalf("export: %s", r.Stderr)
	}
	var rep struct {
		OK          bool     `json:"ok"`
		Head        api.Head `json:"head"`
		StateDigest string   `json:"state_digest"`
	}
	proctest.JSON(t, full, c.env, 0, &rep, "audit", "replay", "--ledger", export)
	if !rep.OK || rep.Head != live.Head || rep.StateDigest != live.StateDigest {
		t.Fatalf("audit replay reached %+v, live head %+v digest %s", rep, live.Head, live.StateDigest)
	}
}
