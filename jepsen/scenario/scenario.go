package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/cluster"
)

// Env is what a scenario runs against.
type Env struct {
	Cluster *cluster.Cluster
	Seed    int64
	Dir     string // scratch files (snapshots)
	Logf    func(format string, args ...any)
}

// Result is a scenario's verdict.
type Result struct {
	Name    string   `json:"name"`
	Valid   bool     `json:"valid"`
	Summary string   `json:"summary"`
	Details []string `json:"details,omitempty"`
}

// Scenario is a named check.
type Scenario struct {
	Name string
	Run  func(ctx context.Context, env Env) Result
}

// All lists the scenarios in the order they run on one kernel (the last
// leaves a node down).
var All = []Scenario{
	{"kill-leader-mid-batch", KillLeaderMidBatch},
	{"corrupt-snapshot", CorruptSnapshot},
	{"corrupt-raft-log", CorruptRaftLog},
}

type result struct {
	Result
}

func newResult(name string) *result { return &result{Result{Name: name, Valid: true}} }

func (r *result) note(format string, args ...any) {
	r.Details = append(r.Details, fmt.Sprintf(format, args...))
}

func (r *result) fail(format string, args ...any) {
	r.Valid = false
	msg := fmt.Sprintf(format, args...)
	r.Details = append(r.Details, "FAIL: "+msg)
	if r.Summary == "" {
		r.Summary = msg
	}
}

func (r *result) done(okSummary string) Result {
	if r.Valid {
		r.Summary = okSummary
	}
	return r.Result
}

type ack struct {
	key, value, rid string
	seq             uint64
}

// KillLeaderMidBatch kills the leader with SIGKILL while writers are
// busy, restarts it, and checks that every acknowledged write survived.
func KillLeaderMidBatch(ctx context.Context, env Env) Result {
	r := newResult("kill-leader-mid-batch")
	c := env.Cluster
	leader, err := c.WaitLeader(ctx, 20*time.Second)
	if err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	var clients []*client.Client
	for _, n := range c.Nodes() {
		cl, err := c.Client(n, 2*time.Second)
		if err != nil {
			r.fail("%v", err)
			return r.done("")
		}
		clients = append(clients, cl)
	}
	var (
		mu          sync.Mutex
		acked       []ack
		ackedBefore int
		killed      bool
		unknown     int
		inflight    int
	)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	const writers = 8
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(env.Seed), uint64(w)+100))
			for i := 0; wctx.Err() == nil && i < 100000; i++ {
				key := fmt.Sprintf("batch/w%d-%d", w, i)
				val := fmt.Sprintf("v%d-%d", w, i)
				rid := fmt.Sprintf("batch-%d-%d-%d", env.Seed, w, i)
				cl := clients[rng.IntN(len(clients))]
				mu.Lock()
				inflight++
				mu.Unlock()
				octx, cancel := context.WithTimeout(ctx, 2*time.Second)
				resp, err := cl.KVPut(octx, key, val, client.WithRequestID(rid))
				cancel()
				mu.Lock()
				inflight--
				if err == nil && strings.EqualFold(resp.Decision, api.DecisionPermit) {
					acked = append(acked, ack{key, val, rid, resp.Seq})
					if !killed {
						ackedBefore++
					}
				} else if err != nil && !client.IsCode(err, api.CodeNoLeader) {
					unknown++
				}
				mu.Unlock()
				if err != nil {
					_ = sleep(wctx, 50*time.Millisecond)
				}
			}
		}()
	}
	// let a batch build up, then kill the leader mid-batch
	if err := sleep(ctx, time.Second); err != nil {
		r.fail("%v", err)
	}
	mu.Lock()
	killed = true
	atKill := inflight
	mu.Unlock()
	if err := c.Kill(leader); err != nil {
		r.fail("kill -9 %s: %v", leader.Name, err)
	}
	r.note("kill -9 leader %s with %d writes in flight, %d acknowledged before", leader.Name, atKill, ackedBefore)
	killedAt := time.Now()
	newLeader, err := c.WaitLeader(ctx, 15*time.Second)
	if err != nil {
		r.fail("no new leader after the kill: %v", err)
	} else {
		r.note("new leader %s reported %s after the kill", newLeader.Name, time.Since(killedAt).Round(time.Millisecond))
	}
	_ = sleep(ctx, 1500*time.Millisecond)
	if err := c.Start(leader, 0); err != nil {
		r.fail("restart %s: %v", leader.Name, err)
	}
	_ = sleep(ctx, time.Second)
	stop()
	wg.Wait()
	mu.Lock()
	total, before := len(acked), ackedBefore
	mu.Unlock()
	r.note("%d writes acknowledged (%d before the kill, %d after), %d unknown outcomes", total, before, total-before, unknown)
	if before == 0 || total == before {
		r.fail("the scenario did not exercise a kill mid-batch: %d acknowledged before, %d after", before, total-before)
	}
	if _, err := c.WaitConverged(ctx, 30*time.Second); err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	// every acknowledged write is read back through every node
	var lost, readErrs atomic.Int64
	var rwg sync.WaitGroup
	for i, n := range c.Nodes() {
		cl := clients[i]
		for w := 0; w < 6; w++ {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				for j := w; j < len(acked) && ctx.Err() == nil; j += 6 {
					a := acked[j]
					resp, err := readRetrying(ctx, cl, a.key)
					mu.Lock()
					switch {
					case err != nil:
						if readErrs.Add(1) <= 3 {
							r.fail("read %s via %s: %v", a.key, n.Name, err)
						}
					case !resp.Found || resp.Value != a.value:
						if lost.Add(1) <= 5 {
							r.fail("acknowledged write %s=%s (seq %d) reads back via %s as found=%v %q", a.key, a.value, a.seq, n.Name, resp.Found, resp.Value)
						}
					}
					mu.Unlock()
				}
			}()
		}
	}
	rwg.Wait()
	if lost.Load() > 0 || readErrs.Load() > 0 {
		r.fail("%d acknowledged writes read back wrong, %d reads failed", lost.Load(), readErrs.Load())
	}
	// and its request id is in every replica's ledger exactly once
	if _, err := c.WaitConverged(ctx, 30*time.Second); err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	for _, n := range c.Nodes() {
		l := c.FetchLedger(ctx, n, 8)
		if l.FetchErr != "" {
			r.fail("%s ledger: %s", n.Name, l.FetchErr)
			continue
		}
		count := map[string]int{}
		seqOf := map[string]uint64{}
		for _, ev := range l.Events {
			if ev.RequestID != "" {
				count[ev.RequestID]++
				seqOf[ev.RequestID] = ev.Seq
			}
		}
		for _, a := range acked {
			switch {
			case count[a.rid] != 1:
				r.fail("%s: acknowledged request %s appears %d times in the ledger", n.Name, a.rid, count[a.rid])
			case seqOf[a.rid] != a.seq:
				r.fail("%s: acknowledged request %s is at seq %d, answered seq %d", n.Name, a.rid, seqOf[a.rid], a.seq)
			}
		}
		if l.Verify == nil || !l.Verify.OK {
			r.fail("%s: ledger verify: %+v %s", n.Name, l.Verify, l.VerifyErr)
		}
	}
	return r.done(fmt.Sprintf("%d acknowledged writes (%d before kill -9 of leader %s) all read back through every node and in every ledger exactly once",
		total, before, leader.Name))
}

