package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// A full disk is a state, not a crash. The node keeps a reserve file
// (DATA/disk.reserve, DiskReserveBytes allocated) that it gives up the
// moment a write into the data dir fails for lack of space, so that what
// is in flight — the Raft log entry of a new term, the archive records of
// a committed batch — is recorded after all instead of failing halfway:
// no panic, and no election loop from a leader that cannot write its own
// log. From then on the node is disk-full: it takes no writes (disk_full,
// HTTP 507), status says so, a leader hands leadership to a follower once,
// and when the data dir again has the reserve's size free (plus the
// configured minimum) it takes the reserve back and writes resume.

// DiskReserveBytes is the size of the reserve a node keeps in its data
// dir for finishing in-flight writes when the disk fills; on a small file
// system, an eighth of it.
const DiskReserveBytes = 32 << 20

// reserveSize is DiskReserveBytes, or an eighth of the data dir's file
// system when that is smaller.
func reserveSize(dataDir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dataDir, &st); err == nil {
		if total := int64(st.Blocks) * int64(st.Bsize); total > 0 && total/8 < DiskReserveBytes {
			return total / 8
		}
	}
	return DiskReserveBytes
}

const reserveName = "disk.reserve"

// diskReserve is the reserve file and the node's disk-full state.
type diskReserve struct {
	path string
	size int64

	mu     sync.Mutex
	held   bool      // the reserve file is allocated
	fullAt time.Time // zero: not disk-full
	why    string
}

func newDiskReserve(dataDir string, size int64) *diskReserve {
	return &diskReserve{path: filepath.Join(dataDir, reserveName), size: size}
}

// take allocates the reserve (blocks really allocated); it reports false
// when the disk has no room for it.
func (d *diskReserve) take() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held {
		return true, nil
	}
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, d.size); err != nil {
		_ = f.Truncate(0)
		_ = os.Remove(d.path)
		if errors.Is(err, syscall.ENOSPC) {
			return false, nil
		}
		return false, fmt.Errorf("allocate the disk reserve %s: %w", d.path, err)
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	d.held = true
	return true, nil
}

// release gives the reserve up and marks the node disk-full; it reports
// whether this call made it disk-full (the first failure).
func (d *diskReserve) release(why string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held {
		_ = os.Remove(d.path)
		d.held = false
	}
	if !d.fullAt.IsZero() {
		return false
	}
	d.fullAt, d.why = time.Now(), why
	return true
}

// full is the disk-full description, "" when the node is not.
func (d *diskReserve) full() string {
	if d == nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fullAt.IsZero() {
		return ""
	}
	return d.why
}

func (d *diskReserve) clear() {
	d.mu.Lock()
	d.fullAt, d.why = time.Time{}, ""
	d.mu.Unlock()
}

// isNoSpace reports whether err is a write that failed for lack of space
// (raft-boltdb does not always wrap the errno; its text says it).
func isNoSpace(err error) bool {
	return err != nil && (errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device"))
}

// spaceLogStore is the Raft log store with the reserve behind it: a write
// that fails for lack of space gives the reserve up and is tried again.
type spaceLogStore struct {
	raft.LogStore
	onNoSpace func(err error) // gives the reserve up; set by the node
}

func (s *spaceLogStore) StoreLog(l *raft.Log) error {
	err := s.LogStore.StoreLog(l)
	if isNoSpace(err) {
		s.onNoSpace(err)
		err = s.LogStore.StoreLog(l)
	}
	return err
}

func (s *spaceLogStore) StoreLogs(ls []*raft.Log) error {
	err := s.LogStore.StoreLogs(ls)
	if isNoSpace(err) {
		s.onNoSpace(err)
		err = s.LogStore.StoreLogs(ls)
	}
	return err
}

// noSpace is told that a write into the data dir failed for lack of
// space: the reserve is given up (so the write can be retried) and, the
// first time, the node becomes disk-full.
func (n *Node) noSpace(err error) {
	if n.reserve == nil {
		return
	}
	if !n.reserve.release(fmt.Sprintf("the data dir %s filled up (%v); this node takes no writes until %d bytes are free there again", n.cfg.DataDir, err, n.reserve.size+int64(n.cfg.MinFreeDiskBytes))) {
		return
	}
	metricGauge("disk.full", 1)
	metricInc("disk.full_events")
	n.log.Error("the disk is full: this node gave up its reserve to finish the writes in flight and takes no writes until space is freed; free space in the data dir (it resumes by itself)",
		"data_dir", n.cfg.DataDir, "needed_free_bytes", n.reserve.size+int64(n.cfg.MinFreeDiskBytes), "err", err)
	n.handOverOnce()
	n.wg.Add(1)
	go n.watchForSpace()
}

// handOverOnce: a disk-full leader hands leadership to a follower whose
// disk may have room (once; if it is elected again it stays and refuses
// writes, rather than move the term on and on).
func (n *Node) handOverOnce() {
	if n.raft == nil || n.raft.State() != raft.Leader || len(n.raft.GetConfiguration().Configuration().Servers) < 2 {
		return
	}
	go func() {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("disk full: could not hand over leadership", "err", err)
			return
		}
		n.log.Info("disk full: handed over leadership")
	}()
}

// watchForSpace waits until the data dir has room for the reserve again,
// takes it back, and ends the disk-full state.
func (n *Node) watchForSpace() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		free, err := n.freeDisk()
		if err != nil || free < uint64(n.reserve.size)+n.cfg.MinFreeDiskBytes {
			continue
		}
		if ok, err := n.reserve.take(); err != nil || !ok {
			continue
		}
		if n.fsm.diskFull.Load() != 0 {
			continue // the archive still waits; it retries every second
		}
		n.reserve.clear()
		metricGauge("disk.full", 0)
		n.log.Info("disk space is back: the reserve is taken again and this node takes writes")
		return
	}
}
