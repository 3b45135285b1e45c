package kernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/cortex"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transport"
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

// keysInEpoch returns the a>b link key and the gossip key the sovereign
// derives in epoch.
func keysInEpoch(t *testing.T, sov *Node, epoch uint64) (ab, gossip []byte) {
	t.Helper()
	master := sov.fed.secrets().Master
	ab, err := transport.DeriveLinkKeyEpoch(master, "a", "b", epoch)
	if err != nil {
		t.Fatal(err)
	}
	if gossip, err = cortexGossipKey(master, epoch); err != nil {
		t.Fatal(err)
	}
	return ab, gossip
}

// waitKeyEpoch waits until every node uses key epoch epoch: the
// sovereign's ledger, the domains' secrets.
func waitKeyEpoch(t *testing.T, epoch uint64, nodes ...*Node) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, n.cfg.Name+" at key epoch", 15*time.Second, func() bool { return n.fed.keyEpoch() == epoch })
	}
}

// checkRotated checks a federation that moved from key epoch 0 to 1:
// a and b hold the new keys (link and gossip) and no longer the old ones,
// a's cross-domain calls reach b, and b refuses and counts a frame a sends
// under the old a->b key.
func checkRotated(t *testing.T, fx *fedFixture, oldAB, oldGossip []byte) {
	t.Helper()
	ctx := context.Background()
	newAB, newGossip := keysInEpoch(t, fx.sov, 1)
	if bytes.Equal(newAB, oldAB) || bytes.Equal(newGossip, oldGossip) {
		t.Fatal("epoch 1 derives the keys of epoch 0")
	}
	for _, n := range []*Node{fx.a, fx.b} {
		s := n.fed.secrets()
		if !bytes.Equal(s.Links[linkName("a", "b")], newAB) || !bytes.Equal(s.Links[cortexKeyLink], newGossip) {
			t.Fatalf("%s holds a>b %x and gossip %x, want epoch 1's %x and %x", n.cfg.Name, s.Links[linkName("a", "b")], s.Links[cortexKeyLink], newAB, newGossip)
		}
		for name, k := range s.Links {
			if bytes.Equal(k, oldAB) || bytes.Equal(k, oldGossip) {
				t.Fatalf("%s still holds an epoch-0 key as %s", n.cfg.Name, name)
			}
		}
		var st api.BusStats
		token := map[*Node]string{fx.a: fx.rootA, fx.b: fx.rootB}[n]
		if code := getJSON(t, n, "/v1/bus", token, &st); code != http.StatusOK || st.KeyEpoch != 1 {
			t.Fatalf("%s bus stats: %d key epoch %d, want 1", n.cfg.Name, code, st.KeyEpoch)
		}
	}
	if k, _ := fx.sov.fed.linkKey("a", "sovereign"); bytes.Equal(k, fx.a.fed.secrets().Links[linkName("a", "sovereign")]) == false {
		t.Fatal("the sovereign's a->sovereign key is not the one a holds")
	}
	// The bus keeps delivering under the new keys.
	res := remoteCall(t, fx.a, fx.agentA, "kv.put", "b:orders/rotated", "paid", fx.grantForA)
	if e := waitDelivered(t, fx.a, res.ID); e.Remote.Decision != fsm.DecisionPermit {
		t.Fatalf("a call after the rotation: %+v", e.Remote)
	}
	// A frame under the old a->b key, sent as the shipper sends: refused.
	var addrs []string
	fx.a.fedState(func(_ *fsm.State, f *fsm.FedState) { addrs = f.Peers["b"].BusAddrs })
	ppID := passportIDOf(fx.a)
	payload := fsm.Encode(&fsm.BusReceive{Origin: "a", Seq: 1000, PassportID: ppID, Entity: "agent", Op: "kv.put", Resource: "orders/old-key", Args: []byte("x"), TokenHash: TokenHash(fx.grantForA)})
	frame, err := transport.Encode(transport.Frame{Version: transport.FrameVersion, Origin: "a", OriginNode: fx.a.cfg.Name, Destination: "b",
		Seq: 1000, PassportID: ppID, Type: "syscall", Payload: payload, SentAtNs: time.Now().UnixNano()}, oldAB)
	if err != nil {
		t.Fatal(err)
	}
	before := fx.b.fed.bus.Stats().Rejected[transport.RejectBadMAC]
	if _, err := fx.a.fed.bus.Send(ctx, addrs[0], frame); !errors.Is(err, transport.ErrBadMAC) {
		t.Fatalf("a frame under the old key: %v, want a bad MAC refusal", err)
	}
	if after := fx.b.fed.bus.Stats().Rejected[transport.RejectBadMAC]; after != before+1 {
		t.Fatalf("b counted %d bad-MAC frames, then %d", before, after)
	}
	if _, ok := kvValue(fx.b, "orders/old-key"); ok {
		t.Fatal("b applied a frame under the old key")
	}
}

