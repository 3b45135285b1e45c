package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestThreeAgentsWithTLS walks the kernel core's acceptance story with
// real processes: TLS election, writes through every node, kill -9 of the
// leader, catch-up, snapshot + export replay, data-dir replay, tamper.
func TestThreeAgentsWithTLS(t *testing.T) {
	bin := binary(t, "")
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var procs []*proc
	var binds []string
	for i := 1; i <= 3; i++ {
		ip := fmt.Sprintf("127.0.42.%d", i)
		binds = append(binds, fmt.Sprintf("%s:%d", ip, freePort(t, ip)))
	}
	mustRun := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir = tlsDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	mustRun("tls", "ca", "create")
	for i := 1; i <= 3; i++ {
		ip := fmt.Sprintf("127.0.42.%d", i)
		name := fmt.Sprintf("n%d", i)
		mustRun("tls", "cert", "create", "--node", name, "--ip", ip, "--kernel", "e2e")
		p := &proc{Name: name, Bin: bin, Bind: binds[i-1], DataDir: filepath.Join(dir, name), Log: filepath.Join(dir, name+".log")}
		p.HTTP = fmt.Sprintf("%s:%d", ip, freePort(t, ip))
		p.Args = []string{"agent", "--name", name, "--data-dir", p.DataDir, "--bind", p.Bind, "--http", p.HTTP,
			"--bootstrap-expect", "3", "--join", strings.Join(binds, ","),
			"--tls-ca", filepath.Join(tlsDir, "ca.pem"), "--tls-cert", filepath.Join(tlsDir, name+".pem"),
			"--tls-key", filepath.Join(tlsDir, name+"-key.pem"), "--min-free-disk", "0"}
		procs = append(procs, p)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Stop(syscall.SIGKILL)
		}
	})
	start := time.Now()
	for _, p := range procs {
		p.Start(t)
	}
	env := []string{"DOMINUS_CACERT=" + filepath.Join(tlsDir, "ca.pem")}
	url := func(p *proc) string { return "https://" + p.HTTP }
	waitLeader := func(limit time.Duration, among []*proc) (string, time.Duration) {
		t0 := time.Now()
		for time.Since(t0) < limit {
			for _, p := range among {
				if s, ok := status(t, bin, env, url(p)); ok && s.Leader != "" {
					return s.Leader, time.Since(t0)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, p := range among {
			t.Logf("%s log:\n%s", p.Name, p.LogText())
		}
		t.Fatalf("no leader within %s", limit)
		return "", 0
	}
	leader, _ := waitLeader(15*time.Second, procs)
	t.Logf("leader %s elected %s after the processes started", leader, time.Since(start).Round(time.Millisecond))
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("election took %s, want within 5s", el)
	}
	out, code := run(t, bin, env, "operator", "init", "--json", "--addr", url(procs[0]))
	var ir struct {
		RootToken string `json:"root_token"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ir) != nil || ir.RootToken == "" {
		t.Fatalf("init: %d %s", code, out)
	}
	env = append(env, "DOMINUS_TOKEN="+ir.RootToken)
	if _, code := run(t, bin, env[:1], "kv", "put", "x", "y", "--addr", url(procs[0])); code == 0 {
		t.Fatal("a write without a token succeeded")
	}
	for i := 0; i < 300; i++ {
		if _, code := run(t, bin, env, "kv", "put", fmt.Sprintf("orders/%d", i%40), fmt.Sprint("v", i), "--addr", url(procs[i%3])); code != 0 {
			t.Fatalf("put %d failed", i)
		}
	}
	sameHead := func(among []*proc, limit time.Duration) statusJSON {
		t0 := time.Now()
		for {
			var first statusJSON
			ok := true
			for i, p := range among {
				s, up := status(t, bin, env, url(p))
				if !up || (i > 0 && (s.Head != first.Head || s.StateDigest != first.StateDigest)) {
					ok = false
					break
				}
				if i == 0 {
					first = s
				}
			}
			if ok {
				return first
			}
			if time.Since(t0) > limit {
				t.Fatalf("chain heads did not converge within %s", limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	h := sameHead(procs, 10*time.Second)
	t.Logf("all nodes at head %d:%s", h.Head.Seq, h.Head.Hash[:16])
	if h.Head.Seq < 301 {
		t.Fatalf("head seq %d after 300 puts", h.Head.Seq)
	}

	// kill -9 the leader; the others elect a new one that commits writes.
	var victim *proc
	var rest []*proc
	for _, p := range procs {
		if p.Name == leader {
			victim = p
		} else {
			rest = append(rest, p)
		}
	}
	victim.Stop(syscall.SIGKILL)
	t0 := time.Now()
	for {
		if _, code := run(t, bin, env, "kv", "put", "failover", "1", "--addr", url(rest[0]), "--timeout", "1s"); code == 0 {
			break
		}
		if time.Since(t0) > 15*time.Second {
			t.Fatal("no write committed after the leader was killed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	failover := time.Since(t0)
	t.Logf("first committed write %s after kill -9 of the leader", failover.Round(time.Millisecond))
	if failover > 5*time.Second {
		t.Errorf("failover took %s, want within 5s", failover)
	}
	for i := 0; i < 30; i++ {
		if _, code := run(t, bin, env, "kv", "put", fmt.Sprint("after/", i), "v", "--addr", url(rest[i%2])); code != 0 {
			t.Fatal("put after failover failed")
		}
	}
	victim.Start(t)
	h = sameHead(procs, 20*time.Second)
	t.Logf("restarted %s caught up to head %d", victim.Name, h.Head.Seq)

	// Snapshot + export + offline replay reproduce the live head.
	snap := filepath.Join(dir, "snap.bin")
	if _, code := run(t, bin, env, "snapshot", "save", snap, "--addr", url(rest[1])); code != 0 {
		t.Fatal("snapshot save failed")
	}
	var si struct {
		Head struct {
			Seq uint64 `json:"seq"`
		} `json:"head"`
	}
	out, _ = run(t, bin, env, "snapshot", "inspect", snap, "--json")
	if err := json.Unmarshal([]byte(out), &si); err != nil || si.Head.Seq == 0 {
		t.Fatalf("inspect: %v %s", err, out)
	}
	for i := 0; i < 20; i++ {
		run(t, bin, env, "kv", "put", fmt.Sprint("post/", i), "v", "--addr", url(procs[i%3]))
	}
	live := sameHead(procs, 10*time.Second)
	export := filepath.Join(dir, "ledger.export")
	if _, code := run(t, bin, env, "ledger", "export", "--from", fmt.Sprint(si.Head.Seq), export, "--addr", url(procs[0])); code != 0 {
		t.Fatal("export failed")
	}
	type replayJSON struct {
		OK   bool `json:"ok"`
		Head struct {
			Seq  uint64 `json:"seq"`
			Hash string `json:"hash"`
		} `json:"head"`
		StateDigest string `json:"state_digest"`
		BadSeq      uint64 `json:"bad_seq"`
	}
	out, code = run(t, bin, nil, "audit", "replay", "--snapshot", snap, "--ledger", export, "--json")
	var rp replayJSON
	if code != 0 || json.Unmarshal([]byte(out), &rp) != nil || !rp.OK || rp.Head.Seq != live.Head.Seq || rp.Head.Hash != live.Head.Hash || rp.StateDigest != live.StateDigest {
		t.Fatalf("snapshot+ledger replay: exit %d %s (live %d:%s %s)", code, out, live.Head.Seq, live.Head.Hash, live.StateDigest)
	}
	// A flipped byte in the export fails with exit 4 and a bad seq.
	data, _ := os.ReadFile(export)
	data[len(data)/2] ^= 0x01
	tampered := filepath.Join(dir, "tampered.export")
	_ = os.WriteFile(tampered, data, 0o600)
	out, code = run(t, bin, nil, "audit", "replay", "--snapshot", snap, "--ledger", tampered, "--json")
	rp = replayJSON{}
	if code != 4 || json.Unmarshal([]byte(out), &rp) != nil || rp.OK || rp.BadSeq == 0 {
		t.Fatalf("tampered export: exit %d %s", code, out)
	}
	t.Logf("tampered export refused at seq %d", rp.BadSeq)

	// A stopped node's data dir replays to its head.
	stopped := procs[2]
	before, _ := status(t, bin, env, url(stopped))
	stopped.Stop(syscall.SIGTERM)
	out, code = run(t, bin, nil, "audit", "replay", "--data-dir", stopped.DataDir, "--json")
	rp = replayJSON{}
	if code != 0 || json.Unmarshal([]byte(out), &rp) != nil || !rp.OK || rp.Head.Hash != before.Head.Hash {
		t.Fatalf("data-dir replay: exit %d %s (node head %d:%s)", code, out, before.Head.Seq, before.Head.Hash)
	}
}
