package client

import (
	"context"
	"net/http"

	"github.com/dominus-kernel/dominus/api"
)

// CortexSignals lists the latest cortex signal of every (domain, node,
// kind) the node holds, sorted by domain, node and kind.
func (c *Client) CortexSignals(ctx context.Context) ([]api.CortexSignal, error) {
	var r []api.CortexSignal
	return r, c.do(ctx, http.MethodGet, "/v1/cortex/signals", nil, nil, &r)
}

// CortexInsights lists the master cortex's findings recorded in the
// sovereign's ledger, oldest first (empty on a domain).
func (c *Client) CortexInsights(ctx context.Context) ([]api.CortexInsight, error) {
	var r []api.CortexInsight
	return r, c.do(ctx, http.MethodGet, "/v1/cortex/insights", nil, nil, &r)
}

// CortexKeyring applies one step of a gossip key rotation (install, use or
// remove) on the node this client talks to.
func (c *Client) CortexKeyring(ctx context.Context, action, keyHex string) (*api.CortexKeyring, error) {
	var r api.CortexKeyring
	return &r, c.do(ctx, http.MethodPost, "/v1/cortex/keyring", nil, api.CortexKeyringRequest{Action: action, Key: keyHex}, &r)
}
