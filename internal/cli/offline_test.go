package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSCreateInCurrentFolder(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	run(t, "", "tls", "ca", "create").wantCode(t, api.ExitOK)
	for _, f := range []string{"ca.pem", "ca-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	caBefore, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	r := run(t, "", "tls", "ca", "create").wantCode(t, api.ExitError)
	if !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Fatalf("second ca create: stderr %q", r.stderr)
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(caBefore, caAfter) {
		t.Fatal("ca.pem changed by a refused create")
	}

	run(t, "", "tls", "cert", "create", "--node", "n1", "--ip", "127.0.0.11, 127.0.0.12", "--dns", "n1.test", "--kernel", "acme").wantCode(t, api.ExitOK)
	cert := readCert(t, filepath.Join(dir, "n1.pem"))
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "dominus://acme/n1" {
		t.Fatalf("the certificate's identity: %v, want dominus://acme/n1", cert.URIs)
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(dir, "ca.pem")))
	for _, name := range []string{"127.0.0.11", "127.0.0.12", "n1.test", "n1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Fatalf("certificate does not verify for %s: %v", name, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "n1-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("n1-key.pem: %v, mode %v", err, st.Mode())
	}
	run(t, "", "tls", "cert", "create", "--node", "n1", "--ip", "127.0.0.11", "--kernel", "acme").wantCode(t, api.ExitError)
}

func TestTLSCreateFlags(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	if err := os.Mkdir(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "--json", "tls", "ca", "create", "--dir", caDir, "--days", "30").wantCode(t, api.ExitOK)
	var paths tlsPaths
	r.decode(t, &paths)
	if paths.Cert != filepath.Join(caDir, "ca.pem") || paths.Key != filepath.Join(caDir, "ca-key.pem") {
		t.Fatalf("paths %+v", paths)
	}
	ca := readCert(t, paths.Cert)
	if d := time.Until(ca.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Fatalf("CA expires in %v, want about 30 days", d)
	}
	run(t, "", "tls", "cert", "create", "--node", "n2", "--ip", "127.0.0.13", "--dir", dir, "--kernel", "acme",
		"--ca", paths.Cert, "--ca-key", paths.Key).wantCode(t, api.ExitOK)
	cert := readCert(t, filepath.Join(dir, "n2.pem"))
	if !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.13")) {
		t.Fatalf("IP SANs %v", cert.IPAddresses)
	}

	for _, args := range [][]string{
		{"tls", "cert", "create", "--ip", "127.0.0.1", "--dir", dir, "--kernel", "k"},                      // no --node
		{"tls", "cert", "create", "--node", "n3", "--ip", "not-an-ip", "--dir", dir, "--kernel", "k"},      // bad IP
		{"tls", "cert", "create", "--node", "n3", "--dir", dir, "--kernel", "k"},                           // no address
		{"tls", "cert", "create", "--node", "n3", "--ip", "127.0.0.1", "--dir", dir},                       // no --kernel
		{"tls", "cert", "create", "--node", "n3", "--ip", "127.0.0.1", "--dir", dir, "--kernel", "a/b"},    // bad kernel
		{"tls", "ca", "create", "--dir", dir, "--days", "0"},                                               // bad validity
		{"tls", "cert", "create", "--node", "n3", "--ip", "127.0.0.1", "--bogus-flag"},                     // unknown flag
		{"tls", "cert", "create", "--node", "n3", "--ip", "127.0.0.1", "--dir", dir, "--kernel", "k", "x"}, // stray argument
	} {
		r := run(t, "", append([]string{"--json"}, args...)...).wantCode(t, api.ExitError)
		r.wantErrorJSON(t, api.CodeBadRequest)
	}
	// No CA in the current folder.
	t.Chdir(t.TempDir())
	run(t, "", "tls", "cert", "create", "--node", "n4", "--ip", "127.0.0.1", "--kernel", "k").wantCode(t, api.ExitError)
}

