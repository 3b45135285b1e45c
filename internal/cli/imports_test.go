package cli

import (
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/dominus-kernel/dominus"

// serverImportRules name, for each server package of the module, the only
// files of package cli (test files aside) that may import it, and why.
// Every other command talks to a kernel through client and api alone, as
// agents do. The lists are exact: a listed file that no longer imports the
// package fails too, so the list shrinks with the code.
var serverImportRules = []struct {
	pkg   string
	files []string
	why   string
}{
	{"fsm", []string{
		"audit.go",        // audit replay and witness replay a ledger offline
		"snapshotfile.go", // snapshot inspect, and the file checks of save and restore
		"version.go",      // version names the ledger protocols this binary implements
	}, "only offline commands decode ledgers and snapshot files; a client command takes limits and signing messages from api"},
	{"kernel", []string{
		"agent.go", // agent runs a kernel node
	}, "only agent runs a kernel"},
}

// importsOf returns the module packages each non-test Go file in dir
// imports, by file name.
func importsOf(t *testing.T, dir string) map[string][]string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]string)
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		out[filepath.Base(name)] = paths
	}
	return out
}

// importViolations checks imports (file name to import paths) against
// serverImportRules.
func importViolations(imports map[string][]string) []string {
	var bad []string
	for _, r := range serverImportRules {
		pkg := module + "/" + r.pkg
		for _, file := range slices.Sorted(maps.Keys(imports)) {
			uses := slices.ContainsFunc(imports[file], func(p string) bool {
				return p == pkg || strings.HasPrefix(p, pkg+"/")
			})
			listed := slices.Contains(r.files, file)
			switch {
			case uses && !listed:
				bad = append(bad, file+" imports "+r.pkg+": "+r.why)
			case !uses && listed:
				bad = append(bad, file+" is listed as importing "+r.pkg+" but does not: remove it from the list")
			}
		}
		for _, file := range r.files {
			if _, ok := imports[file]; !ok {
				bad = append(bad, file+" is listed as importing "+r.pkg+" but does not exist")
			}
		}
	}
	return bad
}

// TestServerImports fails if a file of the CLI other than those listed in
// serverImportRules imports fsm or kernel.
func TestServerImports(t *testing.T) {
	imports := importsOf(t, ".")
	if len(imports) < 20 {
		t.Fatalf("only %d Go files found; is the test looking in the right place?", len(imports))
	}
	for _, b := range importViolations(imports) {
		t.Error(b)
	}
}

// TestServerImportsCatch shows the check fails where it should.
func TestServerImportsCatch(t *testing.T) {
	ok := map[string][]string{
		"audit.go":        {"fmt", module + "/fsm", module + "/audit"},
		"snapshotfile.go": {module + "/fsm"},
		"version.go":      {module + "/fsm"},
		"agent.go":        {module + "/kernel"},
		"kv.go":           {module + "/api", module + "/client"},
	}
	if bad := importViolations(ok); len(bad) != 0 {
		t.Errorf("allowed imports reported: %v", bad)
	}
	tests := []struct {
		name   string
		change func(map[string][]string)
	}{
		{"client command imports fsm", func(m map[string][]string) { m["kv.go"] = append(m["kv.go"], module+"/fsm") }},
		{"client command imports an fsm subpackage", func(m map[string][]string) { m["kv.go"] = append(m["kv.go"], module+"/fsm/sub") }},
		{"client command imports kernel", func(m map[string][]string) { m["kv.go"] = append(m["kv.go"], module+"/kernel") }},
		{"listed file stops importing fsm", func(m map[string][]string) { m["snapshotfile.go"] = nil }},
		{"listed file is gone", func(m map[string][]string) { delete(m, "agent.go") }},
	}
	for _, tt := range tests {
		m := make(map[string][]string)
		for k, v := range ok {
			m[k] = slices.Clone(v)
		}
		tt.change(m)
		if bad := importViolations(m); len(bad) != 1 {
			t.Errorf("%s: got %d violations, want 1: %v", tt.name, len(bad), bad)
		}
	}
}
