package kernel

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transport"
)

// replayFedIPs are the fixed loopback addresses of the replay-window
// federation: the sovereign, a, b.
var replayFedIPs = []string{"127.0.0.135", "127.0.0.136", "127.0.0.137"}

// busSender sends hand-made bus.receive frames from a to b, as a's
// shipper would, under a's current passport.
type busSender struct {
	t     testing.TB
	fx    *fedFixture
	addrs []string
	ppID  string
}

func newBusSender(t testing.TB, fx *fedFixture) *busSender {
	s := &busSender{t: t, fx: fx, ppID: fx.a.Status().Passport.ID}
	fx.a.fedState(func(_ *fsm.State, f *fsm.FedState) { s.addrs = f.Peers["b"].BusAddrs })
	return s
}

// send delivers a's event seq to b: a kv.put of resource under the grant
// b gave a's agent.
func (s *busSender) send(seq uint64, resource string) (transport.Ack, error) {
	payload := fsm.Encode(&fsm.BusReceive{Origin: "a", Seq: seq, PassportID: s.ppID, Entity: "agent", Op: "kv.put",
		Resource: resource, Args: []byte("v"), TokenHash: TokenHash(s.fx.grantForA)})
	ack, _, err := s.fx.a.fed.send(context.Background(), "b", s.addrs, transportFrame(seq, s.ppID, payload))
	return ack, err
}

// mustApply sends seq and requires b to apply it now.
func (s *busSender) mustApply(seq uint64) {
	s.t.Helper()
	ack, err := s.send(seq, "orders/pump")
	if err != nil || ack.Status != transport.AckApplied {
		s.t.Fatalf("event %d: %v, status %s, want applied", seq, err, ack.Status)
	}
}

