package kernel

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/hashicorp/raft"
)

func (n *Node) registerRPC() {
	n.rpcHandlers = map[string]rpcHandler{
		rpcIdentify: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			init := false
			n.fsm.read(func(l *fsm.Ledger, _ uint64) { init = l.State().Initialized })
			return fsm.Encode(&identifyResponse{Name: n.cfg.Name, BindAddr: n.cfg.BindAddr, HasState: n.hasConfiguration(), Initialized: init,
				NodeKey: n.NodePublicKey(), BusAddr: n.cfg.BusAddr}), nil
		},
		rpcFedSecrets: n.serveSecrets,
		rpcFedSign:    n.serveSign,
		rpcJoin: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req joinRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			if n.tls != nil && peer != req.Name {
				return nil, fmt.Errorf("join refused: certificate names %q, request claims %q", peer, req.Name)
			}
			if n.raft.State() != raft.Leader {
				return nil, ErrNotLeader
			}
			if err := n.admitJoin(req); err != nil {
				n.log.Warn("join refused", "id", req.Name, "address", req.BindAddr, "err", err)
				return nil, err
			}
			if err := n.checkJoinerProtocol(ctx, req.Name, req.BindAddr); err != nil {
				return nil, err
			}
			add, kind := n.raft.AddVoter, "voter"
			if req.NonVoter {
				add, kind = n.raft.AddNonvoter, "non-voter"
			}
			if err := add(raft.ServerID(req.Name), raft.ServerAddress(req.BindAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
				return nil, err
			}
			n.log.Info("added "+kind, "id", req.Name, "address", req.BindAddr)
			return nil, nil
		},
		rpcApply: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req applyRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			res, idx, err := n.applyForwarded(ctx, req.Envelope)
			if err != nil {
				return nil, err
			}
			return fsm.Encode(&applyResponse{Result: toWire(res), Index: idx}), nil
		},
		rpcReadIndex: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			if n.raft.State() != raft.Leader {
				return nil, ErrNotLeader
			}
			idx, err := n.reads.index(ctx) // one leadership check serves every follower asking meanwhile
			if err != nil {
				return nil, err
			}
			return fsm.Encode(&readIndexResponse{Index: idx}), nil
		},
		rpcArchiveRange: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req archiveRangeRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			if req.MaxRecords <= 0 || req.MaxRecords > 4096 {
				req.MaxRecords = 4096
			}
			var resp archiveRangeResponse
			size := 0
			stop := errors.New("page full")
			err := n.arch.IterateIndex(req.FromIndex+1, func(r archive.Record) error {
				if r.Index > req.ToIndex || len(resp.Records) >= req.MaxRecords || size > 32<<20 {
					return stop
				}
				size += len(r.Data)
				resp.Records = append(resp.Records, archiveRecord{Index: r.Index, Seq: r.Seq, Kind: uint8(r.Kind), Data: r.Data})
				return nil
			})
			if err != nil && !errors.Is(err, stop) {
				return nil, err
			}
			return fsm.Encode(&resp), nil
		},
		rpcClock: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			return fsm.Encode(&clockResponse{Time: n.now().UnixNano()}), nil
		},
		rpcRemovePeer: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req peerRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			return nil, n.removePeerLocal(req.ID)
		},
		rpcProtocol: n.serveProtocol,
		rpcAddPeer: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req addPeerRPC
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			return nil, n.addPeerLocal(ctx, req)
		},
		rpcTransfer: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req peerRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			return nil, n.transferLocal(req.ID)
		},
	}
	if !n.cfg.noApplyBatch {
		n.rpcHandlers[rpcApplyBatch] = func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			return n.serveApplyBatch(ctx, body)
		}
	}
}

func (n *Node) removePeerLocal(id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	return n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error()
}

func (n *Node) transferLocal(id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if id == "" {
		return n.raft.LeadershipTransfer().Error()
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return n.raft.LeadershipTransferToServer(s.ID, s.Address).Error()
		}
	}
	return fmt.Errorf("no server %q in the configuration", id)
}

// onLeader runs a leader-only admin action here or on the leader.
func (n *Node) onLeader(ctx context.Context, method, id string, local func(string) error) error {
	if n.raft.State() == raft.Leader {
		return local(id)
	}
	leader := n.leaderAddr()
	if leader == "" {
		return ErrNoLeader
	}
	return n.pool.call(ctx, leader, method, &peerRequest{ID: id}, nil)
}

// RemovePeer removes a server from the configuration (via the leader).
func (n *Node) RemovePeer(ctx context.Context, id string) error {
	return n.onLeader(ctx, rpcRemovePeer, id, n.removePeerLocal)
}

// TransferLeadership hands leadership to id, or to any follower.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.onLeader(ctx, rpcTransfer, id, n.transferLocal)
}

// RaftSnapshot takes a Raft snapshot of this node's ledger now and lets
// Raft compact its log behind it, keeping TrailingLogs entries. A node
// that has applied nothing takes none and describes its last one (Taken
// false).
func (n *Node) RaftSnapshot() (api.RaftSnapshotResponse, error) {
	res := api.RaftSnapshotResponse{Node: n.cfg.Name}
	f := n.raft.Snapshot()
	switch err := f.Error(); {
	case err == nil:
		meta, rc, err := f.Open()
		if err != nil {
			return res, fmt.Errorf("open the snapshot just taken: %w", err)
		}
		_ = rc.Close()
		res.Index, res.Term, res.Taken = meta.Index, meta.Term, true
	case errors.Is(err, raft.ErrNothingNewToSnapshot):
		res.Index, res.Term = n.lastSnapshot()
	default:
		return res, fmt.Errorf("raft snapshot: %w", err)
	}
	var err error
	if res.FirstLogIndex, err = n.store.FirstIndex(); err != nil {
		return res, err
	}
	if res.LastLogIndex, err = n.store.LastIndex(); err != nil {
		return res, err
	}
	return res, nil
}

// lastSnapshot is the index and term of the last Raft snapshot this node
// took or installed (0, 0 for none).
func (n *Node) lastSnapshot() (index, term uint64) {
	st := n.raft.Stats()
	index, _ = strconv.ParseUint(st["last_snapshot_index"], 10, 64)
	term, _ = strconv.ParseUint(st["last_snapshot_term"], 10, 64)
	return index, term
}
