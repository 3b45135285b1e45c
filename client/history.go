package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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

// LedgerFollow streams the ledger's events from seq from on (0: only
// those after the head) as the node archives them, calling fn for each,
// until ctx ends, fn fails, or the node closes the stream (audit.read).
// It makes one attempt: a caller that wants to resume calls again from
// the seq after the last event it saw.
func (c *Client) LedgerFollow(ctx context.Context, from uint64, fn func(api.Event) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		dec := json.NewDecoder(pr)
		for {
			var ev api.Event
			if err := dec.Decode(&ev); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				pr.CloseWithError(err)
				done <- err
				return
			}
			if err := fn(ev); err != nil {
				pr.CloseWithError(err)
				done <- err
				return
			}
		}
	}()
	q := url.Values{"from": {strconv.FormatUint(from, 10)}}
	err := c.do(ctx, http.MethodGet, "/v1/ledger/follow", q, nil, nil, func(o *callOpts) { o.raw, o.stream = pw, true })
	pw.CloseWithError(err)
	if derr := <-done; derr != nil && (err == nil || errors.Is(err, io.ErrClosedPipe)) {
		return derr
	}
	return err
}
