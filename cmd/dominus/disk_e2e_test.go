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
// writes fail with an error (disk_full once the archive waits for space),
// the agent neither panics nor exits nor loops through elections (its term
// moves at most once), status says the disk is full, nothing acknowledged
// is lost, and after space returns writes resume without a restart and
// the ledger verifies and replays. Needs root to mount a tmpfs (CI runs
// as root).
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
	termBefore := uint64(0)
	if s, ok := status(t, bin, nil, addr); ok {
		termBefore = s.Term
	}
	big := strings.Repeat("x", 100<<10)
	failures, diskFull := 0, 0
	for i := 0; i < 6; i++ {
		key := fmt.Sprint("full/", i)
		out, code := run(t, bin, env, "kv", "put", key, big, "--timeout", "3s", "--json")
		if code == 0 {
			acked[key] = true
		} else {
			failures++
			if strings.Contains(out, `"disk_full"`) {
				diskFull++
			}
		}
	}
	if failures == 0 {
		t.Fatal("every write succeeded on a full disk")
	}
	t.Logf("%d of 6 writes failed on the full disk, %d of them disk_full", failures, diskFull)
	if diskFull == 0 {
		t.Fatalf("no write on the full disk answered disk_full:\n%s", lastLines(p.LogText(), 20))
	}
	if _, exited := p.Exited(0); exited {
		t.Fatalf("the agent exited on a full disk:\n%s", lastLines(p.LogText(), 20))
	}
	s, ok := status(t, bin, nil, addr)
	if !ok || s.DiskFull == "" {
		t.Fatalf("status on a full disk does not say so: %+v", s)
	}
	time.Sleep(3 * time.Second) // long enough for an election storm to show
	if s, ok := status(t, bin, nil, addr); !ok || s.Term > termBefore+1 {
		t.Fatalf("the term moved from %d to %d on a full disk (an election loop)", termBefore, s.Term)
	}
	// Free the space: writes resume by themselves.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
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
	if strings.Contains(p.LogText(), "panic") || strings.Contains(p.LogText(), "goroutine ") {
		t.Fatalf("the agent's log has a panic:\n%s", lastLines(p.LogText(), 30))
	}
	if s, ok := status(t, bin, nil, addr); !ok || s.DiskFull != "" {
		t.Fatalf("status after space returned: %+v", s)
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
