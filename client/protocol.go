package client

import (
	"context"
	"net/http"

	"github.com/dominus-kernel/dominus/api"
)

// ProtocolStatus returns the protocol in force, what each member
// implements and the history.
func (c *Client) ProtocolStatus(ctx context.Context) (*api.ProtocolStatus, error) {
	var r api.ProtocolStatus
	return &r, c.do(ctx, http.MethodGet, "/v1/operator/protocol", nil, nil, &r)
}

// ProtocolUpgrade moves the kernel to a newer protocol (operator.manage;
// on the sovereign with the federation operators' signatures).
func (c *Client) ProtocolUpgrade(ctx context.Context, req api.ProtocolUpgradeRequest, opts ...Option) (*api.ProtocolUpgradeResponse, error) {
	var r api.ProtocolUpgradeResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operator/protocol/upgrade", nil, req, &r, opts...)
}

// Limits returns the replicated limits in force.
func (c *Client) Limits(ctx context.Context) (*api.Limits, error) {
	var r api.Limits
	return &r, c.do(ctx, http.MethodGet, "/v1/operator/limits", nil, nil, &r)
}

// LimitsSet changes the replicated limits (operator.manage).
func (c *Client) LimitsSet(ctx context.Context, req api.LimitsRequest, opts ...Option) (*api.LimitsResponse, error) {
	var r api.LimitsResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operator/limits", nil, req, &r, opts...)
}
