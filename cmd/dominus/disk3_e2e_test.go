package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFullDiskInAThreeNodeCluster runs three agents, each with its data
// dir on a tmpfs of its own and the free-space guard off, under a steady
// writer. First a follower's disk fills: it becomes disk-full (status
// says so) without a panic or an exit, the cluster keeps taking writes
// through the other two, no election storm starts (the term moves at
// most once), and once the space is freed it catches up to the same head.
// Then the leader's disk fills: clients get disk_full or are served by a
// new leader (one hand-over), and after the space returns every
// acknowledged write is present and the chain verifies on every node.
// Needs root to mount tmpfs (CI runs as root). Nodes on 127.0.47.1-3.
func TestFullDiskInAThreeNodeCluster(t *testing.T) {
	bin := binary(t, "")
	var procs []*proc
	var binds []string
	mnts := make([]string, 3)
	for i := range 3 {
		ip := fmt.Sprintf("127.0.47.%d", i+1)
		binds = append(binds, fmt.Sprintf("%s:%d", ip, freePort(t, ip)))
		mnts[i] = t.TempDir()
		if err := syscall.Mount("tmpfs", mnts[i], "tmpfs", 0, "size=40m"); err != nil {
			t.Skipf("cannot mount a tmpfs here (%v); this test needs root", err)
		}
		mnt := mnts[i]
		t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	}
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		ip := fmt.Sprintf("127.0.47.%d", i+1)
		p := &proc{Name: name, Bin: bin, Bind: binds[i], DataDir: filepath.Join(mnts[i], "data"), Log: filepath.Join(t.TempDir(), name+".log")}
		p.HTTP = fmt.Sprintf("%s:%d", ip, freePort(t, ip))
		p.Args = []string{"agent", "--name", name, "--data-dir", p.DataDir, "--bind", p.Bind, "--http", p.HTTP,
			"--bootstrap-expect", "3", "--join", strings.Join(binds, ","), "--min-free-disk", "0"}
		procs = append(procs, p)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Stop(syscall.SIGKILL)
		}
	})
	for _, p := range procs {
		p.Start(t)
	}
	url := func(p *proc) string { return "http://" + p.HTTP }
	leaderOf := func() (*proc, statusJSON) {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			for _, p := range procs {
				if s, ok := status(t, bin, nil, url(p)); ok && s.Leader != "" && s.RaftState == "Leader" {
					return p, s
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("no leader within 20s")
		return nil, statusJSON{}
	}
	leader, _ := leaderOf()
	out, code := run(t, bin, nil, "operator", "init", "--json", "--addr", url(leader))
	token := jsonField(out, "root_token")
	if code != 0 || token == "" {
		t.Fatalf("init: %s", out)
	}
	env := []string{"DOMINUS_TOKEN=" + token}

	// A writer through every node in turn, recording what was acknowledged.
	var mu sync.Mutex
	acked := map[string]string{}
	var diskFullAnswers int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		val := strings.Repeat("v", 48<<10)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprintf("w/%d", i)
			out, code := run(t, bin, env, "kv", "put", key, val, "--addr", url(procs[i%3]), "--timeout", "3s", "--json")
			mu.Lock()
			if code == 0 {
				acked[key] = val
			} else if strings.Contains(out, `"disk_full"`) {
				diskFullAnswers++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	ackedNow := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	fill := func(mnt string) string {
		f := filepath.Join(mnt, "filler")
		fh, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 1<<20)
		for range 64 {
			if _, err := fh.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", mnt, err)
				}
				break
			}
		}
		fh.Close()
		return f
	}
	waitFor := func(limit time.Duration, what string, cond func() bool) {
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				for _, p := range procs {
					t.Logf("%s log:\n%s", p.Name, lastLines(p.LogText(), 15))
				}
				t.Fatalf("%s: not within %s", what, limit)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	noCrash := func() {
		for _, p := range procs {
			if _, exited := p.Exited(0); exited {
				t.Fatalf("%s exited:\n%s", p.Name, lastLines(p.LogText(), 20))
			}
			if strings.Contains(p.LogText(), "panic") {
				t.Fatalf("%s panicked:\n%s", p.Name, lastLines(p.LogText(), 30))
			}
		}
	}
	waitFor(30*time.Second, "the first 20 writes", func() bool { return ackedNow() >= 20 })

	// 1. A follower's disk fills.
	leader, ls := leaderOf()
	var follower *proc
	var fi int
	for i, p := range procs {
		if p != leader {
			follower, fi = p, i
			break
		}
	}
	termBefore := ls.Term
	filler := fill(mnts[fi])
	waitFor(60*time.Second, follower.Name+" reports a full disk", func() bool {
		s, ok := status(t, bin, nil, url(follower))
		return ok && s.DiskFull != ""
	})
	before := ackedNow()
	waitFor(30*time.Second, "writes continuing on the other two", func() bool { return ackedNow() >= before+20 })
	noCrash()
	if l, s := leaderOf(); s.Term > termBefore+1 {
		t.Fatalf("the term moved from %d to %d while a follower's disk was full", termBefore, s.Term)
	} else {
		t.Logf("follower %s disk-full; leader %s, term %d -> %d, %d writes acknowledged", follower.Name, l.Name, termBefore, s.Term, ackedNow())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(60*time.Second, follower.Name+" recovering and catching up", func() bool {
		s, ok := status(t, bin, nil, url(follower))
		l, lok := status(t, bin, nil, url(leader))
		return ok && lok && s.DiskFull == "" && s.Head.Seq+50 >= l.Head.Seq
	})

	// 2. The leader's disk fills.
	leader, ls = leaderOf()
	li := 0
	for i, p := range procs {
		if p == leader {
			li = i
		}
	}
	termBefore = ls.Term
	filler = fill(mnts[li])
	waitFor(60*time.Second, leader.Name+" (leader) reports a full disk", func() bool {
		s, ok := status(t, bin, nil, url(leader))
		return ok && s.DiskFull != ""
	})
	before = ackedNow()
	waitFor(45*time.Second, "writes continuing under a new leader", func() bool { return ackedNow() >= before+20 })
	noCrash()
	if l, s := leaderOf(); s.Term > termBefore+2 {
		t.Fatalf("the term moved from %d to %d after the leader's disk filled (an election loop)", termBefore, s.Term)
	} else {
		t.Logf("leader %s disk-full; leader now %s, term %d -> %d, %d writes acknowledged", leader.Name, l.Name, termBefore, s.Term, ackedNow())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d writes acknowledged, %d answered disk_full", len(acked), diskFullAnswers)

	// Every node converges and holds every acknowledged write.
	waitFor(60*time.Second, "all three at one head, none disk-full", func() bool {
		var first statusJSON
		for i, p := range procs {
			s, ok := status(t, bin, nil, url(p))
			if !ok || s.DiskFull != "" || (i > 0 && s.Head != first.Head) {
				return false
			}
			first = s
		}
		return true
	})
	noCrash()
	for k := range acked {
		if out, code := run(t, bin, env, "kv", "get", k, "--addr", url(procs[0])); code != 0 || strings.TrimSpace(out) != acked[k] {
			t.Fatalf("acknowledged key %s lost (exit %d)", k, code)
		}
	}
	for _, p := range procs {
		if out, code := run(t, bin, env, "ledger", "verify", "--json", "--addr", url(p)); code != 0 {
			t.Fatalf("ledger verify on %s: %s", p.Name, out)
		}
	}
}

// jsonField is a top-level string field of a JSON object, "" if absent.
func jsonField(out, name string) string {
	i := strings.Index(out, `"`+name+`"`)
	if i < 0 {
		return ""
	}
	rest := out[i+len(name)+2:]
	a := strings.Index(rest, `"`)
	if a < 0 {
		return ""
	}
	b := strings.Index(rest[a+1:], `"`)
	if b < 0 {
		return ""
	}
	return rest[a+1 : a+1+b]
}
