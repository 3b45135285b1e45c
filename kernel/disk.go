package kernel

import (
	"fmt"
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/httpedge"
)

// checkDisk refuses writes when the data dir's free space is below the
// configured minimum, before anything reaches the log: a full disk must
// fail writes cleanly, never half-write the log or the archive.
func (n *Node) checkDisk() error {
	if why := n.reserve.full(); why != "" {
		metricInc("disk.full_rejections")
		return &httpedge.Error{Code: api.CodeDiskFull, Msg: "disk full: " + why}
	}
	if need := n.fsm.diskFull.Load(); need != 0 {
		metricInc("disk.full_rejections")
		return &httpedge.Error{Code: api.CodeDiskFull, Msg: fmt.Sprintf("disk full: the ledger archive waits for about %d bytes to record entries already applied; free space in %s", need, n.cfg.DataDir)}
	}
	if n.cfg.MinFreeDiskBytes == 0 {
		return nil
	}
	// One statfs per interval, not per write: the write path is hot and
	// free space does not vanish in half a second.
	now := time.Now().UnixNano()
	if last := n.diskOKAt.Load(); last != 0 && now-last < int64(diskCheckInterval) {
		return nil
	}
	free, err := n.freeDisk()
	if err != nil {
		return err
	}
	if free < n.cfg.MinFreeDiskBytes {
		metricInc("disk.full_rejections")
		return fmt.Errorf("%w (%d bytes free, minimum %d)", ErrDiskFull, free, n.cfg.MinFreeDiskBytes)
	}
	n.diskOKAt.Store(now)
	return nil
}

const diskCheckInterval = 500 * time.Millisecond

// freeDisk is the space free for this process in the data dir.
func (n *Node) freeDisk() (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.cfg.DataDir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", n.cfg.DataDir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// checkDiskFor refuses to take bytes more into the data dir when that
// would leave less than the configured minimum free.
func (n *Node) checkDiskFor(bytes int64) error {
	free, err := n.freeDisk()
	if err != nil {
		return err
	}
	if bytes < 0 || free < uint64(bytes)+n.cfg.MinFreeDiskBytes {
		metricInc("disk.full_rejections")
		return fmt.Errorf("%w (%d bytes free, %d needed and a minimum of %d kept)", ErrDiskFull, free, bytes, n.cfg.MinFreeDiskBytes)
	}
	return nil
}

// diskFullChanged is told by the FSM when an archive append starts
// waiting for disk space (the reserve did not suffice) and when it
// recorded again. While it waits the node takes no writes (checkDisk)
// and a leader hands leadership to a follower whose disk may have room;
// it resumes by itself once space returns.
func (n *Node) diskFullChanged(full bool, need int64, err error) {
	if !full {
		metricGauge("disk.full", 0)
		n.log.Info("disk space is back: the ledger archive recorded the entries that waited; this node takes writes again")
		return
	}
	metricGauge("disk.full", 1)
	metricInc("disk.full_events")
	n.log.Error("the disk is full: the ledger archive cannot record entries this node applied, even with its reserve given up; it takes no writes and answers nothing until space is freed (it retries every second)",
		"need_bytes", need, "data_dir", n.cfg.DataDir, "err", err)
	n.handOverOnce()
}

// DiskFull describes a full disk that holds up this node's archive, or
// "" when there is none.
func (n *Node) DiskFull() string {
	if why := n.reserve.full(); why != "" {
		return why
	}
	if need := n.fsm.diskFull.Load(); need != 0 {
		return fmt.Sprintf("the ledger archive waits for about %d bytes of free space in %s; no writes until it is freed", need, n.cfg.DataDir)
	}
	return ""
}
