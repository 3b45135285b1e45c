package main

// End-to-end tests of the real dominus binary: separate OS processes,
// real disks, real sockets, mutual TLS.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/canon"
	"github.com/dominus-kernel/dominus/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.Cleanup()
	os.Exit(code)
}

// binary builds the dominus binary with the given build tags once.
func binary(t *testing.T, tags string) string { return proctest.Binary(t, tags) }

func freePort(t *testing.T, ip string) int { return proctest.FreePort(t, ip) }

// proc is one agent process.
type proc = proctest.Proc

// run runs the binary as a client and returns stdout and the exit code.
func run(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	r := proctest.Run(t, bin, env, args...)
	return r.Stdout, r.Code
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
	Term        uint64 `json:"term"`
	DiskFull    string `json:"disk_full"`
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
	p := &proc{Bin: bin, DataDir: filepath.Join(dir, "data"), Log: filepath.Join(dir, "agent.log")}
	bind := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	httpAddr := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	p.Args = []string{"agent", "--name", "solo", "--data-dir", p.DataDir, "--bind", bind, "--http", httpAddr, "--bootstrap-expect", "1", "--min-free-disk", "0"}
	p.Start(t)
	defer p.Stop(syscall.SIGKILL)
	addr := "http://" + httpAddr
	deadline := time.Now().Add(15 * time.Second)
	for {
		if s, ok := status(t, bin, nil, addr); ok && s.Leader != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader:\n%s", p.LogText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, code := run(t, bin, nil, "operator", "init", "--json", "--addr", addr); code != 0 || !strings.Contains(out, "root_token") {
		t.Fatalf("init: %d %s", code, out)
	}
	p.Stop(syscall.SIGTERM)

	// A binary carrying another (self-consistent) canon refuses the ledger
	// sealed with the default one, naming both hashes.
	for _, tc := range []struct{ tags, want string }{
		{"canon_alt", "ledger genesis sealed canon " + canon.HashHex()},
		{"canon_tampered", "compiled canon hash is " + canon.HashHex()},
	} {
		q := &proc{Bin: binary(t, tc.tags), Args: p.Args, Log: filepath.Join(dir, tc.tags+".log")}
		q.Start(t)
		code, exited := q.Exited(20 * time.Second)
		if !exited {
			q.Stop(syscall.SIGKILL)
			t.Fatalf("%s binary kept running:\n%s", tc.tags, q.LogText())
		}
		if code == 0 {
			t.Fatalf("%s binary started on a ledger it must refuse", tc.tags)
		}
		log := q.LogText()
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
	p.Start(t)
	deadline = time.Now().Add(15 * time.Second)
	for {
		if s, ok := status(t, bin, nil, addr); ok && s.Leader != "" && s.CanonHash == canon.HashHex() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("default binary did not restart:\n%s", p.LogText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
