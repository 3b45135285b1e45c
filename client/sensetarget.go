package client

import (
	"context"
	"net/http"

	"github.com/dominus-kernel/dominus/api"
)

// SenseTarget reads the false-alarm target of sensing (audit.read or
// operator.manage).
func (c *Client) SenseTarget(ctx context.Context) (*api.SenseTarget, error) {
	var r api.SenseTarget
	return &r, c.do(ctx, http.MethodGet, "/v1/sense/target", nil, nil, &r)
}

// SenseTargetSet sets the false-alarm target (operator.manage on sense;
// protocol 6).
func (c *Client) SenseTargetSet(ctx context.Context, req api.SenseTargetRequest, opts ...Option) (*api.SenseTargetResponse, error) {
	var r api.SenseTargetResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/sense/target", nil, req, &r, opts...)
}
