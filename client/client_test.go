package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/dominus-kernel/dominus/api"
)

// Keys travel as themselves: "orders/7" reaches the server's {key...}
// route as "orders/7", and odd characters survive the round trip.
func TestKeysAreNotDoubleEscaped(t *testing.T) {
	var got string
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		got = r.PathValue("key")
		_ = json.NewEncoder(w).Encode(api.KVResponse{Key: got})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(Config{Addr: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"orders/7", "a b", "100%", "q?x=1#frag", "ünï/cödé"} {
		if _, err := c.KVPut(context.Background(), key, "v"); err != nil {
			t.Fatal(err)
		}
		if got != key {
			t.Errorf("key %q arrived as %q", key, got)
		}
	}
}

// A write retried after a transport failure carries the same request id,
// so the ledger can deduplicate it.
func TestRetryKeepsRequestID(t *testing.T) {
	var calls atomic.Int32
	ids := make(chan string, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get(api.HeaderRequestID)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: api.CodeNoLeader, Message: "electing"}})
			return
		}
		_ = json.NewEncoder(w).Encode(api.KVResponse{})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := New(Config{Addr: srv.URL})
	if _, err := c.KVPut(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	a, b := <-ids, <-ids
	if a == "" || a != b {
		t.Fatalf("retry request ids %q and %q", a, b)
	}
}
