package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

const fakeToken = "s3cret"

// fakeKernel serves the /v1 endpoints the CLI calls, with canned answers
// chosen by key name, and records what it was sent.
type fakeKernel struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	requestIDs []string
	casSeen    []api.KVCASRequest
	putValues  []string

	verifyOK   bool
	exportBody []byte
	exportCut  bool // close the connection halfway through the export
	snapshot   []byte

	restoreMax    int64  // the node's restore limit (413 beyond, before reading)
	restored      []byte // the last restore's body
	restoredLen   int64  // and its Content-Length
	restoreBodies int
}

var fakeStatus = api.Status{
	Node: "n1", KernelID: "k-test", Leader: "n1", LeaderAddr: "127.0.0.11:8300", RaftState: "Leader",
	Term: 3, AppliedIndex: 42, CommitIndex: 42, Head: api.Head{Seq: 40, Hash: strings.Repeat("ab", 32)},
	StateDigest: strings.Repeat("cd", 32), Epoch: 1, LedgerTime: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
	Peers:     []api.Peer{{ID: "n1", Address: "127.0.0.11:8300", Suffrage: "Voter", Leader: true}, {ID: "n2", Address: "127.0.0.12:8300", Suffrage: "Voter"}},
	CanonHash: strings.Repeat("ef", 32), Initialized: true, Protocol: 1, Version: "test",
}

