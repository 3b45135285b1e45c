package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/dominus-kernel/dominus/api"
)

// As returns a client that talks to the same node with token: one
// connection pool for every agent a gateway serves.
func (c *Client) As(token string) *Client {
	cp := *c
	cp.cfg.Token = token
	return &cp
}

// GatewaySyscall relays the syscall of this client's token (the agent's)
// as the gateway holding gatewayToken, which will execute its effect and
// report it (protocol 5). On PERMIT the answer's seq names the effect.
func (c *Client) GatewaySyscall(ctx context.Context, gatewayToken string, req api.GatewaySyscallRequest, opts ...Option) (*api.SyscallResponse, error) {
	var out api.SyscallResponse
	opts = append(opts, func(o *callOpts) {
		if o.header == nil {
			o.header = http.Header{}
		}
		o.header.Set(api.HeaderGatewayToken, gatewayToken)
	})
	return &out, c.do(ctx, http.MethodPost, "/v1/gateway/syscall", nil, req, &out, opts...)
}

// ReportEffect reports how the caller-executed effect of the syscall at
// seq ended (this client's token is the gateway's, scope effect.report).
func (c *Client) ReportEffect(ctx context.Context, seq uint64, req api.EffectReportRequest, opts ...Option) (*api.EffectReportResponse, error) {
	var out api.EffectReportResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/effects/"+strconv.FormatUint(seq, 10)+"/report", nil, req, &out, opts...)
}

// Self returns the capability of this client's token as the node holds
// it (no scope needed: a holder reads its own).
func (c *Client) Self(ctx context.Context) (*api.Capability, error) {
	var out api.Capability
	return &out, c.do(ctx, http.MethodGet, "/v1/gateway/capability", nil, nil, &out)
}
