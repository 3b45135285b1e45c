package clustertests

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/kernel"
)

// A governed evolution on 3 nodes survives a leader kill mid-canary:
// agents write through every node, the new leader's duty closes the
// windows, the regression is rolled back on its deny rate, and every
// replica ends with the same chain head, digest and verified archive.
func TestEvolutionAcrossALeaderKill(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 171, size: 3})
	ctx := context.Background()
	root := kernel.TokenHash(c.token)
	apply := func(what string, env fsm.Envelope) fsm.Result {
		t.Helper()
		for range 50 {
			n := c.anyNode()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			res, err := n.Apply(cctx, env)
			cancel()
			if err == nil {
				return res
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: no node applied it", what)
		return fsm.Result{}
	}
	const agents = 24
	var tokens [][]byte
	for i := range agents {
		th := sha256.Sum256([]byte(fmt.Sprint("agent token ", i)))
		tokens = append(tokens, th[:])
		if r := apply("grant", fsm.Envelope{Type: fsm.CmdCapGrant, Auth: root, Payload: fsm.Encode(&fsm.CapGrant{
			TokenHash: th[:], Entity: fmt.Sprintf("agent-%02d", i), Ops: []string{"kv.put"}, Resources: []string{"orders/*"}})}); r.Decision != fsm.DecisionPermit {
			t.Fatalf("grant: %+v", r)
		}
	}
	base := `forbid(principal, action, resource) when { resource.path like "orders/locked/*" };`
	apply("base", fsm.Envelope{Type: fsm.CmdPolicySet, Auth: root, Payload: fsm.Encode(&fsm.PolicySet{Name: "base", Text: base, Mode: fsm.PolicyActive})})
	start := apply("start", fsm.Envelope{Type: fsm.CmdEvolveStart, Auth: root, Payload: fsm.Encode(&fsm.EvolveStart{Name: "base",
		Text: base + "\n" + `forbid(principal, action, resource) when { resource.path like "orders/*" };`, Steps: []int64{50, 100}, WindowNs: int64(2 * time.Second), MinShadow: 10})})
	if start.Decision != fsm.DecisionPermit {
		t.Fatalf("start: %+v", start)
	}
	id := start.ID
	phase := func() string {
		var p string
		c.anyNode().Read(func(l *fsm.Ledger, _ uint64) {
			if e := l.State().Evolution(id); e != nil {
				p = e.Phase
			}
		})
		return p
	}
	killed, resumes := false, 0
	deadline := time.Now().Add(60 * time.Second)
	for round := 0; ; round++ {
		for i, th := range tokens {
			n := c.node(c.names[(round+i)%len(c.names)])
			if n == nil {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, _ = n.Apply(cctx, fsm.Envelope{Type: fsm.CmdSyscall, Auth: th, Payload: fsm.Encode(&fsm.Syscall{Op: "kv.put", Resource: fmt.Sprint("orders/", i), Args: []byte("v")})})
			cancel()
		}
		p := phase()
		if p == fsm.PhaseCanary && !killed {
			leader := c.waitLeader(10 * time.Second)
			c.kill(leader)
			killed = true
			c.waitLeader(20 * time.Second)
			c.start(leader)
		}
		if p == fsm.PhasePaused && resumes < 3 {
			// A window the kill or the machine's load left with too few
			// canary decisions is inconclusive; a human resumes it.
			resumes++
			apply("resume", fsm.Envelope{Type: fsm.CmdEvolveResume, Auth: root, Payload: fsm.Encode(&fsm.EvolveRef{ID: id})})
			continue
		}
		if p != fsm.PhaseShadow && p != fsm.PhaseCanary {
			if !killed || p != fsm.PhaseRolledBack {
				t.Fatalf("the evolution ended %s (leader killed: %v)", p, killed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the evolution is stuck at %s", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.requireConverged(30 * time.Second)
	for _, n := range c.live() {
		n.Read(func(l *fsm.Ledger, _ uint64) {
			e := l.State().Evolution(id)
			v := e.Verdicts[len(e.Verdicts)-1]
			if e.Phase != fsm.PhaseRolledBack || v.Verdict != fsm.VerdictFailed || v.Metrics[0].Name != fsm.MetricDenyRate {
				t.Errorf("%s: %s, last verdict %+v", n.Name(), e.Phase, v)
			}
		})
	}
}
