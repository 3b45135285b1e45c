package detcheck

import (
	"fmt"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fixtureDir is the root of the fixture module (module "fixture").
const fixtureDir = "testdata/src"

// site is where a violation is expected: file base name, line and rule.
type site struct {
	file string
	line int
	rule string
}

func (s site) String() string { return fmt.Sprintf("%s:%d %s", s.file, s.line, s.rule) }

func sitesOf(vs []Violation) []site {
	out := make([]site, 0, len(vs))
	for _, v := range vs {
		out = append(out, site{filepath.Base(v.Pos.Filename), v.Pos.Line, v.Rule})
	}
	return out
}

// checkDirty loads the dirty fixture once for the tests that read it.
var checkDirty = sync.OnceValues(func() ([]Violation, error) {
	return Check(fixtureDir, "./dirty")
})

func dirtyViolations(t *testing.T) []Violation {
	t.Helper()
	vs, err := checkDirty()
	if err != nil {
		t.Fatalf("Check(./dirty): %v", err)
	}
	return vs
}

// TestDirtyFixtureExactViolations asserts that the checker reports exactly
// one violation on each offending line of testdata/src/dirty, with the
// right rule, and nothing else.
func TestDirtyFixtureExactViolations(t *testing.T) {
	imp := func(line int) site { return site{"dirty.go", line, RuleForbiddenImport} }
	fn := func(line int) site { return site{"dirty.go", line, RuleForbiddenFunc} }
	mr := func(line int) site { return site{"dirty.go", line, RuleMapRange} }
	want := []site{
		imp(6),                            // crypto/rand
		imp(8),                            // hash/maphash
		imp(9),                            // io/fs
		imp(10),                           // io/ioutil
		imp(12),                           // math/rand
		imp(13),                           // math/rand/v2
		imp(14),                           // net
		imp(15),                           // net/http
		imp(16),                           // os
		imp(17),                           // os/exec
		imp(18),                           // os/signal
		imp(20),                           // plugin
		imp(21),                           // runtime
		imp(22),                           // runtime/debug
		imp(24),                           // syscall
		imp(26),                           // unsafe
		fn(30),                            // t.Now() through the alias t
		fn(31),                            // f := t.Now, a function value
		fn(33),                            // t.Since
		fn(34),                            // t.Until
		fn(35),                            // t.After
		fn(36),                            // t.AfterFunc
		fn(37),                            // t.Tick
		fn(38),                            // t.NewTicker
		fn(39),                            // t.NewTimer
		fn(40),                            // t.Sleep
		fn(41),                            // t.LoadLocation
		fn(42),                            // t.Local, a variable
		fn(47),                            // fmt.Scan
		fn(48),                            // fmt.Scanf
		fn(49),                            // fmt.Scanln
		fn(50),                            // filepath.Abs
		fn(51),                            // filepath.EvalSymlinks
		fn(52),                            // filepath.Glob
		mr(57),                            // range over a map, no comment
		mr(61),                            // range over a map, marker on the line above without a reason
		mr(64),                            // maps.Keys outside slices.Sorted
		mr(65),                            // range over maps.All
		{"dirty.go", 68, RuleAllowUnused}, // marker above no map iteration
		mr(75),                            // range over a named map type
		mr(82),                            // range over a type parameter with a map core type
		mr(89),                            // slices.Sorted(maps.Values(m)) of floats
		mr(102),                           // second map iteration under one marker
		{"dirty.go", 94, RuleGoroutine},
		{"dirty.go", 95, RuleSelect},
		{"dot.go", 6, RuleForbiddenFunc}, // Now() through a dot import
	}

	vs := dirtyViolations(t)
	for _, v := range vs {
		t.Log(v)
	}
	got := sitesOf(vs)
	for _, w := range want {
		if n := countSite(got, w); n != 1 {
			t.Errorf("want exactly one violation at %v, got %d", w, n)
		}
	}
	for _, g := range got {
		if countSite(want, g) == 0 {
			t.Errorf("unexpected violation at %v", g)
		}
	}
}

func countSite(ss []site, s site) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// TestDirtyFixtureDetails asserts that violation details name the
// offending symbol, import or type, so a failing build says what to fix.
func TestDirtyFixtureDetails(t *testing.T) {
	vs := dirtyViolations(t)
	cases := []struct {
		file string
		line int
		want string
	}{
		{"dirty.go", 6, `import "crypto/rand"`},
		{"dirty.go", 30, "time.Now"},
		{"dirty.go", 31, "time.Now"},
		{"dirty.go", 42, "time.Local"},
		{"dirty.go", 57, "range over map[string]int"},
		{"dirty.go", 57, `"// detcheck:ordered <reason>"`},
		{"dirty.go", 61, "gives no reason"},
		{"dirty.go", 64, "maps.Keys"},
		{"dirty.go", 75, "range over Counts"},
		{"dirty.go", 82, "range over M"},
		{"dirty.go", 89, "maps.Values"},
		{"dot.go", 6, "time.Now"},
	}
	for _, c := range cases {
		i := slices.IndexFunc(vs, func(v Violation) bool {
			return filepath.Base(v.Pos.Filename) == c.file && v.Pos.Line == c.line
		})
		if i < 0 {
			t.Errorf("%s:%d: no violation", c.file, c.line)
			continue
		}
		if !strings.Contains(vs[i].Detail, c.want) {
			t.Errorf("%s:%d: detail %q does not contain %q", c.file, c.line, vs[i].Detail, c.want)
		}
	}
}

// TestDefaultConfigFullyExercised asserts that every forbidden import and
// function of DefaultConfig is caught somewhere in the dirty fixture, so
// the fixture really does break each default rule.
func TestDefaultConfigFullyExercised(t *testing.T) {
	vs := dirtyViolations(t)
	cfg := DefaultConfig()
	for _, pattern := range cfg.ForbiddenImports {
		found := slices.ContainsFunc(vs, func(v Violation) bool {
			path, ok := strings.CutPrefix(v.Detail, "import ")
			if v.Rule != RuleForbiddenImport || !ok {
				return false
			}
			path = path[1 : strings.Index(path[1:], `"`)+1]
			return importForbidden([]string{pattern}, path)
		})
		if !found {
			t.Errorf("forbidden import %q is not exercised by the dirty fixture", pattern)
		}
	}
	for _, fn := range cfg.ForbiddenFuncs {
		found := slices.ContainsFunc(vs, func(v Violation) bool {
			return v.Rule == RuleForbiddenFunc && strings.HasPrefix(v.Detail, fn+" ")
		})
		if !found {
			t.Errorf("forbidden func %q is not exercised by the dirty fixture", fn)
		}
	}
}

// TestCleanFixtureHasNoViolations asserts that deterministic code using
// time.Duration, time.Unix, sorted map keys, allow comments with reasons
// and look-alike symbol names is not flagged.
func TestCleanFixtureHasNoViolations(t *testing.T) {
	vs, err := Check(fixtureDir, "./clean")
	if err != nil {
		t.Fatalf("Check(./clean): %v", err)
	}
	for _, v := range vs {
		t.Errorf("unexpected violation: %v", v)
	}
}

// TestCheckWithUsesOnlyTheGivenConfig asserts that CheckWith applies the
// caller's lists rather than the defaults, and that without an allow
// marker every map iteration is a violation.
func TestCheckWithUsesOnlyTheGivenConfig(t *testing.T) {
	cfg := Config{ForbiddenImports: []string{"time"}, ForbiddenFuncs: []string{"time.Unix"}}
	vs, err := CheckWith(cfg, fixtureDir, "./clean")
	if err != nil {
		t.Fatalf("CheckWith(./clean): %v", err)
	}
	for _, v := range vs {
		t.Log(v)
	}
	want := []site{
		{"clean.go", 13, RuleForbiddenImport},
		{"clean.go", 23, RuleForbiddenFunc},
		{"clean.go", 27, RuleForbiddenFunc},
		{"clean.go", 34, RuleMapRange},
		{"clean.go", 43, RuleMapRange},
		{"clean.go", 89, RuleForbiddenFunc},
	}
	if got := sitesOf(vs); !slices.Equal(got, want) {
		t.Errorf("sites = %v, want %v", got, want)
	}
}

// TestViolationsSortedAndStable asserts that violations come back sorted by
// position and identical across runs.
func TestViolationsSortedAndStable(t *testing.T) {
	first := dirtyViolations(t)
	if !slices.IsSortedFunc(first, compareViolations) {
		t.Errorf("violations are not sorted by position")
	}
	again, err := Check(fixtureDir, "./dirty")
	if err != nil {
		t.Fatalf("Check(./dirty): %v", err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Errorf("two runs differ:\n%v\n%v", first, again)
	}
}

// TestCheckRefusesWhatItCannotSee asserts that load failures, type errors
// and empty pattern matches are errors, never a clean result.
func TestCheckRefusesWhatItCannotSee(t *testing.T) {
	cases := []struct {
		name     string
		patterns []string
		want     string
	}{
		{"type error", []string{"./broken"}, "broken"},
		{"missing directory", []string{"./nosuch"}, "nosuch"},
		{"no match", []string{"fixture/nosuch/..."}, "match no packages"},
		{"no patterns", nil, "no package patterns"},
		{"one bad among good", []string{"./clean", "./broken"}, "broken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs, err := Check(fixtureDir, c.patterns...)
			if err == nil {
				t.Fatalf("Check(%q) = %v, nil; want an error", c.patterns, vs)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if vs != nil {
				t.Errorf("violations returned alongside an error: %v", vs)
			}
		})
	}
}

func TestInvalidConfigIsRejected(t *testing.T) {
	cases := []Config{
		{ForbiddenImports: []string{""}},
		{ForbiddenImports: []string{"/..."}},
		{ForbiddenImports: []string{" os"}},
		{ForbiddenFuncs: []string{"Now"}},
		{ForbiddenFuncs: []string{"time."}},
		{ForbiddenFuncs: []string{".Now"}},
		{ForbiddenFuncs: []string{"time.Now/x"}},
		{AllowComment: "// detcheck:ordered"},
		{AllowComment: " detcheck:ordered"},
	}
	for _, cfg := range cases {
		if _, err := CheckWith(cfg, fixtureDir, "./clean"); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("CheckWith(%+v) error = %v, want an invalid-config error", cfg, err)
		}
	}
	if err := DefaultConfig().validate(); err != nil {
		t.Errorf("DefaultConfig is invalid: %v", err)
	}
}

func TestViolationString(t *testing.T) {
	v := Violation{
		Pos:    token.Position{Filename: "fsm/apply.go", Line: 12, Column: 3},
		Rule:   RuleForbiddenFunc,
		Detail: "time.Now is forbidden in deterministic code",
	}
	const want = "fsm/apply.go:12:3: forbidden-func: time.Now is forbidden in deterministic code"
	if got := v.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseAllow(t *testing.T) {
	const marker = "detcheck:ordered"
	cases := []struct {
		text              string
		isMarker, reasons bool
	}{
		{"// detcheck:ordered keys sorted below", true, true},
		{"//detcheck:ordered keys sorted below", true, true},
		{"// detcheck:ordered: keys sorted below", true, true},
		{"// detcheck:ordered - 2 passes", true, true},
		{"// detcheck:ordered", true, false},
		{"// detcheck:ordered   ", true, false},
		{"// detcheck:ordered: --", true, false},
		{"// detcheck:orderedly sorted", false, false},
		{"// keys sorted; detcheck:ordered", false, false},
		{"/* detcheck:ordered keys sorted */", false, false},
		{"// detcheck:unordered reason", false, false},
	}
	for _, c := range cases {
		isMarker, hasReason := parseAllow(c.text, marker)
		if isMarker != c.isMarker || hasReason != c.reasons {
			t.Errorf("parseAllow(%q) = %v, %v; want %v, %v", c.text, isMarker, hasReason, c.isMarker, c.reasons)
		}
	}
	if isMarker, _ := parseAllow("// detcheck:ordered reason", ""); isMarker {
		t.Errorf("an empty marker matched a comment")
	}
}

func TestImportForbidden(t *testing.T) {
	patterns := []string{"net/...", "os", "math/rand/..."}
	cases := []struct {
		path string
		want bool
	}{
		{"net", true},
		{"net/http", true},
		{"net/http/httptest", true},
		{"network", false},
		{"os", true},
		{"os/exec", false}, // "os" without "/..." is exact
		{"math/rand", true},
		{"math/rand/v2", true},
		{"math", false},
		{"example.com/net", false},
	}
	for _, c := range cases {
		if got := importForbidden(patterns, c.path); got != c.want {
			t.Errorf("importForbidden(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}
