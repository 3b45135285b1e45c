package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

// FilesystemServerVersion is the reference MCP filesystem server the
// gateway's end-to-end test drives: written elsewhere, pinned here.
const FilesystemServerVersion = "2026.8.31"

// filesystemServer installs @modelcontextprotocol/server-filesystem at its
// pinned version with npm into the user's cache folder (once; `make test`
// runs the same install first) and returns its entry point. Without node
// or npm the test fails, naming what to install: it is never skipped.
func filesystemServer(t *testing.T) (node, entry string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("the MCP gateway test needs node (v20 or later) and npm to run @modelcontextprotocol/server-filesystem: install them (apt-get install nodejs npm) and run make test again")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache folder for the npm install: %v", err)
	}
	prefix := filepath.Join(cache, "dominus", "mcp-npm")
	entry = filepath.Join(prefix, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
	pkg := filepath.Join(prefix, "node_modules", "@modelcontextprotocol", "server-filesystem", "package.json")
	if b, err := os.ReadFile(pkg); err == nil && strings.Contains(string(b), `"version": "`+FilesystemServerVersion+`"`) {
		return node, entry
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("the MCP gateway test needs npm to install @modelcontextprotocol/server-filesystem@" + FilesystemServerVersion + ": install it (apt-get install npm) and run make test again")
	}
	out, err := exec.Command(npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "@modelcontextprotocol/server-filesystem@"+FilesystemServerVersion).CombinedOutput()
	if err != nil {
		t.Fatalf("npm install @modelcontextprotocol/server-filesystem@%s into %s: %v\n%s", FilesystemServerVersion, prefix, err, out)
	}
	return node, entry
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func toolText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestMCPGatewayGovernsTheFilesystemServer is the gateway's acceptance
// story with real processes: a 3-node TLS kernel, `dominus mcp serve` in
// front of the reference filesystem MCP server, and the go-sdk's MCP
// client as the agent. The upstream server may touch the whole work
// folder; the agent's capability covers only work/allowed, so what stops
// the writes below is the gate.
func TestMCPGatewayGovernsTheFilesystemServer(t *testing.T) {
	began := time.Now()
	node, entry := filesystemServer(t)
	bin := binary(t, "")
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun := func(env []string, args ...string) string {
		t.Helper()
		out, code := run(t, bin, env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
		return out
	}
	cmdIn := func(args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = tlsDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	cmdIn("tls", "ca", "create")
	var procs []*proc
	var binds []string
	for i := 1; i <= 3; i++ {
		ip := fmt.Sprintf("127.0.151.%d", i)
		binds = append(binds, fmt.Sprintf("%s:%d", ip, freePort(t, ip)))
	}
	for i := 1; i <= 3; i++ {
		ip, name := fmt.Sprintf("127.0.151.%d", i), fmt.Sprintf("n%d", i)
		cmdIn("tls", "cert", "create", "--node", name, "--ip", ip, "--kernel", "mcp")
		p := &proc{Name: name, Bin: bin, Bind: binds[i-1], DataDir: filepath.Join(dir, name), Log: filepath.Join(dir, name+".log")}
		p.HTTP = fmt.Sprintf("%s:%d", ip, freePort(t, ip))
		p.Args = []string{"agent", "--name", name, "--data-dir", p.DataDir, "--bind", p.Bind, "--http", p.HTTP,
			"--bootstrap-expect", "3", "--join", strings.Join(binds, ","),
			"--tls-ca", filepath.Join(tlsDir, "ca.pem"), "--tls-cert", filepath.Join(tlsDir, name+".pem"),
			"--tls-key", filepath.Join(tlsDir, name+"-key.pem"), "--min-free-disk", "0"}
		procs = append(procs, p)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Stop(syscall.SIGKILL)
		}
	})
	for _, p := range procs {
		p.Start(t)
	}
	ca := filepath.Join(tlsDir, "ca.pem")
	env := []string{"DOMINUS_CACERT=" + ca}
	addr := "https://" + procs[0].HTTP
	for t0 := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if s, ok := status(t, bin, env, addr); ok && s.Leader != "" {
			break
		}
		if time.Since(t0) > 20*time.Second {
			t.Fatalf("no leader within 20s:\n%s", procs[0].LogText())
		}
	}
	var ir struct {
		RootToken string `json:"root_token"`
	}
	if out := mustRun(env, "operator", "init", "--json", "--addr", addr); !jsonInto(out, &ir) || ir.RootToken == "" {
		t.Fatalf("init: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	root, err := client.New(client.Config{Addr: addr, Token: ir.RootToken, CACert: ca})
	if err != nil {
		t.Fatal(err)
	}

	// The work folder: the upstream server may touch all of it; the
	// agent's capability covers work/allowed only.
	work := filepath.Join(dir, "work")
	allowed, outside := filepath.Join(work, "allowed"), filepath.Join(work, "outside")
	for _, d := range []string{allowed, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hello := filepath.Join(allowed, "hello.txt")
	if err := os.WriteFile(hello, []byte("hello from the allowed folder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("not for agents\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	grant := func(entity string, ops, resources []string) string {
		t.Helper()
		g, err := root.Grant(ctx, api.GrantRequest{Entity: entity, Ops: ops, Resources: resources})
		if err != nil || g.Decision != "permit" {
			t.Fatalf("grant %s: %v %+v", entity, err, g)
		}
		return g.Token
	}
	agentToken := grant("claude", []string{"mcp.fs.tool.read_file", "mcp.fs.tool.write_file", "mcp.fs.tool.move_file"}, []string{allowed + "/*"})
	gatewayToken := grant("mcp-gateway", []string{"effect.report"}, []string{"mcp.fs.*"})
	if p, err := root.PolicySet(ctx, api.PolicyRequest{Name: "writes", Mode: "ACTIVE", Text: `@escalate("an agent's file writes need a human")
forbid(principal, action == Dominus::Action::"mcp.fs.tool.write_file", resource);`}); err != nil || p.Decision != "permit" {
		t.Fatalf("policy: %v %+v", err, p)
	}

	cfgFile := filepath.Join(dir, "mcp.yaml")
	cfg := fmt.Sprintf(`kernel:
  addr: %s
  ca_cert: %s
servers:
  - name: fs
    command: %s
    args: [%q, %q]
    roots: [%q]
    tools:
      read_file: {resource: "arg:path"}
      write_file: {resource: "arg:path"}
      move_file: {resource: "args:source,destination"}
      list_directory: "arg:path"
`, "https://"+procs[1].HTTP, ca, node, entry, work, work)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gwAddr := fmt.Sprintf("127.0.151.10:%d", freePort(t, "127.0.151.10"))
	gw := &proc{Name: "gateway", Bin: bin, DataDir: filepath.Join(dir, "gw"), Log: filepath.Join(dir, "gateway.log"),
		Args: []string{"mcp", "serve", "--config", cfgFile, "--listen", gwAddr}, Env: []string{"DOMINUS_GATEWAY_TOKEN=" + gatewayToken}}
	gw.Start(t)
	t.Cleanup(func() { gw.Stop(syscall.SIGTERM) })
	for t0 := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", gwAddr); err == nil {
			c.Close()
			break
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("the gateway did not listen within 30s:\n%s", gw.LogText())
		}
	}

	agent := mcp.NewClient(&mcp.Implementation{Name: "e2e-agent", Version: "1"}, nil)
	session, err := agent.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + gwAddr + "/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport{agentToken}}, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, gw.LogText())
	}
	defer session.Close()
	call := func(tool string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		r, err := session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v\n%s", tool, err, gw.LogText())
		}
		return r
	}
	refused := func(what, tool string, args map[string]any, want string) string {
		t.Helper()
		r := call(tool, args)
		if !r.IsError || !strings.Contains(toolText(r), want) {
			t.Fatalf("%s: want a tool error naming %q, got error=%v %q", what, want, r.IsError, toolText(r))
		}
		t.Logf("%s: %s", what, strings.ReplaceAll(toolText(r), "\n", " | "))
		return toolText(r)
	}

	// tools/list: the tools the capability names; list_directory has a
	// rule but is not in the capability, the rest have no rule.
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"move_file", "read_file", "write_file"}) {
		t.Fatalf("tools/list: %v", names)
	}

	// A permitted read.
	if r := call("read_file", map[string]any{"path": hello}); r.IsError || !strings.Contains(toolText(r), "hello from the allowed folder") {
		t.Fatalf("read_file: %v %q", r.IsError, toolText(r))
	}
	// A write outside the capability: denied, nothing written.
	evil := filepath.Join(outside, "evil.txt")
	refused("write outside scope", "write_file", map[string]any{"path": evil, "content": "x"}, "out_of_scope")
	if _, err := os.Stat(evil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a denied write reached the disk: %v", err)
	}
	// A move whose destination is outside: denied, nothing moved.
	stolen := filepath.Join(outside, "stolen.txt")
	refused("move to an out-of-scope destination", "move_file", map[string]any{"source": hello, "destination": stolen}, "out_of_scope")
	if _, err := os.Stat(stolen); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a denied move reached the disk: %v", err)
	}
	if _, err := os.Stat(hello); err != nil {
		t.Fatalf("a denied move moved the source: %v", err)
	}
	// A path with ..: refused by the gateway before the kernel.
	refused("a .. path", "read_file", map[string]any{"path": allowed + "/../outside/secret.txt"}, "holds a .. element")

	// An escalated write: tool error with the approval id, an operator
	// approves, the identical retry completes.
	report := filepath.Join(allowed, "report.txt")
	writeArgs := map[string]any{"path": report, "content": "approved by an operator\n"}
	msg := refused("an escalated write", "write_file", writeArgs, "approval apr-")
	apr := regexp.MustCompile(`apr-[0-9]+`).FindString(msg)
	if _, err := os.Stat(report); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an escalated write reached the disk before its approval")
	}
	mustRun(append(env, "DOMINUS_TOKEN="+ir.RootToken), "approvals", "approve", apr, "--addr", "https://"+procs[2].HTTP)
	if r := call("write_file", writeArgs); r.IsError {
		t.Fatalf("the identical call after approval: %q", toolText(r))
	}
	if b, err := os.ReadFile(report); err != nil || string(b) != "approved by an operator\n" {
		t.Fatalf("approved write: %v %q", err, b)
	}

	// The ledger holds each decision and each permitted effect's completion.
	effects := waitEffectsSettled(t, ctx, root)
	var ok, notRun int
	for _, e := range effects {
		switch {
		case e.Status == "ok" && strings.HasPrefix(e.OutputDigest, "sha256:") && e.CompletedSeq > e.Seq:
			ok++
		case e.Op == "mcp.fs.tool.move_file" && e.Status == "failed" && e.Code == -409:
			notRun++ // the permitted source of the refused move: never sent upstream
		default:
			t.Errorf("effect %+v", e)
		}
	}
	if ok != 2 || notRun != 1 {
		t.Fatalf("effects: %d ok (want 2: the read and the approved write), %d not run (want 1): %+v", ok, notRun, effects)
	}
	events, err := root.LedgerTail(ctx, 40, true)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ev := range events {
		if ev.Type == "syscall.gateway" || ev.Type == "effect.report" {
			seen[ev.Type+" "+ev.Decision+" "+ev.Reason]++
		}
	}
	for _, want := range []string{"syscall.gateway permit ok", "syscall.gateway deny out_of_scope", "syscall.gateway escalate approval_required", "effect.report none ok", "effect.report none effect_failed"} {
		if seen[want] == 0 {
			t.Errorf("the ledger lacks %q: %v", want, seen)
		}
	}

	// The same gateway over stdio: the agent's token from DOMINUS_TOKEN.
	stdio := exec.Command(bin, "mcp", "serve", "--config", cfgFile, "--stdio")
	stdio.Env = append(os.Environ(), "DOMINUS_TOKEN="+agentToken, "DOMINUS_GATEWAY_TOKEN="+gatewayToken)
	ss, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-stdio-agent", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: stdio}, nil)
	if err != nil {
		t.Fatalf("stdio connect: %v", err)
	}
	r, err := ss.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": report}})
	if err != nil || r.IsError || !strings.Contains(toolText(r), "approved by an operator") {
		t.Fatalf("stdio read_file: %v %+v", err, r)
	}
	ss.Close()
	t.Logf("MCP gateway story done in %s", time.Since(began).Round(time.Millisecond))
}

// waitEffectsSettled returns the effects once none is pending (the
// gateway reports right after each upstream answer).
func waitEffectsSettled(t *testing.T, ctx context.Context, root *client.Client) []api.Effect {
	t.Helper()
	for t0 := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		effects, err := root.Effects(ctx)
		pending := err != nil
		for _, e := range effects {
			pending = pending || e.Status == "pending"
		}
		if !pending {
			return effects
		}
		if time.Since(t0) > 15*time.Second {
			t.Fatalf("effects still pending after 15s: %v %+v", err, effects)
		}
	}
}

func jsonInto(s string, v any) bool { return json.Unmarshal([]byte(s), v) == nil }
