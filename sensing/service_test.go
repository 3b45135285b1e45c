package sensing

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/kernel/kerneltest"
)

// The sensing API end to end on one node: a critical signal sets the
// posture, a bad one is refused and changes nothing, and baseline and
// trust answer with the contract's fields.
func TestSensingOverHTTP(t *testing.T) {
	n := kerneltest.SingleNode(t, "127.0.45.1", nil, New())
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	gr, err := root.Grant(ctx, api.GrantRequest{Entity: "pager", Ops: []string{"signal.ingest"}, Resources: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	pager, _ := client.New(client.Config{Addr: srv.URL, Token: gr.Token})
	if r, err := pager.Signal(ctx, "incident_level", 100); err != nil || r.Decision != "permit" || r.Level != "critical" {
		t.Fatalf("incident_level 100: %v %+v", err, r)
	}
	for _, bad := range []struct {
		kind  string
		value int64
	}{{"incident_level", 101}, {"moon_phase", 1}} {
		r, err := pager.Signal(ctx, bad.kind, bad.value)
		if err == nil && r.Decision != "deny" {
			t.Fatalf("%s=%d: %+v", bad.kind, bad.value, r)
		}
	}
	p, err := root.Posture(ctx)
	if err != nil || p.Level != "critical" || p.Score != 1000 || p.Signals["incident_level"] != 100 {
		t.Fatalf("posture after a refused signal: %v %+v", err, p)
	}
	if _, err := root.KVPut(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	tr, err := root.Trust(ctx, "root")
	if err != nil || tr.Tier == "" || tr.Score <= 0 {
		t.Fatalf("trust: %v %+v", err, tr)
	}
	b, err := root.Baseline(ctx, "root")
	if err != nil || b.Entity != "root" || b.Established || b.Deviation != 0 {
		t.Fatalf("baseline of a fresh entity: %v %+v", err, b)
	}
}
