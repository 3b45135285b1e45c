package kernel

import (
	"fmt"
	"syscall"
	"time"
)

// checkDisk refuses writes when the data dir's free space is below the
// configured minimum, before anything reaches the log: a full disk must
// fail writes cleanly, never half-write the log or the archive.
func (n *Node) checkDisk() error {
	if n.cfg.MinFreeDiskBytes == 0 {
		return nil
	}
	// One statfs per interval, not per write: the write path is hot and
	// free space does not vanish in half a second.
	now := time.Now().UnixNano()
	if last := n.diskOKAt.Load(); last != 0 && now-last < int64(diskCheckInterval) {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.cfg.DataDir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", n.cfg.DataDir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < n.cfg.MinFreeDiskBytes {
		metricInc("disk.full_rejections")
		return fmt.Errorf("%w (%d bytes free, minimum %d)", ErrDiskFull, free, n.cfg.MinFreeDiskBytes)
	}
	n.diskOKAt.Store(now)
	return nil
}

const diskCheckInterval = 500 * time.Millisecond
