package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dominus-kernel/dominus/api"
)

// HistoryQuery narrows an entity's history: From and To are seqs or
// RFC 3339 ledger times ("" = the ledger's start or end), Op one op ("" =
// all), Limit the most entries (0 = the node's default).
type HistoryQuery struct {
	From, To, Op string
	Limit        int
}

// History lists an entity's gate decisions, oldest first, each with the
// state it was judged against (audit.read).
func (c *Client) History(ctx context.Context, entity string, hq HistoryQuery) ([]api.HistoryEntry, error) {
	q := url.Values{}
	for k, v := range map[string]string{"from": hq.From, "to": hq.To, "op": hq.Op} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if hq.Limit > 0 {
		q.Set("limit", strconv.Itoa(hq.Limit))
	}
	var out []api.HistoryEntry
	return out, c.do(ctx, http.MethodGet, keyPath("/v1/history/entity/", entity), q, nil, &out)
}

// HistoryStatus reports the node's history checkpoints (audit.read).
func (c *Client) HistoryStatus(ctx context.Context) (*api.HistoryStatus, error) {
	var out api.HistoryStatus
	return &out, c.do(ctx, http.MethodGet, "/v1/history/status", nil, nil, &out)
}
