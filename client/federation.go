package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/dominus-kernel/dominus/api"
)

// InitWith seals genesis with a body: a sovereign's named operators or a
// domain's join token.
func (c *Client) InitWith(ctx context.Context, req api.OperatorInitRequest) (*api.OperatorInitResponse, error) {
	var r api.OperatorInitResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operator/init", nil, req, &r)
}

// DomainCreate registers a domain on the sovereign; the answer holds its
// one-time join token.
func (c *Client) DomainCreate(ctx context.Context, req api.DomainCreateRequest, opts ...Option) (*api.DomainCreateResponse, error) {
	var r api.DomainCreateResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/federation/domains", nil, req, &r, opts...)
}

// Domains lists the sovereign's registry.
func (c *Client) Domains(ctx context.Context) ([]api.Domain, error) {
	var r []api.Domain
	return r, c.do(ctx, http.MethodGet, "/v1/federation/domains", nil, nil, &r)
}

// Passports lists the passports this kernel knows.
func (c *Client) Passports(ctx context.Context) ([]api.Passport, error) {
	var r []api.Passport
	return r, c.do(ctx, http.MethodGet, "/v1/passports", nil, nil, &r)
}

// Passport inspects one passport.
func (c *Client) Passport(ctx context.Context, id string) (*api.Passport, error) {
	var r api.Passport
	return &r, c.do(ctx, http.MethodGet, "/v1/passports/"+url.PathEscape(id), nil, nil, &r)
}

// PassportRevoke revokes a passport (sovereign).
func (c *Client) PassportRevoke(ctx context.Context, id string, opts ...Option) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/passports/"+url.PathEscape(id)+"/revoke", nil, struct{}{}, &r, opts...)
}

// Canon shows the canon version, hash and amendments, as of a
// linearizable read.
func (c *Client) Canon(ctx context.Context, withText bool) (*api.Canon, error) {
	var r api.Canon
	q := url.Values{"consistent": {"1"}}
	if withText {
		q.Set("text", "1")
	}
	return &r, c.do(ctx, http.MethodGet, "/v1/canon", q, nil, &r)
}

// AmendPropose proposes a new canon text.
func (c *Client) AmendPropose(ctx context.Context, text string, opts ...Option) (*api.AmendResponse, error) {
	var r api.AmendResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/canon/amendments", nil, api.AmendProposeRequest{Text: text}, &r, opts...)
}

// AmendSign adds an operator's signature to an amendment.
func (c *Client) AmendSign(ctx context.Context, id string, req api.AmendSignRequest) (*api.AmendResponse, error) {
	var r api.AmendResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/canon/amendments/"+url.PathEscape(id)+"/sign", nil, req, &r)
}

// AmendVeto vetoes a pending amendment.
func (c *Client) AmendVeto(ctx context.Context, id string) (*api.AmendResponse, error) {
	var r api.AmendResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/canon/amendments/"+url.PathEscape(id)+"/veto", nil, struct{}{}, &r)
}

// FedHalt halts the federation (sovereign operator).
func (c *Client) FedHalt(ctx context.Context, reason string) (*api.FedHaltResponse, error) {
	var r api.FedHaltResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/federation/halt", nil, api.FedHaltRequest{Reason: reason}, &r)
}

// FedHaltState reports the federation halt.
func (c *Client) FedHaltState(ctx context.Context) (*api.FedHaltState, error) {
	var r api.FedHaltState
	return &r, c.do(ctx, http.MethodGet, "/v1/federation/halt", nil, nil, &r)
}

// FedResume adds one operator's signed consent to resume.
func (c *Client) FedResume(ctx context.Context, req api.FedResumeRequest) (*api.FedHaltResponse, error) {
	var r api.FedHaltResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/federation/resume", nil, req, &r)
}

// FedKeys reports the sovereign's key epoch and the signatures gathered
// for the next one.
func (c *Client) FedKeys(ctx context.Context) (*api.FedKeys, error) {
	var r api.FedKeys
	return &r, c.do(ctx, http.MethodGet, "/v1/federation/keys", nil, nil, &r)
}

// FedRotateKeys adds one operator's signature to move the key epoch on.
func (c *Client) FedRotateKeys(ctx context.Context, req api.KeyRotateRequest) (*api.KeyRotateResponse, error) {
	var r api.KeyRotateResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/federation/keys/rotate", nil, req, &r)
}

// Witness lists the heads the sovereign witnessed for a domain.
func (c *Client) Witness(ctx context.Context, domain string) ([]api.WitnessHead, error) {
	var r []api.WitnessHead
	q := url.Values{}
	if domain != "" {
		q.Set("domain", domain)
	}
	return r, c.do(ctx, http.MethodGet, "/v1/federation/witness", q, nil, &r)
}

// BusEvent reports a cross-domain call's delivery and remote decision;
// id is "DEST/SEQ".
func (c *Client) BusEvent(ctx context.Context, id string, consistent bool) (*api.BusEvent, error) {
	var r api.BusEvent
	q := url.Values{}
	if consistent {
		q.Set("consistent", "1")
	}
	return &r, c.do(ctx, http.MethodGet, "/v1/bus/"+id, q, nil, &r)
}

// BusStats reports this node's bus counters.
func (c *Client) BusStats(ctx context.Context) (*api.BusStats, error) {
	var r api.BusStats
	return &r, c.do(ctx, http.MethodGet, "/v1/bus", nil, nil, &r)
}

// OperatorRekey submits M operators' signatures replacing an operator's key.
func (c *Client) OperatorRekey(ctx context.Context, name string, req api.RekeyRequest) (*api.GrantResponse, error) {
	var r api.GrantResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operators/"+url.PathEscape(name)+"/rekey", nil, req, &r)
}
