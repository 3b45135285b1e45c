package clustertests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/internal/proctest"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
	"github.com/dominus-kernel/dominus/transport"
)

// federationSecrets mirrors what a domain node keeps in
// DATA/federation.secrets (the attacker's loot in this test).
type federationSecrets struct {
	Master   []byte            `codec:"master"`
	Links    map[string][]byte `codec:"links"`
	KeyEpoch uint64            `codec:"key_epoch,omitempty"`
}

func readSecrets(t *testing.T, dataDir string) federationSecrets {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "federation.secrets"))
	if err != nil {
		t.Fatal(err)
	}
	var s federationSecrets
	if err := fsm.Decode(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJoinTokenDiesAndRevocationRotatesLinkKeys, with a sovereign and two
// domains as real processes: the second redeem of a domain's join token
// (the token and the kernel id that status publishes) is refused and
// hands out no passport, view or key; after another domain's passport is
// revoked, the link keys rotate, and a frame MAC'd with a's old key (as a
// thief of a's secrets file would send it) is refused by the sovereign.
func TestJoinTokenDiesAndRevocationRotatesLinkKeys(t *testing.T) {
	skipUnderRace(t)
	bin := proctest.Binary(t, "")
	sov := newProcClusterOf(t, "sovereign", "", 119, "s1")
	sov.start("s1", bin, 1, "--role", "sovereign")
	proctest.Eventually(t, 20*time.Second, "a sovereign leader", func() bool { s, ok := sov.status("s1"); return ok && s.Leader != "" })
	var ops api.OperatorInitResponse
	sov.json("s1", 0, &ops, "operator", "init", "--operators", "alice,bob", "--threshold", "1", "--key-dir", filepath.Join(sov.dir, "keys"))
	sov.env = append(sov.env, "DOMINUS_TOKEN="+ops.Operators[0].Token)
	sovURL := sov.url("s1")

	domains := map[string]*procCluster{}
	tokens := map[string]string{}
	for i, d := range []string{"a", "c"} {
		var dc api.DomainCreateResponse
		sov.json("s1", 0, &dc, "domain", "create", d)
		c := newProcClusterOf(t, d, sov.tlsDir, byte(120+i), d+"1")
		c.start(d+"1", bin, 1, "--role", "domain", "--domain", d, "--sovereign", sovURL)
		proctest.Eventually(t, 20*time.Second, d+": a leader", func() bool { s, ok := c.status(d + "1"); return ok && s.Leader != "" })
		var ir api.OperatorInitResponse
		c.json(d+"1", 0, &ir, "operator", "init", "--join-token", dc.JoinToken)
		c.env = append(c.env, "DOMINUS_TOKEN="+ir.RootToken)
		domains[d], tokens[d] = c, dc.JoinToken
	}
	a := domains["a"]
	st, _ := a.status("a1")

	// The join token again, with the kernel id status publishes.
	hc, err := httpsClient(filepath.Join(sov.tlsDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"domain": "a", "join_token": tokens["a"], "kernel_id": st.KernelID, "node_keys": []string{}, "bus_addrs": []string{}})
	resp, err := hc.Post(sovURL+"/v1/federation/join", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || bytes.Contains(answer, []byte(`"links"`)) || bytes.Contains(answer, []byte(`"passport"`)) {
		t.Fatalf("a second redeem of a's join token: HTTP %d %s", resp.StatusCode, answer)
	}

	// a's keys before the revocation, as a thief of its secrets file has them.
	old := readSecrets(t, a.procs["a1"].DataDir)
	oldKey := old.Links["a>sovereign"]
	if len(oldKey) == 0 || old.KeyEpoch != 0 {
		t.Fatalf("a's secrets: epoch %d, links %v", old.KeyEpoch, keysOf(old.Links))
	}
	var pps []api.Passport
	sov.json("s1", 0, &pps, "passport", "list")
	var cPassport string
	for _, p := range pps {
		if p.Domain == "c" {
			cPassport = p.ID
		}
	}
	if r := sov.cli("s1", "passport", "revoke", cPassport); r.Code != 0 {
		t.Fatalf("revoke %s: %s", cPassport, r.Stderr)
	}
	proctest.Eventually(t, 30*time.Second, "a renewed into key epoch 1", func() bool {
		s := readSecrets(t, a.procs["a1"].DataDir)
		return s.KeyEpoch == 1 && len(s.Links["a>sovereign"]) > 0 && !bytes.Equal(s.Links["a>sovereign"], oldKey)
	})

	// A frame under a's old key, over TLS with a's own certificate.
	files := tlsutil.Files{CA: filepath.Join(sov.tlsDir, "ca.pem"), Cert: filepath.Join(sov.tlsDir, "a1.pem"), Key: filepath.Join(sov.tlsDir, "a1-key.pem")}
	rl, err := tlsutil.NewReloader(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := transport.DefaultConfig()
	cfg.Handler = func(context.Context, string, []byte) ([]byte, error) { return nil, errors.New("not serving") }
	cfg.ClientTLS, cfg.PeerNode = rl.ClientConfig(""), rl.PeerNode
	thief, err := transport.Listen("127.0.120.1:0", rl.ServerConfig(true), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	var bus api.BusStats
	sov.json("s1", 0, &bus, "bus", "stats")
	before := bus.Rejected[string(transport.RejectBadMAC)]
	var aStatus api.Status
	a.json("a1", 0, &aStatus, "status")
	if aStatus.Passport == nil {
		t.Fatal("a shows no passport")
	}
	payload := fsm.Encode(&fsm.FedCanonAck{Domain: "a", Version: 0})
	frame, err := transport.Encode(transport.Frame{Version: transport.FrameVersion, Origin: "a", OriginNode: "a1", Destination: "sovereign",
		Seq: uint64(time.Now().UnixNano()), PassportID: aStatus.Passport.ID, Type: "canon.ack", Payload: payload, SentAtNs: time.Now().UnixNano()}, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := thief.Send(ctx, sov.procs["s1"].Bind, frame); !errors.Is(err, transport.ErrBadMAC) {
		t.Fatalf("a frame under a's old link key: %v, want a bad MAC refusal", err)
	}
	sov.json("s1", 0, &bus, "bus", "stats")
	if bus.Rejected[string(transport.RejectBadMAC)] != before+1 || bus.KeyEpoch != 1 {
		t.Fatalf("the sovereign's bus: epoch %d, bad MACs %d then %d", bus.KeyEpoch, before, bus.Rejected[string(transport.RejectBadMAC)])
	}
	// c, revoked, got no new keys.
	if s := readSecrets(t, domains["c"].procs["c1"].DataDir); s.KeyEpoch != 0 {
		t.Fatalf("the revoked domain c holds keys of epoch %d", s.KeyEpoch)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// httpsClient verifies a server against the CA file.
func httpsClient(ca string) (*http.Client, error) {
	conf, err := tlsutil.ClientCAConfig(ca)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}, nil
}
