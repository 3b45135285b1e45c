package transparency

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// CheckpointDir is where a node keeps its checkpoints, under its data dir.
const CheckpointDir = tlog.CheckpointDir

// store keeps signed checkpoints, one file per tree size.
type store struct {
	dir    string
	mu     sync.Mutex
	latest []byte // the note of the largest size, nil when none
	size   uint64
}

func openStore(dataDir string) (*store, error) {
	s := &store{dir: filepath.Join(dataDir, CheckpointDir)}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("transparency: %w", err)
	}
	sizes, err := ListCheckpoints(s.dir)
	if err != nil {
		return nil, err
	}
	if len(sizes) > 0 {
		last := sizes[len(sizes)-1]
		b, err := os.ReadFile(s.path(last))
		if err != nil {
			return nil, fmt.Errorf("transparency: %w", err)
		}
		s.latest, s.size = b, last
	}
	return s, nil
}

func (s *store) path(size uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d.note", size))
}

// ListCheckpoints returns the tree sizes of the checkpoint files in dir,
// ascending.
func ListCheckpoints(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("transparency: %w", err)
	}
	var sizes []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".note")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(name, 10, 64); err == nil {
			sizes = append(sizes, n)
		}
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	return sizes, nil
}

// put stores a note of size (replacing one of the same size: a later
// signature, or more of them), durably.
func (s *store) put(size uint64, note []byte) error {
	if len(note) > tlog.MaxCheckpointBytes {
		return fmt.Errorf("transparency: checkpoint of %d bytes", len(note))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeFileSync(s.path(size), note); err != nil {
		return fmt.Errorf("transparency: store checkpoint %d: %w", size, err)
	}
	if size >= s.size {
		s.latest, s.size = append([]byte(nil), note...), size
	}
	return nil
}

// get returns the note of size, or nil.
func (s *store) get(size uint64) []byte {
	b, err := os.ReadFile(s.path(size))
	if err != nil {
		return nil
	}
	return b
}

// last returns the latest note and its size.
func (s *store) last() ([]byte, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest, s.size
}

// lastWhere returns the note of the largest size for which ok holds, or
// nil.
func (s *store) lastWhere(ok func(note []byte) bool) []byte {
	sizes, err := ListCheckpoints(s.dir)
	if err != nil {
		return nil
	}
	for i := len(sizes) - 1; i >= 0; i-- {
		if b := s.get(sizes[i]); b != nil && ok(b) {
			return b
		}
	}
	return nil
}
