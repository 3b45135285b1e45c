package client

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

// Only failures that waiting can fix are retried: a certificate the
// client does not trust, or TLS on one side only, fail at once with the
// cause; a node that refuses connections is retried, and OnRetry hears
// of each wait.
func TestRetriesOnlyWhatWaitingFixes(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer plain.Close()
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	for _, tc := range []struct {
		name, addr string
		retried    bool
		want       string
	}{
		{"untrusted certificate", tlsSrv.URL, false, "certificate"},
		{"https to a plain node", strings.Replace(plain.URL, "http://", "https://", 1), false, "HTTP response to HTTPS client"},
		{"http to a TLS node", strings.Replace(tlsSrv.URL, "https://", "http://", 1), false, "the node serves https"},
		{"refused", refusedURL, true, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			retries := 0
			c, err := New(Config{Addr: tc.addr, Timeout: time.Second, RetryFor: 600 * time.Millisecond,
				OnRetry: func(error, time.Duration) { retries++ }})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = c.Status(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
			if (retries > 0) != tc.retried {
				t.Fatalf("retried %d times (%s), want retried=%v", retries, time.Since(start), tc.retried)
			}
			if !tc.retried && time.Since(start) > 300*time.Millisecond {
				t.Fatalf("a failure waiting cannot fix took %s", time.Since(start))
			}
			if tc.name == "http to a TLS node" && !IsCode(err, api.CodeBadRequest) {
				t.Fatalf("http to a TLS node: %v, want bad_request with the hint", err)
			}
		})
	}
}

// An address without a scheme is https when a CA certificate is given,
// else http.
func TestAddressWithoutScheme(t *testing.T) {
	c, err := New(Config{Addr: "127.0.0.1:8101"})
	if err != nil || c.base.Scheme != "http" {
		t.Fatalf("%v %v", err, c)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"node":"n1"}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = New(Config{Addr: strings.TrimPrefix(srv.URL, "https://"), CACert: ca})
	if err != nil || c.base.Scheme != "https" {
		t.Fatalf("with a CA certificate: %v %v", err, c.base)
	}
	if st, err := c.Status(context.Background()); err != nil || st.Node != "n1" {
		t.Fatalf("status over the inferred https: %v %+v", err, st)
	}
}
