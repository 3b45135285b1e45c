package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Type says whether an op is an invocation or which kind of completion.
type Type string

// The op types.
const (
	Invoke Type = "invoke"
	OK     Type = "ok"   // completed; the answer is in the op
	Fail   Type = "fail" // certainly not applied
	Info   Type = "info" // unknown: may have been applied, now or later
)

// Op is one line of a history file. Invocations carry the inputs (F, Key,
// Value, Expect, ExpectAbsent, Node, RequestID); completions repeat them
// and add the answer.
type Op struct {
	Index   int    `json:"index"`
	Process int    `json:"process"`
	Type    Type   `json:"type"`
	F       string `json:"f"`
	Time    int64  `json:"time"` // nanoseconds since the run's start, monotonic

	Key          string `json:"key,omitempty"`
	Value        string `json:"value,omitempty"`  // the value written (write, cas)
	Expect       string `json:"expect,omitempty"` // cas: the expected value
	ExpectAbsent bool   `json:"expect_absent,omitempty"`
	Node         string `json:"node,omitempty"` // the node the request was sent to
	RequestID    string `json:"request_id,omitempty"`
	// CapID is the capability a syscall used or a revoke targets (in the
	// invocation), or the one a grant created (in its completion).
	CapID string `json:"cap_id,omitempty"`
	// Limit is the use limit a grant asks for (0: unlimited).
	Limit int64 `json:"limit,omitempty"`

	Found     bool   `json:"found,omitempty"`     // read / cas: the key existed
	Result    string `json:"result,omitempty"`    // read: the value; cas: the current value on a mismatch
	Succeeded bool   `json:"succeeded,omitempty"` // cas: the swap happened
	Seq       uint64 `json:"seq,omitempty"`       // ledger seq of the answer
	Duplicate bool   `json:"duplicate,omitempty"` // the ledger answered a retried request id
	// LedgerTime is the ledger time of the answer (Unix ns).
	LedgerTime int64 `json:"ledger_time,omitempty"`
	// Decision and Reason are the gate's answer (permit, deny, ...; PERMIT,
	// DENY in histories recorded from earlier kernels) where the op is a
	// gated call; a ledgered refusal is a Fail with its Seq.
	Decision string `json:"decision,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Completed reports whether t is a completion type.
func (t Type) Completed() bool { return t == OK || t == Fail || t == Info }

// Clock is a monotonic clock that reads nanoseconds since its start.
type Clock struct{ start time.Time }

// NewClock starts a clock now.
func NewClock() *Clock { return &Clock{start: time.Now()} }

// Now returns nanoseconds since the clock started (monotonic).
func (c *Clock) Now() int64 { return int64(time.Since(c.start)) }

// Start is the wall-clock time at which the clock read zero.
func (c *Clock) Start() time.Time { return c.start }

// Recorder appends ops to a history. It is safe for concurrent use;
// ops get their index and time under one lock, so the file is ordered.
type Recorder struct {
	mu    sync.Mutex
	clock *Clock
	w     *bufio.Writer
	enc   *json.Encoder
	ops   []Op
	open  map[int]int // process -> index of its outstanding invocation
	err   error
}

// NewRecorder returns a recorder that writes JSON lines to w (nil: keep in
// memory only).
func NewRecorder(clock *Clock, w io.Writer) *Recorder {
	r := &Recorder{clock: clock, open: map[int]int{}}
	if w != nil {
		r.w = bufio.NewWriterSize(w, 1<<16)
		r.enc = json.NewEncoder(r.w)
	}
	return r
}

// ErrProcessBusy is returned when a process invokes while an invocation
// of it is outstanding.
var ErrProcessBusy = errors.New("history: process already has an outstanding invocation")

// Invoke records an invocation and returns it with its index and time.
func (r *Recorder) Invoke(op Op) (Op, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, busy := r.open[op.Process]; busy {
		return op, fmt.Errorf("%w (process %d)", ErrProcessBusy, op.Process)
	}
	op.Type = Invoke
	r.append(&op)
	r.open[op.Process] = op.Index
	return op, r.err
}

// Complete records the completion of the process's outstanding
// invocation. op.Type must be OK, Fail or Info.
func (r *Recorder) Complete(op Op) (Op, error) {
	if !op.Type.Completed() {
		return op, fmt.Errorf("history: completion of type %q", op.Type)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.open[op.Process]; !ok {
		return op, fmt.Errorf("history: process %d completes without an invocation", op.Process)
	}
	delete(r.open, op.Process)
	r.append(&op)
	return op, r.err
}

func (r *Recorder) append(op *Op) {
	op.Index = len(r.ops)
	op.Time = r.clock.Now()
	if n := len(r.ops); n > 0 && op.Time < r.ops[n-1].Time {
		op.Time = r.ops[n-1].Time
	}
	r.ops = append(r.ops, *op)
	if r.enc != nil && r.err == nil {
		r.err = r.enc.Encode(op)
	}
}

// Flush writes buffered lines out.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil && r.err == nil {
		r.err = r.w.Flush()
	}
	return r.err
}

// Ops returns a copy of the ops recorded so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Outstanding returns the number of invocations without a completion.
func (r *Recorder) Outstanding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.open)
}

// Read reads a history file.
func Read(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Decode(f)
}

// Decode reads JSON lines of ops.
func Decode(rd io.Reader) ([]Op, error) {
	var ops []Op
	dec := json.NewDecoder(bufio.NewReaderSize(rd, 1<<16))
	for {
		var op Op
		err := dec.Decode(&op)
		if errors.Is(err, io.EOF) {
			return ops, nil
		}
		if err != nil {
			return nil, fmt.Errorf("history: op %d: %w", len(ops), err)
		}
		ops = append(ops, op)
	}
}

// Write writes ops as JSON lines.
func Write(w io.Writer, ops []Op) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range ops {
		if err := enc.Encode(&ops[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Pair is an invocation and its completion. An invocation that never
// completed gets an Info completion at End.
type Pair struct {
	Invoke   Op
	Complete Op
}

// Type is the completion's type.
func (p Pair) Type() Type { return p.Complete.Type }

// Start and End are the invocation and completion times.
func (p Pair) Start() int64 { return p.Invoke.Time }

// End is the completion time.
func (p Pair) End() int64 { return p.Complete.Time }

// Pairs matches every invocation with the next op of its process, in
// invocation order. Ops must be in file order. An invocation without a
// completion is paired with a synthetic Info completion at the last op's
// time. It is an error for a process to invoke twice without completing,
// or to complete without invoking.
func Pairs(ops []Op) ([]Pair, error) {
	open := map[int]int{} // process -> index into pairs
	var pairs []Pair
	var last int64
	for _, op := range ops {
		if op.Time > last {
			last = op.Time
		}
		switch {
		case op.Type == Invoke:
			if i, busy := open[op.Process]; busy {
				return nil, fmt.Errorf("history: op %d: process %d invokes while op %d is outstanding", op.Index, op.Process, pairs[i].Invoke.Index)
			}
			open[op.Process] = len(pairs)
			pairs = append(pairs, Pair{Invoke: op})
		case op.Type.Completed():
			i, ok := open[op.Process]
			if !ok {
				return nil, fmt.Errorf("history: op %d: process %d completes without an invocation", op.Index, op.Process)
			}
			delete(open, op.Process)
			pairs[i].Complete = op
		default:
			return nil, fmt.Errorf("history: op %d: unknown type %q", op.Index, op.Type)
		}
	}
	procs := make([]int, 0, len(open))
	for p := range open {
		procs = append(procs, p)
	}
	sort.Ints(procs)
	for _, p := range procs {
		i := open[p]
		c := pairs[i].Invoke
		c.Type, c.Time, c.Index, c.Error = Info, last, -1, "no completion recorded"
		pairs[i].Complete = c
	}
	return pairs, nil
}

// Counts tallies completions by type.
type Counts struct {
	OK, Fail, Info int
}

// Count tallies the completions of pairs.
func Count(pairs []Pair) Counts {
	var c Counts
	for _, p := range pairs {
		switch p.Type() {
		case OK:
			c.OK++
		case Fail:
			c.Fail++
		default:
			c.Info++
		}
	}
	return c
}