func newFakeKernel(t *testing.T) *fakeKernel {
	fk := &fakeKernel{t: t, verifyOK: true}
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	authed := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+fakeToken {
				reply(w, http.StatusUnauthorized, api.ErrorBody{Error: api.Error{Code: api.CodeUnauthorized, Message: "missing or unknown token"}})
				return
			}
			fk.mu.Lock()
			fk.requestIDs = append(fk.requestIDs, r.Header.Get(api.HeaderRequestID))
			fk.mu.Unlock()
			h(w, r)
		})
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	// kv answers by key: "denied" is refused (403 with the answer, as the
	// kernel sends it), "escalate" needs approval, "missing" is absent.
	kv := func(w http.ResponseWriter, key string, resp api.KVResponse) {
		resp.Key, resp.Seq, resp.Time = key, 41, now
		switch key {
		case "denied":
			resp.Decision, resp.Reason, resp.Succeeded = "deny", "forbidden", false
			reply(w, http.StatusForbidden, resp)
			return
		case "escalate":
			resp.Decision, resp.Reason, resp.Succeeded = "escalate", "approval_required", false
		default:
			resp.Decision = "permit"
			if resp.Reason == "" {
				resp.Reason = "ok"
			}
		}
		reply(w, http.StatusOK, resp)
	}
	authed("PUT /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		var req api.KVPutRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		fk.mu.Lock()
		fk.putValues = append(fk.putValues, req.Value)
		fk.mu.Unlock()
		kv(w, r.PathValue("key"), api.KVResponse{Value: req.Value, Found: true, Version: 41, Succeeded: true})
	})
	authed("POST /v1/kv-get/{key...}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("key") == "missing" {
			kv(w, "missing", api.KVResponse{Outcome: api.Outcome{Reason: "not_found"}})
			return
		}
		kv(w, r.PathValue("key"), api.KVResponse{Value: "hello", Found: true, Version: 17})
	})
	authed("DELETE /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		kv(w, r.PathValue("key"), api.KVResponse{Found: r.PathValue("key") != "missing"})
	})
	authed("POST /v1/cas/{key...}", func(w http.ResponseWriter, r *http.Request) {
		var req api.KVCASRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		fk.mu.Lock()
		fk.casSeen = append(fk.casSeen, req)
		fk.mu.Unlock()
		if !req.ExpectAbsent && req.Expect == "current" {
			kv(w, r.PathValue("key"), api.KVResponse{Value: req.Value, Found: true, Version: 41, Succeeded: true})
			return
		}
		kv(w, r.PathValue("key"), api.KVResponse{Outcome: api.Outcome{Reason: "cas_mismatch"}, Value: "current", Found: true, Version: 9})
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, fakeStatus) })
	mux.HandleFunc("POST /v1/operator/init", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, api.InitResponse{RootToken: "root-token", KernelID: "k-test", Head: api.Head{Seq: 1, Hash: strings.Repeat("01", 32)}})
	})
	authed("GET /v1/ledger/tail", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("n") == "1" {
			reply(w, http.StatusOK, []api.Event{})
			return
		}
		reply(w, http.StatusOK, []api.Event{{Seq: 40, Time: now, Type: "kv.put", Actor: "root", Decision: "permit", Reason: "ok", Subject: "a"}})
	})
	authed("GET /v1/ledger/verify", func(w http.ResponseWriter, r *http.Request) {
		if fk.verifyOK {
			reply(w, http.StatusOK, api.VerifyResponse{OK: true, Head: api.Head{Seq: 40, Hash: "aa"}, Events: 40})
			return
		}
		reply(w, http.StatusOK, api.VerifyResponse{OK: false, Head: api.Head{Seq: 6, Hash: "aa"}, Events: 6, BadSeq: 7, Message: "record 7 rewritten"})
	})
	authed("GET /v1/ledger/export", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("from") != "5" {
			reply(w, http.StatusBadRequest, api.ErrorBody{Error: api.Error{Code: api.CodeBadRequest, Message: "want from=5"}})
			return
		}
		if !fk.exportCut {
			_, _ = w.Write(fk.exportBody)
			return
		}
		w.Header().Set("Content-Length", "1000000")
		_, _ = w.Write(fk.exportBody[:len(fk.exportBody)/2])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	authed("POST /v1/snapshot/save", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(fk.snapshot) })
	authed("POST /v1/snapshot/restore", func(w http.ResponseWriter, r *http.Request) {
		if fk.restoreMax > 0 && r.ContentLength > fk.restoreMax {
			reply(w, http.StatusRequestEntityTooLarge, api.ErrorBody{Error: api.Error{Code: api.CodeTooLarge, Message: "a snapshot of more bytes exceeds this node's restore limit"}})
			return
		}
		body, _ := io.ReadAll(r.Body)
		fk.mu.Lock()
		fk.restored, fk.restoredLen = body, r.ContentLength
		fk.restoreBodies++
		fk.mu.Unlock()
		reply(w, http.StatusOK, api.SnapshotRestoreResponse{Outcome: api.Outcome{Seq: 44, Time: now, Decision: "permit", Reason: "ok"}, Epoch: 1,
			SnapshotHead: api.Head{Seq: 20, Hash: strings.Repeat("ab", 32)}, Bytes: int64(len(body)), Chunks: 1})
	})
	authed("GET /v1/operator/raft/peers", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, fakeStatus.Peers) })
	fk.srv = httptest.NewServer(mux)
	t.Cleanup(fk.srv.Close)
	return fk
}

// args prefixes the connection flags.
func (fk *fakeKernel) args(more ...string) []string {
	return append([]string{"--addr", fk.srv.URL, "--token", fakeToken, "--timeout", "5s"}, more...)
}

