package fsm

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// SECURITY.md's command table lists every command once, with the
// proposer the handler table gives it (caller: a bearer token; internal:
// member evidence; genesis: the first entry) and, for a caller command
// that governs a fixed op, that op in its "who proposes" cell; and
// nothing else.
func TestSecurityCommandTableMatchesTheCode(t *testing.T) {
	f, err := os.Open("../SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type row struct{ kind, who string }
	listed := map[string]row{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## Commands"):
			in = true
			continue
		case strings.HasPrefix(line, "## "):
			in = false
		}
		if !in || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| command") || strings.HasPrefix(line, "| ---") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("malformed row %q", line)
		}
		kind := strings.TrimSpace(cells[2])
		for _, name := range strings.Split(cells[1], ",") {
			name = strings.TrimSpace(name)
			if _, dup := listed[name]; dup {
				t.Errorf("%s listed twice", name)
			}
			listed[name] = row{kind, cells[3]}
		}
	}
	for ct, name := range commandNames { // detcheck:ordered each command is checked on its own
		spec, ok := handlers[ct]
		if !ok {
			continue
		}
		want := spec.proposer.String()
		got, ok := listed[name]
		switch {
		case !ok:
			t.Errorf("SECURITY.md's command table lacks %s (%s)", name, want)
		case got.kind != want:
			t.Errorf("SECURITY.md lists %s as %s; the code makes it %s", name, got.kind, want)
		case spec.op != "" && !strings.Contains(got.who, "`"+spec.op+"`"):
			t.Errorf("SECURITY.md's row for %s does not name the op it governs, `%s`", name, spec.op)
		}
		delete(listed, name)
	}
	for name := range listed { // detcheck:ordered reporting only
		t.Errorf("SECURITY.md lists %s, which is no command", name)
	}
}