// CorruptSnapshot saves a snapshot, flips one byte at several seeded
// offsets, and checks that inspect exits 4 and restore is refused each
// time, with the ledger head unchanged.
func CorruptSnapshot(ctx context.Context, env Env) Result {
	r := newResult("corrupt-snapshot")
	c := env.Cluster
	leader, err := c.WaitLeader(ctx, 20*time.Second)
	if err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	for i := 0; i < 10; i++ {
		if _, stderr, code := c.CLI(ctx, leader.Name, "kv", "put", fmt.Sprintf("snap/%d", i), fmt.Sprintf("value-%d", i)); code != 0 {
			r.fail("kv put: exit %d: %s", code, stderr)
			return r.done("")
		}
	}
	good := filepath.Join(env.Dir, "snapshot.bin")
	if out, stderr, code := c.CLI(ctx, leader.Name, "snapshot", "save", good, "--json"); code != 0 {
		r.fail("snapshot save: exit %d: %s %s", code, stderr, out)
		return r.done("")
	}
	if _, stderr, code := c.CLI(ctx, "", "snapshot", "inspect", good); code != 0 {
		r.fail("the unmodified snapshot does not inspect cleanly: exit %d: %s", code, stderr)
		return r.done("")
	}
	data, err := os.ReadFile(good)
	if err != nil || len(data) < 16 {
		r.fail("read snapshot: %v (%d bytes)", err, len(data))
		return r.done("")
	}
	before, err := c.Status(ctx, leader)
	if err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	rng := rand.New(rand.NewPCG(uint64(env.Seed), 7))
	const flips = 5
	for i := 0; i < flips; i++ {
		off := rng.IntN(len(data))
		bad := append([]byte(nil), data...)
		bad[off] ^= 1 << rng.IntN(8)
		path := filepath.Join(env.Dir, fmt.Sprintf("snapshot-flipped-%d.bin", off))
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			r.fail("%v", err)
			return r.done("")
		}
		_, _, code := c.CLI(ctx, "", "snapshot", "inspect", path)
		if code != api.ExitVerify {
			r.fail("snapshot inspect of a snapshot with byte %d of %d flipped exited %d, want %d", off, len(data), code, api.ExitVerify)
		}
		_, stderr, code := c.CLI(ctx, leader.Name, "snapshot", "restore", path)
		if code == 0 {
			r.fail("snapshot restore accepted a snapshot with byte %d flipped", off)
		} else if code != api.ExitVerify {
			r.fail("snapshot restore of a flipped snapshot exited %d, want %d: %s", code, api.ExitVerify, strings.TrimSpace(stderr))
		}
		r.note("byte %d of %d flipped: inspect exit %d, restore refused (exit %d)", off, len(data), api.ExitVerify, code)
	}
	after, err := c.Status(ctx, leader)
	if err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	if after.Epoch != before.Epoch {
		r.fail("epoch changed from %d to %d after refused restores", before.Epoch, after.Epoch)
	}
	if after.Head != before.Head {
		r.fail("head moved from %d to %d after refused restores", before.Head.Seq, after.Head.Seq)
	}
	return r.done(fmt.Sprintf("%d single-byte flips of a %d-byte snapshot: inspect exited 4 and restore was refused each time; head and epoch unchanged", flips, len(data)))
}

