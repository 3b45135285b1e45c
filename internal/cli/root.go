// Adding a command to dominus
//
// Every top-level subcommand lives in its own file and registers its
// constructor from that file's init function:
//
//	func init() { register(agentCmd) }
//
//	func agentCmd() *cobra.Command {
//		return &cobra.Command{Use: "agent", Short: "...", RunE: func(cmd *cobra.Command, args []string) error { ... }}
//	}
//
// register takes the constructor, not a built command: Run builds a fresh
// command tree for every invocation, so flag values never carry over from
// one run to the next (tests call Main many times in one process). Inside
// RunE:
//
//   - cmd.Context() is cancelled on SIGINT/SIGTERM (when started by Main);
//   - newClient(cmd) returns a *client.Client configured from the global
//     flags --addr, --token, --ca-cert and --timeout (and their
//     environment variables); jsonMode(cmd) reports --json;
//   - writeJSON(cmd, v) prints v as the command's machine output;
//   - cmd.OutOrStdout(), cmd.ErrOrStderr() and cmd.InOrStdin() are the
//     process's streams (buffers under test);
//   - the returned error picks the exit status: nil is 0; fail(code,
//     apiCode, err) chooses one of the api.Exit* statuses; a *client.Error
//     is mapped by its code (denied/forbidden or HTTP 403: 2;
//     verification_failed: 4); anything else is 1. Run prints
//     "error: <message>" to stderr and, with --json, {"error": {"code",
//     "message"}} to stdout — unless the error was made with failReported,
//     meaning stdout already holds the command's JSON result;
//   - a ledgered answer (api.Outcome) goes through outcomeError, which
//     turns DENY into exit 2 and ESCALATE into exit 3.
//
// Commands taking positional arguments use exactArgs / rangeArgs so that a
// wrong count is reported as a usage error (code bad_request).

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

// Environment variables read by the global flags.
const (
	EnvAddr   = "DOMINUS_HTTP_ADDR"
	EnvToken  = "DOMINUS_TOKEN"
	EnvCACert = "DOMINUS_CACERT"
	// EnvJoinSecret is read by dominus agent when --join-secret is not
	// given (a secret in the environment stays out of ps).
	EnvJoinSecret = "DOMINUS_JOIN_SECRET"
)

// DefaultAddr is the API address used when neither --addr nor
// DOMINUS_HTTP_ADDR is set.
const DefaultAddr = "http://127.0.0.1:8101"

// DefaultTimeout bounds one HTTP attempt of a client command.
const DefaultTimeout = 10 * time.Second

// Error codes the CLI reports in its --json error object besides the API's
// own codes (api.Code*).
const (
	codeError     = "error"     // an unclassified local failure (file, network)
	codeEscalated = "escalated" // the kernel answered ESCALATE
	codeCASFailed = "cas_failed"
)

var (
	registryMu sync.Mutex
	registry   []func() *cobra.Command
)

// register adds a top-level subcommand constructor. Call it from init.
func register(build func() *cobra.Command) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry = append(registry, build)
}

// globals holds the values of the flags every command inherits.
type globals struct {
	addr    string
	token   string
	caCert  string
	json    bool
	timeout time.Duration
}

type globalsKey struct{}

