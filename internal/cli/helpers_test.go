package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

// result is one in-process run of dominus.
type result struct {
	code           int
	stdout, stderr string
}

// TestMain clears the DOMINUS_* environment, so only tests that set it
// (with t.Setenv) see it.
func TestMain(m *testing.M) {
	for _, env := range []string{EnvAddr, EnvToken, EnvCACert} {
		os.Unsetenv(env)
	}
	os.Exit(m.Run())
}

// run runs dominus in-process.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	r := result{code: code, stdout: out.String(), stderr: errOut.String()}
	t.Logf("dominus %s -> exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

func (r result) wantCode(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	return r
}

// jsonObject decodes stdout as one JSON object.
func (r result) jsonObject(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", r.stdout)
	}
	return m
}

func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout does not decode into %T: %v\n%s", v, err, r.stdout)
	}
}

// wantErrorJSON checks the --json error object, the one document on
// stdout, with nothing on stderr.
func (r result) wantErrorJSON(t *testing.T, code string) {
	t.Helper()
	m := r.jsonObject(t)
	e, ok := m["error"].(map[string]any)
	if !ok || e["code"] != code || e["message"] == "" {
		t.Fatalf("want a JSON error with code %q, got %v", code, m)
	}
	if r.stderr != "" {
		t.Fatalf("--json error: stderr %q, want nothing (the error is on stdout)", r.stderr)
	}
}

var (
	testRootToken = sha256.Sum256([]byte("cli test root token"))
	testCanon     = sha256.Sum256([]byte("cli test canon"))
)

// ledgerFixture is a small real history: a ledger, its archive records,
// and a snapshot taken halfway.
type ledgerFixture struct {
	ledger   *fsm.Ledger
	recs     []archive.Record
	snapshot []byte
	snapSeq  uint64
	keys     int
}

func newLedgerFixture(t *testing.T, entries int) *ledgerFixture {
	t.Helper()
	f := &ledgerFixture{ledger: fsm.New()}
	ts := int64(1_760_000_000_000_000_000)
	apply := func(t fsm.CommandType, rid string, auth []byte, payload any) {
		ts += 1_000_000
		e := fsm.Envelope{Type: t, RequestID: rid, Auth: auth, Time: ts, Payload: fsm.Encode(payload)}
		data := fsm.Encode(&e)
		index := uint64(len(f.recs) + 1)
		a := f.ledger.Apply(index, data)
		kind := archive.KindNoop
		if a.Event != nil {
			kind = archive.KindEvent
		}
		f.recs = append(f.recs, archive.Record{Index: index, Seq: f.ledger.State().Seq, Kind: kind, Data: fsm.EncodeArchived(data, a)})
	}
	apply(fsm.CmdGenesis, "", nil, &fsm.Genesis{KernelID: "cli-test", CanonHash: testCanon[:], Protocol: fsm.ProtocolVersion, RootTokenHash: testRootToken[:]})
	for i := 0; i < entries; i++ {
		apply(fsm.CmdKVPut, fmt.Sprintf("r%d", i), testRootToken[:], &fsm.KVPut{Key: fmt.Sprintf("k%d", i%7), Value: []byte(fmt.Sprint(i))})
		if i == entries/2 {
			f.snapshot, f.snapSeq = f.ledger.Snapshot(), f.ledger.State().Seq
		}
	}
	f.keys = len(f.ledger.State().KV)
	return f
}

// dataDir writes the archive into dir/archive and returns dir.
func (f *ledgerFixture) dataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	a, err := archive.Open(filepath.Join(dir, "archive"), archive.Options{SegmentBytes: 4 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Append(f.recs); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (f *ledgerFixture) export(t *testing.T, from uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewExportWriter(&buf, archive.ExportHeader{FromSeq: from})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.recs {
		if r.Seq >= from {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTestFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
