package mcpgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ResourceOp is the op of reading a resource of server.
func ResourceOp(server string) string { return "mcp." + server + ".resource.read" }

// PromptOp is the op of getting a prompt of server.
func PromptOp(server string) string { return "mcp." + server + ".prompt.get" }

// listExtras lists what the upstream offers beside tools: its resources,
// resource templates and prompts, when it declares them.
func (u *upstream) listExtras(ctx context.Context) error {
	caps := u.session.InitializeResult().Capabilities
	if caps.Resources != nil {
		for r, err := range u.session.Resources(ctx, nil) {
			if err != nil {
				return fmt.Errorf("resources/list: %w", err)
			}
			u.resources = append(u.resources, r)
		}
		for t, err := range u.session.ResourceTemplates(ctx, nil) {
			if err != nil {
				return fmt.Errorf("resources/templates/list: %w", err)
			}
			u.templates = append(u.templates, t)
		}
	}
	if caps.Prompts != nil {
		for p, err := range u.session.Prompts(ctx, nil) {
			if err != nil {
				return fmt.Errorf("prompts/list: %w", err)
			}
			u.prompts = append(u.prompts, p)
		}
	}
	sort.Slice(u.resources, func(i, j int) bool { return u.resources[i].URI < u.resources[j].URI })
	sort.Slice(u.templates, func(i, j int) bool { return u.templates[i].URITemplate < u.templates[j].URITemplate })
	sort.Slice(u.prompts, func(i, j int) bool { return u.prompts[i].Name < u.prompts[j].Name })
	return nil
}

// resourceOf is the resource a read of uri is judged on: a file: URI's
// cleaned path, which must lie in the server's roots when it has any;
// any other URI as it is.
func resourceOf(uri string, roots []string) (string, error) {
	if uri == "" || len(uri) > maxResourceSize || strings.ContainsRune(uri, 0) {
		return "", fmt.Errorf("resource URI %q is empty, too long or holds NUL", uri)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("resource URI %q: %v", uri, err)
	}
	if u.Scheme != "file" {
		return uri, nil
	}
	if len(roots) == 0 {
		return "", fmt.Errorf("resource %q is a file, and the server has no roots", uri)
	}
	return cleanPath(u.Path, roots)
}

// addExtras adds to srv the resources and prompts of u that the session's
// capability names ops for; each read or get is judged as a tool call
// is, before it reaches the upstream.
func (g *Gateway) addExtras(srv *mcp.Server, sess *session, u *upstream, ops []string) {
	if covers(ops, ResourceOp(u.cfg.Name)) {
		h := g.resourceHandler(sess, u)
		for _, r := range u.resources {
			srv.AddResource(r, h)
		}
		for _, t := range u.templates {
			srv.AddResourceTemplate(t, h)
		}
	}
	if covers(ops, PromptOp(u.cfg.Name)) {
		for _, p := range u.prompts {
			exposed := *p
			if len(g.upstreams) > 1 {
				exposed.Name = u.cfg.Name + "." + p.Name
			}
			srv.AddPrompt(&exposed, g.promptHandler(sess, u, p.Name))
		}
	}
}

// errRefused carries the gate's answer (or the gateway's refusal) to the
// agent as the request's error.
type errRefused struct{ msg string }

func (e *errRefused) Error() string { return e.msg }

func (g *Gateway) resourceHandler(sess *session, u *upstream) mcp.ResourceHandler {
	op := ResourceOp(u.cfg.Name)
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		if err := sess.same(req.Extra); err != nil {
			return nil, err
		}
		resource, err := resourceOf(req.Params.URI, u.cfg.Roots)
		if err != nil {
			return nil, &errRefused{"refused by the gateway: " + err.Error()}
		}
		var res *mcp.ReadResourceResult
		err = g.governed(ctx, sess, op, resource, map[string]any{"uri": req.Params.URI}, func() (any, bool, error) {
			r, err := u.session.ReadResource(ctx, &mcp.ReadResourceParams{URI: req.Params.URI})
			res = r
			return r, false, err
		})
		return res, err
	}
}

func (g *Gateway) promptHandler(sess *session, u *upstream, name string) mcp.PromptHandler {
	op := PromptOp(u.cfg.Name)
	return func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		if err := sess.same(req.Extra); err != nil {
			return nil, err
		}
		args := map[string]any{"name": name}
		for k, v := range req.Params.Arguments {
			args["arguments."+k] = v
		}
		var res *mcp.GetPromptResult
		err := g.governed(ctx, sess, op, name, args, func() (any, bool, error) {
			r, err := u.session.GetPrompt(ctx, &mcp.GetPromptParams{Name: name, Arguments: req.Params.Arguments})
			res = r
			return r, false, err
		})
		return res, err
	}
}

// same refuses a request whose bearer token is not the session's.
func (s *session) same(extra *mcp.RequestExtra) error {
	if extra != nil && extra.Header != nil && bearer(extra.Header.Get("Authorization")) != s.token {
		return &errRefused{"refused by the gateway: this request's token is not the session's"}
	}
	return nil
}

// governed judges op on resource with the canonical args, runs call only
// if the gate permits, and reports the effect's end.
func (g *Gateway) governed(ctx context.Context, sess *session, op, resource string, args map[string]any, call func() (any, bool, error)) error {
	raw, err := json.Marshal(args)
	if err == nil {
		raw, err = Canonicalize(raw)
	}
	if err != nil {
		return &errRefused{"refused by the gateway: " + err.Error()}
	}
	judged, err := g.judge(ctx, sess, op, []string{resource}, raw)
	if err != nil {
		g.notRun(judged)
		return &errRefused{"Dominus could not judge the request, so it did not run: " + err.Error()}
	}
	if msg := refusal(op, judged); msg != "" {
		g.notRun(judged)
		return &errRefused{msg}
	}
	out, isErr, callErr := call()
	g.reportOutcome(judged, out, isErr, callErr)
	if callErr != nil {
		var re *errRefused
		if errors.As(callErr, &re) {
			return callErr
		}
		return fmt.Errorf("the upstream server did not answer: %w", callErr)
	}
	return nil
}
