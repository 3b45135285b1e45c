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

// TestFederationKernelsShareOneCA: two clusters with one TLSDir make the
// CA once and a certificate per node, name their nodes by their prefix
// and append their role's flags to every agent's command line.
func TestFederationKernelsShareOneCA(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "dominus")
	// A stand-in for `dominus tls ...`: it writes the files and logs the call.
	script := `#!/bin/sh
echo "$@" >> "` + filepath.Join(dir, "calls") + `"
d=""; node=""
while [ $# -gt 0 ]; do case "$1" in --dir) d="$2"; shift;; --node) node="$2"; shift;; esac; shift; done
if [ -n "$node" ]; then touch "$d/$node.pem" "$d/$node-key.pem"; else touch "$d/ca.pem" "$d/ca-key.pem"; fi
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "tls")
	mk := func(name, prefix, ipPrefix string, extra ...string) *Cluster {
		c, err := New(context.Background(), Config{Bin: bin, Dir: filepath.Join(dir, name), TLSDir: tlsDir, IPPrefix: ipPrefix, NamePrefix: prefix, ExtraArgs: extra})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := mk("a", "a", "127.0.92", "--role", "domain", "--domain", "a")
	s := mk("sovereign", "s", "127.0.91", "--role", "sovereign")
	if a.CACert() != s.CACert() || a.CACert() != filepath.Join(tlsDir, "ca.pem") {
		t.Fatalf("CA files %s and %s, want both %s", a.CACert(), s.CACert(), filepath.Join(tlsDir, "ca.pem"))
	}
	calls, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(calls), "ca create"); n != 1 {
		t.Errorf("%d CAs created, want 1:\n%s", n, calls)
	}
	if n := strings.Count(string(calls), "cert create"); n != 6 {
		t.Errorf("%d certificates created, want 6:\n%s", n, calls)
	}
	if got := a.Nodes()[2].Name; got != "a3" || a.Nodes()[2].IP != "127.0.92.3" {
		t.Fatalf("third node of a: %s at %s", got, a.Nodes()[2].IP)
	}
	args := strings.Join(a.args(a.Nodes()[0], 0, false), " ")
	if !strings.HasSuffix(args, "--role domain --domain a") || !strings.Contains(args, "--tls-cert "+filepath.Join(tlsDir, "a1.pem")) {
		t.Fatalf("agent args %s", args)
	}
	if args := strings.Join(s.args(s.Nodes()[0], 0, false), " "); !strings.Contains(args, "--name s1") || strings.Contains(args, "--domain") {
		t.Fatalf("sovereign args %s", args)
	}
}
