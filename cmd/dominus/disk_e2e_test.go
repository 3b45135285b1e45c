package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFullDiskFailsWritesAndCorruptsNothing runs an agent on a small
// tmpfs with the free-space guard off, fills the disk, and requires that
// writes fail with an error, nothing acknowledged is lost, and after space
// returns (and, if the node stopped itself, a restart) the ledger verifies
// and replays. Needs root to mount a tmpfs (CI runs as root).
func TestFullDiskFailsWritesAndCorruptsNothing(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=24m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); this test needs root", err)
	}
	bin := binary(t, "")
	ip := "127.0.43.1"
	p := &proc{Bin: bin, DataDir: filepath.Join(mnt, "data"), Log: filepath.Join(t.TempDir(), "agent.log")}
	httpAddr := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	p.Args = []string{"agent", "--name", "solo", "--data-dir", p.DataDir, "--bind", fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		"--http", httpAddr, "--bootstrap-expect", "1", "--min-free-disk", "0"}
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL)
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	addr := "http://" + httpAddr
	waitUp := func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if s, ok := status(t, bin, nil, addr); ok && s.Leader != "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent not up:\n%s", p.LogText())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	p.Start(t)
	waitUp()
	out, code := run(t, bin, nil, "operator", "init", "--json", "--addr", addr)
	var ir struct {
		RootToken string `json:"root_token"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ir) != nil {
		t.Fatalf("init: %s", out)
	}
	env := []string{"DOMINUS_TOKEN=" + ir.RootToken, "DOMINUS_HTTP_ADDR=" + addr}
	acked := map[string]bool{}
	for i := 0; i < 5; i++ {
		if _, code := run(t, bin, env, "kv", "put", fmt.Sprint("pre/", i), "v"); code != 0 {
			t.Fatal("put before filling the disk failed")
		}
		acked[fmt.Sprint("pre/", i)] = true
	}
	// Fill the disk.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; i < 64; i++ {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	f.Close()
	big := strings.Repeat("x", 100<<10)
	failures := 0
	for i := 0; i < 4; i++ {
		key := fmt.Sprint("full/", i)
		_, code := run(t, bin, env, "kv", "put", key, big, "--timeout", "3s")
		if code == 0 {
			acked[key] = true
		} else {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("every write succeeded on a full disk")
	}
	t.Logf("%d of 4 writes failed on the full disk", failures)
	// Free the space; restart the agent if it stopped itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, exited := p.Exited(0); exited {
		t.Logf("agent stopped itself on the full disk; restarting:\n%s", lastLines(p.LogText(), 5))
		p.Start(t)
	}
	waitUp()
	// A fresh write works, every acknowledged key is there, the chain verifies.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, code := run(t, bin, env, "kv", "put", "after", "ok", "--timeout", "3s"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume after space returned:\n%s", lastLines(p.LogText(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for k := range acked {
		if out, code := run(t, bin, env, "kv", "get", k); code != 0 || (strings.TrimSpace(out) != "v" && strings.TrimSpace(out) != big) {
			t.Fatalf("acknowledged key %s lost (exit %d)", k, code)
		}
	}
	if out, code := run(t, bin, env, "ledger", "verify", "--json"); code != 0 {
		t.Fatalf("ledger verify after a full disk: %s", out)
	}
	p.Stop(syscall.SIGTERM)
	if out, code := run(t, bin, nil, "audit", "replay", "--data-dir", p.DataDir, "--json"); code != 0 {
		t.Fatalf("audit replay after a full disk: %s", out)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
