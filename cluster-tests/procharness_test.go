package clustertests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/internal/proctest"
)

// procCluster is a kernel of real dominus agent processes on one loopback
// block, with mutual TLS; its nodes' certificates name its kernel.
type procCluster struct {
	t      *testing.T
	kernel string
	dir    string
	tlsDir string
	binds  []string
	procs  map[string]*proctest.Proc
	env    []string // DOMINUS_CACERT, and DOMINUS_TOKEN once initialized
	// joinSecret, once initialized, for nodes that join later.
	joinSecret string
}

func newProcCluster(t *testing.T, block byte, names ...string) *procCluster {
	t.Helper()
	return newProcClusterOf(t, "k", "", block, names...)
}

// newProcClusterOf is a cluster of kernel whose nodes sit on block; with
// tlsDir it shares that folder's CA (another kernel of the same
// federation CA), else it makes its own.
func newProcClusterOf(t *testing.T, kernel, tlsDir string, block byte, names ...string) *procCluster {
	t.Helper()
	c := &procCluster{t: t, kernel: kernel, dir: t.TempDir(), procs: map[string]*proctest.Proc{}, tlsDir: tlsDir}
	bin := proctest.Binary(t, "")
	if c.tlsDir == "" {
		c.tlsDir = filepath.Join(c.dir, "tls")
		if err := os.MkdirAll(c.tlsDir, 0o700); err != nil {
			t.Fatal(err)
		}
		c.tls(bin, "tls", "ca", "create")
	}
	for i, name := range names {
		ip := fmt.Sprintf("127.0.%d.%d", block, i+1)
		c.cert(bin, name, ip)
		p := &proctest.Proc{Name: name, Bind: proctest.Addr(t, ip), HTTP: proctest.Addr(t, ip),
			DataDir: filepath.Join(c.dir, name), Log: filepath.Join(c.dir, name+".log")}
		c.binds = append(c.binds, p.Bind)
		c.procs[name] = p
	}
	c.env = []string{"DOMINUS_CACERT=" + filepath.Join(c.tlsDir, "ca.pem")}
	t.Cleanup(func() {
		for _, p := range c.procs {
			p.Stop(syscall.SIGKILL)
		}
		if t.Failed() {
			for name, p := range c.procs {
				t.Logf("%s log (tail):\n%s", name, tail(p.LogText(), 40))
			}
		}
	})
	return c
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cert makes node name's certificate for this cluster's kernel (once).
func (c *procCluster) cert(bin, name, ip string) {
	if _, err := os.Stat(filepath.Join(c.tlsDir, name+".pem")); err == nil {
		return
	}
	c.tls(bin, "tls", "cert", "create", "--node", name, "--ip", ip, "--kernel", c.kernel,
		"--ca", filepath.Join(c.tlsDir, "ca.pem"), "--ca-key", filepath.Join(c.tlsDir, "ca-key.pem"))
}

func (c *procCluster) tls(bin string, args ...string) {
	c.t.Helper()
	cmd := proctest.Run(c.t, bin, nil, append(args, "--dir", c.tlsDir)...)
	if cmd.Code != 0 {
		c.t.Fatalf("%v: %s", args, cmd.Stderr)
	}
}

// start starts name with bin; bootstrap is --bootstrap-expect (0 to
// join); extra flags follow.
func (c *procCluster) start(name, bin string, bootstrap int, extra ...string) *proctest.Proc {
	c.t.Helper()
	p := c.procs[name]
	p.Bin = bin
	p.Args = []string{"agent", "--name", name, "--data-dir", p.DataDir, "--bind", p.Bind, "--http", p.HTTP,
		"--join", strings.Join(c.binds, ","), "--min-free-disk", "0",
		"--tls-ca", filepath.Join(c.tlsDir, "ca.pem"), "--tls-cert", filepath.Join(c.tlsDir, name+".pem"),
		"--tls-key", filepath.Join(c.tlsDir, name+"-key.pem")}
	if bootstrap > 0 {
		p.Args = append(p.Args, "--bootstrap-expect", fmt.Sprint(bootstrap))
	}
	if c.joinSecret != "" {
		p.Args = append(p.Args, "--join-secret", c.joinSecret)
	}
	p.Args = append(p.Args, extra...)
	p.Start(c.t)
	return p
}

func (c *procCluster) url(name string) string { return "https://" + c.procs[name].HTTP }

// cli runs the full binary against name's node.
func (c *procCluster) cli(name string, args ...string) proctest.Result {
	return proctest.Run(c.t, proctest.Binary(c.t, ""), c.env, append(args, "--addr", c.url(name))...)
}

func (c *procCluster) json(name string, want int, v any, args ...string) proctest.Result {
	return proctest.JSON(c.t, proctest.Binary(c.t, ""), c.env, want, v, append(args, "--addr", c.url(name))...)
}

func (c *procCluster) status(name string) (api.Status, bool) {
	var s api.Status
	r := proctest.Run(c.t, proctest.Binary(c.t, ""), c.env, "status", "--json", "--timeout", "2s", "--addr", c.url(name))
	if r.Code != 0 {
		return s, false
	}
	return s, jsonUnmarshal(r.Stdout, &s) == nil
}

// client is a Go client of name's node with token.
func (c *procCluster) client(name, token string) *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Addr: c.url(name), Token: token, CACert: filepath.Join(c.tlsDir, "ca.pem"), RetryFor: 5 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// sameHeads waits until every named node reports one head and digest.
func (c *procCluster) sameHeads(limit time.Duration, names ...string) api.Status {
	c.t.Helper()
	var first api.Status
	proctest.Eventually(c.t, limit, "identical chain heads on "+strings.Join(names, ","), func() bool {
		for i, n := range names {
			s, ok := c.status(n)
			if !ok || (i > 0 && (s.Head != first.Head || s.StateDigest != first.StateDigest)) {
				return false
			}
			if i == 0 {
				first = s
			}
		}
		return true
	})
	return first
}
