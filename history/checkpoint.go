package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/fsm"
)

// A checkpoint file, DIR/NNNNNNNNNNNNNNNNNNNN.ckpt named for its seq:
// the magic "DHC1", the Raft index of the event's archive record (8 bytes,
// big endian), then the ledger snapshot (fsm.Ledger.Snapshot: the state
// body with its digest and head). Written to a temporary name, fsynced,
// renamed, and the directory fsynced.
const (
	ckptMagic  = "DHC1"
	ckptSuffix = ".ckpt"
)

// checkpoint is one checkpoint file on disk.
type checkpoint struct {
	seq   uint64
	index uint64 // Raft index of event seq's archive record
	path  string
	size  int64
}

func ckptName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, ckptSuffix) }

// listCheckpoints returns dir's checkpoint files, oldest first (their
// contents are not read). Leftover temporary files are removed.
func listCheckpoints(dir string) ([]checkpoint, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []checkpoint
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		base, ok := strings.CutSuffix(name, ckptSuffix)
		if !ok || len(base) != 20 {
			continue
		}
		seq, err := strconv.ParseUint(base, 10, 64)
		if err != nil || seq == 0 {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, checkpoint{seq: seq, path: filepath.Join(dir, name), size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// writeCheckpoint writes l's state (at event seq, archived under index)
// durably and returns its file.
func writeCheckpoint(dir string, index uint64, l *fsm.Ledger) (checkpoint, error) {
	seq := l.State().Seq
	snap := l.Snapshot()
	if snap == nil {
		return checkpoint{}, errors.New("the state is too large for a checkpoint")
	}
	b := make([]byte, 0, len(ckptMagic)+8+len(snap))
	b = append(b, ckptMagic...)
	b = binary.BigEndian.AppendUint64(b, index)
	b = append(b, snap...)
	path := filepath.Join(dir, ckptName(seq))
	f, err := os.CreateTemp(dir, ckptName(seq)+".*.tmp")
	if err != nil {
		return checkpoint{}, err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return checkpoint{}, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return checkpoint{seq: seq, index: index, path: path, size: int64(len(b))}, nil
}

// errCheckpoint marks a checkpoint that cannot be used: unreadable,
// corrupt, or not matching the chain.
var errCheckpoint = errors.New("checkpoint refused")

// loadCheckpoint reads c into a fresh ledger and verifies it: the
// snapshot's digest (fsm.Ledger.Restore), its seq against the file name,
// and its head against want, the archived head of event c.seq.
func loadCheckpoint(c *checkpoint, want []byte) (*fsm.Ledger, error) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errCheckpoint, c.path, err)
	}
	if len(b) < len(ckptMagic)+8 || string(b[:len(ckptMagic)]) != ckptMagic {
		return nil, fmt.Errorf("%w: %s: not a checkpoint file", errCheckpoint, c.path)
	}
	index := binary.BigEndian.Uint64(b[len(ckptMagic):])
	l := fsm.New()
	f, err := l.Restore(b[len(ckptMagic)+8:])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errCheckpoint, c.path, err)
	}
	if f.Head.Seq != c.seq || l.State().Seq != c.seq {
		return nil, fmt.Errorf("%w: %s holds seq %d", errCheckpoint, c.path, f.Head.Seq)
	}
	if string(f.Head.Hash) != string(want) {
		return nil, fmt.Errorf("%w: %s: head %x does not match the chain's %x at seq %d", errCheckpoint, c.path, f.Head.Hash, want, c.seq)
	}
	c.index = index
	return l, nil
}
