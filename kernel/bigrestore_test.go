//go:build !race

package kernel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
)

// Restores of large snapshots: tens to hundreds of MiB through the race
// detector's accounting would take minutes, so these run in the plain
// pass only.

// A snapshot above 512 MiB restores end to end through the HTTP API of a
// real single-node kernel (raft-boltdb and the archive on disk): the kv
// bound raised with limits.set, the kv store filled past 512 MiB with
// 1 MiB values, a snapshot saved to a file, the store changed, the file
// restored (staged in 1 MiB chunks), the values back; then a Raft
// snapshot of the restored state and a restart, whose Raft Restore reads
// that snapshot whole. Heavy (about 600 MiB on the wire several times,
// a few GiB of disk): it runs in the plain pass, not under -race.
func TestRestoreAbove512MiBThroughTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a kernel past 512 MiB")
	}
	const keys = 560 // of fsm.MaxValueBytes each: 587 MB of kv
	begin := time.Now()
	mem := startMemSampler()
	defer mem.stop()
	n, cfg := singleNodeAt(t, "127.0.0.133", func(c *Config) {
		c.HTTPAddr = "127.0.0.133:0"
		c.SnapshotThreshold, c.SnapshotInterval = 1<<20, time.Hour // only the operator's snapshot
	})
	ctx := context.Background()
	root, _, err := n.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &bigAPI{t: t, base: "http://" + n.HTTPAddr(), token: root}
	c.call("POST", "/v1/operator/limits", jsonBody(t, api.LimitsRequest{KVBytes: 1 << 30}), -1, nil)

	fill := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				put(t, n, root, bigKey(i), bigValue(i))
			}
		}()
	}
	for i := 0; i < keys; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	var used int64
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { used = l.State().KVBytes() })
	t.Logf("filled %d keys, %d kv bytes, in %s (%s)", keys, used, time.Since(fill).Round(time.Millisecond), mem.phase())

	save := time.Now()
	path := filepath.Join(t.TempDir(), "snap.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	c.stream("POST", "/v1/snapshot/save", strings.NewReader("{}"), f)
	size, _ := f.Seek(0, io.SeekEnd)
	f.Close()
	t.Logf("saved a snapshot of %d bytes (%.1f MiB) in %s (%s)", size, float64(size)/(1<<20), time.Since(save).Round(time.Millisecond), mem.phase())
	if size <= 512<<20 {
		t.Fatalf("the snapshot of %d bytes is not above 512 MiB", size)
	}

	c.put(bigKey(0), "changed")
	c.call("DELETE", "/v1/kv/"+bigKey(1), nil, -1, nil)
	c.put("extra", "x")

	restore := time.Now()
	snap, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var r api.SnapshotRestoreResponse
	c.call("POST", "/v1/snapshot/restore", bufio.NewReaderSize(snap, 1<<20), size, &r)
	snap.Close()
	want := int((size + fsm.MaxEpochChunkBytes - 1) / fsm.MaxEpochChunkBytes)
	t.Logf("restored %d bytes in %d chunks in %s: %s %s, epoch %d (%s)", r.Bytes, r.Chunks, time.Since(restore).Round(time.Millisecond), r.Decision, r.Reason, r.Epoch, mem.phase())
	if r.Decision != "permit" || r.Chunks != want || r.Bytes != size || r.Epoch != 1 {
		t.Fatalf("restore: %+v (want %d chunks)", r, want)
	}
	c.requireRestored(keys)

	snapTime := time.Now()
	var rs api.RaftSnapshotResponse
	c.call("POST", "/v1/operator/raft/snapshot", strings.NewReader("{}"), -1, &rs)
	states, _ := filepath.Glob(filepath.Join(cfg.DataDir, "raft", "snapshots", "*", "state.bin"))
	var raftBytes int64
	for _, s := range states {
		if fi, err := os.Stat(s); err == nil && fi.Size() > raftBytes {
			raftBytes = fi.Size()
		}
	}
	t.Logf("Raft snapshot at index %d: %d bytes, in %s (%s)", rs.Index, raftBytes, time.Since(snapTime).Round(time.Millisecond), mem.phase())
	if !rs.Taken || raftBytes <= 512<<20 {
		t.Fatalf("Raft snapshot %+v of %d bytes", rs, raftBytes)
	}

	head, _ := n.Head()
	n.Close()
	n.fsm, n.raft = nil, nil // as a new process would, let the closed node's state go
	restart := time.Now()
	again, err := New(cfg)
	if err != nil {
		t.Fatalf("restart on a Raft snapshot of %d bytes: %v", raftBytes, err)
	}
	t.Cleanup(func() { again.Close() })
	(&testCluster{t: t, nodes: []*Node{again}}).leader(30 * time.Second)
	waitHead(t, again, head, 30*time.Second)
	t.Logf("restarted on it in %s (%s)", time.Since(restart).Round(time.Millisecond), mem.phase())
	c.base = "http://" + again.HTTPAddr()
	c.requireRestored(keys)
	t.Logf("total %s; peak resident set of the test process %s", time.Since(begin).Round(time.Millisecond), peakRSS())
}

