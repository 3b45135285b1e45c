package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dominus-kernel/dominus/api"
)

// Syscall asks the gate to perform op on resource with the client's
// capability token. The decision (api.DecisionPermit, DecisionDeny,
// DecisionEscalate) is in the answer; an error means no decision was made.
func (c *Client) Syscall(ctx context.Context, req api.SyscallRequest, opts ...Option) (*api.SyscallResponse, error) {
	var r api.SyscallResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/syscall", nil, req, &r, opts...)
}

// Grant issues a capability (operator token). The answer holds the new
// token exactly once.
func (c *Client) Grant(ctx context.Context, req api.GrantRequest, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/caps", nil, req, &r, opts...)
}

// Delegate derives a child of the client's own capability.
func (c *Client) Delegate(ctx context.Context, req api.GrantRequest, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/caps/delegate", nil, req, &r, opts...)
}

// Revoke revokes a capability and its whole subtree.
func (c *Client) Revoke(ctx context.Context, id string, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/caps/"+url.PathEscape(id)+"/revoke", nil, struct{}{}, &r, opts...)
}

// Caps lists capabilities (cap.read), optionally of one entity.
func (c *Client) Caps(ctx context.Context, entity string, opts ...Option) ([]api.Capability, error) {
	var out []api.Capability
	q := url.Values{}
	if entity != "" {
		q.Set("entity", entity)
	}
	return out, c.do(ctx, http.MethodGet, "/v1/caps", q, nil, &out, opts...)
}

// Cap inspects one capability (cap.read, or the holder itself).
func (c *Client) Cap(ctx context.Context, id string, opts ...Option) (*api.Capability, error) {
	var out api.Capability
	return &out, c.do(ctx, http.MethodGet, "/v1/caps/"+url.PathEscape(id), nil, nil, &out, opts...)
}

// OperatorAdd issues a governance capability to a named human.
func (c *Client) OperatorAdd(ctx context.Context, req api.OperatorRequest, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operators", nil, req, &r, opts...)
}

// Operators lists operators' capabilities.
func (c *Client) Operators(ctx context.Context) ([]api.Capability, error) {
	var out []api.Capability
	return out, c.do(ctx, http.MethodGet, "/v1/operators", nil, nil, &out)
}

// OperatorRevoke revokes every active capability of the named operator.
func (c *Client) OperatorRevoke(ctx context.Context, name string, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operators/"+url.PathEscape(name)+"/revoke", nil, struct{}{}, &r, opts...)
}

// PolicySet installs (or with empty text removes) a named Cedar policy set.
func (c *Client) PolicySet(ctx context.Context, req api.PolicyRequest, opts ...Option) (*api.PolicyResponse, error) {
	var r api.PolicyResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/policies", nil, req, &r, opts...)
}

// Policies lists policy sets (audit.read).
func (c *Client) Policies(ctx context.Context, opts ...Option) ([]api.Policy, error) {
	var out []api.Policy
	return out, c.do(ctx, http.MethodGet, "/v1/policies", nil, nil, &out, opts...)
}

// Backtest re-judges recorded syscalls against a candidate policy set.
func (c *Client) Backtest(ctx context.Context, req api.BacktestRequest) (*api.BacktestResponse, error) {
	var r api.BacktestResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/policies/backtest", nil, req, &r)
}

// Approvals lists escalations, optionally in one state.
func (c *Client) Approvals(ctx context.Context, state string) ([]api.Approval, error) {
	var out []api.Approval
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	return out, c.do(ctx, http.MethodGet, "/v1/approvals", q, nil, &out)
}

// Decide approves or denies an escalation.
func (c *Client) Decide(ctx context.Context, id string, approve bool, opts ...Option) (*api.GrantResponse, error) {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/approvals/"+url.PathEscape(id)+"/"+verb, nil, struct{}{}, &r, opts...)
}

// Halt stops an entity ("" = the whole kernel): every non-governance
// syscall is denied `halted` until Resume.
func (c *Client) Halt(ctx context.Context, entity, reason string, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/halt", nil, api.HaltRequest{Entity: entity, Reason: reason}, &r, opts...)
}

// Resume lifts a halt.
func (c *Client) Resume(ctx context.Context, entity, reason string, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/resume", nil, api.HaltRequest{Entity: entity, Reason: reason}, &r, opts...)
}

// Halts lists halts in force.
func (c *Client) Halts(ctx context.Context) ([]api.Halt, error) {
	var out []api.Halt
	return out, c.do(ctx, http.MethodGet, "/v1/halts", nil, nil, &out)
}

// Effect reports how the external effect of the syscall at seq ended.
func (c *Client) Effect(ctx context.Context, seq uint64) (*api.Effect, error) {
	var out api.Effect
	return &out, c.do(ctx, http.MethodGet, "/v1/effects/"+strconv.FormatUint(seq, 10), nil, nil, &out)
}

// Effects lists external effects visible to the client's token.
func (c *Client) Effects(ctx context.Context) ([]api.Effect, error) {
	var out []api.Effect
	return out, c.do(ctx, http.MethodGet, "/v1/effects", nil, nil, &out)
}
