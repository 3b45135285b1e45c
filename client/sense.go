package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dominus-kernel/dominus/api"
)

// Sensing reads are linearizable: what was just ingested is seen.
func consistent() url.Values { return url.Values{"consistent": {"1"}} }

// Signal ingests one typed external signal (a token holding signal.ingest).
func (c *Client) Signal(ctx context.Context, kind string, value int64, opts ...Option) (*api.SignalResponse, error) {
	var r api.SignalResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/signals", nil, api.SignalRequest{Kind: kind, Value: value}, &r, opts...)
}

// Baseline reports an entity's behavioural baseline and deviation.
func (c *Client) Baseline(ctx context.Context, entity string, opts ...Option) (*api.Baseline, error) {
	var r api.Baseline
	return &r, c.do(ctx, http.MethodGet, keyPath("/v1/baselines/", entity), consistent(), nil, &r, opts...)
}

// Trust reports an entity's trust score and tier.
func (c *Client) Trust(ctx context.Context, entity string, opts ...Option) (*api.TrustReport, error) {
	var r api.TrustReport
	return &r, c.do(ctx, http.MethodGet, keyPath("/v1/trust/", entity), consistent(), nil, &r, opts...)
}

// TrustAdjust moves an entity's trust (a token holding trust.adjust).
func (c *Client) TrustAdjust(ctx context.Context, entity string, delta int64, reason string, opts ...Option) (*api.TrustAdjustResponse, error) {
	var r api.TrustAdjustResponse
	return &r, c.do(ctx, http.MethodPost, keyPath("/v1/trust-adjust/", entity), nil, api.TrustAdjustRequest{Delta: delta, Reason: reason}, &r, opts...)
}

// Posture reports the kernel's posture.
func (c *Client) Posture(ctx context.Context, opts ...Option) (*api.Posture, error) {
	var r api.Posture
	return &r, c.do(ctx, http.MethodGet, "/v1/posture", consistent(), nil, &r, opts...)
}

// PostureHistory lists the archived postures, oldest first.
func (c *Client) PostureHistory(ctx context.Context) ([]api.PostureSnapshot, error) {
	var r []api.PostureSnapshot
	return r, c.do(ctx, http.MethodGet, "/v1/posture/history", consistent(), nil, &r)
}

// PostureSimilar finds the k archived postures nearest to the given
// signal values (the current posture's for kinds not given).
func (c *Client) PostureSimilar(ctx context.Context, signals map[string]int64, k int) ([]api.PostureMatch, error) {
	q := consistent()
	for kind, v := range signals {
		q.Set(kind, strconv.FormatInt(v, 10))
	}
	if k > 0 {
		q.Set("k", strconv.Itoa(k))
	}
	var r []api.PostureMatch
	return r, c.do(ctx, http.MethodGet, "/v1/posture/similar", q, nil, &r)
}