func TestKVExitCodes(t *testing.T) {
	fk := newFakeKernel(t)
	cases := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string // substring of stdout
		stderr string // substring of stderr
	}{
		{"put", "", []string{"kv", "put", "a", "1"}, api.ExitOK, "ok: a written", ""},
		{"put denied", "", []string{"kv", "put", "denied", "1"}, api.ExitDenied, "", "denied: forbidden"},
		{"put escalated", "", []string{"kv", "put", "escalate", "1"}, api.ExitEscalated, "", "escalated"},
		{"get", "", []string{"kv", "get", "a"}, api.ExitOK, "hello\n", ""},
		{"get missing", "", []string{"kv", "get", "missing"}, api.ExitError, "", "key not found"},
		{"get denied", "", []string{"kv", "get", "denied"}, api.ExitDenied, "", "denied"},
		{"delete", "", []string{"kv", "delete", "a"}, api.ExitOK, "deleted", ""},
		{"delete missing", "", []string{"kv", "delete", "missing"}, api.ExitOK, "did not exist", ""},
		{"delete denied", "", []string{"kv", "delete", "denied"}, api.ExitDenied, "", "denied"},
		{"cas swapped", "", []string{"kv", "cas", "a", "new", "--expect", "current"}, api.ExitOK, "swapped", ""},
		{"cas mismatch", "", []string{"kv", "cas", "a", "new", "--expect", "stale"}, api.ExitError, "", `currently "current" (version 9`},
		{"cas absent mismatch", "", []string{"kv", "cas", "a", "new", "--expect-absent"}, api.ExitError, "", "compare failed"},
		{"cas denied", "", []string{"kv", "cas", "denied", "new", "--expect", "current"}, api.ExitDenied, "", "denied"},
		{"cas needs expect", "", []string{"kv", "cas", "a", "new"}, api.ExitError, "", "exactly one of"},
		{"cas both expects", "", []string{"kv", "cas", "a", "new", "--expect", "x", "--expect-absent"}, api.ExitError, "", "exactly one of"},
		{"cas version without expect", "", []string{"kv", "cas", "a", "new", "--expect-absent", "--expect-version", "3"}, api.ExitError, "", "--expect-version"},
		{"put from stdin", "line one\nline two\n", []string{"kv", "put", "a", "-"}, api.ExitOK, "written", ""},
		{"put wrong args", "", []string{"kv", "put", "a"}, api.ExitError, "", "takes 2 argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.stdin, fk.args(tc.args...)...).wantCode(t, tc.code)
			if !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("stdout %q (want %q), stderr %q (want %q)", r.stdout, tc.stdout, r.stderr, tc.stderr)
			}
			if tc.code != api.ExitOK && !strings.HasPrefix(r.stderr, "error: ") {
				t.Fatalf("stderr %q does not start with \"error: \"", r.stderr)
			}
		})
	}
	fk.mu.Lock()
	defer fk.mu.Unlock()
	if got := fk.putValues[len(fk.putValues)-1]; got != "line one\nline two\n" {
		t.Fatalf("value read from stdin: %q", got)
	}
}

func TestKVJSON(t *testing.T) {
	fk := newFakeKernel(t)
	r := run(t, "", fk.args("--json", "kv", "get", "a")...).wantCode(t, api.ExitOK)
	m := r.jsonObject(t)
	if m["value"] != "hello" || m["version"] != float64(17) || m["seq"] != float64(41) {
		t.Fatalf("kv get JSON: %v", m)
	}
	run(t, "", fk.args("--json", "kv", "get", "missing")...).wantCode(t, api.ExitError).wantErrorJSON(t, api.CodeNotFound)

	// A DENY prints the answer itself (one JSON document) and exits 2.
	r = run(t, "", fk.args("--json", "kv", "put", "denied", "v")...).wantCode(t, api.ExitDenied)
	var resp api.KVResponse
	r.decode(t, &resp)
	if resp.Decision != "deny" || resp.Reason != "forbidden" || resp.Key != "denied" {
		t.Fatalf("denied put JSON: %+v", resp)
	}
	r.jsonObject(t)

	r = run(t, "", fk.args("--json", "kv", "cas", "a", "new", "--expect", "stale", "--expect-version", "9")...).wantCode(t, api.ExitError)
	r.decode(t, &resp)
	if resp.Succeeded || resp.Value != "current" || resp.Version != 9 {
		t.Fatalf("cas mismatch JSON: %+v", resp)
	}
	r.jsonObject(t)
	r = run(t, "", fk.args("--json", "kv", "cas", "a", "new", "--expect", "current")...).wantCode(t, api.ExitOK)
	r.decode(t, &resp)
	if !resp.Succeeded {
		t.Fatalf("cas JSON: %+v", resp)
	}
	fk.mu.Lock()
	last := fk.casSeen[len(fk.casSeen)-2]
	fk.mu.Unlock()
	if last != (api.KVCASRequest{Expect: "stale", ExpectVersion: 9, Value: "new"}) {
		t.Fatalf("cas request sent: %+v", last)
	}

	// Unauthorized: exit 1 with the API's code.
	run(t, "", "--addr", fk.srv.URL, "--json", "kv", "get", "a").wantCode(t, api.ExitError).wantErrorJSON(t, api.CodeUnauthorized)
}

