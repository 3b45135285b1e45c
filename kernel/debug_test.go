package kernel

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func getDebug(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// Profiles are served only with --enable-debug, and only to operators.
func TestDebugProfilesNeedTheFlagAndAnOperator(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		block := 67
		if enabled {
			block = 68
		}
		tc := startCluster(t, block, 1, func(c *Config) { c.EnableDebug = enabled })
		n := tc.leader(10 * time.Second)
		srv := httptest.NewServer(n.Handler())
		t.Cleanup(srv.Close)
		ctx := context.Background()
		root, _, err := n.Init(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(client.Config{Addr: srv.URL, Token: root, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		op, err := c.OperatorAdd(ctx, api.OperatorRequest{Name: "auditor", Scopes: []string{"audit.read"}})
		if err != nil || op.Decision != "permit" {
			t.Fatalf("operator add: %v %+v", err, op)
		}
		url := srv.URL + "/v1/debug/pprof/goroutine?debug=1"
		code, body := getDebug(t, url, root)
		if !enabled {
			if code != http.StatusNotFound || !strings.Contains(body, "--enable-debug") {
				t.Fatalf("without --enable-debug: %d %s, want 404 naming the flag", code, body)
			}
			continue
		}
		if code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
			t.Fatalf("root token with --enable-debug: %d %.200s", code, body)
		}
		if code, body := getDebug(t, url, op.Token); code != http.StatusForbidden {
			t.Fatalf("an operator without operator.manage: %d %.200s, want 403", code, body)
		}
		if code, _ := getDebug(t, url, ""); code != http.StatusUnauthorized {
			t.Fatalf("no token: %d, want 401", code)
		}
		if code, body := getDebug(t, srv.URL+"/v1/debug/pprof/nosuch", root); code != http.StatusNotFound {
			t.Fatalf("unknown profile: %d %.200s, want 404", code, body)
		}
	}
}
