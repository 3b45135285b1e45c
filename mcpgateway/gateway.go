package mcpgateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

// Codes of reported effects the gateway did not run to an answer.
const (
	CodeNotRun    = -409 // permitted, but another resource of the call was not: never sent upstream
	CodeLost      = -502 // sent upstream, no answer (the effect may or may not have happened)
	CodeToolError = 1    // the upstream answered with a tool error
)

// Gateway is the MCP gateway: its upstream sessions and the kernel
// client. It is safe for concurrent use by many sessions.
type Gateway struct {
	cfg          *Config
	kernel       *client.Client // no token: each call names its own
	gatewayToken string
	log          *slog.Logger
	version      string

	upstreams []*upstream
}

type upstream struct {
	cfg     ServerConfig
	session *mcp.ClientSession
	tools   []*mcp.Tool // served tools: listed upstream and ruled in the config
	rules   map[string]Rule
	// What the upstream offers beside tools (resources.go).
	resources []*mcp.Resource
	templates []*mcp.ResourceTemplate
	prompts   []*mcp.Prompt
}

// New connects to the kernel and to every upstream server of cfg.
// gatewayToken is the gateway's own capability (effect.report).
func New(ctx context.Context, cfg *Config, gatewayToken string, log *slog.Logger, version string) (*Gateway, error) {
	if gatewayToken == "" {
		return nil, errors.New("no gateway token: set DOMINUS_GATEWAY_TOKEN to a capability with effect.report on the mcp ops it serves")
	}
	kc, err := client.New(client.Config{Addr: cfg.Kernel.Addr, CACert: cfg.Kernel.CACert})
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, kernel: kc, gatewayToken: gatewayToken, log: log, version: version}
	self, err := kc.As(gatewayToken).Self(ctx)
	if err != nil {
		return nil, fmt.Errorf("the gateway token: %w", err)
	}
	if !covers(self.Ops, "effect.report") {
		return nil, fmt.Errorf("the gateway token's capability %s (%s) lacks effect.report: it could not report the effects it executes", self.ID, self.Entity)
	}
	for _, sc := range cfg.Servers {
		u, err := g.connect(ctx, sc)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("upstream %s: %w", sc.Name, err)
		}
		g.upstreams = append(g.upstreams, u)
	}
	return g, nil
}

func (g *Gateway) connect(ctx context.Context, sc ServerConfig) (*upstream, error) {
	t := sc.transport
	switch {
	case t != nil:
	case sc.Command != "":
		cmd := exec.Command(sc.Command, sc.Args...)
		cmd.Env = append(os.Environ(), sc.Env...)
		cmd.Stderr = os.Stderr
		t = &mcp.CommandTransport{Command: cmd}
	default:
		t = &mcp.StreamableClientTransport{Endpoint: sc.URL}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "dominus-mcp-gateway", Version: g.version}, nil)
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	s, err := c.Connect(cctx, t, nil)
	if err != nil {
		return nil, err
	}
	u := &upstream{cfg: sc, session: s, rules: map[string]Rule{}}
	listed := map[string]bool{}
	for tool, err := range s.Tools(cctx, nil) {
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		listed[tool.Name] = true
		rc, ok := sc.Tools[tool.Name]
		if !ok {
			g.log.Info("upstream tool has no resource rule; it is not served", "server", sc.Name, "tool", tool.Name)
			continue
		}
		r, _ := ParseRule(rc.Resource) // validated with the config
		u.rules[tool.Name] = r
		u.tools = append(u.tools, tool)
	}
	for name := range sc.Tools {
		if !listed[name] {
			g.log.Warn("configured tool is not offered by the upstream server", "server", sc.Name, "tool", name)
		}
	}
	sort.Slice(u.tools, func(i, j int) bool { return u.tools[i].Name < u.tools[j].Name })
	if err := u.listExtras(cctx); err != nil {
		s.Close()
		return nil, err
	}
	return u, nil
}

// Close ends the upstream sessions (and the commands the gateway started).
func (g *Gateway) Close() {
	for _, u := range g.upstreams {
		u.session.Close()
	}
}

