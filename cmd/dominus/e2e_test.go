package main

// End-to-end tests of the real dominus binary: separate OS processes,
// real disks, real sockets, mutual TLS.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/canon"
)

var (
	buildMu   sync.Mutex
	buildDir  string
	buildDone = map[string]string{}
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "dominus-e2e-bin-")
	if err != nil {
		panic(err)
	}
	buildDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// binary builds the dominus binary with the given build tags once.
func binary(t *testing.T, tags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildDone[tags]; ok {
		return p
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binary under test: %v", err)
	}
	out := filepath.Join(buildDir, "dominus"+strings.ReplaceAll("-"+tags, ",", "-"))
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(goTool, append(args, ".")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", tags, err, b)
	}
	buildDone[tags] = out
	return out
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one agent process.
type proc struct {
	name, bind, http, dataDir, log string
	args                           []string
	bin                            string
	cmd                            *exec.Cmd
	done                           chan error
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait(); f.Close() }()
}

func (p *proc) stop(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// run runs the binary as a client and returns stdout and the exit code.
func run(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", args[0], err)
	}
	if code != 0 {
		line := strings.Join(args, " ")
		if len(line) > 200 {
			line = line[:200] + "…"
		}
		t.Logf("dominus %s -> exit %d: %s", line, code, strings.TrimSpace(errb.String()))
	}
	return out.String(), code
}

type statusJSON struct {
	Node      string `json:"node"`
	Leader    string `json:"leader"`
	RaftState string `json:"raft_state"`
	Head      struct {
		Seq  uint64 `json:"seq"`
		Hash string `json:"hash"`
	} `json:"head"`
	StateDigest string `json:"state_digest"`
	CanonHash   string `json:"canon_hash"`
}

func status(t *testing.T, bin string, env []string, addr string) (statusJSON, bool) {
	out, code := run(t, bin, env, "status", "--json", "--addr", addr, "--timeout", "2s")
	var s statusJSON
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		return s, false
	}
	return s, true
}

func TestCanonMismatchRefusesToStart(t *testing.T) {
	bin := binary(t, "")
	ip := "127.0.41.1"
	dir := t.TempDir()
	p := &proc{bin: bin, dataDir: filepath.Join(dir, "data"), log: filepath.Join(dir, "agent.log")}
	bind := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	httpAddr := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	p.args = []string{"agent", "--name", "solo", "--data-dir", p.dataDir, "--bind", bind, "--http", httpAddr, "--bootstrap-expect", "1", "--min-free-disk", "0"}
	p.start(t)
	defer p.stop(syscall.SIGKILL)
	addr := "http://" + httpAddr
	deadline := time.Now().Add(15 * time.Second)
	for {
		if s, ok := status(t, bin, nil, addr); ok && s.Leader != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader:\n%s", p.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, code := run(t, bin, nil, "operator", "init", "--json", "--addr", addr); code != 0 || !strings.Contains(out, "root_token") {
		t.Fatalf("init: %d %s", code, out)
	}
	p.stop(syscall.SIGTERM)

	// A binary carrying another (self-consistent) canon refuses the ledger
	// sealed with the default one, naming both hashes.
	for _, tc := range []struct{ tags, want string }{
		{"canon_alt", "ledger genesis sealed canon " + canon.HashHex()},
		{"canon_tampered", "compiled canon hash is " + canon.HashHex()},
	} {
		q := &proc{bin: binary(t, tc.tags), args: p.args, log: filepath.Join(dir, tc.tags+".log")}
		q.start(t)
		select {
		case err := <-q.done:
			if err == nil {
				t.Fatalf("%s binary started on a ledger it must refuse", tc.tags)
			}
		case <-time.After(20 * time.Second):
			q.stop(syscall.SIGKILL)
			t.Fatalf("%s binary kept running:\n%s", tc.tags, q.logText())
		}
		q.cmd = nil
		log := q.logText()
		if !strings.Contains(log, tc.want) {
			t.Fatalf("%s: refusal does not name the hashes (%q):\n%s", tc.tags, tc.want, log)
		}
		// Both hashes appear: the binary's own and the other one.
		hashes := 0
		for _, f := range strings.Fields(log) {
			if len(strings.Trim(f, "\"',.:;()")) == 64 {
				hashes++
			}
		}
		if hashes < 2 {
			t.Fatalf("%s: expected two hashes in:\n%s", tc.tags, log)
		}
		t.Logf("%s refused: %s", tc.tags, strings.TrimSpace(log[strings.LastIndex(strings.TrimSpace(log), "\n")+1:]))
	}
	// The default binary still starts on it.
	p.start(t)
	deadline = time.Now().Add(15 * time.Second)
	for {
		if s, ok := status(t, bin, nil, addr); ok && s.Leader != "" && s.CanonHash == canon.HashHex() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("default binary did not restart:\n%s", p.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