// LogTamperMessage is what an agent says when its stored Raft log
// differs from its ledger archive.
const LogTamperMessage = "does not match the ledger archive"

// CorruptRaftLog flips a byte of a value stored in a stopped follower's
// raft.db and checks that the node refuses to start.
func CorruptRaftLog(ctx context.Context, env Env) Result {
	r := newResult("corrupt-raft-log")
	c := env.Cluster
	leader, err := c.WaitLeader(ctx, 20*time.Second)
	if err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	marker := fmt.Sprintf("JEPSEN-MARKER-%d-%d-", env.Seed, time.Now().UnixNano())
	cl, err := c.Client(leader, 5*time.Second)
	if err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	for i := 0; i < 5; i++ {
		if _, err := cl.KVPut(ctx, fmt.Sprintf("marker/%d", i), fmt.Sprintf("%s%d", marker, i)); err != nil {
			r.fail("write marker: %v", err)
			return r.done("")
		}
	}
	if _, err := c.WaitConverged(ctx, 30*time.Second); err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	var victim *cluster.Node
	for _, n := range c.Nodes() {
		if n != leader && c.Running(n) {
			victim = n
			break
		}
	}
	if victim == nil {
		r.fail("no running follower")
		return r.done("")
	}
	if err := c.Stop(victim, 10*time.Second); err != nil {
		r.fail("stop %s: %v", victim.Name, err)
		return r.done("")
	}
	path := filepath.Join(victim.DataDir, "raft", "raft.db")
	db, err := os.ReadFile(path)
	if err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	target := []byte(marker + "3")
	hits := 0
	for off := 0; off < len(db); {
		i := bytes.Index(db[off:], target)
		if i < 0 {
			break
		}
		db[off+i+len(target)-2] ^= 0x01 // a byte of the stored value, not of bolt's structure
		hits++
		off += i + len(target)
	}
	if hits == 0 {
		r.fail("marker value not found in %s", path)
		return r.done("")
	}
	if err := os.WriteFile(path, db, 0o600); err != nil {
		r.fail("%v", err)
		return r.done("")
	}
	r.note("flipped a byte in %d stored cop(ies) of a value in %s", hits, path)
	logStart := fileSize(victim.LogPath)
	if err := c.StartExpectingExit(victim); err != nil {
		r.fail("start %s: %v", victim.Name, err)
		return r.done("")
	}
	status, exited := c.WaitExit(victim, 30*time.Second)
	if !exited {
		r.fail("%s started on a tampered raft.db and was still running after 30s", victim.Name)
		_ = c.Kill(victim)
		return r.done("")
	}
	logTail := readFrom(victim.LogPath, logStart)
	if status == "exit 0" {
		r.fail("%s exited 0 on a tampered raft.db", victim.Name)
	}
	if !strings.Contains(logTail, LogTamperMessage) {
		r.fail("%s exited (%s) without saying %q; its output:\n%s", victim.Name, status, LogTamperMessage, logTail)
	}
	r.note("%s refused to start: %s; %s", victim.Name, status, lastLine(logTail, LogTamperMessage))
	// the others still serve
	for _, n := range c.Nodes() {
		if n == victim {
			continue
		}
		if _, err := c.Status(ctx, n); err != nil {
			r.fail("%s does not answer after %s was refused: %v", n.Name, victim.Name, err)
		}
	}
	return r.done(fmt.Sprintf("%s refused to start on a raft.db with a flipped value byte (%s: %q)", victim.Name, status, LogTamperMessage))
}

// readRetrying reads key, retrying answers that say nothing about the
// value (no leader, unavailable, timeouts) for up to 20s: a leader change
// during the read-back is not a lost write.
func readRetrying(ctx context.Context, cl *client.Client, key string) (*api.KVResponse, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		octx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := cl.KVGet(octx, key)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return resp, err
		}
		var ce *client.Error
		if errors.As(err, &ce) && ce.Code != api.CodeNoLeader && ce.Code != api.CodeUnavailable && ce.Code != api.CodeTimeout {
			return resp, err
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return resp, err
		}
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func readFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

func lastLine(text, containing string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], containing) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
