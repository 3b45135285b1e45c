package checker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// KV op names (history.Op.F) of a register workload.
const (
	FRead  = "read"
	FWrite = "write"
	FCAS   = "cas"
)

// KVLinearizable checks that the kv ops of the history are linearizable
// per key, each key a register, with porcupine. Acknowledged ops must
// match the model exactly; ops with an unknown outcome (Info) may take
// effect at any time after their invocation, or never; failed ops and
// reads with an unknown outcome are left out (they change nothing).
//
// When the ledgers are final and every replica serves the same events
// (Input.LedgerFinal, identical heads), unknown outcomes are resolved by
// request id: an op absent from the ledger never happened and is left
// out; one present happened (its point in time stays open after its
// invocation), a cas with the outcome the ledger recorded (reason ok:
// swapped; cas_mismatch: not swapped). This only ever adds constraints:
// a ledger that lied about an op would make reads contradict it.
//
// A key whose check does not finish within Timeout makes the verdict
// invalid. On a violation, a porcupine visualization of the offending
// keys is written to Input.Dir.
type KVLinearizable struct {
	Timeout time.Duration // whole check; default 60s
	Workers int           // keys checked in parallel; default 4
}

// Name implements Checker.
func (KVLinearizable) Name() string { return "linearizable" }

// kvInput and kvOutput are porcupine's operation input and output.
type kvInput struct {
	F            string
	Key          string
	Value        string
	Expect       string
	ExpectAbsent bool
}

type kvOutput struct {
	Known     bool // the outcome is known; false: it may or may not have happened
	Found     bool
	Value     string
	Succeeded bool
	// CurrentUnknown: a cas known not to have swapped (from the ledger),
	// without the current value it saw.
	CurrentUnknown bool
}

// register is the model's state of one key.
type register struct {
	Found bool
	Value string
}

func (r register) String() string {
	if !r.Found {
		return "absent"
	}
	return fmt.Sprintf("%q", r.Value)
}

// kvModel is a register per key; Info writes and CAS are
// nondeterministic (they may or may not have happened).
func kvModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			for _, op := range h {
				k := op.Input.(kvInput).Key
				by[k] = append(by[k], op)
			}
			out := make([][]porcupine.Operation, 0, len(by))
			for _, k := range sortedKeys(by) {
				out = append(out, by[k])
			}
			return out
		},
		Init: func() []interface{} { return []interface{}{register{}} },
		Step: func(state, input, output interface{}) []interface{} {
			s, in, out := state.(register), input.(kvInput), output.(kvOutput)
			switch in.F {
			case FRead:
				if !out.Known || (out.Found == s.Found && (!s.Found || out.Value == s.Value)) {
					return []interface{}{s}
				}
				return nil
			case FWrite:
				if !out.Known {
					return []interface{}{s, register{Found: true, Value: in.Value}}
				}
				return []interface{}{register{Found: true, Value: in.Value}}
			case FCAS:
				match := (in.ExpectAbsent && !s.Found) || (!in.ExpectAbsent && s.Found && s.Value == in.Expect)
				next := register{Found: true, Value: in.Value}
				switch {
				case !out.Known && match:
					return []interface{}{s, next}
				case !out.Known:
					return []interface{}{s}
				case out.Succeeded && match:
					return []interface{}{next}
				case !out.Succeeded && !match && (out.CurrentUnknown || (out.Found == s.Found && (!s.Found || out.Value == s.Value))):
					return []interface{}{s}
				}
				return nil
			}
			return nil
		},
		Equal: func(a, b interface{}) bool { return a.(register) == b.(register) },
		DescribeOperation: func(input, output interface{}) string {
			in, out := input.(kvInput), output.(kvOutput)
			res := "?"
			if out.Known && !out.CurrentUnknown {
				res = register{Found: out.Found, Value: out.Value}.String()
			}
			switch in.F {
			case FRead:
				return fmt.Sprintf("read(%s) -> %s", in.Key, res)
			case FWrite:
				if !out.Known {
					return fmt.Sprintf("write(%s, %q) -> ?", in.Key, in.Value)
				}
				return fmt.Sprintf("write(%s, %q)", in.Key, in.Value)
			default:
				exp := fmt.Sprintf("%q", in.Expect)
				if in.ExpectAbsent {
					exp = "absent"
				}
				verdict := "?"
				if out.Known {
					verdict = fmt.Sprintf("%v (current %s)", out.Succeeded, res)
				}
				return fmt.Sprintf("cas(%s, %s -> %q) -> %s", in.Key, exp, in.Value, verdict)
			}
		},
		DescribeState: func(state interface{}) string { return state.(register).String() },
	}
	return nm.ToModel()
}

// ledgerOutcome is what the ledger recorded for a request id.
type ledgerOutcome struct {
	reason string
}

// resolver returns the ledger's outcomes by request id when in's ledgers
// are final and identical on every replica, else nil.
func resolver(in *Input) map[string]ledgerOutcome {
	if !in.LedgerFinal || len(in.Ledgers) == 0 {
		return nil
	}
	ref := in.Ledgers[0]
	for _, l := range in.Ledgers {
		if l.FetchErr != "" || l.Status == nil || ref.Status == nil || l.Status.Head != ref.Status.Head {
			return nil
		}
	}
	out := make(map[string]ledgerOutcome, len(ref.Events))
	for _, ev := range ref.Events {
		if ev.RequestID != "" {
			out[ev.RequestID] = ledgerOutcome{reason: ev.Reason}
		}
	}
	return out
}

// kvStats counts how the history's ops entered the check.
type kvStats struct {
	leftOut, resolvedApplied, resolvedAbsent, unknown int
}

