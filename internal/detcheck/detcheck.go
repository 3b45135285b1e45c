package detcheck

import (
	"cmp"
	"errors"
	"fmt"
	"go/token"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Rule names carried in Violation.Rule.
const (
	RuleForbiddenImport = "forbidden-import" // an import path in Config.ForbiddenImports
	RuleForbiddenFunc   = "forbidden-func"   // a reference to a Config.ForbiddenFuncs symbol
	RuleMapRange        = "map-range"        // iteration in map order without an allow comment
	RuleGoroutine       = "goroutine"        // a go statement
	RuleSelect          = "select"           // a select statement
	RuleAllowUnused     = "allow-unused"     // an allow comment that allows nothing
)

// Violation is one place where checked code can observe something other
// than its inputs.
type Violation struct {
	Pos    token.Position
	Rule   string
	Detail string
}

// String renders v as "file:line:col: rule: detail".
func (v Violation) String() string {
	return fmt.Sprintf("%s: %s: %s", v.Pos, v.Rule, v.Detail)
}

// Config says what the checker forbids.
type Config struct {
	// ForbiddenImports are import paths that may not appear at all, blank
	// and dot imports included. An entry "p" matches exactly p; an entry
	// "p/..." matches p and every path below it, as in go list patterns.
	ForbiddenImports []string

	// ForbiddenFuncs are package-level functions and variables, written
	// "importpath.Name" (e.g. "time.Now", "math/rand/v2.IntN"), that may not
	// be referenced: not called, not taken as a value, under any import
	// name, dot imports included.
	ForbiddenFuncs []string

	// AllowComment is the marker of a line comment that allows one map
	// iteration, e.g. "detcheck:ordered". The comment must start with the
	// marker, sit on the line of the `for` keyword (or of the maps.Keys,
	// maps.Values or maps.All reference) or on the line above, and give a
	// reason after the marker:
	//
	//	// detcheck:ordered keys are sorted before use
	//	for k := range m {
	//
	// A marker without a reason allows nothing. A marker that allows no
	// map iteration is itself a violation (rule "allow-unused"), so stale
	// markers do not accumulate. Empty means no map iteration is allowed.
	AllowComment string
}

// DefaultConfig is the configuration for Dominus's deterministic packages:
// no wall clock, timers or local time zone; no randomness (including the
// per-process seed of hash/maphash); no environment, files, processes,
// signals, network, syscalls, unsafe memory or runtime introspection.
// time itself stays importable for time.Duration and time.Unix, and
// sync/atomic and reflect stay allowed.
func DefaultConfig() Config {
	return Config{
		ForbiddenImports: []string{
			"crypto/rand",
			"hash/maphash",
			"io/fs",
			"io/ioutil",
			"math/rand/...",
			"net/...",
			"os/...",
			"plugin",
			"runtime/...",
			"syscall/...",
			"unsafe",
		},
		ForbiddenFuncs: []string{
			"fmt.Scan", // fmt.Scan* read standard input
			"fmt.Scanf",
			"fmt.Scanln",
			"path/filepath.Abs", // reads the working directory
			"path/filepath.EvalSymlinks",
			"path/filepath.Glob",
			"time.After",
			"time.AfterFunc",
			"time.Local",
			"time.LoadLocation",
			"time.NewTicker",
			"time.NewTimer",
			"time.Now",
			"time.Since",
			"time.Sleep",
			"time.Tick",
			"time.Until",
		},
		AllowComment: "detcheck:ordered",
	}
}

// Check runs CheckWith(DefaultConfig(), dir, patterns...).
func Check(dir string, patterns ...string) ([]Violation, error) {
	return CheckWith(DefaultConfig(), dir, patterns...)
}

// CheckWith loads the non-test packages matched by patterns (go list
// patterns such as "./fsm/..." or "./canon") from the module at dir and
// returns every violation of cfg, sorted by position.
//
// Only the matched packages are checked, symbol by symbol; their
// dependencies are not, so a pattern set must name every package whose
// code runs inside the deterministic boundary. An error is returned, and
// no violations, when cfg is invalid, when the patterns match no package,
// or when any matched package fails to load or type-check: a check that
// cannot see the code must not pass it.
func CheckWith(cfg Config, dir string, patterns ...string) ([]Violation, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(patterns) == 0 {
		return nil, errors.New("detcheck: no package patterns given")
	}
	lc := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedCompiledGoFiles |
			packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir:   dir,
		Tests: false,
	}
	pkgs, err := packages.Load(lc, patterns...)
	if err != nil {
		return nil, fmt.Errorf("detcheck: load %q in %s: %w", patterns, dir, err)
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("detcheck: patterns %q in %s match no packages", patterns, dir)
	}
	var loadErrs []error
	for _, p := range pkgs {
		for _, e := range p.Errors {
			loadErrs = append(loadErrs, fmt.Errorf("%s: %s", p.PkgPath, e))
		}
	}
	if len(loadErrs) > 0 {
		return nil, fmt.Errorf("detcheck: %d package error(s) in %s: %w", len(loadErrs), dir, errors.Join(loadErrs...))
	}

	c := newChecker(cfg)
	for _, p := range pkgs {
		c.checkPackage(p)
	}
	vs := c.violations
	slices.SortFunc(vs, compareViolations)
	return vs, nil
}

func (cfg Config) validate() error {
	for _, imp := range cfg.ForbiddenImports {
		if strings.TrimSuffix(imp, "/...") == "" || strings.TrimSpace(imp) != imp {
			return fmt.Errorf("detcheck: invalid ForbiddenImports entry %q", imp)
		}
	}
	for _, fn := range cfg.ForbiddenFuncs {
		i := strings.LastIndex(fn, ".")
		if i <= 0 || i == len(fn)-1 || strings.Contains(fn[i+1:], "/") || strings.TrimSpace(fn) != fn {
			return fmt.Errorf("detcheck: invalid ForbiddenFuncs entry %q, want \"importpath.Name\"", fn)
		}
	}
	if strings.TrimSpace(cfg.AllowComment) != cfg.AllowComment || strings.HasPrefix(cfg.AllowComment, "//") {
		return fmt.Errorf("detcheck: invalid AllowComment %q, want the bare marker such as \"detcheck:ordered\"", cfg.AllowComment)
	}
	return nil
}

// importForbidden reports whether path matches one of the patterns.
func importForbidden(patterns []string, path string) bool {
	for _, p := range patterns {
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			if path == base || strings.HasPrefix(path, base+"/") {
				return true
			}
		} else if path == p {
			return true
		}
	}
	return false
}

func compareViolations(a, b Violation) int {
	return cmp.Or(
		cmp.Compare(a.Pos.Filename, b.Pos.Filename),
		cmp.Compare(a.Pos.Line, b.Pos.Line),
		cmp.Compare(a.Pos.Column, b.Pos.Column),
		cmp.Compare(a.Rule, b.Rule),
		cmp.Compare(a.Detail, b.Detail),
	)
}
