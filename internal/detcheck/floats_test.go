package detcheck

import (
	"os"
	"path/filepath"
	"testing"
)

// Floats finds a float type, a float literal and a math import, reads
// files of any build tag, and skips tests.
func TestFloatsFindsEveryKind(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", "package p\n\nimport \"math\"\n\nvar x float64 = math.Pi\n")
	write("b.go", "//go:build never\n\npackage p\n\nvar y = 1.5\n")
	write("c.go", "package p\n\nvar z int64 = 3\n")
	write("d_test.go", "package p\n\nvar w float32\n")
	found, files, err := Floats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files != 3 || len(found) != 3 {
		t.Fatalf("%d files, found %q; want 3 files and the import, float64 and 1.5", files, found)
	}
}
