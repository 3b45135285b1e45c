package detcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/tools/go/packages"
)

// mapOrderFuncs return a map's entries in the map's random iteration
// order, so referencing them is map iteration (rule "map-range").
var mapOrderFuncs = map[string]bool{
	"maps.All":                     true,
	"maps.Keys":                    true,
	"maps.Values":                  true,
	"golang.org/x/exp/maps.Keys":   true,
	"golang.org/x/exp/maps.Values": true,
}

// sortedSeqFuncs are the maps iterators whose order slices.Sorted erases:
// slices.Sorted(maps.Keys(m)) is deterministic for non-float elements.
var sortedSeqFuncs = map[string]bool{
	"maps.Keys":   true,
	"maps.Values": true,
}

type checker struct {
	cfg        Config
	funcs      map[string]bool
	violations []Violation
}

func newChecker(cfg Config) *checker {
	funcs := make(map[string]bool, len(cfg.ForbiddenFuncs))
	for _, f := range cfg.ForbiddenFuncs {
		funcs[f] = true
	}
	return &checker{cfg: cfg, funcs: funcs}
}

func (c *checker) report(pos token.Position, rule, format string, args ...any) {
	c.violations = append(c.violations, Violation{Pos: pos, Rule: rule, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) checkPackage(p *packages.Package) {
	for _, f := range p.Syntax {
		c.checkFile(p.Fset, p.Types, p.TypesInfo, f)
	}
}

// allowMarker is one allow comment in a file.
type allowMarker struct {
	pos       token.Position
	hasReason bool
	used      bool
}

func (c *checker) checkFile(fset *token.FileSet, pkg *types.Package, info *types.Info, f *ast.File) {
	// Allow comments by line. A line holds at most one line comment.
	markers := make(map[int]*allowMarker)
	for _, cg := range f.Comments {
		for _, cm := range cg.List {
			isMarker, hasReason := parseAllow(cm.Text, c.cfg.AllowComment)
			if isMarker {
				pos := fset.Position(cm.Slash)
				markers[pos.Line] = &allowMarker{pos: pos, hasReason: hasReason}
			}
		}
	}
	// allowed consumes the first unused marker on pos's line or the line
	// above: ok if it gives a reason, missingReason if it does not. Each
	// marker allows one map iteration.
	allowed := func(pos token.Position) (ok, missingReason bool) {
		for _, line := range []int{pos.Line, pos.Line - 1} {
			if m := markers[line]; m != nil && !m.used {
				m.used = true
				return m.hasReason, !m.hasReason
			}
		}
		return false, false
	}
	mapOrder := func(pos token.Position, what string) {
		ok, missingReason := allowed(pos)
		switch {
		case ok:
		case missingReason:
			c.report(pos, RuleMapRange, "%s visits entries in random map order, and its %q comment gives no reason", what, c.cfg.AllowComment)
		case c.cfg.AllowComment == "":
			c.report(pos, RuleMapRange, "%s visits entries in random map order; iterate sorted keys instead", what)
		default:
			c.report(pos, RuleMapRange, "%s visits entries in random map order; iterate sorted keys, or mark it \"// %s <reason>\"", what, c.cfg.AllowComment)
		}
	}
	qual := types.RelativeTo(pkg)

	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err == nil && importForbidden(c.cfg.ForbiddenImports, path) {
			c.report(fset.Position(imp.Pos()), RuleForbiddenImport, "import %q is forbidden in deterministic code", path)
		}
	}

	// Map iterator references already judged as the argument of slices.Sorted.
	sorted := make(map[*ast.Ident]bool)

	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			key, ok := symbolKey(info.Uses[n])
			if !ok {
				return true
			}
			pos := fset.Position(n.Pos())
			if c.funcs[key] {
				c.report(pos, RuleForbiddenFunc, "%s is forbidden in deterministic code", key)
			}
			if mapOrderFuncs[key] && !sorted[n] {
				mapOrder(pos, key)
			}
		case *ast.CallExpr:
			if inner := sortedMapSeq(info, n); inner != nil {
				sorted[inner] = true
			}
		case *ast.RangeStmt:
			if t := info.TypeOf(n.X); t != nil && rangesOverMap(t) {
				mapOrder(fset.Position(n.For), "range over "+types.TypeString(t, qual))
			}
		case *ast.GoStmt:
			c.report(fset.Position(n.Go), RuleGoroutine, "go statement: deterministic code runs on one goroutine")
		case *ast.SelectStmt:
			c.report(fset.Position(n.Select), RuleSelect, "select statement picks among ready cases at random and waits on timing")
		}
		return true
	})

	for _, m := range markers {
		if !m.used {
			c.report(m.pos, RuleAllowUnused, "%q comment allows no map iteration on this line or the next", c.cfg.AllowComment)
		}
	}
}

