package kernel

import (
	"errors"
	"maps"
	"slices"
	"syscall"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

// gatedCommands are the commands whose events are gate decisions.
var gatedCommands = map[fsm.CommandType]bool{
	fsm.CmdSyscall: true, fsm.CmdKVPut: true, fsm.CmdKVGet: true, fsm.CmdKVDelete: true, fsm.CmdKVCAS: true, fsm.CmdBusReceive: true,
}

// measurement is what one publish reads from the ledger state.
type measurement struct {
	trust                         map[string]int64
	withBaseline, deviating       int64
	pendingEffects, pendingOutbox int64
}

func (c *cortexNode) measure(now int64) measurement {
	m := measurement{trust: map[string]int64{}}
	c.n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		for _, e := range st.Effects {
			if e.Status == fsm.EffectPending {
				m.pendingEffects++
			}
		}
		if st.Fed != nil {
			for _, e := range st.Fed.Outbox {
				if e.Status == fsm.BusStatePending {
					m.pendingOutbox++
				}
			}
		}
		if st.Sense == nil {
			return
		}
		names := map[string]bool{}
		for _, cp := range st.Caps {
			if cp.Entity != "" {
				names[cp.Entity] = true
			}
		}
		sorted := slices.Sorted(maps.Keys(names))
		if len(sorted) > cortexMaxEntities {
			sorted = sorted[:cortexMaxEntities]
		}
		for _, e := range sorted {
			if t := st.Sense.Trust(e); t.Known {
				m.trust[e] = t.Milli
			}
			if r := st.Sense.Deviation(e, now); r.Known {
				m.withBaseline++
				if r.Score > 0 {
					m.deviating++
				}
			}
		}
	})
	return m
}

var errScanDone = errors.New("scan done")

// scanDecisions counts the gate decisions and denials of the events after
// seq from, up to the archive's last event; it returns the last seq
// examined.
func (c *cortexNode) scanDecisions(from uint64) (decided, denied int64, last uint64) {
	_, archived := c.n.arch.Last()
	last = max(from, archived)
	if archived <= from {
		return 0, 0, last
	}
	start := from + 1
	if archived-from > cortexMaxScanEvents {
		start = archived - cortexMaxScanEvents + 1
	}
	err := c.n.arch.Iterate(start, func(rec archive.Record) error {
		if rec.Seq > archived {
			return errScanDone
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil {
			return err
		}
		if ev := ae.Event; ev != nil && gatedCommands[ev.Type] {
			switch ev.Decision {
			case fsm.DecisionPermit, fsm.DecisionEscalate:
				decided++
			case fsm.DecisionDeny:
				decided++
				denied++
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errScanDone) {
		c.n.log.Debug("cortex: reading the ledger archive", "err", err)
	}
	return decided, denied, last
}

// diskPressure is the data directory's filesystem use in basis points.
func diskPressure(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Blocks == 0 {
		return 0
	}
	return int64((st.Blocks - min(st.Bavail, st.Blocks)) * 10000 / st.Blocks)
}

func basisPoints(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	return min(10000, part*10000/whole)
}
