package kernel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

func singleNode(t *testing.T, block int, mod func(*Config)) (*Node, Config) {
	t.Helper()
	return singleNodeAt(t, fmt.Sprintf("127.0.%d.1", block), mod)
}

// singleNodeAt is singleNode bound to ip.
func singleNodeAt(t *testing.T, ip string, mod func(*Config)) (*Node, Config) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = "solo"
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	cfg.BootstrapExpect = 1
	cfg.Logger = testLogger(t)
	cfg.RaftLogOutput = testOutput()
	cfg.MinFreeDiskBytes = 0
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	tc := &testCluster{t: t, nodes: []*Node{n}}
	tc.leader(10 * time.Second)
	return n, cfg
}

func put(t *testing.T, n *Node, token, key, val string) fsm.Result {
	t.Helper()
	res, err := n.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdKVPut, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVPut{Key: key, Value: []byte(val)})})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return res
}

func TestTamperedRaftLogRefusedAtStartup(t *testing.T) {
	n, cfg := singleNode(t, 32, nil)
	token, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const marker = "UNIQUE-MARKER-VALUE-0123456789"
	for i := 0; i < 5; i++ {
		put(t, n, token, fmt.Sprint("k", i), fmt.Sprint(marker, i))
	}
	n.Close()
	path := filepath.Join(cfg.DataDir, "raft", "raft.db")
	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	target := []byte(marker + "3")
	hits := 0
	for off := bytes.Index(db, target); off >= 0; {
		db[off+len(marker)-1] ^= 0x01 // a value byte, not bolt's own structure
		hits++
		next := bytes.Index(db[off+1:], target)
		if next < 0 {
			break
		}
		off += 1 + next
	}
	if hits == 0 {
		t.Fatal("marker not found in raft.db")
	}
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Listener = nil
	_, err = New(cfg)
	if !errors.Is(err, ErrLogTampered) {
		t.Fatalf("start on tampered raft.db: got %v, want ErrLogTampered", err)
	}
	t.Logf("refused as expected: %v", err)
}

func TestNodeWithCertificateFromAnotherCAIsRefused(t *testing.T) {
	dir := t.TempDir()
	caDir, rogueDir := filepath.Join(dir, "ca"), filepath.Join(dir, "rogue")
	for _, d := range []string{caDir, rogueDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tlsutil.CreateCA(d, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	ip1, ip2 := "127.0.33.1", "127.0.33.2"
	mk := func(d, name, ip string) *tlsutil.Files {
		c, k, err := tlsutil.CreateCert(d, filepath.Join(d, "ca.pem"), filepath.Join(d, "ca-key.pem"), "default", name, []net.IP{net.ParseIP(ip)}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return &tlsutil.Files{CA: filepath.Join(d, "ca.pem"), Cert: c, Key: k}
	}
	good, _ := singleNode(t, 33, func(c *Config) { c.TLS = mk(caDir, "solo", ip1) })
	cfg := DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.Logger, cfg.MinFreeDiskBytes = "rogue", t.TempDir(), testLogger(t), 0
	cfg.RaftLogOutput = testOutput()
	cfg.BindAddr = fmt.Sprintf("%s:%d", ip2, freePort(t, ip2))
	cfg.Join = []string{good.cfg.BindAddr}
	cfg.TLS = mk(rogueDir, "rogue", ip2)
	rogue, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	time.Sleep(3 * time.Second)
	if peers := good.Status().Peers; len(peers) != 1 {
		t.Fatalf("a node with a foreign CA joined: %+v", peers)
	}
	if rogue.hasConfiguration() {
		t.Fatal("rogue node learned a configuration")
	}
	// And a direct RPC from the rogue is refused at the handshake.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rogue.pool.call(ctx, good.cfg.BindAddr, rpcIdentify, struct{}{}, &identifyResponse{}); err == nil {
		t.Fatal("rpc from a foreign-CA node succeeded")
	}
}

func TestDiskGuardRefusesWritesAndChangesNothing(t *testing.T) {
	n, _ := singleNode(t, 34, nil)
	token, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	put(t, n, token, "a", "1")
	before, _ := n.Head()
	n.cfg.MinFreeDiskBytes = 1 << 62 // more than any disk has
	_, err = n.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdKVPut, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVPut{Key: "b", Value: []byte("2")})})
	if !errors.Is(err, ErrDiskFull) || httpedge.CodeOf(err) != api.CodeDiskFull {
		t.Fatalf("write on a full disk: %v", err)
	}
	after, _ := n.Head()
	if after.Seq != before.Seq {
		t.Fatal("refused write changed the ledger")
	}
}

