package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

// StartJoining starts n's agent without --bootstrap-expect and with only
// the other nodes in --join: a node without state then asks the existing
// cluster to add it as a voter, and can never bootstrap a cluster of its
// own.
func (c *Cluster) StartJoining(n *Node) error { return c.start(n, 0, false, true) }

// Wipe moves n's data dir aside (to DataDir.wiped-K, kept with the run's
// data for forensics), so its next start has no state. n must not run.
func (c *Cluster) Wipe(n *Node) (string, error) {
	if c.Running(n) {
		return "", fmt.Errorf("cluster: wipe %s: its process still runs", n.Name)
	}
	if _, err := os.Stat(n.DataDir); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	for k := 1; k < 1000; k++ {
		aside := fmt.Sprintf("%s.wiped-%d", n.DataDir, k)
		if _, err := os.Stat(aside); errors.Is(err, os.ErrNotExist) {
			if err := os.Rename(n.DataDir, aside); err != nil {
				return "", fmt.Errorf("cluster: wipe %s: %w", n.Name, err)
			}
			return aside, nil
		}
	}
	return "", fmt.Errorf("cluster: wipe %s: too many wiped data dirs", n.Name)
}

// RemovePeer removes the server named id from the Raft configuration
// the way an operator does, `dominus operator raft remove-peer ID` with
// the root token, through any other node that answers (the kernel
// forwards it to the leader), retrying up to limit. It returns once a
// leader reports a configuration without id.
func (c *Cluster) RemovePeer(ctx context.Context, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for attempt := 0; ; attempt++ {
		for _, n := range c.nodes {
			if n.Name == id || !c.Running(n) || c.Paused(n) {
				continue
			}
			out, errOut, code := c.CLI(ctx, n.Name, "operator", "raft", "remove-peer", id, "--json", "--timeout", "3s")
			if code == 0 {
				var r struct {
					OK bool `json:"ok"`
				}
				if err := json.Unmarshal([]byte(out), &r); err != nil || !r.OK {
					return fmt.Errorf("cluster: operator raft remove-peer %s printed %q", id, out)
				}
				return c.waitConfig(ctx, id, false, time.Until(deadline))
			}
			last = fmt.Sprintf("via %s: exit %d: %s", n.Name, code, strings.TrimSpace(errOut+out))
			// An answer lost after the change was committed: the
			// configuration tells.
			if in, ok := c.inConfig(ctx, id); ok && !in {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: remove-peer %s did not succeed within %s: %s", id, limit, last)
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
	}
}

// inConfig reports whether the leader's configuration holds id as a
// voter; ok is false when no leader answered.
func (c *Cluster) inConfig(ctx context.Context, id string) (in, ok bool) {
	l := c.Leader(ctx)
	if l == nil {
		return false, false
	}
	s, err := c.Status(ctx, l)
	if err != nil || s.RaftState != "Leader" {
		return false, false
	}
	return isVoter(s.Peers, id), true
}

func isVoter(ps []api.Peer, id string) bool {
	for _, p := range ps {
		if p.ID == id && p.Suffrage == "Voter" {
			return true
		}
	}
	return false
}

// waitConfig polls until a leader reports id in (or out of) its
// configuration, up to limit.
func (c *Cluster) waitConfig(ctx context.Context, id string, want bool, limit time.Duration) error {
	deadline := time.Now().Add(max(limit, time.Second))
	for {
		if in, ok := c.inConfig(ctx, id); ok && in == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: the leader's configuration still does not show %s as %s", id, map[bool]string{true: "a voter", false: "removed"}[want])
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// WaitMember polls until the node named id is a voter in the leader's
// configuration and in its own, knows the leader, has applied what it
// committed, and its head has reached the leader's head as read just
// before (caught up), up to limit.
func (c *Cluster) WaitMember(ctx context.Context, id string, limit time.Duration) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("cluster: no node %q", id)
	}
	deadline := time.Now().Add(limit)
	why := "no answer yet"
	for {
		l := c.Leader(ctx)
		var ls, ns *api.Status
		var err error
		switch {
		case l == nil:
			why = "no leader"
		case l == n:
			// It leads again: it is a voter, and a leader's head is the head.
			if ls, err = c.Status(ctx, l); err == nil && isVoter(ls.Peers, id) {
				return nil
			}
			why = "it reports itself leader but not a voter"
		default:
			if ls, err = c.Status(ctx, l); err != nil {
				why = "leader: " + err.Error()
				break
			}
			if ns, err = c.Status(ctx, n); err != nil {
				why = err.Error()
				break
			}
			switch {
			case !isVoter(ls.Peers, id):
				why = "not a voter in the leader's configuration"
			case !isVoter(ns.Peers, id):
				why = "not a voter in its own configuration"
			case ns.Leader == "":
				why = "knows no leader"
			case ns.AppliedIndex < ns.CommitIndex:
				why = fmt.Sprintf("applied %d of %d committed", ns.AppliedIndex, ns.CommitIndex)
			case ns.Head.Seq < ls.Head.Seq:
				why = fmt.Sprintf("head %d behind the leader's %d", ns.Head.Seq, ls.Head.Seq)
			default:
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: %s is not a caught-up voter within %s: %s", id, limit, why)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}