// Under protocol 3 a snapshot travels inline in one epoch entry; one
// above the archive's old 16 MiB record bound restores (it stopped the
// node before), and the node restarts on that entry.
func TestSnapshotRestoreInlineBelowProtocol4(t *testing.T) {
	n, cfg := singleNodeAt(t, "127.0.0.132", nil)
	init, err := n.InitAt(context.Background(), fsm.ProtocolContract)
	if err != nil {
		t.Fatal(err)
	}
	root := init.RootToken
	value := strings.Repeat("v", fsm.MaxValueBytes-16)
	for i := 0; i < 18; i++ {
		put(t, n, root, fmt.Sprint("k", i), value)
	}
	snap := saveSnapshot(t, n, root)
	put(t, n, root, "k0", "changed")
	status, _, out := restoreRequest(n, root, &watchedBody{r: bytes.NewReader(snap)}, int64(len(snap)))
	var r api.SnapshotRestoreResponse
	if err := json.Unmarshal(out, &r); err != nil || status != http.StatusOK || r.Decision != "permit" || r.Chunks != 0 || r.Bytes != int64(len(snap)) {
		t.Fatalf("inline restore of %d bytes: %d %s", len(snap), status, out)
	}
	got, err := n.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdKVGet, Auth: TokenHash(root), Payload: fsm.Encode(&fsm.KVKey{Key: "k0"})})
	if err != nil || string(got.Value) != value {
		t.Fatalf("k0 after the restore: %d bytes, %v", len(got.Value), err)
	}
	if v := n.VerifyArchive(); !v.OK {
		t.Fatalf("archive after the inline epoch: %+v", v)
	}
	// Restarting re-applies the epoch entry from the Raft log.
	head, _ := n.Head()
	n.Close()
	again, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	(&testCluster{t: t, nodes: []*Node{again}}).leader(10 * time.Second)
	waitHead(t, again, head, 20*time.Second)
	if _, err := again.Apply(context.Background(), fsm.Envelope{Type: fsm.CmdKVGet, Auth: TokenHash(root), Payload: fsm.Encode(&fsm.KVKey{Key: "k0"})}); err != nil {
		t.Fatal(err)
	}

}

// Under protocol 3 a snapshot above the MaxEpochBytes one epoch entry
// carries is 413 before anything is proposed: a file that verifies as a
// stream (its body is zeros whose digest holds) at a checkpointed head.
func TestSnapshotRestoreInlineAbove256MiBRefused(t *testing.T) {
	n, _ := singleNodeAt(t, "127.0.0.134", nil)
	init, err := n.InitAt(context.Background(), fsm.ProtocolContract)
	if err != nil {
		t.Fatal(err)
	}
	root := init.RootToken
	put(t, n, root, "k", "v")
	sf, _, err := fsm.DecodeSnapshot(saveSnapshot(t, n, root))
	if err != nil {
		t.Fatal(err)
	}
	huge, size := zeroBodySnapshot(sf.Head, sf.Epoch, fsm.MaxEpochBytes+1)
	before, _ := n.Head()
	status, eb, _ := restoreRequest(n, root, &watchedBody{r: huge}, size)
	if status != http.StatusRequestEntityTooLarge || eb.Error.Code != api.CodeTooLarge || !strings.Contains(eb.Error.Message, "before protocol 4") {
		t.Fatalf("a %d-byte snapshot under protocol 3: %d %q %q", size, status, eb.Error.Code, eb.Error.Message)
	}
	if after, _ := n.Head(); after.Seq != before.Seq {
		t.Fatalf("the refused restore reached the ledger: seq %d -> %d", before.Seq, after.Seq)
	}
}

