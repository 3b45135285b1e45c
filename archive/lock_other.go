//go:build !unix

package archive

// lockDir is a no-op where flock is unavailable; Dominus runs on Unix.
func lockDir(dir string) (release func() error, err error) {
	return func() error { return nil }, nil
}
