package detcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// Floats lists every mention of a float or complex type, a float
// literal, and an import of math or math/big in the non-test .go files of
// dir, whatever their build tags: a pure fold whose numbers decide policy
// inputs keeps them in integers or fixed point. files is how many files
// it read.
func Floats(dir string) (found []string, files int, err error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			return nil, files, err
		}
		files++
		for _, imp := range f.Imports {
			if imp.Path.Value == `"math"` || imp.Path.Value == `"math/big"` {
				found = append(found, fmt.Sprintf("%s imports %s", fset.Position(imp.Pos()), imp.Path.Value))
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Ident:
				switch x.Name {
				case "float32", "float64", "complex64", "complex128":
					found = append(found, fmt.Sprintf("%s: %s", fset.Position(x.Pos()), x.Name))
				}
			case *ast.BasicLit:
				if x.Kind == token.FLOAT || x.Kind == token.IMAG {
					found = append(found, fmt.Sprintf("%s: literal %s", fset.Position(x.Pos()), x.Value))
				}
			}
			return true
		})
	}
	return found, files, nil
}