// Flag values must not carry over between runs in one process: a run
// without --request-id sends a fresh id, not the previous run's.
func TestRequestIDFlagIsPerRun(t *testing.T) {
	fk := newFakeKernel(t)
	run(t, "", fk.args("kv", "put", "--request-id", "fixed-1", "a", "1")...).wantCode(t, api.ExitOK)
	run(t, "", fk.args("kv", "put", "a", "1")...).wantCode(t, api.ExitOK)
	run(t, "", fk.args("kv", "delete", "--request-id", "fixed-2", "a")...).wantCode(t, api.ExitOK)
	fk.mu.Lock()
	defer fk.mu.Unlock()
	ids := fk.requestIDs
	if len(ids) != 3 || ids[0] != "fixed-1" || ids[1] == "" || ids[1] == "fixed-1" || ids[2] != "fixed-2" {
		t.Fatalf("request ids sent: %q", ids)
	}
}

func TestStatus(t *testing.T) {
	fk := newFakeKernel(t)
	r := run(t, "", "--addr", fk.srv.URL, "--json", "status").wantCode(t, api.ExitOK)
	var got api.Status
	r.decode(t, &got)
	if !reflect.DeepEqual(got, fakeStatus) {
		t.Fatalf("status JSON:\n%+v\nwant\n%+v", got, fakeStatus)
	}
	for _, k := range []string{"node", "leader", "raft_state", "term", "applied_index", "head", "state_digest", "peers", "canon_hash"} {
		if _, ok := r.jsonObject(t)[k]; !ok {
			t.Fatalf("status JSON lacks %q", k)
		}
	}
	r = run(t, "", "--addr", fk.srv.URL, "status").wantCode(t, api.ExitOK)
	for _, want := range []string{"Raft state", "Leader", "40:" + fakeStatus.Head.Hash, "2026-11-26T09:00:00Z"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("status output lacks %q:\n%s", want, r.stdout)
		}
	}
	// A refused connection is an error, exit 1 (with retries cut short).
	run(t, "", "--addr", "http://127.0.0.1:1", "--timeout", "200ms", "status").wantCode(t, api.ExitError)
}

func TestGlobalFlagsFromEnvironment(t *testing.T) {
	fk := newFakeKernel(t)
	t.Setenv(EnvAddr, fk.srv.URL)
	t.Setenv(EnvToken, fakeToken)
	run(t, "", "kv", "get", "a").wantCode(t, api.ExitOK)
	// A flag wins over its variable.
	run(t, "", "--token", "wrong", "kv", "get", "a").wantCode(t, api.ExitError)
	t.Setenv(EnvAddr, "http://127.0.0.1:1")
	run(t, "", "--addr", fk.srv.URL, "kv", "get", "a").wantCode(t, api.ExitOK)
	// A CA file that does not exist is reported, not ignored.
	t.Setenv(EnvCACert, filepath.Join(t.TempDir(), "none.pem"))
	run(t, "", "--addr", fk.srv.URL, "kv", "get", "a").wantCode(t, api.ExitError)
}

func TestOperatorAndRaft(t *testing.T) {
	fk := newFakeKernel(t)
	r := run(t, "", "--addr", fk.srv.URL, "--json", "operator", "init").wantCode(t, api.ExitOK)
	m := r.jsonObject(t)
	if m["root_token"] != "root-token" || m["kernel_id"] != "k-test" || m["head"] == nil {
		t.Fatalf("init JSON: %v", m)
	}
	r = run(t, "", fk.args("--json", "operator", "raft", "list-peers")...).wantCode(t, api.ExitOK)
	var peers []api.Peer
	r.decode(t, &peers)
	if !reflect.DeepEqual(peers, fakeStatus.Peers) {
		t.Fatalf("peers %+v", peers)
	}
	run(t, "", fk.args("operator", "raft", "remove-peer")...).wantCode(t, api.ExitError)
	run(t, "", fk.args("operator", "raft", "transfer-leadership", "a", "b")...).wantCode(t, api.ExitError)
	run(t, "", fk.args("operator", "raft", "bogus")...).wantCode(t, api.ExitError)
}

