package kernel

import (
	"fmt"
	"syscall"
)

// checkDisk refuses writes when the data dir's free space is below the
// configured minimum, before anything reaches the log: a full disk must
// fail writes cleanly, never half-write the log or the archive.
func (n *Node) checkDisk() error {
	if n.cfg.MinFreeDiskBytes == 0 {
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
	return nil
}