func bigKey(i int) string { return fmt.Sprintf("big/%04d", i) }

func bigValue(i int) string {
	p := fmt.Sprintf("%04d:", i)
	return p + strings.Repeat(string(rune('a'+i%26)), fsm.MaxValueBytes-len(p))
}

// bigAPI calls a node's HTTP API as the holder of token.
type bigAPI struct {
	t     *testing.T
	base  string
	token string
}

func jsonBody(t *testing.T, v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func (a *bigAPI) do(method, path string, body io.Reader, length int64) *http.Response {
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if length >= 0 {
		req.ContentLength = length
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		a.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp
}

func (a *bigAPI) call(method, path string, body io.Reader, length int64, out any) {
	resp := a.do(method, path, body, length)
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
}

func (a *bigAPI) stream(method, path string, body io.Reader, w io.Writer) {
	resp := a.do(method, path, body, -1)
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
}

func (a *bigAPI) put(key, value string) {
	var r api.KVResponse
	a.call("PUT", "/v1/kv/"+key, jsonBody(a.t, api.KVPutRequest{Value: value}), -1, &r)
	if r.Decision != "permit" {
		a.t.Errorf("put %s: %s %s", key, r.Decision, r.Reason)
	}
}

func (a *bigAPI) get(key string) api.KVResponse {
	var r api.KVResponse
	a.call("POST", "/v1/kv-get/"+key, strings.NewReader("{}"), -1, &r)
	return r
}

// requireRestored reads back the keys the restore changed and a sample
// of the rest, and the key added after the snapshot is gone.
func (a *bigAPI) requireRestored(keys int) {
	a.t.Helper()
	for _, i := range []int{0, 1, 2, keys / 2, keys - 1} {
		if r := a.get(bigKey(i)); !r.Found || r.Value != bigValue(i) {
			a.t.Fatalf("%s after the restore: found %v, %d bytes", bigKey(i), r.Found, len(r.Value))
		}
	}
	if r := a.get("extra"); r.Found {
		a.t.Fatal("a key written after the snapshot survived the restore")
	}
}

// peakRSS is this process's peak resident set (VmHWM), as Linux reports it.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(v)
			if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				return fmt.Sprintf("%.2f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return "unknown"
}

// memSampler records, per phase, the peak of the Go heap's objects (live
// and not yet collected) and of the process's anonymous and file-backed
// resident memory (the latter mostly raft.db, which bolt maps).
type memSampler struct {
	mu              sync.Mutex
	heap, anon, fil uint64
	done            chan struct{}
}

func startMemSampler() *memSampler {
	m := &memSampler{done: make(chan struct{})}
	go func() {
		samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
			metrics.Read(samples)
			anon, file := rss()
			m.mu.Lock()
			m.heap, m.anon, m.fil = max(m.heap, samples[0].Value.Uint64()), max(m.anon, anon), max(m.fil, file)
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *memSampler) stop() { close(m.done) }

// phase reports the peaks since the last phase and starts a new one.
func (m *memSampler) phase() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	gib := func(b uint64) float64 { return float64(b) / (1 << 30) }
	out := fmt.Sprintf("peak Go heap %.2f GiB, resident %.2f GiB anonymous + %.2f GiB file", gib(m.heap), gib(m.anon), gib(m.fil))
	m.heap, m.anon, m.fil = 0, 0, 0
	return out
}

// rss is the process's anonymous and file-backed resident bytes.
func rss() (anon, file uint64) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		for key, v := range map[string]*uint64{"RssAnon:": &anon, "RssFile:": &file} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
				*v = kb << 10
			}
		}
	}
	return anon, file
}
