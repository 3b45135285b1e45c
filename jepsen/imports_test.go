package jepsen

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/dominus-kernel/dominus"

// allowed are the module's packages the harness may import besides its
// own: it talks to the system only as a client.
var allowed = []string{module + "/api", module + "/client", module + "/jepsen"}

// forbidden names the server packages explicitly (they are also outside
// allowed), so a violation says what it is.
var forbidden = []string{"fsm", "kernel", "archive", "audit"}

// importViolations returns "file: import" for every import of src (a Go
// file's text) that leaves the allowed set.
func importViolations(file string, src []byte) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.ImportsOnly)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if path != module && !strings.HasPrefix(path, module+"/") {
			continue
		}
		ok := false
		for _, a := range allowed {
			if path == a || strings.HasPrefix(path, a+"/") {
				ok = true
			}
		}
		if ok {
			continue
		}
		why := "outside api, client and jepsen"
		for _, f := range forbidden {
			if path == module+"/"+f || strings.HasPrefix(path, module+"/"+f+"/") {
				why = "a server package: the checkers must stay independent"
			}
		}
		bad = append(bad, file+": imports "+path+" ("+why+")")
	}
	return bad, nil
}

// TestNoServerImports parses every Go file under jepsen (tests
// included) and fails on an import of fsm, kernel, archive, audit or any
// other package of the module except api and client.
func TestNoServerImports(t *testing.T) {
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "reports" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		bad, err := importViolations(path, src)
		if err != nil {
			return err
		}
		files++
		for _, b := range bad {
			t.Error(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("only %d Go files found under jepsen; is the walk looking in the right place?", files)
	}
	t.Logf("%d Go files import only api, client, jepsen and outside modules", files)
}

// TestImportCheckCatchesServerPackages shows the check fails where it
// should.
func TestImportCheckCatchesServerPackages(t *testing.T) {
	for _, pkg := range []string{"fsm", "kernel", "archive", "audit", "internal/tlsutil", "kernel/sub"} {
		src := []byte("package x\nimport _ \"" + module + "/" + pkg + "\"\n")
		bad, err := importViolations("x.go", src)
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) != 1 {
			t.Errorf("import of %s not reported", pkg)
		}
	}
	src := []byte("package x\nimport (\n\t\"fmt\"\n\t\"" + module + "/api\"\n\t\"" + module + "/client\"\n\t\"" + module + "/jepsen/checker\"\n\t\"github.com/anishathalye/porcupine\"\n)\n")
	if bad, err := importViolations("x.go", src); err != nil || len(bad) != 0 {
		t.Errorf("allowed imports reported: %v %v", bad, err)
	}
}