func TestLedgerCommands(t *testing.T) {
	fk := newFakeKernel(t)
	r := run(t, "", fk.args("--json", "ledger", "tail", "-n", "5")...).wantCode(t, api.ExitOK)
	var evs []api.Event
	r.decode(t, &evs)
	if len(evs) != 1 || evs[0].Seq != 40 || !strings.Contains(r.stdout, `"time": "2026-11-26T10:00:00Z"`) {
		t.Fatalf("tail JSON: %s", r.stdout)
	}
	r = run(t, "", fk.args("--json", "ledger", "tail", "-n", "1")...).wantCode(t, api.ExitOK)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("empty tail JSON: %q", r.stdout)
	}
	r = run(t, "", fk.args("ledger", "tail")...).wantCode(t, api.ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "40 ") {
		t.Fatalf("tail output:\n%s", r.stdout)
	}
	run(t, "", fk.args("ledger", "tail", "-n", "0")...).wantCode(t, api.ExitError)

	run(t, "", fk.args("ledger", "verify")...).wantCode(t, api.ExitOK)
	fk.verifyOK = false
	r = run(t, "", fk.args("--json", "ledger", "verify")...).wantCode(t, api.ExitVerify)
	var vr api.VerifyResponse
	r.decode(t, &vr)
	if vr.OK || vr.BadSeq != 7 || r.stderr != "" {
		t.Fatalf("verify --json: %+v, stderr %q (want nothing)", vr, r.stderr)
	}
	if r := run(t, "", fk.args("ledger", "verify")...).wantCode(t, api.ExitVerify); !strings.Contains(r.stderr, "seq 7") {
		t.Fatalf("verify: stderr %q", r.stderr)
	}
}

func TestLedgerExportIsAtomic(t *testing.T) {
	fk := newFakeKernel(t)
	fk.exportBody = []byte(strings.Repeat("export bytes ", 20_000))
	dir := t.TempDir()
	out := filepath.Join(dir, "ledger.export")
	r := run(t, "", fk.args("--json", "ledger", "export", "--from", "5", out)...).wantCode(t, api.ExitOK)
	if got, _ := os.ReadFile(out); string(got) != string(fk.exportBody) {
		t.Fatalf("export file holds %d bytes, want %d", len(got), len(fk.exportBody))
	}
	if m := r.jsonObject(t); m["bytes"] != float64(len(fk.exportBody)) || m["file"] != out {
		t.Fatalf("export JSON: %v", m)
	}
	r = run(t, "", fk.args("ledger", "export", "--from", "5", "-")...).wantCode(t, api.ExitOK)
	if r.stdout != string(fk.exportBody) {
		t.Fatal("export to stdout differs")
	}

	// A stream cut halfway leaves neither a partial file nor a temporary.
	fk.exportCut = true
	failed := filepath.Join(dir, "failed.export")
	run(t, "", fk.args("ledger", "export", "--from", "5", failed)...).wantCode(t, api.ExitError)
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "ledger.export" {
		t.Fatalf("folder after a failed export: %q", names)
	}
	// ... and an existing file is left as it was.
	run(t, "", fk.args("ledger", "export", "--from", "5", out)...).wantCode(t, api.ExitError)
	if got, _ := os.ReadFile(out); string(got) != string(fk.exportBody) {
		t.Fatal("a failed export changed the existing file")
	}
}