func TestSnapshotInspect(t *testing.T) {
	f := newLedgerFixture(t, 40)
	dir := t.TempDir()
	full := f.ledger.Snapshot()
	good := writeTestFile(t, dir, "good.snap", full)

	r := run(t, "", "--json", "snapshot", "inspect", good).wantCode(t, api.ExitOK)
	m := r.jsonObject(t)
	for _, k := range []string{"head", "state_digest", "epoch", "kernel_id", "canon_hash", "keys", "valid"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("inspect JSON lacks %q: %v", k, m)
		}
	}
	var info snapshotInfo
	r.decode(t, &info)
	head := f.ledger.Head()
	digest := f.ledger.Digest()
	if !info.Valid || info.Head.Seq != head.Seq || info.Head.Hash != hex.EncodeToString(head.Hash) ||
		info.StateDigest != hex.EncodeToString(digest[:]) || info.Keys != f.keys || info.KernelID != "cli-test" ||
		info.CanonHash != hex.EncodeToString(testCanon[:]) || info.CanonMatch {
		t.Fatalf("inspect: %+v", info)
	}
	human := run(t, "", "snapshot", "inspect", good).wantCode(t, api.ExitOK)
	if !strings.Contains(human.stdout, "yes") || !strings.Contains(human.stdout, hex.EncodeToString(head.Hash)) {
		t.Fatalf("human inspect output:\n%s", human.stdout)
	}

	for _, off := range []int{len(full) / 4, len(full) / 2, len(full) - 40} {
		bad := append([]byte(nil), full...)
		bad[off] ^= 0x20
		p := writeTestFile(t, dir, "bad.snap", bad)
		r := run(t, "", "--json", "snapshot", "inspect", p).wantCode(t, api.ExitVerify)
		var info snapshotInfo
		r.decode(t, &info) // the result, not an error object
		if info.Valid || info.Message == "" {
			t.Fatalf("tampered snapshot at offset %d: %+v", off, info)
		}
		if r.stderr != "" {
			t.Fatalf("--json: stderr %q, want nothing (the result on stdout says it)", r.stderr)
		}
		if r := run(t, "", "snapshot", "inspect", p).wantCode(t, api.ExitVerify); !strings.Contains(r.stderr, "does not verify") {
			t.Fatalf("stderr %q", r.stderr)
		}
	}
	run(t, "", "snapshot", "inspect", filepath.Join(dir, "missing")).wantCode(t, api.ExitError)
}

func TestAuditReplay(t *testing.T) {
	f := newLedgerFixture(t, 60)
	dataDir := f.dataDir(t)
	dir := t.TempDir()
	snap := writeTestFile(t, dir, "s.snap", f.snapshot)
	export := f.export(t, 1)
	ledger := writeTestFile(t, dir, "e.export", export)
	head := f.ledger.Head()
	digest := f.ledger.Digest()
	wantHead := api.Head{Seq: head.Seq, Hash: hex.EncodeToString(head.Hash)}

	for _, args := range [][]string{
		{"--data-dir", dataDir},
		{"--snapshot", snap, "--ledger", ledger},
		{"--ledger", ledger},
	} {
		r := run(t, "", append([]string{"--json", "audit", "replay"}, args...)...).wantCode(t, api.ExitOK)
		m := r.jsonObject(t)
		if _, has := m["bad_seq"]; has {
			t.Fatalf("ok replay carries bad_seq: %v", m)
		}
		if _, has := m["message"]; has {
			t.Fatalf("ok replay carries message: %v", m)
		}
		var res replayResult
		r.decode(t, &res)
		if !res.OK || res.Head != wantHead || res.StateDigest != hex.EncodeToString(digest[:]) {
			t.Fatalf("replay %v: %+v, want head %+v", args, res, wantHead)
		}
		human := run(t, "", append([]string{"audit", "replay"}, args...)...).wantCode(t, api.ExitOK)
		if !strings.Contains(human.stdout, res.StateDigest) || human.stderr != "" {
			t.Fatalf("human replay output:\n%s\nstderr %q", human.stdout, human.stderr)
		}
	}
	if r := run(t, "", "--json", "audit", "replay", "--snapshot", snap, "--ledger", ledger); r.jsonObject(t)["events"].(float64) != float64(head.Seq-f.snapSeq) {
		t.Fatalf("snapshot replay events: %v", r.stdout)
	}

	// Flip a byte in the middle of the export: exit 4 naming the seq.
	bad := append([]byte(nil), export...)
	bad[len(bad)/2] ^= 0x01
	badPath := writeTestFile(t, dir, "bad.export", bad)
	r := run(t, "", "--json", "audit", "replay", "--snapshot", snap, "--ledger", badPath).wantCode(t, api.ExitVerify)
	m := r.jsonObject(t)
	if m["ok"] != false || m["bad_seq"] == nil || m["message"] == "" || m["head"] == nil {
		t.Fatalf("failed replay JSON: %v", m)
	}
	badSeq := uint64(m["bad_seq"].(float64))
	if badSeq == 0 || badSeq > head.Seq {
		t.Fatalf("bad_seq %d outside the ledger 1..%d", badSeq, head.Seq)
	}
	if r.stderr != "" {
		t.Fatalf("--json: stderr %q, want nothing (the result on stdout says it)", r.stderr)
	}
	if r := run(t, "", "audit", "replay", "--ledger", badPath).wantCode(t, api.ExitVerify); !strings.Contains(r.stderr, "error: verification failed at seq ") {
		t.Fatalf("stderr %q", r.stderr)
	}

	// A snapshot that does not verify.
	badSnap := append([]byte(nil), f.snapshot...)
	badSnap[len(badSnap)/2] ^= 0x01
	run(t, "", "audit", "replay", "--snapshot", writeTestFile(t, dir, "bad.snap", badSnap), "--ledger", ledger).wantCode(t, api.ExitVerify)

	// Usage and I/O errors exit 1.
	for _, args := range [][]string{
		{},
		{"--snapshot", snap},
		{"--data-dir", dataDir, "--ledger", ledger},
		{"--data-dir", filepath.Join(dir, "missing")},
		{"--ledger", filepath.Join(dir, "missing")},
	} {
		run(t, "", append([]string{"audit", "replay"}, args...)...).wantCode(t, api.ExitError)
	}
}
