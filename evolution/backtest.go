package evolution

import (
	"errors"
	"sort"

	"github.com/dominus-kernel/dominus/fsm"
)

// errDone stops an archive walk at its last seq.
var errDone = errors.New("done")

// backtest re-judges the judged syscalls of [from, to] twice from their
// recorded Cedar requests, by the ACTIVE sets in force now and by the
// same sets with the candidate in place of set name, and counts the
// decisions the candidate changes and those it relaxes. It compares the
// candidate with today's policy, not with what history recorded: a
// decision made under an older set, or by an earlier canary, is not the
// candidate's doing.
func (sv *Service) backtest(name, text string, from, to uint64) (fsm.EvolveBacktest, error) {
	out := fsm.EvolveBacktest{From: from, To: to}
	var recs []fsm.PolicyRecord
	var protocol uint16
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		protocol = st.Meta.Protocol
		for _, p := range st.Policies {
			if p.Mode == fsm.PolicyActive {
				recs = append(recs, *p)
			}
		}
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	current, err := compileSets(recs)
	if err != nil {
		return out, err
	}
	replaced := false
	for i := range recs {
		if recs[i].Name == name {
			recs[i].Text, replaced = text, true
		}
	}
	if !replaced {
		recs = append(recs, fsm.PolicyRecord{Name: name, Text: text, Mode: fsm.PolicyActive})
		sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	}
	candidate, err := compileSets(recs)
	if err != nil {
		return out, err
	}
	err = sv.k.ArchivedEvents(from, func(ev *fsm.Event, _ []byte) error {
		if ev.Seq > to {
			return errDone
		}
		switch ev.Type {
		case fsm.CmdSyscall, fsm.CmdGatewaySyscall:
		default:
			return nil
		}
		var d fsm.SyscallDetail
		if len(ev.Detail) == 0 || fsm.Decode(ev.Detail, &d) != nil || !d.Judged {
			return nil
		}
		d.Request.ArgsDigest = d.ArgsDigest // recorded beside the request
		out.Evaluated++
		was := fsm.EvaluatePolicies(current, d.Request, protocol).Decision
		now := fsm.EvaluatePolicies(candidate, d.Request, protocol).Decision
		if was != now {
			out.Changed++
			if strictness(now) < strictness(was) {
				out.Relaxations++
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return out, err
	}
	return out, nil
}

func compileSets(recs []fsm.PolicyRecord) ([]*fsm.CompiledSet, error) {
	var sets []*fsm.CompiledSet
	for _, p := range recs {
		cs, err := fsm.CompilePolicySet(p.Name, fsm.PolicyActive, p.Version, p.Text)
		if err != nil {
			return nil, err
		}
		sets = append(sets, cs)
	}
	return sets, nil
}

// strictness orders decisions as the ledger does: permit < escalate <
// deny; a change to a lower one is a relaxation.
func strictness(d fsm.Decision) int {
	switch d {
	case fsm.DecisionEscalate:
		return 1
	case fsm.DecisionDeny:
		return 2
	}
	return 0
}