func TestSnapshotSaveVerifiesBeforeKeeping(t *testing.T) {
	fk := newFakeKernel(t)
	f := newLedgerFixture(t, 20)
	fk.snapshot = f.ledger.Snapshot()
	dir := t.TempDir()
	out := filepath.Join(dir, "s.snap")
	r := run(t, "", fk.args("--json", "snapshot", "save", out)...).wantCode(t, api.ExitOK)
	var info snapshotInfo
	r.decode(t, &info)
	if !info.Valid || info.Head.Seq != f.ledger.State().Seq || info.Keys != f.keys {
		t.Fatalf("save JSON: %+v", info)
	}
	if got, _ := os.ReadFile(out); string(got) != string(fk.snapshot) {
		t.Fatal("saved snapshot differs from what the node sent")
	}
	run(t, "", "snapshot", "inspect", out).wantCode(t, api.ExitOK)
	if r := run(t, "", fk.args("snapshot", "save", "-")...).wantCode(t, api.ExitOK); r.stdout != string(fk.snapshot) {
		t.Fatal("snapshot written to stdout differs from what the node sent")
	}

	bad := append([]byte(nil), fk.snapshot...)
	bad[len(bad)/2] ^= 0x08
	fk.snapshot = bad
	badOut := filepath.Join(dir, "bad.snap")
	run(t, "", fk.args("snapshot", "save", badOut)...).wantCode(t, api.ExitVerify)
	if r := run(t, "", fk.args("snapshot", "save", "-")...).wantCode(t, api.ExitVerify); r.stdout != "" {
		t.Fatal("an invalid snapshot reached stdout")
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("folder after a rejected snapshot: %q", names)
	}
}

// snapshot restore verifies the file, streams it whole with its length
// (no size cut), and says so plainly when the node refuses its size.
func TestSnapshotRestoreStreamsTheFile(t *testing.T) {
	fk := newFakeKernel(t)
	f := newLedgerFixture(t, 20)
	snap := f.ledger.Snapshot()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.snap")
	if err := os.WriteFile(path, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", fk.args("--json", "snapshot", "restore", path)...).wantCode(t, api.ExitOK)
	var ans api.SnapshotRestoreResponse
	r.decode(t, &ans)
	if !bytes.Equal(fk.restored, snap) || fk.restoredLen != int64(len(snap)) || ans.Bytes != int64(len(snap)) {
		t.Fatalf("the node got %d bytes (Content-Length %d) of a %d-byte snapshot", len(fk.restored), fk.restoredLen, len(snap))
	}

	fk.restoreMax = int64(len(snap)) - 1
	r = run(t, "", fk.args("snapshot", "restore", path)...).wantCode(t, api.ExitError)
	if !strings.Contains(r.stderr, "refuses") || !strings.Contains(r.stderr, api.CodeTooLarge) {
		t.Fatalf("a snapshot above the node's limit: %q", r.stderr)
	}

	bad := append([]byte(nil), snap...)
	bad[len(bad)/2] ^= 0x08
	badPath := filepath.Join(dir, "bad.snap")
	if err := os.WriteFile(badPath, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	sent := fk.restoreBodies
	run(t, "", fk.args("snapshot", "restore", badPath)...).wantCode(t, api.ExitVerify)
	if fk.restoreBodies != sent {
		t.Fatal("a snapshot that does not verify was sent")
	}
}

func TestUnknownCommandAndHelp(t *testing.T) {
	r := run(t, "", "--json", "no-such-command").wantCode(t, api.ExitError)
	r.wantErrorJSON(t, api.CodeBadRequest)
	r = run(t, "").wantCode(t, api.ExitOK)
	for _, name := range []string{"audit", "kv", "ledger", "operator", "snapshot", "status", "tls"} {
		if !strings.Contains(r.stdout, "\n  "+name+" ") {
			t.Fatalf("help does not list %q:\n%s", name, r.stdout)
		}
	}
	run(t, "", "kv").wantCode(t, api.ExitOK)
	run(t, "", "kv", "nope").wantCode(t, api.ExitError)
	run(t, "", "--timeout", "soon", "status").wantCode(t, api.ExitError)
}

// The registration table builds every command afresh for each run.
func TestRegistryBuildsFreshTrees(t *testing.T) {
	a, b := newRoot(&globals{}), newRoot(&globals{})
	seen := map[string]bool{}
	for _, c := range a.Commands() {
		if seen[c.Name()] {
			t.Fatalf("command %q registered twice", c.Name())
		}
		seen[c.Name()] = true
	}
	for i, c := range a.Commands() {
		if c == b.Commands()[i] {
			t.Fatalf("command %q shared between two trees", c.Name())
		}
	}
}