// kvOperations converts the history's kv pairs to porcupine operations,
// resolving unknown outcomes with ledger when it is not nil.
func kvOperations(ps []history.Pair, ledger map[string]ledgerOutcome) (ops []porcupine.Operation, st kvStats) {
	var last int64
	for _, p := range ps {
		last = max(last, p.End())
	}
	end := last + int64(time.Second) // after everything: an open end
	for _, p := range ps {
		in := kvInput{F: p.Invoke.F, Key: p.Invoke.Key, Value: p.Invoke.Value, Expect: p.Invoke.Expect, ExpectAbsent: p.Invoke.ExpectAbsent}
		switch in.F {
		case FRead, FWrite, FCAS:
		default:
			continue
		}
		op := porcupine.Operation{ClientId: p.Invoke.Process, Input: in, Call: p.Start(), Metadata: p.Invoke.RequestID}
		switch p.Type() {
		case history.OK:
			c := p.Complete
			op.Output = kvOutput{Known: true, Found: c.Found, Value: c.Result, Succeeded: c.Succeeded}
			op.Return = p.End()
		case history.Fail:
			st.leftOut++
			continue
		default:
			op.Return = end
			op.Output = kvOutput{}
			if ledger != nil {
				lo, applied := ledger[p.Invoke.RequestID]
				switch {
				case !applied:
					st.resolvedAbsent++
					continue
				case in.F == FWrite:
					op.Output = kvOutput{Known: true}
					st.resolvedApplied++
				case in.F == FCAS && lo.reason == "ok":
					op.Output = kvOutput{Known: true, Succeeded: true}
					st.resolvedApplied++
				case in.F == FCAS && lo.reason == "cas_mismatch":
					op.Output = kvOutput{Known: true, CurrentUnknown: true}
					st.resolvedApplied++
				}
			}
			if in.F == FRead {
				st.leftOut++
				continue
			}
			if !op.Output.(kvOutput).Known {
				st.unknown++
			}
		}
		ops = append(ops, op)
	}
	return ops, st
}

// Check implements Checker.
func (c KVLinearizable) Check(ctx context.Context, in *Input) Verdict {
	ps, bad := pairs(c.Name(), in)
	if bad != nil {
		return *bad
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	workers := c.Workers
	if workers <= 0 {
		workers = 4
	}
	ops, kst := kvOperations(ps, resolver(in))
	model := kvModel()
	byKey := model.Partition(ops)
	deadline := time.Now().Add(timeout)

	type result struct {
		key string
		res porcupine.CheckResult
		ops int
	}
	results := make([]result, len(byKey))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				part := byKey[i]
				key := part[0].Input.(kvInput).Key
				left := time.Until(deadline)
				if left <= 0 || ctx.Err() != nil {
					results[i] = result{key: key, res: porcupine.Unknown, ops: len(part)}
					continue
				}
				results[i] = result{key: key, res: porcupine.CheckOperationsTimeout(model, part, left), ops: len(part)}
			}
		}()
	}
	for i := range byKey {
		next <- i
	}
	close(next)
	wg.Wait()

	var v violations
	var illegal []porcupine.Operation
	var illegalKeys []string
	unknown := 0
	for _, r := range results {
		switch r.res {
		case porcupine.Illegal:
			v.add("key %s (%d ops) is not linearizable", r.key, r.ops)
			illegalKeys = append(illegalKeys, r.key)
		case porcupine.Unknown:
			unknown++
			v.add("key %s (%d ops): check did not finish within %s: unknown counts as failure", r.key, r.ops, timeout)
		}
	}
	sort.Strings(illegalKeys)
	out := v.verdict(c.Name(), fmt.Sprintf("%d ops on %d keys are linearizable (%d failed ops and unknown reads left out; unknown outcomes: %d resolved as applied, %d as never applied by the final ledger, %d left open)",
		len(ops), len(byKey), kst.leftOut, kst.resolvedApplied, kst.resolvedAbsent, kst.unknown))
	out.Stats = map[string]int{"ops": len(ops), "keys": len(byKey), "left_out": kst.leftOut, "resolved_applied": kst.resolvedApplied,
		"resolved_absent": kst.resolvedAbsent, "open_unknown": kst.unknown, "illegal_keys": len(illegalKeys), "unknown_keys": unknown}
	if len(illegalKeys) > 0 && in.Dir != "" {
		bad := map[string]bool{}
		for _, k := range illegalKeys {
			bad[k] = true
		}
		for _, op := range ops {
			if bad[op.Input.(kvInput).Key] {
				illegal = append(illegal, op)
			}
		}
		if path, err := c.visualize(model, illegal, in); err != nil {
			out.Violations = append(out.Violations, "visualization not written: "+err.Error())
		} else {
			out.Artifacts = append(out.Artifacts, path)
		}
	}
	return out
}

// visualize writes porcupine's HTML for ops (the offending keys), with
// the run's faults as annotations.
func (c KVLinearizable) visualize(model porcupine.Model, ops []porcupine.Operation, in *Input) (string, error) {
	res, info := porcupine.CheckOperationsVerbose(model, ops, 30*time.Second)
	if res == porcupine.Ok {
		return "", fmt.Errorf("the offending keys check as linearizable on the second pass")
	}
	var notes []porcupine.Annotation
	for _, f := range in.Faults {
		notes = append(notes, porcupine.Annotation{Tag: "nemesis", Start: f.Start, End: f.End, Description: f.Name, BackgroundColor: "#f4d6d6"})
	}
	info.AddAnnotations(notes)
	path := filepath.Join(in.Dir, "linearizability.html")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := porcupine.Visualize(model, info, f); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}