func TestHTTPRejectsBadInputBeforeRaft(t *testing.T) {
	n, _ := singleNode(t, 35, nil)
	token, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	before, _ := n.Head()
	do := func(method, path, tok string, body []byte) (int, api.ErrorBody) {
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb api.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	cases := []struct {
		name, method, path, token string
		body                      []byte
		status                    int
		code                      string
	}{
		{"missing token", "PUT", "/v1/kv/a", "", []byte(`{"value":"x"}`), 401, api.CodeUnauthorized},
		{"unknown token", "PUT", "/v1/kv/a", "dmr_forged", []byte(`{"value":"x"}`), 401, api.CodeUnauthorized},
		{"oversized body", "PUT", "/v1/kv/a", token, []byte(`{"value":"` + strings.Repeat("x", 5<<20) + `"}`), 413, api.CodeTooLarge},
		{"oversized value", "PUT", "/v1/kv/a", token, []byte(`{"value":"` + strings.Repeat("x", fsm.MaxValueBytes+1) + `"}`), 413, api.CodeTooLarge},
		{"malformed json", "PUT", "/v1/kv/a", token, []byte(`{"value":`), 400, api.CodeBadRequest},
		{"unknown field", "PUT", "/v1/kv/a", token, []byte(`{"valu":"x"}`), 400, api.CodeBadRequest},
		{"long key", "PUT", "/v1/kv/" + strings.Repeat("k", fsm.MaxKeyBytes+1), token, []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"second init", "POST", "/v1/operator/init", "", []byte(`{}`), 409, api.CodeAlreadyInit},
		{"ledger without token", "GET", "/v1/ledger/tail", "", nil, 401, api.CodeUnauthorized},
		{"metrics without token", "GET", "/metrics", "", nil, 401, api.CodeUnauthorized},
	}
	for _, c := range cases {
		status, eb := do(c.method, c.path, c.token, c.body)
		if status != c.status || eb.Error.Code != c.code {
			t.Errorf("%s: got %d %q, want %d %q (%s)", c.name, status, eb.Error.Code, c.status, c.code, eb.Error.Message)
		}
	}
	// A flood of unknown tokens never reaches the ledger.
	for i := 0; i < 200; i++ {
		do("PUT", "/v1/kv/a", fmt.Sprint("dmr_flood", i), []byte(`{"value":"x"}`))
	}
	after, _ := n.Head()
	if after.Seq != before.Seq {
		t.Fatalf("rejected requests reached the ledger: seq %d -> %d", before.Seq, after.Seq)
	}
	// Health and status need no token.
	if s, _ := do("GET", "/v1/health", "", nil); s != 200 {
		t.Errorf("health: %d", s)
	}
	if s, _ := do("GET", "/v1/status", "", nil); s != 200 {
		t.Errorf("status: %d", s)
	}
}

func TestTamperedSnapshotRestoreRefused(t *testing.T) {
	n, _ := singleNode(t, 36, nil)
	token, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	put(t, n, token, "a", "1")
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	post := func(path string, body []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	resp, snap := post("/v1/snapshot/save", []byte("{}"))
	if resp.StatusCode != 200 {
		t.Fatalf("save: %d %s", resp.StatusCode, snap)
	}
	put(t, n, token, "a", "2")
	tampered := append([]byte(nil), snap...)
	tampered[len(tampered)/2] ^= 0x01
	before, _ := n.Head()
	if resp, body := post("/v1/snapshot/restore", tampered); resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), api.CodeVerifyFailed) {
		t.Fatalf("tampered restore: %d %s", resp.StatusCode, body)
	}
	if after, _ := n.Head(); after.Seq != before.Seq {
		t.Fatal("refused restore changed the ledger")
	}
	// The untampered snapshot restores as a new epoch linked to the old head.
	resp, body := post("/v1/snapshot/restore", snap)
	if resp.StatusCode != 200 {
		t.Fatalf("restore: %d %s", resp.StatusCode, body)
	}
	res, err := n.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdKVGet, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVKey{Key: "a"})})
	if err != nil || string(res.Value) != "1" {
		t.Fatalf("after restore a=%q err=%v", res.Value, err)
	}
	if v := n.VerifyArchive(); !v.OK {
		t.Fatalf("archive after epoch: %+v", v)
	}
}
