package kernel

import (
	"errors"
	"fmt"
	"time"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/canon"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func (n *Node) raftConfig(hlog hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.Name)
	rc.Logger = hlog
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * n.cfg.RaftTimeoutScale) }
	rc.HeartbeatTimeout = scale(500 * time.Millisecond)
	rc.ElectionTimeout = scale(500 * time.Millisecond)
	rc.LeaderLeaseTimeout = scale(250 * time.Millisecond)
	rc.CommitTimeout = 5 * time.Millisecond
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.NoLegacyTelemetry = true
	return rc
}

// checkSealedCanon compares the canon hash sealed in the archived genesis
// with this binary's.
func (n *Node) checkSealedCanon() error {
	rec, err := n.arch.ReadSeq(1)
	if errors.Is(err, archive.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read genesis from archive: %w", err)
	}
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil {
		return fmt.Errorf("decode archived genesis: %w", err)
	}
	env, err := fsm.DecodeEnvelope(ae.Entry)
	if err != nil || env.Type != fsm.CmdGenesis {
		return fmt.Errorf("%w: ledger seq 1 is not a genesis entry", ErrCanon)
	}
	var g fsm.Genesis
	if err := fsm.Decode(env.Payload, &g); err != nil || len(g.CanonHash) != 32 {
		return fmt.Errorf("%w: genesis payload does not decode", ErrCanon)
	}
	var sealed [32]byte
	copy(sealed[:], g.CanonHash)
	if err := canon.CheckSealed(sealed); err != nil {
		return fmt.Errorf("%w: %v", ErrCanon, err)
	}
	return nil
}

func (n *Node) checkStateCanon() error {
	var err error
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		if !st.Initialized {
			return
		}
		var sealed [32]byte
		copy(sealed[:], st.Meta.CanonHash)
		if e := canon.CheckSealed(sealed); e != nil {
			err = fmt.Errorf("%w: %v", ErrCanon, e)
			return
		}
		if e := st.VerifyCanonChain(); e != nil {
			err = fmt.Errorf("%w: the ratified amendment chain does not verify: %v", ErrCanon, e)
		}
	})
	return err
}

// ErrLogTampered is wrapped by the start-up error for a stored Raft log
// entry that differs from the ledger archive.
var ErrLogTampered = errors.New("stored raft log does not match the ledger archive")

// checkLogAgainstArchive compares every stored command entry the archive
// covers with the bytes the archive recorded for it.
func (n *Node) checkLogAgainstArchive() error {
	first, err := n.store.FirstIndex()
	if err != nil {
		return err
	}
	last, err := n.store.LastIndex()
	if err != nil {
		return err
	}
	archLast, _ := n.arch.Last()
	if last > archLast {
		last = archLast
	}
	checked := 0
	for i := first; i != 0 && i <= last; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue
			}
			return fmt.Errorf("%w: read entry %d: %v", ErrLogTampered, i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		rec, err := n.arch.ReadIndex(i)
		if err != nil {
			return fmt.Errorf("%w: entry %d has no archive record: %v", ErrLogTampered, i, err)
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil {
			return fmt.Errorf("%w: archive record for entry %d: %v", ErrLogTampered, i, err)
		}
		if string(ae.Entry) != string(l.Data) {
			return fmt.Errorf("%w: entry %d (ledger seq %d) differs from the archived bytes", ErrLogTampered, i, rec.Seq)
		}
		checked++
	}
	n.log.Info("checked stored raft log against the ledger archive", "entries", checked)
	return nil
}