// parseAllow reports whether the comment text (with its // or /* */) is
// an allow comment for marker, and whether it gives a reason: some letter
// or digit after the marker.
func parseAllow(text, marker string) (isMarker, hasReason bool) {
	if marker == "" {
		return false, false
	}
	body, ok := strings.CutPrefix(text, "//")
	if !ok {
		return false, false
	}
	rest, ok := strings.CutPrefix(strings.TrimLeft(body, " \t"), marker)
	if !ok {
		return false, false
	}
	if r, _ := utf8.DecodeRuneInString(rest); rest != "" && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') {
		return false, false // a longer word, e.g. "detcheck:orderedly"
	}
	hasReason = strings.IndexFunc(rest, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
	return true, hasReason
}

// symbolKey names a package-level function or variable "importpath.Name".
// Methods, fields, locals and builtins have no key.
func symbolKey(obj types.Object) (string, bool) {
	switch o := obj.(type) {
	case *types.Func:
		o = o.Origin()
		if sig, ok := o.Type().(*types.Signature); !ok || sig.Recv() != nil {
			return "", false
		}
		obj = o
	case *types.Var:
		if o.IsField() {
			return "", false
		}
	default:
		return "", false
	}
	pkg := obj.Pkg()
	if pkg == nil || pkg.Scope().Lookup(obj.Name()) != obj {
		return "", false
	}
	return pkg.Path() + "." + obj.Name(), true
}

// sortedMapSeq returns the maps.Keys or maps.Values identifier in
// slices.Sorted(maps.Keys(m)) when the sorted elements are not floating
// point: sorting erases map order there, because equal elements are
// indistinguishable. Floats are excluded since +0 and -0 (and NaNs)
// compare equal yet differ in their bits.
func sortedMapSeq(info *types.Info, call *ast.CallExpr) *ast.Ident {
	fn := calleeIdent(call.Fun)
	if fn == nil || len(call.Args) != 1 {
		return nil
	}
	if key, _ := symbolKey(info.Uses[fn]); key != "slices.Sorted" {
		return nil
	}
	arg, ok := ast.Unparen(call.Args[0]).(*ast.CallExpr)
	if !ok {
		return nil
	}
	inner := calleeIdent(arg.Fun)
	if inner == nil {
		return nil
	}
	if key, _ := symbolKey(info.Uses[inner]); !sortedSeqFuncs[key] {
		return nil
	}
	s, ok := types.Unalias(info.TypeOf(call)).Underlying().(*types.Slice)
	if !ok {
		return nil
	}
	if b, ok := s.Elem().Underlying().(*types.Basic); !ok || b.Info()&(types.IsFloat|types.IsComplex) != 0 {
		return nil
	}
	return inner
}

// calleeIdent returns the identifier naming the called function in f,
// through parentheses, package qualifiers and explicit instantiation.
func calleeIdent(f ast.Expr) *ast.Ident {
	for {
		switch e := ast.Unparen(f).(type) {
		case *ast.Ident:
			return e
		case *ast.SelectorExpr:
			return e.Sel
		case *ast.IndexExpr:
			f = e.X
		case *ast.IndexListExpr:
			f = e.X
		default:
			return nil
		}
	}
}

// rangesOverMap reports whether ranging over a value of type t iterates a
// map: a map type, a named or aliased map type, or a type parameter whose
// type set contains a map.
func rangesOverMap(t types.Type) bool {
	t = types.Unalias(t)
	if tp, ok := t.(*types.TypeParam); ok {
		return constraintHasMap(tp.Constraint(), 0)
	}
	_, ok := t.Underlying().(*types.Map)
	return ok
}

func constraintHasMap(t types.Type, depth int) bool {
	if depth > 16 {
		return true // unreasonably deep constraint; assume the worst
	}
	iface, ok := types.Unalias(t).Underlying().(*types.Interface)
	if !ok {
		_, isMap := types.Unalias(t).Underlying().(*types.Map)
		return isMap
	}
	for i := range iface.NumEmbeddeds() {
		switch e := types.Unalias(iface.EmbeddedType(i)).(type) {
		case *types.Union:
			for j := range e.Len() {
				if constraintHasMap(e.Term(j).Type(), depth+1) {
					return true
				}
			}
		default:
			if constraintHasMap(e, depth+1) {
				return true
			}
		}
	}
	return false
}
