package gatewayapi

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/kernel/kerneltest"
)

// The gateway routes on one node: a relayed call leaves its effect
// pending for the kernel's drivers to leave alone, only the relaying
// gateway reports it, an unknown gateway token never reaches the
// ledger, and an effect nobody reports becomes indeterminate after the
// timeout.
func TestGatewayRoutes(t *testing.T) {
	sv := New(300 * time.Millisecond)
	n := kerneltest.SingleNode(t, "127.0.150.1", nil, sv)
	ctx := context.Background()
	token, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	root, _ := client.New(client.Config{Addr: srv.URL, Token: token})
	grant := func(entity string, ops, res []string) (*client.Client, string) {
		gr, err := root.Grant(ctx, api.GrantRequest{Entity: entity, Ops: ops, Resources: res})
		if err != nil || gr.Decision != "permit" {
			t.Fatalf("grant %s: %v %+v", entity, err, gr)
		}
		return root.As(gr.Token), gr.Token
	}
	agent, _ := grant("agent", []string{"mcp.fs.tool.*"}, []string{"/srv/*"})
	gw, gwToken := grant("gw", []string{"effect.report"}, []string{"mcp.fs.*"})
	other, _ := grant("gw2", []string{"effect.report"}, []string{"mcp.*"})

	self, err := agent.Self(ctx)
	if err != nil || self.Entity != "agent" || len(self.Ops) != 1 {
		t.Fatalf("self: %v %+v", err, self)
	}
	call := api.GatewaySyscallRequest{Op: "mcp.fs.tool.read_file", Resource: "/srv/a", Args: `{"path":"/srv/a"}`}
	if _, err := agent.GatewaySyscall(ctx, "no-such-token", call); !client.IsCode(err, api.CodeUnauthorized) {
		t.Fatalf("unknown gateway token: %v", err)
	}
	r, err := agent.GatewaySyscall(ctx, gwToken, call)
	if err != nil || r.Decision != "permit" || r.Effect != "pending" {
		t.Fatalf("relayed call: %v %+v", err, r)
	}
	time.Sleep(250 * time.Millisecond) // the driver runner's ticks pass it by
	if e, err := root.Effect(ctx, r.Seq); err != nil || e.Status != "pending" {
		t.Fatalf("effect before the report: %v %+v", err, e)
	}
	for _, c := range []struct {
		who  *client.Client
		want string
	}{{other, "not_reporter"}, {agent, "not_reporter"}} {
		if rr, err := c.who.ReportEffect(ctx, r.Seq, api.EffectReportRequest{Status: "ok"}); err != nil || rr.Decision != "deny" || rr.Reason != c.want {
			t.Fatalf("foreign report: %v %+v", err, rr)
		}
	}
	if rr, err := gw.ReportEffect(ctx, r.Seq, api.EffectReportRequest{Status: "ok", OutputDigest: "sha256:00"}); err != nil || rr.Decision == "deny" {
		t.Fatalf("report: %v %+v", err, rr)
	}
	if e, _ := root.Effect(ctx, r.Seq); e.Status != "ok" || e.OutputDigest != "sha256:00" {
		t.Fatalf("effect after the report: %+v", e)
	}
	if rr, _ := gw.ReportEffect(ctx, r.Seq, api.EffectReportRequest{Status: "failed"}); rr.Reason != "effect_done" {
		t.Fatalf("second report: %+v", rr)
	}

	lost, err := agent.GatewaySyscall(ctx, gwToken, api.GatewaySyscallRequest{Op: "mcp.fs.tool.read_file", Resource: "/srv/b"})
	if err != nil || lost.Decision != "permit" {
		t.Fatalf("second call: %v %+v", err, lost)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := root.Effect(ctx, lost.Seq)
		if err == nil && e.Status == "indeterminate" && e.Code == CodeUnreported {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unreported effect: %v %+v", err, e)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
