package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/mcpgateway"
)

func init() { register(mcpCmd) }

// mcpCmd groups the MCP gateway's commands.
func mcpCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mcp", Short: "Govern agents that speak the Model Context Protocol"}
	cmd.AddCommand(mcpServeCmd())
	return cmd
}

func mcpServeCmd() *cobra.Command {
	var file, listen string
	var stdio bool
	cmd := &cobra.Command{
		Use:   "serve --config F [--listen ADDR] [--stdio]",
		Short: "Serve MCP to agents; every tool call is a governed syscall before it reaches the upstream server",
		Long: `Serve MCP to agents and relay their tool calls to the upstream MCP servers of
the config only after the kernel's gate permitted them (op
mcp.SERVER.tool.TOOL, resource by the tool's rule). The gateway's own token
(DOMINUS_GATEWAY_TOKEN, a capability with effect.report on the ops it
serves) reports each effect's completion. With --stdio it serves one agent
on stdin/stdout under DOMINUS_TOKEN; with --listen it serves streamable
HTTP, each session under its Authorization: Bearer token.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError(errors.New("--config is required"))
			}
			if stdio == (listen != "") {
				return usageError(errors.New("give exactly one of --stdio and --listen ADDR"))
			}
			cfg, err := mcpgateway.LoadConfig(file)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)) // stdout may be the protocol
			ctx := cmd.Context()
			g, err := mcpgateway.New(ctx, cfg, os.Getenv("DOMINUS_GATEWAY_TOKEN"), log, Version)
			if err != nil {
				return err
			}
			defer g.Close()
			if stdio {
				return g.ServeStdio(ctx, os.Getenv("DOMINUS_TOKEN"))
			}
			return serveMCPHTTP(ctx, g, listen, log)
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "gateway configuration (YAML or JSON): kernel, servers")
	cmd.Flags().StringVar(&listen, "listen", "", "serve streamable HTTP on ADDR (host:port), at /mcp")
	cmd.Flags().BoolVar(&stdio, "stdio", false, "serve one agent on stdin/stdout (its token in DOMINUS_TOKEN)")
	return cmd
}

func serveMCPHTTP(ctx context.Context, g *mcpgateway.Gateway, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.HTTPHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("MCP gateway serving streamable HTTP", "url", "http://"+ln.Addr().String()+"/mcp")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
