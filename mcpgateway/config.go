package mcpgateway

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.yaml.in/yaml/v3"
)

// Config is the gateway's configuration file (YAML, or JSON, which YAML
// reads as it is).
type Config struct {
	Kernel  KernelConfig   `yaml:"kernel"`
	Servers []ServerConfig `yaml:"servers"`
}

// KernelConfig names the kernel node the gateway asks.
type KernelConfig struct {
	Addr   string `yaml:"addr"`    // base URL of any node (followers forward)
	CACert string `yaml:"ca_cert"` // PEM to verify an https node; empty: the system pool
}

// ServerConfig is one upstream MCP server: a command the gateway starts
// (stdio) or a URL (streamable HTTP), the tools it may serve with the
// rule that derives each call's resource, and the roots path resources
// must lie in.
type ServerConfig struct {
	Name    string              `yaml:"name"`
	Command string              `yaml:"command"`
	Args    []string            `yaml:"args"`
	Env     []string            `yaml:"env"` // KEY=VALUE added to the command's environment
	URL     string              `yaml:"url"`
	Tools   map[string]ToolRule `yaml:"tools"`
	Roots   []string            `yaml:"roots"`

	transport mcp.Transport // tests: an in-process upstream instead of Command or URL
}

// ToolRule is a tool's resource rule: `arg:NAME` (the path in argument
// NAME), `args:N1,N2` (each path argument, judged once each) or
// `const:VALUE`. In the file it is {resource: RULE} or the rule alone.
type ToolRule struct {
	Resource string `yaml:"resource"`
}

// UnmarshalYAML accepts both forms of a rule.
func (r *ToolRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&r.Resource)
	}
	type plain ToolRule
	return n.Decode((*plain)(r))
}

// Limits of a configuration.
const (
	maxServers      = 64
	maxToolsPerSrv  = 256
	maxRootsPerSrv  = 64
	maxArgsPerRule  = 8
	maxResourceSize = 1024
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// LoadConfig reads and validates the configuration at file.
func LoadConfig(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("mcp config: %w", err)
	}
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("mcp config %s: %w", file, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("mcp config %s: %w", file, err)
	}
	return &c, nil
}

// Validate names the first value that is wrong.
func (c *Config) Validate() error {
	if c.Kernel.Addr == "" {
		return errors.New("kernel.addr is empty: name a node of the kernel (https://HOST:PORT)")
	}
	if len(c.Servers) == 0 || len(c.Servers) > maxServers {
		return fmt.Errorf("servers: %d servers, want 1 to %d", len(c.Servers), maxServers)
	}
	seen := map[string]bool{}
	for i := range c.Servers {
		s := &c.Servers[i]
		if !nameRE.MatchString(s.Name) {
			return fmt.Errorf("servers[%d].name %q: want lower-case letters, digits, _ and - (it names the ops mcp.%s.*)", i, s.Name, s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("servers[%d].name %q is used twice", i, s.Name)
		}
		seen[s.Name] = true
		if (s.Command == "") == (s.URL == "") {
			return fmt.Errorf("server %s: set exactly one of command and url", s.Name)
		}
		if len(s.Tools) == 0 || len(s.Tools) > maxToolsPerSrv {
			return fmt.Errorf("server %s: %d tools, want 1 to %d (a tool without a rule is never served)", s.Name, len(s.Tools), maxToolsPerSrv)
		}
		if len(s.Roots) > maxRootsPerSrv {
			return fmt.Errorf("server %s: %d roots, at most %d", s.Name, len(s.Roots), maxRootsPerSrv)
		}
		for j, r := range s.Roots {
			if !path.IsAbs(r) || path.Clean(r) != r {
				return fmt.Errorf("server %s: roots[%d] %q is not a clean absolute path", s.Name, j, r)
			}
		}
		for tool, rule := range s.Tools {
			if !nameRE.MatchString(tool) {
				return fmt.Errorf("server %s: tool %q: want lower-case letters, digits, _ and - (it names the op mcp.%s.tool.TOOL)", s.Name, tool, s.Name)
			}
			r, err := ParseRule(rule.Resource)
			if err != nil {
				return fmt.Errorf("server %s: tool %s: %w", s.Name, tool, err)
			}
			if len(r.args) > 0 && len(s.Roots) == 0 {
				return fmt.Errorf("server %s: tool %s takes paths from its arguments, so the server needs roots", s.Name, tool)
			}
		}
	}
	return nil
}

// Rule derives a call's resources from its arguments.
type Rule struct {
	args  []string // path arguments, each judged once
	value string   // const:VALUE
}

// ParseRule parses `arg:NAME`, `args:N1,N2` or `const:VALUE`.
func ParseRule(s string) (Rule, error) {
	kind, rest, _ := strings.Cut(s, ":")
	switch {
	case kind == "arg" && rest != "" && !strings.Contains(rest, ","):
		return Rule{args: []string{rest}}, nil
	case kind == "args" && rest != "":
		names := strings.Split(rest, ",")
		if len(names) > maxArgsPerRule {
			return Rule{}, fmt.Errorf("resource rule %q names %d arguments, at most %d", s, len(names), maxArgsPerRule)
		}
		for _, n := range names {
			if n == "" {
				return Rule{}, fmt.Errorf("resource rule %q names an empty argument", s)
			}
		}
		return Rule{args: names}, nil
	case kind == "const" && rest != "" && len(rest) <= maxResourceSize:
		return Rule{value: rest}, nil
	}
	return Rule{}, fmt.Errorf("resource rule %q: want arg:NAME, args:NAME1,NAME2 or const:VALUE", s)
}

// Resources are the resources a call with args is judged on, each once:
// the cleaned paths of the rule's arguments, or its constant. A path that
// is missing, not a string, relative, holds a `..` element or lies
// outside roots is refused.
func (r Rule) Resources(args map[string]any, roots []string) ([]string, error) {
	if len(r.args) == 0 {
		return []string{r.value}, nil
	}
	var out []string
	for _, name := range r.args {
		v, ok := args[name]
		if !ok {
			return nil, fmt.Errorf("argument %q (a path) is missing", name)
		}
		p, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("argument %q is not a string path", name)
		}
		clean, err := cleanPath(p, roots)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %w", name, err)
		}
		dup := false
		for _, o := range out {
			dup = dup || o == clean
		}
		if !dup {
			out = append(out, clean)
		}
	}
	return out, nil
}

func cleanPath(p string, roots []string) (string, error) {
	if p == "" || len(p) > maxResourceSize || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q is empty, too long or holds NUL", p)
	}
	for _, el := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return "", fmt.Errorf("path %q holds a .. element", p)
		}
	}
	if !path.IsAbs(p) {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	clean := path.Clean(p)
	for _, root := range roots {
		if clean == root || strings.HasPrefix(clean, strings.TrimSuffix(root, "/")+"/") {
			return clean, nil
		}
	}
	return "", fmt.Errorf("path %q lies outside the server's roots %v", clean, roots)
}
