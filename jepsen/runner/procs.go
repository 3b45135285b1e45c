package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/cluster"
	"github.com/dominus-kernel/dominus/jepsen/nemesis"
)

// procs adapts a cluster to nemesis.Processes.
type procs struct{ c *cluster.Cluster }

func (p procs) node(name string) (*cluster.Node, error) {
	if n := p.c.Node(name); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("no node %q", name)
}

func (p procs) Names() []string { return nodeNames(p.c) }

// nodeNames lists c's node names in node order (nil when it has none).
func nodeNames(c *cluster.Cluster) []string {
	var out []string
	for _, n := range c.Nodes() {
		out = append(out, n.Name)
	}
	return out
}

func (p procs) IP(name string) string {
	if n := p.c.Node(name); n != nil {
		return n.IP
	}
	return ""
}

func (p procs) Leader(ctx context.Context) string {
	if n := p.c.Leader(ctx); n != nil {
		return n.Name
	}
	return ""
}

func (p procs) do(name string, f func(*cluster.Node) error) error {
	n, err := p.node(name)
	if err != nil {
		return err
	}
	return f(n)
}

func (p procs) Kill(name string) error { return p.do(name, p.c.Kill) }
func (p procs) Start(name string, off time.Duration) error {
	return p.do(name, func(n *cluster.Node) error { return p.c.Start(n, off) })
}
func (p procs) Stop(name string) error {
	return p.do(name, func(n *cluster.Node) error { return p.c.Stop(n, 10*time.Second) })
}
func (p procs) Pause(name string) error  { return p.do(name, p.c.Pause) }
func (p procs) Resume(name string) error { return p.do(name, p.c.Resume) }
func (p procs) Running(name string) bool {
	n := p.c.Node(name)
	return n != nil && p.c.Running(n)
}
func (p procs) Paused(name string) bool {
	n := p.c.Node(name)
	return n != nil && p.c.Paused(n)
}
func (p procs) ClockOffset(name string) time.Duration {
	if n := p.c.Node(name); n != nil {
		return p.c.ClockOffset(n)
	}
	return 0
}

// The membership kind (nemesis.Members).

func (p procs) RemovePeer(ctx context.Context, name string) error {
	return p.c.RemovePeer(ctx, name, 20*time.Second)
}
func (p procs) Wipe(name string) error {
	return p.do(name, func(n *cluster.Node) error {
		_, err := p.c.Wipe(n)
		return err
	})
}
func (p procs) StartJoining(name string) error { return p.do(name, p.c.StartJoining) }
func (p procs) WaitMember(ctx context.Context, name string, limit time.Duration) error {
	return p.c.WaitMember(ctx, name, limit)
}

// The snapshot-lag kind (nemesis.Snapshots).

func (p procs) RaftLog(ctx context.Context, name string) (nemesis.RaftLog, error) {
	n, err := p.node(name)
	if err != nil {
		return nemesis.RaftLog{}, err
	}
	st, err := p.c.Status(ctx, n)
	if err != nil {
		return nemesis.RaftLog{}, err
	}
	return nemesis.RaftLog{Applied: st.AppliedIndex, LastLog: st.LastLogIndex, LastSnapshot: st.LastSnapshotIndex}, nil
}

func (p procs) Snapshot(ctx context.Context, name string) (nemesis.RaftLog, error) {
	n, err := p.node(name)
	if err != nil {
		return nemesis.RaftLog{}, err
	}
	r, err := p.c.RaftSnapshot(ctx, n)
	if err != nil {
		return nemesis.RaftLog{}, err
	}
	return nemesis.RaftLog{Applied: r.Index, LastLog: r.LastLogIndex, LastSnapshot: r.Index, FirstLog: r.FirstLogIndex}, nil
}

// fedProcs adapts the federation's kernels to nemesis.FedProcesses.
type fedProcs struct{ r *fedRun }

func (p fedProcs) find(name string) (*cluster.Cluster, *cluster.Node) {
	for _, k := range p.r.order {
		if n := p.r.kernels[k].Node(name); n != nil {
			return p.r.kernels[k], n
		}
	}
	return nil, nil
}

func (p fedProcs) DomainNodes(domain string) []string {
	if c := p.r.kernels[domain]; c != nil {
		return nodeNames(c)
	}
	return nil
}

func (p fedProcs) IP(name string) string {
	if _, n := p.find(name); n != nil {
		return n.IP
	}
	return ""
}

func (p fedProcs) DomainLeader(ctx context.Context, domain string) string {
	if c := p.r.kernels[domain]; c != nil {
		if n := c.Leader(ctx); n != nil {
			return n.Name
		}
	}
	return ""
}

func (p fedProcs) Kill(name string) error {
	c, n := p.find(name)
	if n == nil {
		return fmt.Errorf("no node %q", name)
	}
	return c.Kill(n)
}

func (p fedProcs) Start(name string) error {
	c, n := p.find(name)
	if n == nil {
		return fmt.Errorf("no node %q", name)
	}
	return c.Start(n, 0)
}

func (p fedProcs) Running(name string) bool {
	c, n := p.find(name)
	return n != nil && c.Running(n)
}
