package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Segment file names as the archive writes them: the zero-padded first
// Raft index of the segment and ".seg". archive.Open ignores other files.
const (
	segmentSuffix = ".seg"
	segmentDigits = 20
)

func isSegmentName(name string) bool {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != segmentDigits {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// cloneArchive makes dst a private copy of the archive folder src that
// archive.Open may lock, truncate and prune without touching src. Open
// changes only the last segment (a torn tail is truncated, an empty one
// removed) and opens the segment it then ends with read-write, so the last
// two segments are always copied; the others, only ever read, are
// hard-linked when src and dst share a file system, and copied otherwise.
func cloneArchive(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("audit: list archive %s: %w", src, err)
	}
	var segs []string
	for _, e := range entries {
		if e.Type().IsRegular() && isSegmentName(e.Name()) {
			segs = append(segs, e.Name())
		}
	}
	slices.Sort(segs) // zero-padded: name order is index order, as in archive
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("audit: create working copy: %w", err)
	}
	for i, name := range segs {
		from, to := filepath.Join(src, name), filepath.Join(dst, name)
		if i < len(segs)-2 && os.Link(from, to) == nil {
			continue
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) (err error) {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", from, err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create %s: %w", to, err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("audit: close %s: %w", to, cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("audit: copy %s: %w", from, err)
	}
	return nil
}
