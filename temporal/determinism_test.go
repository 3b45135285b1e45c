package temporal

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/internal/detcheck"
)

// TestDeterminism fails if temporal could read the clock, randomness, the
// environment, files or the network, start goroutines, select, or let map
// order reach its output: the FSM folds it inside Apply.
func TestDeterminism(t *testing.T) {
	vs, err := detcheck.Check("..", "./temporal")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v.String())
	}
}

// TestNoFloatingPoint fails if a non-test file of temporal mentions a float
// type: numbers that decide policy inputs are integers or fixed point.
// Every .go file in the directory is read whatever its build tags, so a
// file built only under some tag is held to the same rule.
func TestNoFloatingPoint(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files++
		for _, imp := range f.Imports {
			if imp.Path.Value == `"math"` || imp.Path.Value == `"math/big"` {
				t.Errorf("%s imports %s", fset.Position(imp.Pos()), imp.Path.Value)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Ident:
				switch x.Name {
				case "float32", "float64", "complex64", "complex128":
					t.Errorf("%s: %s", fset.Position(x.Pos()), x.Name)
				}
			case *ast.BasicLit:
				if x.Kind == token.FLOAT || x.Kind == token.IMAG {
					t.Errorf("%s: literal %s", fset.Position(x.Pos()), x.Value)
				}
			}
			return true
		})
	}
	if files < 3 {
		t.Fatalf("checked only %d files", files)
	}
}
