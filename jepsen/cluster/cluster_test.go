package cluster

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

func TestParseProcAddr(t *testing.T) {
	ip, port, err := parseProcAddr("015A007F:206C")
	if err != nil || ip != "127.0.90.1" || port != 8300 {
		t.Fatalf("got %s %d %v, want 127.0.90.1 8300", ip, port, err)
	}
	for _, bad := range []string{"", "0100007F", "XYZ:1", "0100007F:ZZ", "0100:0050"} {
		if _, _, err := parseProcAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConfigRejectsUnsafeAddresses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dominus")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for prefix, want := range map[string]string{
		"127.0.0":  "127.0.0.1",
		"10.0.0":   "127.0.0.0/8",
		"127.0":    "three octets",
		"127.0.90": "",
	} {
		cfg := Config{Bin: bin, Dir: t.TempDir(), IPPrefix: prefix}
		err := cfg.defaults()
		if want == "" {
			if err != nil {
				t.Errorf("prefix %s: %v", prefix, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("prefix %s: %v, want an error mentioning %q", prefix, err, want)
		}
	}
	if _, err := New(context.Background(), Config{Bin: filepath.Join(t.TempDir(), "missing"), Dir: t.TempDir()}); err == nil {
		t.Error("a missing binary was accepted")
	}
}

func TestConverged(t *testing.T) {
	mk := func(seq uint64, hash, digest string) *api.Status {
		return &api.Status{Head: api.Head{Seq: seq, Hash: hash}, StateDigest: digest, AppliedIndex: 9, CommitIndex: 9, Leader: "n1"}
	}
	if !converged([]*api.Status{mk(5, "h", "d"), mk(5, "h", "d")}) {
		t.Fatal("equal replicas not converged")
	}
	lagging := mk(5, "h", "d")
	lagging.AppliedIndex = 8
	for name, ss := range map[string][]*api.Status{
		"none":        nil,
		"silent node": {mk(5, "h", "d"), nil},
		"other head":  {mk(5, "h", "d"), mk(6, "h2", "d")},
		"other state": {mk(5, "h", "d"), mk(5, "h", "e")},
		"lagging":     {mk(5, "h", "d"), lagging},
	} {
		if converged(ss) {
			t.Errorf("%s: judged converged", name)
		}
	}
}

// TestTokenClientsShareConnections: clients of one node with different
// tokens send their own token and reuse one connection.
func TestTokenClientsShareConnections(t *testing.T) {
	var mu sync.Mutex
	var tokens []string
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens = append(tokens, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"node":"n1"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	c := &Cluster{nodes: []*Node{{Name: "n1", URL: srv.URL}}}
	mk := c.TokenClients(2 * time.Second)
	for _, tok := range []string{"a", "b", "a"} {
		cl, err := mk("n1", tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mk("n9", "a"); err == nil {
		t.Error("a client of an unknown node was made")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(tokens, ",") != "Bearer a,Bearer b,Bearer a" {
		t.Errorf("tokens sent: %v", tokens)
	}
	if conns != 1 {
		t.Errorf("%d connections for 3 sequential calls of one node, want 1", conns)
	}
}
