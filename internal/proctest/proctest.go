// Package proctest runs the real dominus binary for tests: it builds the
// binary (once per set of build tags, into a directory the caller removes
// with Cleanup), starts agents as separate OS processes with real disks
// and sockets, and runs the CLI against them.
//
// It is imported only by tests (cmd/dominus end-to-end tests and the
// real-process tests of cluster-tests); nothing shipped imports it. It
// may import the standard library and testing only.
package proctest

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
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Cleanup removes the binaries built so far; call it from TestMain after
// m.Run.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	buildDir, built = "", map[string]string{}
}

// moduleRoot is the directory of the dominus module.
func moduleRoot(t testing.TB) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("not inside the dominus module")
	}
	return filepath.Dir(mod)
}

// Binary builds cmd/dominus with the given build tags (comma-separated,
// "" for none) once per test process and returns its path.
func Binary(t testing.TB, tags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[tags]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "dominus-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
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
	cmd := exec.Command(goTool, append(args, "./cmd/dominus")...)
	cmd.Dir = moduleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", tags, err, b)
	}
	built[tags] = out
	return out
}

// FreePort returns a TCP port free on ip right now.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Proc is one agent process.
type Proc struct {
	Name, Bind, HTTP, DataDir, Log string
	Args                           []string
	Bin                            string
	Env                            []string // added to the test's environment

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// Start starts the process with its output appended to Log.
func (p *Proc) Start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Stdout, cmd.Stderr = f, f
	if p.Env != nil {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); f.Close() }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// Stop signals the process and waits for it (SIGKILL after 10 s).
func (p *Proc) Stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Exited waits up to limit for the process to end by itself and returns
// its exit code; ok is false if it is still running.
func (p *Proc) Exited(limit time.Duration) (code int, ok bool) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return 0, false
	}
	exited := func(err error) (int, bool) {
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		if ee, isExit := err.(*exec.ExitError); isExit {
			return ee.ExitCode(), true
		}
		return 0, true
	}
	select {
	case err := <-done:
		return exited(err)
	default:
	}
	select {
	case err := <-done:
		return exited(err)
	case <-time.After(limit):
		return 0, false
	}
}

// LogText is the process's output so far.
func (p *Proc) LogText() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Result is one CLI run.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs the binary as a client (bounded at 60 s) with env added to the
// test's environment.
func Run(t testing.TB, bin string, env []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", args[0], err)
	}
	if r.Code != 0 {
		line := strings.Join(args, " ")
		if len(line) > 200 {
			line = line[:200] + "…"
		}
		t.Logf("dominus %s -> exit %d: %s", line, r.Code, strings.TrimSpace(r.Stderr))
	}
	return r
}

// JSON runs the binary with --json, requires exit code want, and decodes
// stdout into v.
func JSON(t testing.TB, bin string, env []string, want int, v any, args ...string) Result {
	t.Helper()
	r := Run(t, bin, env, append(args, "--json")...)
	if r.Code != want {
		t.Fatalf("dominus %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, want, r.Stdout, r.Stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
			t.Fatalf("dominus %s: output is not the JSON expected: %v\n%s", strings.Join(args, " "), err, r.Stdout)
		}
	}
	return r
}

// Eventually polls cond every 100 ms until it holds or limit passes.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Addr is host:port on ip with a free port.
func Addr(t testing.TB, ip string) string {
	return fmt.Sprintf("%s:%d", ip, FreePort(t, ip))
}
