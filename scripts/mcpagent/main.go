// Command mcpagent is the demo's stand-in for an MCP agent (Claude
// Desktop, an IDE agent): one MCP session with a gateway over streamable
// HTTP, driven line by line from stdin — `list`, or `call TOOL JSON` —
// answering each with one line on stdout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func main() {
	url := flag.String("url", "", "the gateway's MCP endpoint (http://HOST:PORT/mcp)")
	flag.Parse()
	ctx := context.Background()
	s, err := mcp.NewClient(&mcp.Implementation{Name: "demo-agent", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: *url, HTTPClient: &http.Client{Transport: bearer{os.Getenv("DOMINUS_TOKEN")}}, DisableStandaloneSSE: true}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpagent:", err)
		os.Exit(1)
	}
	defer s.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		verb, rest, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		switch verb {
		case "list":
			r, err := s.ListTools(ctx, nil)
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			var names []string
			for _, t := range r.Tools {
				names = append(names, t.Name)
			}
			fmt.Println("tools:", strings.Join(names, " "))
		case "call":
			tool, args, _ := strings.Cut(rest, " ")
			r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: json.RawMessage(args)})
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			var text []string
			for _, c := range r.Content {
				if tc, ok := c.(*mcp.TextContent); ok {
					text = append(text, tc.Text)
				}
			}
			kind := "result"
			if r.IsError {
				kind = "tool error"
			}
			fmt.Printf("%s: %s\n", kind, strings.ReplaceAll(strings.Join(text, " "), "\n", " | "))
		default:
			fmt.Println("error: want list or call TOOL JSON")
		}
	}
}
