package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

// DevFederation is what `dominus dev --federation --json` prints (and
// writes to DIR/federation.json).
type DevFederation struct {
	Dir       string                `json:"dir"`
	CACert    string                `json:"ca_cert"`
	Sovereign DevKernel             `json:"sovereign"`
	Operators []api.OperatorToken   `json:"operators"`
	Threshold int                   `json:"threshold"`
	Domains   map[string]*DevKernel `json:"domains"`
}

// DevKernel is one kernel of the dev federation.
type DevKernel struct {
	Role      string    `json:"role"`
	Domain    string    `json:"domain,omitempty"`
	RootToken string    `json:"root_token"`
	Nodes     []DevNode `json:"nodes"`
	Leader    string    `json:"leader"`
	URLs      []string  `json:"urls"`
}

// devFedLayout: the sovereign on 127.0.0.11-13, domain a on .21-23,
// domain b on .31-33, the same ports on every IP.
var devFedLayout = []struct{ label, role, domain, ip string }{
	{"sovereign", "sovereign", "", "127.0.0.11"},
	{"a", "domain", "a", "127.0.0.21"},
	{"b", "domain", "b", "127.0.0.31"},
}

func runDevFederation(cmd *cobra.Command, dir, exe string, nodes, httpPort, bindPort int, restart time.Duration) (*DevFederation, []*devCluster, error) {
	ctx := cmd.Context()
	tlsDir := filepath.Join(dir, "tls")
	var clusters []*devCluster
	mk := func(label, ipStr string, extra []string) *devCluster {
		d := &devCluster{dir: filepath.Join(dir, label), tlsDir: tlsDir, exe: exe, restartAfter: restart, errw: cmd.ErrOrStderr(), extra: extra, label: label, gossip: true}
		ip := net.ParseIP(ipStr).To4()
		for i := 0; i < nodes; i++ {
			nip := net.IPv4(ip[0], ip[1], ip[2], ip[3]+byte(i)).String()
			name := fmt.Sprintf("%s%d", label, i+1)
			if label == "sovereign" {
				name = fmt.Sprintf("sov%d", i+1)
			}
			d.nodes = append(d.nodes, &devChild{DevNode: DevNode{
				Name: name, HTTP: fmt.Sprintf("http://%s:%d", nip, httpPort), Bind: fmt.Sprintf("%s:%d", nip, bindPort),
				DataDir: filepath.Join(d.dir, name), Log: filepath.Join(d.dir, name+".log"),
			}, ip: nip})
		}
		return d
	}
	fed := &DevFederation{Dir: dir, CACert: filepath.Join(tlsDir, "ca.pem"), Domains: map[string]*DevKernel{}, Threshold: 2}
	stateFile := filepath.Join(dir, "federation.json")
	var saved DevFederation
	if b, err := os.ReadFile(stateFile); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	// The sovereign first.
	sov := mk("sovereign", devFedLayout[0].ip, []string{"--role", "sovereign", "--renew-every", "2s", "--passport-lifetime", "2m"})
	clusters = append(clusters, sov)
	if err := startCluster(ctx, sov); err != nil {
		return nil, clusters, err
	}
	leader, err := sov.waitLeader(ctx)
	if err != nil {
		return nil, clusters, err
	}
	sc, _ := client.New(client.Config{Addr: sov.nodes[0].HTTP})
	fed.Sovereign = DevKernel{Role: "sovereign", Leader: leader}
	for _, n := range sov.nodes {
		fed.Sovereign.URLs = append(fed.Sovereign.URLs, n.HTTP)
	}
	if saved.Sovereign.RootToken != "" {
		fed.Sovereign.RootToken, fed.Operators = saved.Sovereign.RootToken, saved.Operators
	} else {
		r, err := initFederated(cmd, sc, "alice,bob,carol", 2, filepath.Join(dir, "keys"), "", 0)
		if err != nil {
			return nil, clusters, fmt.Errorf("sovereign operator init: %w", err)
		}
		fed.Sovereign.RootToken, fed.Operators = r.RootToken, r.Operators
	}
	sov.token = fed.Sovereign.RootToken
	fed.Sovereign.Nodes = sov.snapshot()
	opc, _ := client.New(client.Config{Addr: sov.nodes[0].HTTP, Token: fed.Operators[0].Token})
	for _, l := range devFedLayout[1:] {
		dk := &DevKernel{Role: "domain", Domain: l.domain}
		join := ""
		if prev := saved.Domains[l.domain]; prev != nil && prev.RootToken != "" {
			dk.RootToken = prev.RootToken
		} else {
			r, err := opc.DomainCreate(ctx, api.DomainCreateRequest{Name: l.domain})
			if err != nil {
				return nil, clusters, fmt.Errorf("domain create %s: %w", l.domain, err)
			}
			if r.JoinToken == "" {
				return nil, clusters, fmt.Errorf("domain create %s: %s %s", l.domain, humanDecision(r.Decision), r.Reason)
			}
			join = r.JoinToken
		}
		extra := []string{"--role", "domain", "--domain", l.domain, "--sovereign", strings.Join(fed.Sovereign.URLs, ","), "--renew-every", "2s", "--witness-every", "5s", "--sense-window", "1s"}
		if join != "" {
			extra = append(extra, "--join-token", join)
		}
		d := mk(l.label, l.ip, extra)
		clusters = append(clusters, d)
		if err := startCluster(ctx, d); err != nil {
			return nil, clusters, err
		}
		if dk.Leader, err = d.waitLeader(ctx); err != nil {
			return nil, clusters, err
		}
		if dk.RootToken == "" {
			c, _ := client.New(client.Config{Addr: d.nodes[0].HTTP})
			r, err := c.InitWith(ctx, api.OperatorInitRequest{JoinToken: join})
			if err != nil {
				return nil, clusters, fmt.Errorf("domain %s operator init: %w", l.domain, err)
			}
			dk.RootToken = r.RootToken
		}
		d.token = dk.RootToken
		dk.Nodes = d.snapshot()
		for _, n := range d.nodes {
			dk.URLs = append(dk.URLs, n.HTTP)
		}
		fed.Domains[l.domain] = dk
	}
	// Ready means every domain knows every other (its first renewal after
	// the last join carries the peers).
	for name, k := range fed.Domains {
		c, _ := client.New(client.Config{Addr: k.URLs[0], Token: k.RootToken})
		deadline := time.Now().Add(30 * time.Second)
		for {
			ps, err := c.Passports(ctx)
			if err == nil && len(ps) >= len(fed.Domains) {
				break
			}
			if time.Now().After(deadline) {
				return nil, clusters, fmt.Errorf("domain %s did not learn its peers within 30s: %v", name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var env strings.Builder
	fmt.Fprintf(&env, "export DOMINUS_FED_DIR=%s\nexport SOV_ADDR=%s SOV_TOKEN=%s\n", dir, fed.Sovereign.URLs[0], fed.Sovereign.RootToken)
	for _, o := range fed.Operators {
		up := strings.ToUpper(o.Name)
		fmt.Fprintf(&env, "export %s_TOKEN=%s %s_KEY=%s\n", up, o.Token, up, o.KeyFile)
	}
	for _, name := range []string{"a", "b"} {
		k := fed.Domains[name]
		up := strings.ToUpper(name)
		fmt.Fprintf(&env, "export %s_ADDR=%s %s_TOKEN=%s\n", up, k.URLs[0], up, k.RootToken)
		var pids []string
		for _, n := range k.Nodes {
			pids = append(pids, fmt.Sprint(n.PID))
		}
		fmt.Fprintf(&env, "export %s_PIDS=\"%s\" %s_URLS=%s\n", up, strings.Join(pids, " "), up, strings.Join(k.URLs, ","))
	}
	if err := writeFileAtomic(filepath.Join(dir, "federation.env"), func(f *os.File) error { _, err := f.WriteString(env.String()); return err }); err != nil {
		return nil, clusters, err
	}
	var js strings.Builder
	_ = writeJSONTo(&js, fed)
	if err := writeFileAtomic(stateFile, func(f *os.File) error { _, err := f.WriteString(js.String()); return err }); err != nil {
		return nil, clusters, err
	}
	return fed, clusters, nil
}

func startCluster(ctx context.Context, d *devCluster) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	if err := d.certs(); err != nil {
		return err
	}
	return d.startAll(ctx)
}

func (d *devCluster) snapshot() []DevNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []DevNode
	for _, n := range d.nodes {
		out = append(out, n.DevNode)
	}
	return out
}

func printDevFederation(cmd *cobra.Command, f *DevFederation) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Dominus dev federation is up (data in %s)\n\n", f.Dir)
	show := func(title string, k *DevKernel) {
		fmt.Fprintf(out, "%s (leader %s)\n  root token: %s\n", title, k.Leader, k.RootToken)
		for _, n := range k.Nodes {
			fmt.Fprintf(out, "  %-5s http %-26s raft/bus %-18s pid %d\n", n.Name, n.HTTP, n.Bind, n.PID)
		}
		fmt.Fprintln(out)
	}
	show("sovereign", &f.Sovereign)
	for _, o := range f.Operators {
		fmt.Fprintf(out, "  operator %-6s token %s key %s\n", o.Name, o.Token, o.KeyFile)
	}
	fmt.Fprintln(out)
	for _, name := range []string{"a", "b"} {
		if k := f.Domains[name]; k != nil {
			show("domain "+name, k)
		}
	}
	fmt.Fprintf(out, "Everything above is in %s. Ctrl-C stops the federation.\n", filepath.Join(f.Dir, "federation.json"))
}
