package mcpgateway

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/gatewayapi"
	"github.com/dominus-kernel/dominus/kernel/kerneltest"
)

// fakeUpstream is an in-process MCP server with two file resources, one
// other resource and a prompt.
func fakeUpstream(t *testing.T) mcp.Transport {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1"}, nil)
	text := func(uri, body string) mcp.ResourceHandler {
		return func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, Text: body}}}, nil
		}
	}
	srv.AddResource(&mcp.Resource{URI: "file:///docs/a.txt", Name: "a"}, text("file:///docs/a.txt", "public notes"))
	srv.AddResource(&mcp.Resource{URI: "file:///secret/b.txt", Name: "b"}, text("file:///secret/b.txt", "payroll"))
	srv.AddResource(&mcp.Resource{URI: "memo://today", Name: "memo"}, text("memo://today", "stand-up at 10"))
	srv.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["who"]}}}}, nil
		})
	st, ct := mcp.NewInMemoryTransports()
	if _, err := srv.Connect(context.Background(), st, nil); err != nil {
		t.Fatal(err)
	}
	return ct
}

// Reading a resource and getting a prompt are governed as tool calls
// are: ops mcp.SERVER.resource.read (resource: the file's cleaned path in
// the roots, or the URI) and mcp.SERVER.prompt.get (resource: the
// prompt's name); a refusal never reaches the upstream; each permitted
// request's effect is reported; the listing follows the capability.
func TestResourcesAndPromptsAreGoverned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node := kerneltest.SingleNode(t, "127.0.153.1", nil, gatewayapi.New(0))
	rootToken, _, err := node.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(node.Handler())
	defer hs.Close()
	root, _ := client.New(client.Config{Addr: hs.URL, Token: rootToken})
	grant := func(entity string, ops, resources []string) string {
		g, err := root.Grant(ctx, api.GrantRequest{Entity: entity, Ops: ops, Resources: resources})
		if err != nil || g.Decision != "permit" {
			t.Fatalf("grant %s: %v %+v", entity, err, g)
		}
		return g.Token
	}
	gw := grant("mcp-gateway", []string{"effect.report"}, []string{"mcp.docs.*"})
	reader := grant("reader", []string{ResourceOp("docs")}, []string{"/docs/*", "memo://*"})
	prompter := grant("prompter", []string{PromptOp("docs")}, []string{"greet"})

	cfg := &Config{Kernel: KernelConfig{Addr: hs.URL}, Servers: []ServerConfig{{Name: "docs", Roots: []string{"/docs", "/secret"}, transport: fakeUpstream(t)}}}
	g, err := New(ctx, cfg, gw, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	session := func(token string) *mcp.ClientSession {
		srv, err := g.NewServer(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		st, ct := mcp.NewInMemoryTransports()
		if _, err := srv.Connect(ctx, st, nil); err != nil {
			t.Fatal(err)
		}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx, ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}

	rs := session(reader)
	list, err := rs.ListResources(ctx, nil)
	if err != nil || len(list.Resources) != 3 {
		t.Fatalf("reader's resources: %v %+v", err, list)
	}
	if pl, err := rs.ListPrompts(ctx, nil); err == nil && len(pl.Prompts) > 0 {
		t.Fatalf("a session without prompt.get lists prompts: %+v", pl.Prompts)
	}
	read := func(uri string) (string, error) {
		r, err := rs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			return "", err
		}
		return r.Contents[0].Text, nil
	}
	if body, err := read("file:///docs/a.txt"); err != nil || body != "public notes" {
		t.Fatalf("permitted read: %q %v", body, err)
	}
	if body, err := read("memo://today"); err != nil || body != "stand-up at 10" {
		t.Fatalf("permitted read of a URI: %q %v", body, err)
	}
	if body, err := read("file:///secret/b.txt"); err == nil || !strings.Contains(err.Error(), "denied by Dominus") || !strings.Contains(err.Error(), "out_of_scope") {
		t.Fatalf("read outside the capability: %q %v", body, err)
	}
	// A URI the upstream did not list never matches (the MCP server
	// answers not found); one that does is still cleaned and judged.
	if body, err := read("file:///docs/../secret/b.txt"); err == nil {
		t.Fatalf("read through ..: %q", body)
	}
	if _, err := resourceOf("file:///docs/../secret/b.txt", []string{"/docs"}); err == nil || !strings.Contains(err.Error(), "..") {
		t.Fatalf("resourceOf with ..: %v", err)
	}
	if r, err := resourceOf("file:///docs/./a.txt", []string{"/docs"}); err != nil || r != "/docs/a.txt" {
		t.Fatalf("resourceOf cleans: %q %v", r, err)
	}
	if _, err := resourceOf("file:///etc/passwd", []string{"/docs"}); err == nil {
		t.Fatal("resourceOf outside the roots")
	}

	ps := session(prompter)
	pr, err := ps.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": "ops"}})
	if err != nil || pr.Messages[0].Content.(*mcp.TextContent).Text != "hello ops" {
		t.Fatalf("permitted prompt: %v %+v", err, pr)
	}
	if _, err := ps.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///docs/a.txt"}); err == nil {
		t.Fatal("a session without resource.read reads a resource")
	}

	// The ledger: three permitted requests, each effect reported ok by
	// the gateway; the denied read left no effect.
	deadline := time.Now().Add(10 * time.Second)
	for {
		effects, err := root.Effects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, e := range effects {
			if strings.HasPrefix(e.Op, "mcp.docs.") && e.Status == "ok" && strings.HasPrefix(e.OutputDigest, "sha256:") {
				ok++
			}
		}
		if ok == 3 && len(effects) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("effects: %+v", effects)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
