package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dominus-kernel/dominus/api"
)

// Checkpoint returns the kernel's latest signed checkpoint (audit.read).
func (c *Client) Checkpoint(ctx context.Context) (*api.Checkpoint, error) {
	var r api.Checkpoint
	return &r, c.do(ctx, http.MethodGet, "/v1/ledger/checkpoint", nil, nil, &r)
}

// CountersignedCheckpoint returns the kernel's latest checkpoint that
// carries the sovereign's countersignature (a domain's).
func (c *Client) CountersignedCheckpoint(ctx context.Context) (*api.Checkpoint, error) {
	var r api.Checkpoint
	return &r, c.do(ctx, http.MethodGet, "/v1/ledger/checkpoint", url.Values{"countersigned": {"1"}}, nil, &r)
}

// SignCheckpoint has the leader sign a checkpoint now (snapshot.manage).
func (c *Client) SignCheckpoint(ctx context.Context) (*api.Checkpoint, error) {
	var r api.Checkpoint
	return &r, c.do(ctx, http.MethodPost, "/v1/ledger/checkpoint", nil, nil, &r)
}

// CheckpointKeys returns the kernel's checkpoint verification keys (no
// token needed).
func (c *Client) CheckpointKeys(ctx context.Context) (*api.CheckpointKeys, error) {
	var r api.CheckpointKeys
	return &r, c.do(ctx, http.MethodGet, "/v1/ledger/checkpoint/keys", nil, nil, &r)
}

// ProveInclusion returns an inclusion proof of event seq against the tree
// of treeSize events (0: the latest checkpoint's).
func (c *Client) ProveInclusion(ctx context.Context, seq, treeSize uint64) (*api.InclusionProof, error) {
	var q url.Values
	if treeSize > 0 {
		q = url.Values{"tree_size": {strconv.FormatUint(treeSize, 10)}}
	}
	var r api.InclusionProof
	return &r, c.do(ctx, http.MethodGet, "/v1/ledger/proof/inclusion/"+strconv.FormatUint(seq, 10), q, nil, &r)
}

// ProveConsistency returns a consistency proof from the tree of from
// events to the tree of to events.
func (c *Client) ProveConsistency(ctx context.Context, from, to uint64) (*api.ConsistencyProof, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	var r api.ConsistencyProof
	return &r, c.do(ctx, http.MethodGet, "/v1/ledger/proof/consistency", q, nil, &r)
}
