package mcpgateway

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRuleResources(t *testing.T) {
	roots := []string{"/srv/work"}
	move, _ := ParseRule("args:source,destination")
	read, _ := ParseRule("arg:path")
	fixed, _ := ParseRule("const:inbox")
	for _, c := range []struct {
		rule Rule
		args map[string]any
		want []string
		err  string
	}{
		{read, map[string]any{"path": "/srv/work/a//b/./c.txt"}, []string{"/srv/work/a/b/c.txt"}, ""},
		{read, map[string]any{"path": "/srv/work"}, []string{"/srv/work"}, ""},
		{read, map[string]any{"path": "/srv/work/../etc/passwd"}, nil, ".. element"},
		{read, map[string]any{"path": `/srv/work/a\..\..\etc`}, nil, ".. element"},
		{read, map[string]any{"path": "/srv/workshop/x"}, nil, "outside the server's roots"},
		{read, map[string]any{"path": "work/a"}, nil, "not absolute"},
		{read, map[string]any{"path": 7}, nil, "not a string"},
		{read, map[string]any{}, nil, "missing"},
		{read, map[string]any{"path": "/srv/work/a\x00b"}, nil, "NUL"},
		{move, map[string]any{"source": "/srv/work/a", "destination": "/srv/work/b"}, []string{"/srv/work/a", "/srv/work/b"}, ""},
		{move, map[string]any{"source": "/srv/work/a", "destination": "/srv/work/./a"}, []string{"/srv/work/a"}, ""},
		{move, map[string]any{"source": "/srv/work/a", "destination": "/tmp/b"}, nil, "outside"},
		{fixed, map[string]any{"path": "/anything"}, []string{"inbox"}, ""},
	} {
		got, err := c.rule.Resources(c.args, roots)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: got %v %v, want an error naming %q", c.args, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%v: got %v %v, want %v", c.args, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "path", "arg:", "arg:a,b", "args:", "args:a,,b", "const:", "regex:.*"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("rule %q parsed", bad)
		}
	}
}

func TestLoadConfigNamesWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		f := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := `{"kernel": {"addr": "https://127.0.0.1:8101"}, "servers": [{"name": "fs", "command": "mcp-fs", "roots": ["/srv"], "tools": {"read_file": {"resource": "arg:path"}, "ping": "const:fs"}}]}`
	c, err := LoadConfig(write(good))
	if err != nil || c.Servers[0].Tools["ping"].Resource != "const:fs" || c.Servers[0].Tools["read_file"].Resource != "arg:path" {
		t.Fatalf("JSON config: %v %+v", err, c)
	}
	for _, b := range []struct{ cfg, want string }{
		{`servers: []`, "kernel.addr"},
		{"kernel: {addr: x}\nservers: [{name: Fs, command: c, tools: {a: 'const:x'}}]", "servers[0].name"},
		{"kernel: {addr: x}\nservers: [{name: fs, command: c, url: u, tools: {a: 'const:x'}}]", "exactly one of command and url"},
		{"kernel: {addr: x}\nservers: [{name: fs, command: c}]", "0 tools"},
		{"kernel: {addr: x}\nservers: [{name: fs, command: c, tools: {a: 'arg:path'}}]", "needs roots"},
		{"kernel: {addr: x}\nservers: [{name: fs, command: c, roots: [srv], tools: {a: 'arg:path'}}]", "clean absolute path"},
		{"kernel: {addr: x}\nservers: [{name: fs, command: c, tools: {ReadFile: 'const:x'}}]", "tool \"ReadFile\""},
		{"kernel: {addr: x}\nservers: [{name: fs, command: c, tools: {a: 'glob:*'}}]", "resource rule"},
	} {
		if _, err := LoadConfig(write(b.cfg)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want an error naming %q", b.cfg, err, b.want)
		}
	}
}
