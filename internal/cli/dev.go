package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

func init() { register(devCmd) }

// DevNode describes one child agent of `dominus dev`.
type DevNode struct {
	Name    string `json:"name"`
	HTTP    string `json:"http"` // URL
	Bind    string `json:"bind"`
	PID     int    `json:"pid"`
	DataDir string `json:"data_dir"`
	Log     string `json:"log"`
}

// DevInfo is what `dominus dev --json` prints (and writes to DIR/dev.json).
type DevInfo struct {
	Dir       string    `json:"dir"`
	RootToken string    `json:"root_token"`
	CACert    string    `json:"ca_cert"`
	Nodes     []DevNode `json:"nodes"`
	Leader    string    `json:"leader"`
}

func devCmd() *cobra.Command {
	var (
		dir      string
		nodes    int
		baseIP   string
		httpPort int
		bindPort int
		keep     bool
		restart  time.Duration
		fed      bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local 3-node kernel on loopback (child processes, real disks and sockets)",
		Long: `Start a local kernel of real dominus agent processes on loopback
addresses (127.0.0.11, .12, .13 by default), each with its own data dir and
mutual TLS between nodes, initialize it, and print the endpoints and the
root token (--json: one JSON object, also written to DIR/dev.json, with
DIR/env.sh for shells). A child that dies is restarted after --restart-after.
Ctrl-C stops everything.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodes < 1 || nodes > 9 {
				return usageError(fmt.Errorf("--nodes must be 1..9"))
			}
			ip := net.ParseIP(baseIP).To4()
			if ip == nil || ip[0] != 127 {
				return usageError(fmt.Errorf("--base-ip %q must be a 127.x.y.z address", baseIP))
			}
			temp := dir == ""
			if temp {
				d, err := os.MkdirTemp("", "dominus-dev-")
				if err != nil {
					return err
				}
				dir = d
			}
			dir, _ = filepath.Abs(dir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if fed {
				f, clusters, err := runDevFederation(cmd, dir, exe, nodes, httpPort, bindPort, restart)
				defer func() {
					for i := len(clusters) - 1; i >= 0; i-- {
						clusters[i].stopAll()
					}
					if temp && !keep {
						os.RemoveAll(dir)
					}
				}()
				if err != nil {
					return err
				}
				if jsonMode(cmd) {
					if err := writeJSON(cmd, f); err != nil {
						return err
					}
				} else {
					printDevFederation(cmd, f)
				}
				<-cmd.Context().Done()
				fmt.Fprintln(cmd.ErrOrStderr(), "stopping dev federation")
				return nil
			}
			d := &devCluster{dir: dir, exe: exe, restartAfter: restart, errw: cmd.ErrOrStderr()}
			for i := 0; i < nodes; i++ {
				nip := net.IPv4(ip[0], ip[1], ip[2], ip[3]+byte(i)).String()
				d.nodes = append(d.nodes, &devChild{
					DevNode: DevNode{
						Name:    fmt.Sprintf("node%d", i+1),
						HTTP:    fmt.Sprintf("http://%s:%d", nip, httpPort),
						Bind:    fmt.Sprintf("%s:%d", nip, bindPort),
						DataDir: filepath.Join(dir, fmt.Sprintf("node%d", i+1)),
						Log:     filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)),
					},
					ip: nip,
				})
			}
			if err := d.certs(); err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := d.startAll(ctx); err != nil {
				d.stopAll()
				return err
			}
			defer func() {
				d.stopAll()
				if temp && !keep {
					os.RemoveAll(dir)
				}
			}()
			info, err := d.initialize(ctx)
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				if err := writeJSON(cmd, info); err != nil {
					return err
				}
			} else {
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "Dominus dev kernel is up (%d nodes, data in %s)\n\n", len(info.Nodes), dir)
				for _, n := range info.Nodes {
					fmt.Fprintf(out, "  %-6s http %-26s raft %-18s pid %d\n", n.Name, n.HTTP, n.Bind, n.PID)
				}
				fmt.Fprintf(out, "\nleader: %s\n\n  export DOMINUS_HTTP_ADDR=%s\n  export DOMINUS_TOKEN=%s\n\n(or: source %s)\nCtrl-C stops the kernel.\n",
					info.Leader, info.Nodes[0].HTTP, info.RootToken, filepath.Join(dir, "env.sh"))
			}
			<-ctx.Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "stopping dev kernel")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", "", "keep node data here (default: a temp dir removed on exit)")
	fl.IntVar(&nodes, "nodes", 3, "number of nodes")
	fl.StringVar(&baseIP, "base-ip", "127.0.0.11", "first node's loopback IP; the others follow")
	fl.IntVar(&httpPort, "http-port", 8101, "HTTP API port on every node's IP")
	fl.IntVar(&bindPort, "bind-port", 8300, "Raft/RPC port on every node's IP")
	fl.BoolVar(&keep, "keep", false, "keep the temp dir on exit")
	fl.BoolVar(&fed, "federation", false, "start a federation instead: a sovereign and domains a and b, --nodes nodes each (127.0.0.11+, .21+, .31+)")
	fl.DurationVar(&restart, "restart-after", 2*time.Second, "restart a child that exits unexpectedly after this pause (0 disables)")
	return cmd
}

type devChild struct {
	DevNode
	ip  string
	cmd *exec.Cmd
}

type devCluster struct {
	dir          string
	tlsDir       string   // the federation CA and node certificates; default dir/tls
	extra        []string // role flags of every child
	gossip       bool     // children gossip on their --bind port + 1 (the cortex convention)
	label        string
	exe          string
	restartAfter time.Duration
	errw         interface{ Write([]byte) (int, error) }
	mu           sync.Mutex
	nodes        []*devChild
	stopping     bool
	token        string
	wg           sync.WaitGroup
}

// kernel names the dev kernel in its nodes' certificates: the label of a
// federation's kernel ("sovereign", a domain), or "dev".
func (d *devCluster) kernel() string {
	if d.label != "" {
		return d.label
	}
	return "dev"
}

func (d *devCluster) tls() string {
	if d.tlsDir != "" {
		return d.tlsDir
	}
	return filepath.Join(d.dir, "tls")
}

func (d *devCluster) certs() error {
	tdir := d.tls()
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return err
	}
	ca, cakey := filepath.Join(tdir, tlsutil.CACertFile), filepath.Join(tdir, tlsutil.CAKeyFile)
	if _, err := os.Stat(ca); errors.Is(err, os.ErrNotExist) {
		if _, _, err := tlsutil.CreateCA(tdir, 365*24*time.Hour); err != nil {
			return err
		}
	}
	for _, n := range d.nodes {
		if _, err := os.Stat(filepath.Join(tdir, n.Name+".pem")); err == nil {
			continue
		}
		if _, _, err := tlsutil.CreateCert(tdir, ca, cakey, d.kernel(), n.Name, []net.IP{net.ParseIP(n.ip)}, []string{"localhost"}, 365*24*time.Hour); err != nil {
			return err
		}
	}
	return nil
}

func (d *devCluster) args(n *devChild) []string {
	var join []string
	for _, o := range d.nodes {
		join = append(join, o.Bind)
	}
	tdir := d.tls()
	args := append([]string{"agent", "--name", n.Name, "--data-dir", n.DataDir, "--bind", n.Bind,
		"--http", strings.TrimPrefix(n.HTTP, "http://"), "--bootstrap-expect", fmt.Sprint(len(d.nodes)),
		"--join", strings.Join(join, ","), "--tls-ca", filepath.Join(tdir, "ca.pem"),
		"--tls-cert", filepath.Join(tdir, n.Name+".pem"), "--tls-key", filepath.Join(tdir, n.Name+"-key.pem"),
		"--http-insecure", "--min-free-disk", "0", "--driver-exec-allow", "/bin/echo,/bin/true"}, d.extra...)
	if d.gossip {
		host, port, _ := net.SplitHostPort(n.Bind)
		p, _ := strconv.Atoi(port)
		args = append(args, "--gossip", net.JoinHostPort(host, strconv.Itoa(p+1)))
	}
	return args
}

func (d *devCluster) start(n *devChild) error {
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	c := exec.Command(d.exe, d.args(n)...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		logf.Close()
		return err
	}
	n.cmd, n.PID = c, c.Process.Pid
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := c.Wait()
		logf.Close()
		d.mu.Lock()
		stopping := d.stopping
		d.mu.Unlock()
		if stopping || d.restartAfter == 0 {
			return
		}
		fmt.Fprintf(d.errw, "dev: %s (pid %d) exited (%v); restarting in %s\n", n.Name, c.Process.Pid, err, d.restartAfter)
		time.Sleep(d.restartAfter)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.stopping {
			return
		}
		if err := d.start(n); err != nil {
			fmt.Fprintf(d.errw, "dev: restart %s: %v\n", n.Name, err)
			return
		}
		d.writeFiles()
	}()
	return nil
}

func (d *devCluster) startAll(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.nodes {
		if err := d.start(n); err != nil {
			return err
		}
	}
	return nil
}

func (d *devCluster) stopAll() {
	d.mu.Lock()
	d.stopping = true
	var cmds []*exec.Cmd
	for _, n := range d.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			cmds = append(cmds, n.cmd)
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		<-done
	}
}

// initialize waits for a leader, seals genesis (or, on an existing dir,
// reuses the saved token) and writes dev.json and env.sh.
func (d *devCluster) initialize(ctx context.Context) (*DevInfo, error) {
	leader, err := d.waitLeader(ctx)
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(d.dir, "root-token")
	if b, err := os.ReadFile(tokenFile); err == nil {
		d.token = strings.TrimSpace(string(b))
	} else {
		c, _ := client.New(client.Config{Addr: d.nodes[0].HTTP})
		r, err := c.Init(ctx)
		if err != nil {
			return nil, fmt.Errorf("operator init: %w", err)
		}
		d.token = r.RootToken
		if err := os.WriteFile(tokenFile, []byte(d.token+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	info := d.writeFiles()
	info.Leader = leader
	return info, nil
}

// waitLeader waits (30 s at most) until a node names a leader.
func (d *devCluster) waitLeader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	var leader string
	for leader == "" {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no leader within 30s; see the logs in %s", d.dir)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		for _, n := range d.nodes {
			c, _ := client.New(client.Config{Addr: n.HTTP, Timeout: time.Second, RetryFor: time.Millisecond})
			if s, err := c.Status(ctx); err == nil && s.Leader != "" {
				leader = s.Leader
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return leader, nil
}

// writeFiles records the current endpoints and pids; called with d.mu held.
func (d *devCluster) writeFiles() *DevInfo {
	info := &DevInfo{Dir: d.dir, RootToken: d.token, CACert: filepath.Join(d.dir, "tls", "ca.pem")}
	var env strings.Builder
	fmt.Fprintf(&env, "export DOMINUS_HTTP_ADDR=%s\nexport DOMINUS_TOKEN=%s\nexport DOMINUS_DEV_DIR=%s\n", d.nodes[0].HTTP, d.token, d.dir)
	for i, n := range d.nodes {
		info.Nodes = append(info.Nodes, n.DevNode)
		fmt.Fprintf(&env, "export DOMINUS_NODE%d_NAME=%s DOMINUS_NODE%d_ADDR=%s DOMINUS_NODE%d_PID=%d DOMINUS_NODE%d_DATA=%s\n",
			i+1, n.Name, i+1, n.HTTP, i+1, n.PID, i+1, n.DataDir)
	}
	_ = writeFileAtomic(filepath.Join(d.dir, "env.sh"), func(f *os.File) error { _, err := f.WriteString(env.String()); return err })
	var js strings.Builder
	_ = writeJSONTo(&js, info)
	_ = writeFileAtomic(filepath.Join(d.dir, "dev.json"), func(f *os.File) error { _, err := f.WriteString(js.String()); return err })
	return info
}