// Op is the op of a call of tool on server.
func Op(server, tool string) string { return "mcp." + server + ".tool." + tool }

// covers reports whether one of patterns (exact, or ending in * for any
// suffix) matches op.
func covers(patterns []string, op string) bool {
	for _, p := range patterns {
		if p == op || strings.HasSuffix(p, "*") && strings.HasPrefix(op, strings.TrimSuffix(p, "*")) {
			return true
		}
	}
	return false
}

// session is one agent's connection: its token and the approvals its
// escalated calls wait for (keyed by op, resource and args digest).
type session struct {
	token     string
	mu        sync.Mutex
	approvals map[string]string
}

// NewServer returns the MCP server of one agent session: the tools its
// capability names, each governed. It fails when the token names no
// capability.
func (g *Gateway) NewServer(ctx context.Context, token string) (*mcp.Server, error) {
	if token == "" {
		return nil, errors.New("no agent token (DOMINUS_TOKEN for stdio, Authorization: Bearer for HTTP)")
	}
	self, err := g.kernel.As(token).Self(ctx)
	if err != nil {
		return nil, fmt.Errorf("the agent token: %w", err)
	}
	sess := &session{token: token, approvals: map[string]string{}}
	srv := mcp.NewServer(&mcp.Implementation{Name: "dominus-mcp-gateway", Version: g.version}, nil)
	names := map[string]int{}
	for _, u := range g.upstreams {
		for _, t := range u.tools {
			names[t.Name]++
		}
	}
	for _, u := range g.upstreams {
		for _, t := range u.tools {
			if !covers(self.Ops, Op(u.cfg.Name, t.Name)) {
				continue
			}
			exposed := *t
			if names[t.Name] > 1 {
				exposed.Name = u.cfg.Name + "." + t.Name
			}
			srv.AddTool(&exposed, g.toolHandler(sess, u, t.Name))
		}
		g.addExtras(srv, sess, u, self.Ops)
	}
	return srv, nil
}

// decision is one resource's judgement.
type decision struct {
	resource string
	resp     *api.SyscallResponse
}

func (g *Gateway) toolHandler(sess *session, u *upstream, tool string) mcp.ToolHandler {
	op := Op(u.cfg.Name, tool)
	rule := u.rules[tool]
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if req.Extra != nil && req.Extra.Header != nil && bearer(req.Extra.Header.Get("Authorization")) != sess.token {
			return toolError("refused by the gateway: this request's token is not the session's"), nil
		}
		raw := []byte(req.Params.Arguments)
		if len(raw) == 0 {
			raw = []byte("{}")
		}
		canon, err := Canonicalize(raw)
		if err != nil {
			return toolError("refused by the gateway: " + err.Error()), nil
		}
		var args map[string]any
		if err := json.Unmarshal(canon, &args); err != nil {
			return toolError("refused by the gateway: arguments must be a JSON object"), nil
		}
		resources, err := rule.Resources(args, u.cfg.Roots)
		if err != nil {
			return toolError("refused by the gateway: " + err.Error()), nil
		}
		judged, err := g.judge(ctx, sess, op, resources, canon)
		if err != nil {
			g.notRun(judged)
			return toolError("Dominus could not judge the call, so it did not run: " + err.Error()), nil
		}
		if msg := refusal(op, judged); msg != "" {
			g.notRun(judged)
			return toolError(msg), nil
		}
		res, callErr := u.session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: json.RawMessage(canon)})
		g.reportAll(judged, res, callErr)
		if callErr != nil {
			return toolError("the upstream server did not answer: " + callErr.Error()), nil
		}
		return res, nil
	}
}

