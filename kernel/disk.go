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
