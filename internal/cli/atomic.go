package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic makes path hold exactly what fill writes, or leaves it
// untouched: fill writes a temporary file in path's folder, which is
// fsynced and renamed over path, and the folder is fsynced. fill may read
// back what it wrote (to verify it) before returning; an error from fill
// removes the temporary file. The file is created 0600: exports and
// snapshots carry the kernel's data.
func writeFileAtomic(path string, fill func(f *os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("%q names a folder, not a file", path)
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmpPath := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpPath)
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmpPath, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpPath, err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmpPath, path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("fsync folder %s after writing %s: %w", dir, base, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	if cerr := d.Close(); serr == nil {
		serr = cerr
	}
	// Some file systems cannot fsync a directory; the rename is then as
	// durable as they make it.
	if errors.Is(serr, os.ErrInvalid) {
		return nil
	}
	return serr
}
