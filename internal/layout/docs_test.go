package layout

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every runbook in docs/operations.md names what exercises it; each test
// file it names exists and defines each test function named after it, so
// a runbook cannot point at a test that is gone.
func TestOperationsRunbooksNameRealTests(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(string(b), "\n## ")[1:]
	if len(sections) < 6 {
		t.Fatalf("docs/operations.md has %d runbooks", len(sections))
	}
	fileRE := regexp.MustCompile("`([a-z0-9_/-]+_test\\.go)`")
	testRE := regexp.MustCompile(`\bTest[A-Za-z0-9_]+`)
	for _, sec := range sections {
		title, _, _ := strings.Cut(sec, "\n")
		at := strings.Index(sec, "Exercised by")
		if at < 0 {
			t.Errorf("runbook %q names nothing that exercises it", title)
			continue
		}
		text := strings.Join(strings.Fields(sec[at:]), " ")
		files := fileRE.FindAllStringSubmatchIndex(text, -1)
		if len(files) == 0 && !strings.Contains(text, "make demo") {
			t.Errorf("runbook %q names no test file", title)
		}
		for i, m := range files {
			path := text[m[2]:m[3]]
			src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path)))
			if err != nil {
				t.Errorf("runbook %q: %v", title, err)
				continue
			}
			end := len(text)
			if i+1 < len(files) {
				end = files[i+1][0]
			}
			for _, name := range testRE.FindAllString(text[m[1]:end], -1) {
				if !strings.Contains(string(src), "func "+name+"(") {
					t.Errorf("runbook %q: %s has no %s", title, path, name)
				}
			}
		}
	}
}