// judge asks the gate for every resource (each is judged and ledgered,
// so the agent learns every reason at once); the identical call of an
// earlier escalation carries its approval.
func (g *Gateway) judge(ctx context.Context, sess *session, op string, resources []string, canon []byte) ([]decision, error) {
	sum := sha256.Sum256(canon)
	digest := hex.EncodeToString(sum[:])
	agent := g.kernel.As(sess.token)
	var out []decision
	for _, r := range resources {
		key := op + "\x00" + r + "\x00" + digest
		sess.mu.Lock()
		approval := sess.approvals[key]
		sess.mu.Unlock()
		resp, err := agent.GatewaySyscall(ctx, g.gatewayToken, api.GatewaySyscallRequest{Op: op, Resource: r, Args: string(canon), ApprovalID: approval})
		if err != nil {
			return out, err
		}
		sess.mu.Lock()
		switch {
		case resp.Decision == "escalate":
			sess.approvals[key] = resp.ApprovalID
		case resp.Decision == "permit" || resp.Reason == "approval_invalid" && approval != "":
			delete(sess.approvals, key) // redeemed, or refused for good (denied, expired, used)
		}
		sess.mu.Unlock()
		if resp.Reason == "approval_invalid" && approval != "" {
			resp.ApprovalID = approval
		}
		out = append(out, decision{resource: r, resp: resp})
	}
	return out, nil
}

// refusal is the agent's answer when a resource was not permitted ("" if
// all were).
func refusal(op string, judged []decision) string {
	var lines []string
	for _, d := range judged {
		r := d.resp
		switch r.Decision {
		case "permit":
			continue
		case "escalate":
			lines = append(lines, fmt.Sprintf("escalated to an operator: %s on %s awaits approval %s (ledger seq %d); repeat the identical call once it is approved", op, d.resource, r.ApprovalID, r.Seq))
		default:
			if r.ApprovalID != "" {
				lines = append(lines, fmt.Sprintf("denied by Dominus: %s on %s: approval %s is not (or no longer) approved (%s, ledger seq %d); an identical call asks again", op, d.resource, r.ApprovalID, r.Reason, r.Seq))
				continue
			}
			lines = append(lines, fmt.Sprintf("denied by Dominus: %s on %s: %s (ledger seq %d)", op, d.resource, r.Reason, r.Seq))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\nThe call was not run."
}

// notRun reports the permitted effects of a call that never ran.
func (g *Gateway) notRun(judged []decision) {
	for _, d := range judged {
		if d.resp.Decision == "permit" {
			g.report(d.resp.Seq, api.EffectReportRequest{Status: "failed", Code: CodeNotRun})
		}
	}
}

// reportAll reports how the upstream call ended for each of its effects.
func (g *Gateway) reportAll(judged []decision, res *mcp.CallToolResult, callErr error) {
	g.reportOutcome(judged, res, callErr == nil && res.IsError, callErr)
}

// reportOutcome reports the end of an upstream request for each effect:
// ok with the digest of its result, failed when the upstream answered an
// error, indeterminate when it did not answer.
func (g *Gateway) reportOutcome(judged []decision, res any, isError bool, callErr error) {
	rep := api.EffectReportRequest{Status: "indeterminate", Code: CodeLost}
	if callErr == nil {
		rep = api.EffectReportRequest{Status: "ok", OutputDigest: digestOf(res)}
		if isError {
			rep.Status, rep.Code = "failed", CodeToolError
		}
	}
	for _, d := range judged {
		g.report(d.resp.Seq, rep)
	}
}

// report records an effect's completion; one the kernel does not take is
// logged, and becomes indeterminate at the kernel's timeout.
func (g *Gateway) report(seq uint64, rep api.EffectReportRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := g.kernel.As(g.gatewayToken).ReportEffect(ctx, seq, rep)
	switch {
	case err != nil:
		g.log.Warn("could not report an effect; the kernel will record it as indeterminate", "seq", seq, "err", err)
	case r.Decision == "deny":
		g.log.Warn("the kernel refused an effect report", "seq", seq, "reason", r.Reason)
	}
}

// ResultDigest is "sha256:" and the hex SHA-256 of the result's RFC 8785
// canonical JSON.
func ResultDigest(res *mcp.CallToolResult) string { return digestOf(res) }

// digestOf is "sha256:" and the hex SHA-256 of v's RFC 8785 canonical
// JSON ("" if it does not encode).
func digestOf(v any) string {
	b, err := json.Marshal(v)
	if err == nil {
		b, err = Canonicalize(b)
	}
	if err != nil {
		return ""
	}
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

func bearer(h string) string {
	t, _ := strings.CutPrefix(h, "Bearer ")
	return strings.TrimSpace(t)
}
