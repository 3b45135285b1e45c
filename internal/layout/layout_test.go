package layout

import (
	"encoding/json"
	"io"
	"os/exec"
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
	{"fsm", []string{"kernel", "archive", "transport", "client", "internal/cli", "audit", "driver"}, pureImports, "the replicated core is pure: no I/O, no server packages"},
	{"canon", []string{"kernel", "fsm"}, pureImports, "the canon is pure data"},
	{"passport", []string{"kernel", "transport"}, pureImports, "passport verification is pure"},
	{"sense", []string{"kernel", "fsm", "transport", "cortex"}, pureImports, "sensing is a pure fold the ledger runs"},
	{"cortex", []string{"kernel", "fsm"}, nil, "gossip is advisory: the ledger never depends on it"},
	{"api", []string{"kernel", "fsm", "client"}, nil, "api is shapes only"},
	{"client", []string{"kernel", "fsm", "archive", "audit"}, nil, "agents import the client; it talks HTTP only"},
	{"kernel", []string{"internal/cli", "client", "jepsen", "audit", "bench"}, nil, "the kernel does not depend on its users"},
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
