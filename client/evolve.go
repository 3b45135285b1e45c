package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/dominus-kernel/dominus/api"
)

// EvolveStart starts a governed evolution of a policy set (policy.set).
func (c *Client) EvolveStart(ctx context.Context, req api.EvolveStartRequest, opts ...Option) (*api.EvolveStartResponse, error) {
	var r api.EvolveStartResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/evolutions", nil, req, &r, opts...)
}

// Evolutions lists the kept evolutions, oldest first (audit.read).
func (c *Client) Evolutions(ctx context.Context) ([]api.Evolution, error) {
	var out []api.Evolution
	return out, c.do(ctx, http.MethodGet, "/v1/evolutions", nil, nil, &out)
}

// Evolution reports one evolution (audit.read).
func (c *Client) Evolution(ctx context.Context, id string) (*api.Evolution, error) {
	var r api.Evolution
	return &r, c.do(ctx, http.MethodGet, "/v1/evolutions/"+url.PathEscape(id), nil, nil, &r)
}

// EvolveStep promotes, aborts or resumes an evolution: action is
// "promote", "abort" or "resume" (policy.set on its set).
func (c *Client) EvolveStep(ctx context.Context, id, action string, opts ...Option) (*api.EvolveResponse, error) {
	var r api.EvolveResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/evolutions/"+url.PathEscape(id)+"/"+action, nil, nil, &r, opts...)
}

// PolicyHistory lists a policy set's kept versions (audit.read).
func (c *Client) PolicyHistory(ctx context.Context, name string) ([]api.PolicyVersion, error) {
	var out []api.PolicyVersion
	return out, c.do(ctx, http.MethodGet, "/v1/policies/"+url.PathEscape(name)+"/history", nil, nil, &out)
}

// PolicyRollback reinstalls a kept version of a policy set as a new
// version (policy.set on the set).
func (c *Client) PolicyRollback(ctx context.Context, name string, version uint64, opts ...Option) (*api.PolicyRollbackResponse, error) {
	var r api.PolicyRollbackResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/policies/"+url.PathEscape(name)+"/rollback", nil, api.PolicyRollbackRequest{Version: version}, &r, opts...)
}
