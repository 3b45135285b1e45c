package mcpgateway

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio serves one agent session on stdin/stdout under token (the
// agent's DOMINUS_TOKEN) until the agent closes it or ctx ends.
func (g *Gateway) ServeStdio(ctx context.Context, token string) error {
	srv, err := g.NewServer(ctx, token)
	if err != nil {
		return err
	}
	return srv.Run(ctx, &mcp.StdioTransport{})
}

type serverKey struct{}

// HTTPHandler serves MCP over streamable HTTP: each session is an agent's,
// named by its Authorization: Bearer token when it starts (401 when the
// token names no capability), and every later request of the session
// must carry the same token.
func (g *Gateway) HTTPHandler() http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		srv, _ := r.Context().Value(serverKey{}).(*mcp.Server)
		return srv
	}, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := bearer(r.Header.Get("Authorization"))
		if token == "" {
			unauthorized(w, "no agent token: send Authorization: Bearer TOKEN")
			return
		}
		if r.Header.Get("Mcp-Session-Id") == "" && r.Method == http.MethodPost {
			srv, err := g.NewServer(r.Context(), token)
			if err != nil {
				unauthorized(w, err.Error())
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), serverKey{}, srv))
		}
		h.ServeHTTP(w, r)
	})
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="dominus"`)
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "unauthorized", "message": msg}})
}
