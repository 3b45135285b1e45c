package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// MaxCheckpoints bounds the checkpoints one replay checks.
const MaxCheckpoints = 1 << 20

// LoadCheckpoints reads every signed checkpoint file (*.note) in dir, as
// the transparency service stores them (tlog.CheckpointDir under a data
// folder). A missing dir holds none.
func LoadCheckpoints(dir string) ([][]byte, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoints: %w", err)
	}
	var out [][]byte
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".note") {
			continue
		}
		if len(out) == MaxCheckpoints {
			return nil, fmt.Errorf("audit: more than %d checkpoints in %s", MaxCheckpoints, dir)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("audit: checkpoints: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}

// heldCheckpoint is a checkpoint waiting for the replay to reach its size.
type heldCheckpoint struct {
	note []byte
	c    tlog.Checkpoint
}

// holdCheckpoints parses checkpoints (signatures are checked when the
// replay reaches each one's size, against the member keys the ledger
// holds then) and sorts them by size. One that does not parse fails the
// replay at seq 0... at the first seq, naming it.
func (r *run) holdCheckpoints(notes [][]byte) error {
	for i, n := range notes {
		text, _, err := tlog.SplitNote(n)
		if err == nil {
			var c tlog.Checkpoint
			if c, err = tlog.ParseCheckpoint(text); err == nil {
				r.held = append(r.held, heldCheckpoint{note: n, c: c})
				continue
			}
		}
		return r.fail(1, fmt.Sprintf("checkpoint %d does not parse: %v", i+1, err))
	}
	sort.SliceStable(r.held, func(i, j int) bool { return r.held[i].c.Size < r.held[j].c.Size })
	return nil
}

// grow appends event seq (its head, its ledger time) to the replay's
// tree and checks the checkpoints of that size. A history that does not
// start at seq 1 builds no tree.
func (r *run) grow(seq uint64, head []byte, t int64, st *fsm.State) error {
	if r.tree == nil || r.tree.Size()+1 != seq {
		r.tree = nil
		return nil
	}
	r.tree.Append(head)
	for len(r.held) > 0 && r.held[0].c.Size <= seq {
		h := r.held[0]
		r.held = r.held[1:]
		if h.c.Size < seq {
			continue // below where this replay's tree started
		}
		if err := checkCheckpoint(h, r.tree, head, t, st); err != nil {
			return r.fail(seq, err.Error())
		}
		r.checked++
	}
	return nil
}

// checkCheckpoint checks one checkpoint against the replayed history at
// its size: kernel, root, head and time, and a signature by a member key
// the ledger holds at that seq.
func checkCheckpoint(h heldCheckpoint, tree *tlog.Tree, head []byte, t int64, st *fsm.State) error {
	c := h.c
	root, err := tree.Root(c.Size)
	if err != nil {
		return err
	}
	switch {
	case c.KernelID != st.Meta.KernelID:
		return fmt.Errorf("checkpoint at %d names kernel %s, this ledger is %s", c.Size, c.KernelID, st.Meta.KernelID)
	case !bytes.Equal(root, c.Root):
		return fmt.Errorf("checkpoint at %d signs root %x, the history's tree has %x: this history was rewritten", c.Size, c.Root, root)
	case !bytes.Equal(head, c.Head):
		return fmt.Errorf("checkpoint at %d signs head %x, the history has %x: this history was rewritten", c.Size, c.Head, head)
	case t != c.Time:
		return fmt.Errorf("checkpoint at %d signs ledger time %d, the event has %d", c.Size, c.Time, t)
	}
	var lines []string
	for _, m := range st.SortedMembers() {
		if len(m.PubKey) == ed25519.PublicKeySize {
			k, err := tlog.VerifierKey(tlog.KeyName(st.Meta.KernelID), m.PubKey)
			if err != nil {
				return err
			}
			lines = append(lines, k)
		}
	}
	keys, err := tlog.ParseKeys(strings.Join(lines, "\n"))
	if err != nil {
		return fmt.Errorf("checkpoint at %d: the ledger holds no member key to check it: %v", c.Size, err)
	}
	if _, err := tlog.Open(h.note, keys); err != nil {
		return fmt.Errorf("checkpoint at %d is not signed by a member key the ledger holds at that seq: %v", c.Size, err)
	}
	return nil
}

// checkpointsBeyond fails a complete replay that ends before a
// checkpoint's size: a truncated history.
func (r *run) checkpointsBeyond() error {
	if len(r.held) == 0 || r.failure != nil {
		return nil
	}
	last := r.held[len(r.held)-1].c.Size
	if r.tree == nil || r.tree.Size() >= last {
		return nil
	}
	return r.fail(r.tree.Size()+1, fmt.Sprintf("history ends at seq %d but a checkpoint signs %d events: this history was truncated", r.tree.Size(), last))
}
