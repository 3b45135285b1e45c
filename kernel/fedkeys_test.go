package kernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
)

// postSovereign POSTs body to the sovereign's path with from's federation
// client and returns the status and the raw answer.
func postToSovereign(t *testing.T, from, sov *Node, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := from.fed.httpc.Post("https://"+sov.HTTPAddr()+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// refusedEmpty asserts an answer with status code whose body is an error
// and nothing else: no view, passport, link key or gossip key.
func refusedEmpty(t *testing.T, what string, code int, status int, body []byte) {
	t.Helper()
	if status != code {
		t.Fatalf("%s: status %d, want %d: %s", what, status, code, body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: answer is not JSON: %s", what, body)
	}
	if _, ok := m["error"]; !ok || len(m) != 1 {
		t.Fatalf("%s: the refusal carries more than an error: %s", what, body)
	}
	for _, secret := range []string{`"links"`, `"update"`, `"Passport"`, `"key_epoch"`} {
		if bytes.Contains(body, []byte(secret)) {
			t.Fatalf("%s: the refusal carries %s: %s", what, secret, body)
		}
	}
	t.Logf("%s: %d %s", what, status, strings.TrimSpace(string(body)))
}

// resign signs req again with key (and names key as its node key).
func resign(req FedJoinRequest, key ed25519.PrivateKey) FedJoinRequest {
	req.NodeKey = hex.EncodeToString(key.Public().(ed25519.PublicKey))
	req.Signature = hex.EncodeToString(ed25519.Sign(key, req.signingBytes()))
	return req
}

// A join token dies with its first redeem: the token and the kernel id
// (which status publishes) get nothing more, nor does a request signed by
// a key outside the domain's passport, a stale or altered one, or one for
// another kernel; the domain's own leader, signing, still gets its view.
// A revoked domain gets nothing from join or renew.
func TestJoinTokenIsSingleUse(t *testing.T) {
	fx := startFederationOpts(t, fedOpts{block: 72})
	ctx := context.Background()
	kidA, tokA := fx.a.Status().KernelID, fx.joinTokens["a"]
	join := func(what string, code int, req FedJoinRequest) {
		t.Helper()
		status, body := postToSovereign(t, fx.a, fx.sov, "/v1/federation/join", req)
		refusedEmpty(t, what, code, status, body)
	}
	unsigned := fx.a.joinRequest(ctx, tokA, kidA)
	unsigned.SentAt, unsigned.NodeKey, unsigned.Signature = 0, "", ""
	join("the token and the kernel id alone", http.StatusUnauthorized, unsigned)
	foreign := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	join("signed by a key outside the passport", http.StatusUnauthorized, resign(fx.a.joinRequest(ctx, tokA, kidA), foreign))
	stale := fx.a.joinRequest(ctx, tokA, kidA)
	stale.SentAt -= int64(5 * time.Minute)
	join("a stale request", http.StatusUnauthorized, resign(stale, fx.a.fed.key))
	altered := fx.a.joinRequest(ctx, tokA, kidA)
	altered.BusAddrs = []string{"127.0.0.1:1"}
	join("a request altered after signing", http.StatusUnauthorized, altered)
	join("another kernel", http.StatusForbidden, fx.a.joinRequest(ctx, tokA, "kernel-other"))
	join("a wrong token", http.StatusUnauthorized, fx.a.joinRequest(ctx, "dmj_wrong", kidA))

	// The domain's own leader retries its join, signed: it gets its view
	// and its keys, those it already holds.
	var view FedView
	req := fx.a.joinRequest(ctx, tokA, kidA)
	if err := fx.a.fed.postSovereign(ctx, "/v1/federation/join", &req, &view); err != nil {
		t.Fatalf("the domain's signed retry: %v", err)
	}
	held, _ := fx.a.fed.linkKey("a", "b")
	if len(view.Update.Passport) == 0 || !bytes.Equal(view.Links[linkName("a", "b")], held) {
		t.Fatalf("the signed retry's view: passport %d bytes, a>b key %x, held %x", len(view.Update.Passport), view.Links[linkName("a", "b")], held)
	}

	// A revoked domain gets nothing, signed or not.
	mustPermit(t, "revoke b")(fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedPassportRevoke, Auth: TokenHash(fx.opToken), Payload: fsm.Encode(&fsm.FedPassportRevoke{ID: fx.b.Status().Passport.ID})}))
	kidB, tokB := fx.b.Status().KernelID, fx.joinTokens["b"]
	status, body := postToSovereign(t, fx.b, fx.sov, "/v1/federation/join", fx.b.joinRequest(ctx, tokB, kidB))
	refusedEmpty(t, "the revoked domain's signed join", http.StatusForbidden, status, body)
	unsignedB := fx.b.joinRequest(ctx, tokB, kidB)
	unsignedB.Signature = ""
	status, body = postToSovereign(t, fx.b, fx.sov, "/v1/federation/join", unsignedB)
	refusedEmpty(t, "the revoked domain's unsigned join", http.StatusUnauthorized, status, body)
	renew, err := fx.b.fed.renewRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status, body = postToSovereign(t, fx.b, fx.sov, "/v1/federation/renew", renew)
	refusedEmpty(t, "the revoked domain's renewal", http.StatusForbidden, status, body)
}