// After a passport revocation the sovereign's leader moves the key epoch
// on by itself: the other domains take the new keys at their next renewal
// and keep delivering; the old keys, which the revoked domain holds, no
// longer verify.
func TestRevocationRotatesTheFederationKeys(t *testing.T) {
	fx := startFederationOpts(t, fedOpts{block: 73, extra: []string{"c"}})
	ctx := context.Background()
	c := fx.domains["c"]
	oldAB, oldGossip := keysInEpoch(t, fx.sov, 0)
	if held, _ := fx.a.fed.linkKey("a", "b"); !bytes.Equal(held, oldAB) {
		t.Fatal("a's a>b key is not epoch 0's")
	}
	mustPermit(t, "revoke c")(fx.sov.Apply(ctx, fsm.Envelope{Type: fsm.CmdFedPassportRevoke, Auth: TokenHash(fx.opToken), Payload: fsm.Encode(&fsm.FedPassportRevoke{ID: c.Status().Passport.ID})}))
	waitKeyEpoch(t, 1, fx.sov, fx.a, fx.b)
	var rotation *api.Event
	_ = fx.sov.Events(1, func(ev api.Event) error {
		if ev.Type == "fed.keys.rotate" {
			rotation = &ev
		}
		return nil
	})
	if rotation == nil || rotation.Decision != api.DecisionPermit || rotation.Actor != "kernel" {
		t.Fatalf("the sovereign's ledger records no permitted rotation by the kernel: %+v", rotation)
	}
	fx.sov.fedState(func(_ *fsm.State, f *fsm.FedState) {
		if f.Keys.By != "revocation of c" || !slices.Equal(f.Keys.Answered, []string{"c"}) {
			t.Errorf("key epoch record %+v", f.Keys)
		}
	})
	checkRotated(t, fx, oldAB, oldGossip)
	if e := c.fed.keyEpoch(); e != 0 {
		t.Fatalf("the revoked domain holds key epoch %d", e)
	}
	time.Sleep(2 * time.Second) // the leader's duties run every second: no second rotation
	if e := fx.sov.fed.keyEpoch(); e != 1 {
		t.Fatalf("key epoch %d after one revocation", e)
	}
}

// Two of three operators move the key epoch on over the API (one
// signature, a repeated and a forged one do not); the domains follow at
// their next renewal, and every node's gossip pool switches to the new
// derived gossip key without a restart, signals still flowing.
func TestOperatorsRotateTheFederationKeys(t *testing.T) {
	fx := startFederationOpts(t, fedOpts{block: 74, gossip: true, derive: true})
	ctx := context.Background()
	nodes := []*Node{fx.sov, fx.a, fx.b}
	oldAB, oldGossip := keysInEpoch(t, fx.sov, 0)
	pools := map[*Node]*cortex.Pool{}
	for _, n := range nodes {
		pools[n] = cortexPool(t, n)
		if keys := pools[n].Keys(); len(keys) != 1 || !bytes.Equal(keys[0], oldGossip) {
			t.Fatalf("%s gossips under %d keys, not the derived epoch-0 key", n.cfg.Name, len(keys))
		}
	}
	waitFor(t, "a's signals at the sovereign", cortexWait, func() bool { return len(kindsFrom(fx.sov, "a")) > 0 })

	srv := httptest.NewServer(fx.sov.Handler())
	defer srv.Close()
	cl, _ := client.New(client.Config{Addr: srv.URL})
	ks, err := cl.FedKeys(ctx)
	if err != nil || ks.KeyEpoch != 0 || ks.Threshold != 2 || ks.KernelID == "" {
		t.Fatalf("keys before: %+v %v", ks, err)
	}
	sign := func(op string, key ed25519.PrivateKey, epoch uint64) *api.KeyRotateResponse {
		t.Helper()
		r, err := cl.FedRotateKeys(ctx, api.KeyRotateRequest{Epoch: epoch, Operator: op, Signature: hex.EncodeToString(ed25519.Sign(key, fsm.RotateKeysMessage(ks.KernelID, epoch)))})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := sign("alice", fx.opKeys["alice"], 1); r.Decision != api.DecisionPermit || r.Rotated || r.KeyEpoch != 0 || !slices.Equal(r.Pending, []string{"alice"}) {
		t.Fatalf("alice's signature: %+v", r)
	}
	if r := sign("alice", fx.opKeys["alice"], 1); r.Decision != api.DecisionDeny || r.Reason != "duplicate_signature" {
		t.Fatalf("alice again: %+v", r)
	}
	mallory := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	if r := sign("bob", mallory, 1); r.Decision != api.DecisionDeny || r.Reason != "bad_signature" {
		t.Fatalf("bob's name under another key: %+v", r)
	}
	time.Sleep(time.Second) // two renewals: nothing moved
	if e := fx.a.fed.keyEpoch(); e != 0 {
		t.Fatalf("a at key epoch %d after one signature", e)
	}
	if r := sign("bob", fx.opKeys["bob"], 1); r.Decision != api.DecisionPermit || !r.Rotated || r.KeyEpoch != 1 {
		t.Fatalf("bob's signature: %+v", r)
	}
	if r := sign("bob", fx.opKeys["bob"], 1); r.Decision != api.DecisionDeny || r.Reason != "too_old" {
		t.Fatalf("bob's signature replayed: %+v", r)
	}
	if ks, err := cl.FedKeys(ctx); err != nil || ks.KeyEpoch != 1 || ks.By != "alice,bob" || len(ks.Pending) != 0 {
		t.Fatalf("keys after: %+v %v", ks, err)
	}
	waitKeyEpoch(t, 1, fx.sov, fx.a, fx.b)
	checkRotated(t, fx, oldAB, oldGossip)

	// Every pool moved to the new gossip key alone, without a restart.
	_, newGossip := keysInEpoch(t, fx.sov, 1)
	for _, n := range nodes {
		waitFor(t, n.cfg.Name+"'s pool on the new gossip key", cortexWait, func() bool {
			keys := cortexOfKeys(n)
			return len(keys) == 1 && bytes.Equal(keys[0], newGossip)
		})
		if p := n.cortexOf().current(); p != pools[n] {
			t.Fatalf("%s's gossip pool was restarted", n.cfg.Name)
		}
	}
	before := kindsFrom(fx.sov, "a")[cortex.OperationalTempo].Seq
	waitFor(t, "a's signals after the rotation", cortexWait, func() bool { return kindsFrom(fx.sov, "a")[cortex.OperationalTempo].Seq > before })
}