// busReceivesSince counts the Raft entries n applied from index on that
// propose a bus.receive, noops (answered duplicates) included: the
// archive records every applied entry.
func busReceivesSince(t *testing.T, n *Node, index uint64) int {
	t.Helper()
	count := 0
	err := n.arch.IterateIndex(index, func(rec archive.Record) error {
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil {
			return err
		}
		env, err := fsm.DecodeEnvelope(ae.Entry)
		if err != nil {
			return err
		}
		if env.Type == fsm.CmdBusReceive {
			count++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return count
}

// nextIndex is the Raft index after the last one n archived.
func nextIndex(n *Node) uint64 {
	idx, _ := n.arch.Last()
	return idx + 1
}

// busStats reads GET /v1/bus on n.
func busStats(t *testing.T, n *Node, token string) api.BusStats {
	t.Helper()
	var s api.BusStats
	if code := getJSON(t, n, "/v1/bus", token, &s); code != http.StatusOK {
		t.Fatalf("GET /v1/bus on %s: %d", n.Name(), code)
	}
	return s
}

// requireDropped resends seq and requires b to drop it before Raft: the
// answer (an ack, or a refusal wrapping refusal), no new bus.receive
// entry, and the counter one up.
func requireDropped(t *testing.T, s *busSender, b *Node, token string, seq uint64, refusal error) transport.Ack {
	t.Helper()
	before, from := busStats(t, b, token).ReplayDropped, nextIndex(b)
	ack, err := s.send(seq, "orders/replayed")
	switch {
	case refusal == nil && (err != nil || ack.Status != transport.AckDuplicate):
		t.Fatalf("resent event %d: %v, status %s, want answered as a duplicate", seq, err, ack.Status)
	case refusal != nil && !errors.Is(err, refusal):
		t.Fatalf("resent event %d: %v (status %s), want refused with %v", seq, err, ack.Status, refusal)
	}
	if n := busReceivesSince(t, b, from); n != 0 {
		t.Fatalf("resent event %d reached b's Raft log (%d bus.receive entries)", seq, n)
	}
	if after := busStats(t, b, token).ReplayDropped; after != before+1 {
		t.Fatalf("replay_dropped %d after resending event %d, want %d", after, seq, before+1)
	}
	return ack
}

// A resent or replayed bus event that b's ledger applied is dropped
// before Raft (answered with the kept result, or refused once that is no
// longer kept or the event is below the window) and counted; an event
// the ledger has not applied always reaches it, in or out of order; a
// restarted b keeps replays out.
func TestBusReplayWindowDropsAppliedEventsBeforeRaft(t *testing.T) {
	fx := startFederationOpts(t, fedOpts{ips: replayFedIPs})
	// Three real cross-domain calls: seqs 1..3 of the link a→b.
	var ids []string
	for _, k := range []string{"orders/1", "orders/2", "orders/3"} {
		ids = append(ids, remoteCall(t, fx.a, fx.agentA, "kv.put", "b:"+k, "v", fx.grantForA).ID)
	}
	for _, id := range ids {
		if e := waitDelivered(t, fx.a, id); e.Remote.Decision != fsm.DecisionPermit {
			t.Fatalf("event %s: %+v", id, e.Remote)
		}
	}
	s := newBusSender(t, fx)

	// A resend of an applied event: the kept answer, without Raft.
	ack := requireDropped(t, s, fx.b, fx.rootB, 1, nil)
	var res fsm.BusResult
	if err := fsm.Decode(ack.Result, &res); err != nil || res.Decision != fsm.DecisionPermit {
		t.Fatalf("duplicate's answer %+v %v, want the kept permit", res, err)
	}

	// Push the window past seq 1: b applies a's events 4..WindowSize+8.
	last := uint64(transport.WindowSize + 8)
	for seq := uint64(4); seq <= last; seq++ {
		s.mustApply(seq)
	}
	// Below the window: refused as too old, nothing reaches Raft.
	requireDropped(t, s, fx.b, fx.rootB, 1, transport.ErrTooOld)
	// In the window, applied, its answer no longer kept: refused as a replay.
	requireDropped(t, s, fx.b, fx.rootB, last-fsm.MaxInboxRecent-10, transport.ErrReplay)
	// In the window, applied, answer kept: answered as a duplicate.
	requireDropped(t, s, fx.b, fx.rootB, last, nil)

	// Not yet applied: out of order it waits (the ledger answers a gap and
	// the window drops nothing), in order it is applied, each once.
	dropped := busStats(t, fx.b, fx.rootB).ReplayDropped
	from := nextIndex(fx.b)
	if _, err := s.send(last+2, "orders/ahead"); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("event %d ahead of %d: %v, want b unavailable (a sequence gap)", last+2, last+1, err)
	}
	s.mustApply(last + 1)
	s.mustApply(last + 2)
	if n := busReceivesSince(t, fx.b, from); n != 3 {
		t.Fatalf("%d bus.receive entries for the gap, the fill and the retry, want 3", n)
	}
	if d := busStats(t, fx.b, fx.rootB).ReplayDropped; d != dropped {
		t.Fatalf("replay_dropped moved from %d to %d for events the ledger had not applied", dropped, d)
	}

	// A restarted b seeds its window from its ledger: replays stay out.
	b := restartFedNode(t, fx.b)
	fx.b = b
	waitFor(t, "b's window seeded from its ledger", 15*time.Second, func() bool { return b.fed.windows.highest("a") == last+2 })
	requireDropped(t, s, b, fx.rootB, last+2, nil)
	requireDropped(t, s, b, fx.rootB, 2, transport.ErrTooOld)
	s.mustApply(last + 3)
}

// restartFedNode closes a one-node kernel and starts it again on the same
// configuration and data dir, and waits until it leads again.
func restartFedNode(t *testing.T, n *Node) *Node {
	t.Helper()
	cfg := n.cfg
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(cfg)
	if err != nil {
		t.Fatalf("restart %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { again.Close() })
	waitFor(t, cfg.Name+" leads again", 15*time.Second, func() bool { return again.Raft().State() == raft.Leader })
	return again
}
