package kernel

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/hashicorp/raft"
)

// formCluster bootstraps (with BootstrapExpect) or joins (with Join).
func (n *Node) formCluster() {
	if n.cfg.BootstrapExpect == 0 && len(n.cfg.Join) == 0 {
		n.log.Info("no bootstrap-expect and no join addresses: waiting to be added by an existing cluster")
		return
	}
	backoff := 200 * time.Millisecond
	for attempt := 0; attempt < 100_000; attempt++ {
		if n.ctx.Err() != nil {
			return
		}
		if n.hasConfiguration() {
			return
		}
		done, err := n.tryFormCluster()
		if done {
			return
		}
		if err != nil && attempt%10 == 0 {
			n.log.Info("forming cluster", "attempt", attempt, "status", err.Error())
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff = backoff * 3 / 2
		}
	}
}

func (n *Node) hasConfiguration() bool {
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

func (n *Node) tryFormCluster() (bool, error) {
	type peer struct{ name, addr string }
	peers := []peer{{n.cfg.Name, n.cfg.BindAddr}}
	var formed []string
	for _, addr := range n.cfg.Join {
		if addr == n.cfg.BindAddr {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		var id identifyResponse
		err := n.pool.call(ctx, addr, rpcIdentify, struct{}{}, &id)
		cancel()
		if err != nil {
			continue
		}
		if id.HasState {
			formed = append(formed, addr)
			continue
		}
		peers = append(peers, peer{id.Name, id.BindAddr})
	}
	if len(formed) > 0 {
		// A cluster exists: ask it to add us.
		for _, addr := range formed {
			if err := n.requestJoin(addr); err == nil {
				n.log.Info("joined existing cluster", "via", addr)
				return true, nil
			}
		}
		return false, errors.New("a cluster exists but no member accepted the join yet")
	}
	if n.cfg.BootstrapExpect == 0 {
		return false, errors.New("no existing cluster reachable to join")
	}
	if len(peers) < n.cfg.BootstrapExpect {
		return false, fmt.Errorf("found %d of %d expected servers", len(peers), n.cfg.BootstrapExpect)
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].name < peers[j].name })
	var conf raft.Configuration
	for _, p := range peers[:n.cfg.BootstrapExpect] {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.name), Address: raft.ServerAddress(p.addr), Suffrage: raft.Voter})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return false, err
	}
	n.log.Info("bootstrapped cluster", "servers", len(conf.Servers))
	return true, nil
}

func (n *Node) requestJoin(addr string) error {
	for hop := 0; hop < 3; hop++ {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.pool.call(ctx, addr, rpcJoin, &joinRequest{Name: n.cfg.Name, BindAddr: n.cfg.BindAddr, NonVoter: n.cfg.NonVoter, JoinSecret: n.cfg.JoinSecret}, nil)
		cancel()
		var re *rpcError
		if errors.As(err, &re) && re.Code == api.CodeNoLeader && re.Leader != "" && re.Leader != addr {
			addr = re.Leader
			continue
		}
		return err
	}
	return errors.New("join: no leader answered")
}