// Main runs dominus with args (without the program name) on the process's
// standard streams and returns the exit status. SIGINT and SIGTERM cancel
// the running command's context.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// Run runs dominus with args on the given streams and returns the exit
// status (api.ExitOK ... api.ExitVerify).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(context.WithValue(ctx, globalsKey{}, g))
	if err == nil {
		return api.ExitOK
	}
	code, apiCode, reported := classify(err)
	switch {
	case !g.json:
		fmt.Fprintf(stderr, "error: %s\n", err)
	case !reported:
		// --json: the error is the one document on stdout, nothing on
		// stderr (a command that already printed its JSON result says
		// there what went wrong).
		writeJSONTo(stdout, api.ErrorBody{Error: api.Error{Code: apiCode, Message: err.Error()}})
	}
	return code
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "dominus",
		Short: "Operate a Dominus governance kernel",
		Long: `dominus operates a Dominus kernel: a Raft-replicated, hash-chained ledger
that records every governed action.

Exit status: 0 success, 1 error, 2 denied (decision DENY), 3 escalated,
4 verification failed (tamper, chain mismatch).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// `dominus completion bash|zsh|fish|powershell` is cobra's own.
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		Version:           versionInfo().String(),
		Args:              noArgs,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.addr, "addr", "", "API address, http://HOST:PORT or https://HOST:PORT (env "+EnvAddr+", default "+DefaultAddr+")")
	pf.StringVar(&g.token, "token", "", "bearer token (env "+EnvToken+")")
	pf.StringVar(&g.caCert, "ca-cert", "", "PEM CA certificate that signs an https server's certificate (env "+EnvCACert+")")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON on stdout")
	pf.DurationVar(&g.timeout, "timeout", DefaultTimeout, "time limit of one HTTP attempt, and of retrying while the node is unreachable or has no leader")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.SetVersionTemplate("{{.Version}}\n")

	// Offline commands take no network flags: they are hidden from
	// their help and refused on their command line.
	usage := root.UsageFunc()
	root.SetUsageFunc(func(c *cobra.Command) error {
		if offline(c) {
			for _, name := range networkFlags {
				if f := root.PersistentFlags().Lookup(name); f != nil && !f.Hidden {
					f.Hidden = true
					defer func() { f.Hidden = false }()
				}
			}
		}
		return usage(c)
	})
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if !offline(c) {
			return nil
		}
		for _, name := range networkFlags {
			if c.Flags().Changed(name) {
				return usageError(fmt.Errorf("--%s does not apply to %s: it works offline, without a node", name, c.CommandPath()))
			}
		}
		return nil
	}

	registryMu.Lock()
	builders := append([]func() *cobra.Command(nil), registry...)
	registryMu.Unlock()
	for _, build := range builders {
		root.AddCommand(build())
	}
	return root
}

// networkFlags are the global flags of commands that talk to a node.
var networkFlags = []string{"addr", "token", "ca-cert", "timeout"}

// offlineCommands work without a node: they run one (agent, dev), read
// files (audit, snapshot inspect, tls) or report on this binary.
var offlineCommands = []string{"agent", "audit", "completion", "dev", "driver", "help", "mcp", "snapshot inspect", "tls", "version"}

// onlineUnderOffline are commands of an offline group that ask a node:
// audit witness fetches the heads the sovereign witnessed.
var onlineUnderOffline = []string{"audit witness"}

// offline reports whether c (or the command it belongs to) works
// without a node.
func offline(c *cobra.Command) bool {
	path := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
	for _, o := range onlineUnderOffline {
		if path == o {
			return false
		}
	}
	for _, o := range offlineCommands {
		if path == o || strings.HasPrefix(path, o+" ") {
			return true
		}
	}
	return false
}

// globalsOf returns the global flag values of the running command tree.
func globalsOf(cmd *cobra.Command) *globals {
	if g, ok := cmd.Context().Value(globalsKey{}).(*globals); ok {
		return g
	}
	return &globals{timeout: DefaultTimeout}
}

// jsonMode reports whether --json was given.
func jsonMode(cmd *cobra.Command) bool { return globalsOf(cmd).json }

// clientConfig resolves the connection flags: a flag given on the command
// line wins over its environment variable, which wins over the default.
func clientConfig(cmd *cobra.Command) client.Config {
	g := globalsOf(cmd)
	flags := cmd.Flags()
	pick := func(name, val, env, def string) string {
		if flags.Changed(name) {
			return val
		}
		if v := os.Getenv(env); v != "" {
			return v
		}
		return def
	}
	return client.Config{
		Addr:    pick("addr", g.addr, EnvAddr, DefaultAddr),
		Token:   pick("token", g.token, EnvToken, ""),
		CACert:  pick("ca-cert", g.caCert, EnvCACert, ""),
		Timeout: g.timeout,
		// Retries (connection refused, no leader) stop after the same
		// limit, so an unreachable node fails within about 2x --timeout.
		RetryFor: g.timeout,
		OnRetry:  waitingLine(cmd),
	}
}

// waitingLine tells a person on stderr what a command is waiting for
// while the client retries, at most once a second; with --json stderr
// stays quiet (scripts read the one document on stdout).
func waitingLine(cmd *cobra.Command) func(error, time.Duration) {
	if jsonMode(cmd) {
		return nil
	}
	var last time.Duration // the first line after a second of waiting: a blip says nothing
	return func(err error, waited time.Duration) {
		if waited-last < time.Second {
			return
		}
		last = waited
		what := "the node to answer"
		var e *client.Error
		switch {
		case errors.As(err, &e) && e.Code == api.CodeNoLeader:
			what = "a leader"
		case errors.As(err, &e):
			what = "the node (" + e.Code + ")"
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "waiting for %s (%d s)...\n", what, int(waited.Round(time.Second)/time.Second))
	}
}

// newClient returns a client configured from the global flags.
func newClient(cmd *cobra.Command) (*client.Client, error) {
	return client.New(clientConfig(cmd))
}

// newStreamingClient is newClient for commands that stream a body of
// unbounded size (ledger export, snapshot save): unless --timeout was given,
// one attempt may take as long as the transfer needs.
func newStreamingClient(cmd *cobra.Command) (*client.Client, error) {
	cfg := clientConfig(cmd)
	if !cmd.Flags().Changed("timeout") {
		cfg.Timeout, cfg.RetryFor = streamingTimeout, DefaultTimeout
	}
	return client.New(cfg)
}

// streamingTimeout is the attempt limit of streaming commands when
// --timeout is not given; Ctrl-C cancels them sooner.
const streamingTimeout = 24 * time.Hour

// writeJSON prints v as indented JSON on the command's stdout.
func writeJSON(cmd *cobra.Command, v any) error {
	return writeJSONTo(cmd.OutOrStdout(), v)
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// exitError carries the exit status and --json error code of a failure.
type exitError struct {
	code    int
	apiCode string
	err     error
	// reported: stdout already holds the command's JSON result, so Run
	// prints no JSON error object after it.
	reported bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail returns err with the given exit status and --json error code.
func fail(code int, apiCode string, err error) error {
	return &exitError{code: code, apiCode: apiCode, err: err}
}

// failReported is fail for a command that has already printed its JSON
// result on stdout.
func failReported(cmd *cobra.Command, code int, apiCode string, err error) error {
	return &exitError{code: code, apiCode: apiCode, err: err, reported: jsonMode(cmd)}
}

// usageError marks a command-line mistake.
func usageError(err error) error {
	return fail(api.ExitError, api.CodeBadRequest, err)
}

// classify maps an error to its exit status and --json error code.
func classify(err error) (code int, apiCode string, reported bool) {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, ee.apiCode, ee.reported
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		switch ce.Code {
		case api.CodeDenied, api.CodeForbidden:
			return api.ExitDenied, ce.Code, false
		case api.CodeVerifyFailed:
			return api.ExitVerify, ce.Code, false
		}
		if ce.Status == http.StatusForbidden {
			return api.ExitDenied, api.CodeForbidden, false
		}
		return api.ExitError, ce.Code, false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return api.ExitError, api.CodeTimeout, false
	}
	return api.ExitError, codeError, false
}

// Positional-argument checks that report usage errors.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2
			}
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageError(errors.New(msg))
		}
		return usageError(fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args))
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return rangeArgs(n, n)
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			want := fmt.Sprintf("%d", lo)
			if hi != lo {
				want = fmt.Sprintf("%d to %d", lo, hi)
			}
			return usageError(fmt.Errorf("%s takes %s argument(s), got %d (usage: %s)", cmd.CommandPath(), want, len(args), cmd.UseLine()))
		}
		return nil
	}
}

// group returns a command that only holds subcommands.
func group(use, short string, children ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.AddCommand(children...)
	return c
}
