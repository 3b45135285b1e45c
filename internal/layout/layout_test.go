package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/dominus-kernel/dominus/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func loadPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", mod+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func under(path, prefix string) bool {
	return path == mod+prefix || strings.HasPrefix(path, mod+prefix+"/")
}

// rule: packages under `from` may not depend, directly or transitively, on
// the module packages in `not`, nor import directly the standard library
// packages in `noImport` (transitively the standard library is everywhere:
// fmt reaches os).
type rule struct {
	from     string
	not      []string
	noImport []string
	why      string
}

var pureImports = []string{"os", "os/exec", "net", "net/http", "io/ioutil", "syscall", "math/rand", "math/rand/v2", "crypto/rand"}

var rules = []rule{
	{"fsm", []string{"kernel", "archive", "transport", "client", "internal/cli", "audit", "driver", "httpedge", "sensing", "gatewayapi", "transparency", "history", "evolution", "sovereign", "domain", "planner", "internal/server"}, pureImports, "the replicated core is pure: no I/O, no server packages, no services"},
	{"transparency/tlog", []string{"kernel", "fsm", "archive", "httpedge"}, pureImports, "the tree, proofs and checkpoints are pure: auditors verify with them offline"},
	{"canon", []string{"kernel", "fsm"}, pureImports, "the canon is pure data"},
	{"passport", []string{"kernel", "transport"}, pureImports, "passport verification is pure"},
	{"sense", []string{"kernel", "fsm", "transport", "cortex"}, pureImports, "sensing is a pure fold the ledger runs"},
	{"temporal", []string{"kernel", "fsm", "archive", "transport", "cortex"}, pureImports, "the history counters are a pure fold the ledger runs"},
	{"cortex", []string{"kernel", "fsm"}, nil, "gossip is advisory: the ledger never depends on it"},
	{"api", []string{"kernel", "fsm", "client"}, nil, "api is shapes only"},
	{"client", []string{"kernel", "fsm", "archive", "audit"}, nil, "agents import the client; it talks HTTP only"},
	{"kernel", []string{"internal/cli", "client", "jepsen", "audit", "bench", "internal/server", "sensing", "gatewayapi", "transparency", "history", "evolution", "sovereign", "domain", "planner"}, nil, "the kernel does not depend on its users, nor on the services that plug into it"},
	{"httpedge", []string{"kernel", "internal/server", "sensing", "gatewayapi", "transparency", "history", "evolution", "sovereign", "domain", "planner"}, nil, "the HTTP edge sits below the kernel and its services"},
	{"audit", []string{"kernel", "client"}, nil, "offline replay needs no server"},
	{"jepsen", []string{"fsm", "kernel", "archive", "audit"}, nil, "the fault harness checks the system as a client, independently"},
	{"driver", []string{"kernel", "fsm"}, nil, "drivers are separate processes speaking a line protocol"},
	{"mcpgateway", []string{"kernel", "fsm", "archive", "audit"}, nil, "the MCP gateway is a client of the kernel: the gate decides, the gateway holds no ledger state"},
}

func TestImportDAG(t *testing.T) {
	for _, p := range loadPackages(t) {
		if strings.Contains(p.ImportPath, "/internal/verifycmd") {
			continue // a test command of canon's, not canon itself
		}
		for _, r := range rules {
			if !under(p.ImportPath, r.from) {
				continue
			}
			for _, d := range append(append([]string{}, p.Imports...), p.Deps...) {
				for _, bad := range r.not {
					if under(d, bad) {
						t.Errorf("%s depends on %s: %s", strings.TrimPrefix(p.ImportPath, mod), d, r.why)
					}
				}
			}
			for _, d := range p.Imports {
				for _, bad := range r.noImport {
					if d == bad {
						t.Errorf("%s imports %s: %s", strings.TrimPrefix(p.ImportPath, mod), d, r.why)
					}
				}
			}
		}
	}
}

// allowRule: packages under `from` may depend, directly or transitively,
// on no module package except their own and those under `only`. Where
// rules forbid what a package must not reach, these name all it may.
type allowRule struct {
	from string
	only []string
	why  string
}

var allowRules = []allowRule{
	{"api", nil, "api is the leaf every client shares: shapes, public limits and signing messages"},
	{"client", []string{"api"}, "agents import the client; it talks HTTP only"},
}

// allowViolations returns what p depends on in the module outside r.
func allowViolations(p pkg, r allowRule) []string {
	var bad []string
	for _, d := range append(append([]string{}, p.Imports...), p.Deps...) {
		if !strings.HasPrefix(d, mod) || under(d, r.from) || slices.Contains(bad, d) {
			continue
		}
		if !slices.ContainsFunc(r.only, func(a string) bool { return under(d, a) }) {
			bad = append(bad, d)
		}
	}
	return bad
}

func TestImportAllowlist(t *testing.T) {
	pkgs := loadPackages(t)
	for _, r := range allowRules {
		seen := false
		for _, p := range pkgs {
			if !under(p.ImportPath, r.from) {
				continue
			}
			seen = true
			for _, d := range allowViolations(p, r) {
				t.Errorf("%s depends on %s: %s", strings.TrimPrefix(p.ImportPath, mod), d, r.why)
			}
		}
		if !seen {
			t.Errorf("no package under %s: a rule about nothing passes", r.from)
		}
	}
}

// TestImportAllowlistCatches shows the allowlist fails where it should.
func TestImportAllowlistCatches(t *testing.T) {
	api, client := allowRules[0], allowRules[1]
	tests := []struct {
		name string
		p    pkg
		r    allowRule
		bad  int
	}{
		{"api on the standard library", pkg{ImportPath: mod + "api", Imports: []string{"time"}}, api, 0},
		{"api on fsm", pkg{ImportPath: mod + "api", Imports: []string{mod + "fsm"}}, api, 1},
		{"api on passport through a dependency", pkg{ImportPath: mod + "api", Deps: []string{mod + "passport"}}, api, 1},
		{"client on api", pkg{ImportPath: mod + "client", Imports: []string{mod + "api"}, Deps: []string{mod + "api"}}, client, 0},
		{"client on kernel and fsm", pkg{ImportPath: mod + "client", Imports: []string{mod + "kernel"}, Deps: []string{mod + "kernel", mod + "fsm"}}, client, 2},
	}
	for _, tt := range tests {
		if got := allowViolations(tt.p, tt.r); len(got) != tt.bad {
			t.Errorf("%s: got %v, want %d violations", tt.name, got, tt.bad)
		}
	}
}

// services are the packages that plug into a kernel node (kernel.Service).
var services = []string{"sensing", "gatewayapi", "transparency", "history", "evolution"}

// A service plugs into the kernel: it imports kernel (the kernel never
// imports it, TestImportDAG), and internal/server composes it.
func TestServicesPlugIntoTheKernel(t *testing.T) {
	byPath := map[string]pkg{}
	for _, p := range loadPackages(t) {
		byPath[p.ImportPath] = p
	}
	imports := func(from, to string) bool {
		for _, d := range byPath[mod+from].Imports {
			if d == mod+to {
				return true
			}
		}
		return false
	}
	for _, s := range services {
		if _, ok := byPath[mod+s]; !ok {
			t.Fatalf("service package %s not found", s)
		}
		if !imports(s, "kernel") {
			t.Errorf("%s does not import kernel: a service plugs into the kernel", s)
		}
		if !imports("internal/server", s) {
			t.Errorf("internal/server does not compose %s", s)
		}
	}
}
