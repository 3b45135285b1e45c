package tlsutil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMutualHandshakeSameCA(t *testing.T) {
	ca := newTestCA(t)
	srv := mustReloader(t, ca.issue(t, "node-a", loopback, nil))
	cli := mustReloader(t, ca.issue(t, "node-b", loopback, nil))

	res := handshake(t, srv.ServerConfig(true), cli.ClientConfig("127.0.0.1"))
	if res.clientErr != nil || res.serverErr != nil {
		t.Fatalf("handshake failed: client %v, server %v", res.clientErr, res.serverErr)
	}
	if res.client.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated version %#x, want TLS 1.3", res.client.Version)
	}
	if got, err := srv.PeerNode(res.server); err != nil || got != "node-b" {
		t.Fatalf("server PeerNode = %q, %v; want node-b", got, err)
	}
	if got, err := cli.PeerNode(res.client); err != nil || got != "node-a" {
		t.Fatalf("client PeerNode = %q, %v; want node-a", got, err)
	}
	if _, err := cli.PeerNode(tls.ConnectionState{}); err == nil {
		t.Fatal("PeerNode of an incomplete handshake = nil error")
	}
}

func TestServerRefusesClientFromAnotherCA(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	srv := mustReloader(t, ca.issue(t, "node-a", loopback, nil))
	// The intruder trusts the server's CA but holds a certificate of its own CA.
	intruderFiles := other.issue(t, "intruder", loopback, nil)
	intruderFiles.CA = copyToTemp(t, ca.certPath)
	if _, err := NewReloader(intruderFiles, nil); err == nil {
		t.Fatal("NewReloader accepted a certificate that does not chain to its CA file")
	}
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	writeBundle(t, bundle, ca.certPath, other.certPath)
	intruderFiles.CA = bundle
	intruder := mustReloader(t, intruderFiles)

	res := handshake(t, srv.ServerConfig(true), intruder.ClientConfig("127.0.0.1"))
	t.Logf("server error: %v; client error: %v", res.serverErr, res.clientErr)
	if res.serverErr == nil {
		t.Fatal("server accepted a client certificate from another CA")
	}
	if !strings.Contains(res.serverErr.Error(), "intruder") || !errors.As(res.serverErr, new(x509.UnknownAuthorityError)) {
		t.Errorf("server error %v does not name the rejected certificate or unknown authority", res.serverErr)
	}
	if res.clientErr == nil {
		t.Fatal("client saw no error although the server refused it")
	}
}

func TestClientRefusesServerFromAnotherCA(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	impostorFiles := other.issue(t, "node-a", loopback, nil)
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	writeBundle(t, bundle, ca.certPath, other.certPath)
	impostorFiles.CA = bundle
	impostor := mustReloader(t, impostorFiles)
	cli := mustReloader(t, ca.issue(t, "node-b", loopback, nil))

	for _, name := range []string{"127.0.0.1", "node-a", ""} {
		res := handshake(t, impostor.ServerConfig(true), cli.ClientConfig(name))
		t.Logf("serverName %q: client error: %v; server error: %v", name, res.clientErr, res.serverErr)
		if res.clientErr == nil {
			t.Fatalf("serverName %q: client accepted a server certificate from another CA", name)
		}
		if !errors.As(res.clientErr, new(x509.UnknownAuthorityError)) {
			t.Errorf("serverName %q: client error %v is not an unknown-authority error", name, res.clientErr)
		}
		if res.serverErr == nil {
			t.Errorf("serverName %q: server saw no error although the client refused it", name)
		}
	}
}

func TestServerRefusesClientWithoutCertificate(t *testing.T) {
	ca := newTestCA(t)
	srv := mustReloader(t, ca.issue(t, "node-a", loopback, nil))
	cacfg, err := ClientCAConfig(ca.certPath)
	if err != nil {
		t.Fatal(err)
	}
	cacfg.ServerName = "127.0.0.1"

	res := handshake(t, srv.ServerConfig(true), cacfg)
	t.Logf("server error: %v; client error: %v", res.serverErr, res.clientErr)
	if res.serverErr == nil || res.clientErr == nil {
		t.Fatalf("client without certificate was not refused: server %v, client %v", res.serverErr, res.clientErr)
	}

	// Without client authentication the same client is served.
	res = handshake(t, srv.ServerConfig(false), cacfg)
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("server without client auth refused: server %v, client %v", res.serverErr, res.clientErr)
	}
}

func TestExtKeyUsageEnforced(t *testing.T) {
	ca := newTestCA(t)
	srv := mustReloader(t, ca.issue(t, "node-a", loopback, nil))
	cli := mustReloader(t, ca.issue(t, "node-b", loopback, nil))

	serverOnly := mustReloader(t, ca.issueWithUsage(t, "server-only", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}))
	res := handshake(t, srv.ServerConfig(true), serverOnly.ClientConfig("127.0.0.1"))
	t.Logf("server-only client: server error %v", res.serverErr)
	if res.serverErr == nil {
		t.Error("server accepted a client certificate without ExtKeyUsageClientAuth")
	}

	clientOnly := mustReloader(t, ca.issueWithUsage(t, "client-only", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}))
	for _, name := range []string{"127.0.0.1", ""} {
		res = handshake(t, clientOnly.ServerConfig(true), cli.ClientConfig(name))
		t.Logf("client-only server, serverName %q: client error %v", name, res.clientErr)
		if res.clientErr == nil {
			t.Errorf("serverName %q: client accepted a server certificate without ExtKeyUsageServerAuth", name)
		}
	}
}

func TestServerNameChecks(t *testing.T) {
	ca := newTestCA(t)
	srv := mustReloader(t, ca.issue(t, "node-a", loopback, []string{"a.dominus.test"}))
	cli := mustReloader(t, ca.issue(t, "node-b", loopback, nil))

	cases := []struct {
		serverName string
		ok         bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.2", false}, // IP literal not in the IP SANs
		{"::1", false},
		{"node-a", true},
		{"a.dominus.test", true},
		{"b.dominus.test", false},
		{"", true}, // chain only
	}
	for _, c := range cases {
		res := handshake(t, srv.ServerConfig(true), cli.ClientConfig(c.serverName))
		if c.ok && res.clientErr != nil {
			t.Errorf("serverName %q: refused: %v", c.serverName, res.clientErr)
		}
		if !c.ok {
			if res.clientErr == nil {
				t.Errorf("serverName %q: accepted a certificate that does not name it", c.serverName)
				continue
			}
			if !errors.As(res.clientErr, new(x509.HostnameError)) {
				t.Errorf("serverName %q: error %v is not a hostname error", c.serverName, res.clientErr)
			}
			t.Logf("serverName %q refused: %v", c.serverName, res.clientErr)
		}
	}
}

func TestReloadSwapsServerCertificate(t *testing.T) {
	ca := newTestCA(t)
	srvFiles := ca.issue(t, "node-a", loopback, nil)
	srv := mustReloader(t, srvFiles)
	cli := mustReloader(t, ca.issue(t, "node-b", loopback, nil))
	serverCfg, clientCfg := srv.ServerConfig(true), cli.ClientConfig("127.0.0.1")

	serial1 := srv.Leaf().SerialNumber
	res := handshake(t, serverCfg, clientCfg)
	if res.clientErr != nil {
		t.Fatal(res.clientErr)
	}
	if got := res.client.PeerCertificates[0].SerialNumber; got.Cmp(serial1) != 0 {
		t.Fatalf("client saw serial %x, want %x", got, serial1)
	}

	next := ca.issue(t, "node-a", loopback, nil)
	mtime := time.Now().Add(time.Minute)
	replaceFile(t, next.Key, srvFiles.Key, mtime)
	replaceFile(t, next.Cert, srvFiles.Cert, mtime)
	if err := srv.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	serial2 := srv.Leaf().SerialNumber
	if serial2.Cmp(serial1) == 0 {
		t.Fatal("Reload kept the old certificate")
	}
	res = handshake(t, serverCfg, clientCfg)
	if res.clientErr != nil {
		t.Fatal(res.clientErr)
	}
	if got := res.client.PeerCertificates[0].SerialNumber; got.Cmp(serial2) != 0 {
		t.Fatalf("after reload client saw serial %x, want %x (old %x)", got, serial2, serial1)
	}
}

func TestFailedReloadKeepsMaterial(t *testing.T) {
	ca := newTestCA(t)
	srvFiles := ca.issue(t, "node-a", loopback, nil)
	srvFiles.CA = copyToTemp(t, ca.certPath) // this test rewrites it
	srv := mustReloader(t, srvFiles)
	cli := mustReloader(t, ca.issue(t, "node-b", loopback, nil))
	serverCfg, clientCfg := srv.ServerConfig(true), cli.ClientConfig("127.0.0.1")
	serial := srv.Leaf().SerialNumber

	other := newTestCA(t)
	foreign := other.issue(t, "node-a", loopback, nil)
	mismatched := ca.issue(t, "node-a", loopback, nil)
	writeGarbage := func(t *testing.T, path, data string) {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T)
		inError string
	}{
		{"garbage certificate", func(t *testing.T) {
			writeGarbage(t, srvFiles.Cert, "not a certificate\n")
		}, srvFiles.Cert},
		{"empty key", func(t *testing.T) {
			writeGarbage(t, srvFiles.Key, "")
		}, srvFiles.Key},
		{"key of another certificate", func(t *testing.T) {
			replaceFile(t, mismatched.Key, srvFiles.Key, time.Now())
		}, srvFiles.Key},
		{"certificate of another CA", func(t *testing.T) {
			replaceFile(t, foreign.Cert, srvFiles.Cert, time.Now())
			replaceFile(t, foreign.Key, srvFiles.Key, time.Now())
		}, srvFiles.Cert},
		{"garbage CA", func(t *testing.T) {
			writeGarbage(t, srvFiles.CA, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
		}, srvFiles.CA},
		{"other CA only", func(t *testing.T) {
			replaceFile(t, other.certPath, srvFiles.CA, time.Now())
		}, srvFiles.Cert},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			backups := map[string]string{}
			for _, p := range []string{srvFiles.CA, srvFiles.Cert, srvFiles.Key} {
				backups[p] = copyToTemp(t, p)
			}
			defer func() {
				for p, b := range backups {
					replaceFile(t, b, p, time.Now())
				}
				if err := srv.Reload(); err != nil {
					t.Fatalf("restoring material: %v", err)
				}
			}()
			c.prepare(t)
			err := srv.Reload()
			if err == nil {
				t.Fatal("Reload accepted bad material")
			}
			t.Logf("Reload error: %v", err)
			if !strings.Contains(err.Error(), c.inError) {
				t.Errorf("Reload error %q does not name %s", err, c.inError)
			}
			if got := srv.Leaf().SerialNumber; got.Cmp(serial) != 0 {
				t.Fatalf("after failed reload Leaf serial %x, want %x", got, serial)
			}
			res := handshake(t, serverCfg, clientCfg)
			if res.clientErr != nil || res.serverErr != nil {
				t.Fatalf("handshake after failed reload: client %v, server %v", res.clientErr, res.serverErr)
			}
			if got := res.client.PeerCertificates[0].SerialNumber; got.Cmp(serial) != 0 {
				t.Fatalf("after failed reload client saw serial %x, want %x", got, serial)
			}
		})
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	ca := newTestCA(t)
	srvFiles := ca.issue(t, "node-a", loopback, nil)
	srv := mustReloader(t, srvFiles)
	serial1 := srv.Leaf().SerialNumber

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Watch(ctx, 5*time.Millisecond)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	next := ca.issue(t, "node-a", loopback, nil)
	// Key first: a poll between the two replacements sees a mismatched pair,
	// fails, and must retry once the certificate changes too.
	mtime := time.Now().Add(time.Minute)
	replaceFile(t, next.Key, srvFiles.Key, mtime)
	replaceFile(t, next.Cert, srvFiles.Cert, mtime)
	want := next.leafSerial(t)

	deadline := time.Now().Add(ioTimeout)
	for srv.Leaf().SerialNumber.Cmp(want) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Watch did not install serial %x within %v (current %x, old %x)", want, ioTimeout, srv.Leaf().SerialNumber, serial1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReloadIfChangedFollowsFileChanges(t *testing.T) {
	ca := newTestCA(t)
	srvFiles := ca.issue(t, "node-a", loopback, nil)
	srv := mustReloader(t, srvFiles)
	serial1 := srv.Leaf().SerialNumber
	next := ca.issue(t, "node-a", loopback, nil)
	base := time.Now().Add(time.Minute)

	srv.reloadIfChanged() // nothing changed
	if srv.Leaf().SerialNumber.Cmp(serial1) != 0 {
		t.Fatal("reload without a file change replaced the certificate")
	}
	attemptedBefore := srv.attempted
	replaceFile(t, next.Key, srvFiles.Key, base)
	srv.reloadIfChanged() // key and certificate mismatch: fails, keeps the old pair
	if srv.Leaf().SerialNumber.Cmp(serial1) != 0 {
		t.Fatal("a mismatched pair was installed")
	}
	if srv.attempted == attemptedBefore {
		t.Fatal("the key change was not noticed")
	}
	replaceFile(t, next.Cert, srvFiles.Cert, base.Add(time.Second))
	srv.reloadIfChanged()
	if got, want := srv.Leaf().SerialNumber, next.leafSerial(t); got.Cmp(want) != 0 {
		t.Fatalf("after the certificate changed too, serial %x, want %x", got, want)
	}
}

func (f Files) leafSerial(t *testing.T) *big.Int {
	t.Helper()
	certs, err := readCertificates(f.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].SerialNumber
}

func TestCAReloadTakesEffectWithoutNewConfig(t *testing.T) {
	ca, next := newTestCA(t), newTestCA(t)

	t.Run("client trusts a new CA after reload", func(t *testing.T) {
		srvFiles := next.issue(t, "node-a", loopback, nil)
		srvFiles.CA = filepath.Join(t.TempDir(), "bundle.pem")
		writeBundle(t, srvFiles.CA, ca.certPath, next.certPath)
		srv := mustReloader(t, srvFiles)

		cliFiles := ca.issue(t, "node-b", loopback, nil)
		cliFiles.CA = copyToTemp(t, ca.certPath)
		cli := mustReloader(t, cliFiles)
		clientCfg := cli.ClientConfig("127.0.0.1")
		if res := handshake(t, srv.ServerConfig(true), clientCfg); res.clientErr == nil {
			t.Fatal("client trusted a server from a CA it does not hold yet")
		}
		writeBundle(t, cliFiles.CA, ca.certPath, next.certPath)
		if err := cli.Reload(); err != nil {
			t.Fatal(err)
		}
		if res := handshake(t, srv.ServerConfig(true), clientCfg); res.clientErr != nil || res.serverErr != nil {
			t.Fatalf("after CA reload: client %v, server %v", res.clientErr, res.serverErr)
		}
	})

	t.Run("server trusts a new CA after reload", func(t *testing.T) {
		srvFiles := ca.issue(t, "node-a", loopback, nil)
		srvFiles.CA = copyToTemp(t, ca.certPath)
		srv := mustReloader(t, srvFiles)
		serverCfg := srv.ServerConfig(true)

		cliFiles := next.issue(t, "node-b", loopback, nil)
		cliFiles.CA = filepath.Join(t.TempDir(), "bundle.pem")
		writeBundle(t, cliFiles.CA, ca.certPath, next.certPath)
		cli := mustReloader(t, cliFiles)
		clientCfg := cli.ClientConfig("127.0.0.1")

		if res := handshake(t, serverCfg, clientCfg); res.serverErr == nil {
			t.Fatal("server accepted a client from a CA it does not hold yet")
		}
		writeBundle(t, srvFiles.CA, ca.certPath, next.certPath)
		if err := srv.Reload(); err != nil {
			t.Fatal(err)
		}
		if res := handshake(t, serverCfg, clientCfg); res.clientErr != nil || res.serverErr != nil {
			t.Fatalf("after CA reload: client %v, server %v", res.clientErr, res.serverErr)
		}
	})
}

func TestHTTPSWithClonedConfigs(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	srv := mustReloader(t, ca.issue(t, "node-a", loopback, nil))
	cli := mustReloader(t, ca.issue(t, "node-b", loopback, nil))

	serve := func(t *testing.T, cfg *tls.Config) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				peer := "-"
				if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
					peer, _ = srv.PeerNode(*r.TLS)
				}
				fmt.Fprintf(w, "%s %s", r.Proto, peer)
			}),
			TLSConfig:         cfg,
			ReadHeaderTimeout: ioTimeout,
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = hs.ServeTLS(ln, "", "")
		}()
		t.Cleanup(func() {
			_ = hs.Close()
			<-done
		})
		return "https://" + ln.Addr().String() + "/"
	}
	get := func(cfg *tls.Config, url string) (string, error) {
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: ioTimeout}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b := make([]byte, 128)
		n, _ := resp.Body.Read(b)
		return string(b[:n]), nil
	}

	t.Run("CLI client with CA file", func(t *testing.T) {
		url := serve(t, srv.ServerConfig(false))
		cfg, err := ClientCAConfig(ca.certPath)
		if err != nil {
			t.Fatal(err)
		}
		body, err := get(cfg, url)
		if err != nil {
			t.Fatalf("GET with the right CA: %v", err)
		}
		t.Logf("response: %q", body)
		wrong, err := ClientCAConfig(other.certPath)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(wrong, url); err == nil {
			t.Fatal("GET succeeded verifying the server against another CA")
		}
	})

	t.Run("mutual TLS through http.Server and http.Transport", func(t *testing.T) {
		url := serve(t, srv.ServerConfig(true))
		body, err := get(cli.ClientConfig("127.0.0.1"), url)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		if !strings.HasSuffix(body, " node-b") || !strings.HasPrefix(body, "HTTP/2") {
			t.Fatalf("response %q, want HTTP/2 and peer node-b", body)
		}
		cfg, err := ClientCAConfig(ca.certPath)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(cfg, url); err == nil {
			t.Fatal("GET without a client certificate succeeded")
		}
	})
}

func TestClientCAConfigErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{garbage, filepath.Join(dir, "missing.pem")} {
		if _, err := ClientCAConfig(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("ClientCAConfig(%s) = %v, want an error naming the file", p, err)
		}
	}
}

func TestCreateCA(t *testing.T) {
	dir := t.TempDir()
	validity := 48 * time.Hour
	before := time.Now()
	certPath, keyPath, err := CreateCA(dir, validity)
	if err != nil {
		t.Fatal(err)
	}
	if certPath != filepath.Join(dir, "ca.pem") || keyPath != filepath.Join(dir, "ca-key.pem") {
		t.Fatalf("paths %s, %s", certPath, keyPath)
	}
	assertMode(t, certPath, 0o644)
	assertMode(t, keyPath, 0o600)

	caCert, caKey, err := loadCA(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !caCert.IsCA || !caCert.BasicConstraintsValid {
		t.Error("CA certificate is not marked as a CA")
	}
	if caCert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v, want CertSign|CRLSign", caCert.KeyUsage)
	}
	if caCert.Subject.CommonName != "Dominus CA" {
		t.Errorf("CN = %q", caCert.Subject.CommonName)
	}
	if caKey.Curve != elliptic.P256() {
		t.Errorf("curve = %v, want P-256", caKey.Curve.Params().Name)
	}
	if err := caCert.CheckSignatureFrom(caCert); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if d := caCert.NotAfter.Sub(before.Add(validity)); d < -time.Second || d > time.Minute {
		t.Errorf("NotAfter %v, want about %v", caCert.NotAfter, before.Add(validity))
	}

	other, _, err := CreateCA(t.TempDir(), validity)
	if err != nil {
		t.Fatal(err)
	}
	otherCerts, _ := readCertificates(other)
	if otherCerts[0].SerialNumber.Cmp(caCert.SerialNumber) == 0 {
		t.Error("two CAs share a serial number")
	}

	keyBytes, _ := os.ReadFile(keyPath)
	if _, _, err := CreateCA(dir, validity); err == nil || !strings.Contains(err.Error(), certPath) {
		t.Fatalf("second CreateCA = %v, want an error naming %s", err, certPath)
	}
	if err := os.Remove(certPath); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CreateCA(dir, validity); err == nil || !strings.Contains(err.Error(), keyPath) {
		t.Fatalf("CreateCA with existing key = %v, want an error naming %s", err, keyPath)
	}
	if _, err := os.Stat(certPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused CreateCA wrote %s", certPath)
	}
	if got, _ := os.ReadFile(keyPath); string(got) != string(keyBytes) {
		t.Error("refused CreateCA changed the existing key")
	}

	if _, _, err := CreateCA(t.TempDir(), 0); err == nil {
		t.Error("CreateCA accepted zero validity")
	}
}

func TestCreateCert(t *testing.T) {
	ca := newTestCA(t)
	caCerts, err := readCertificates(ca.certPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("127.0.0.1")}
	certPath, keyPath, err := CreateCert(dir, ca.certPath, ca.keyPath, "acme", "node-1.acme_x", ips, []string{"n1.dominus.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if certPath != filepath.Join(dir, "node-1.acme_x.pem") || keyPath != filepath.Join(dir, "node-1.acme_x-key.pem") {
		t.Fatalf("paths %s, %s", certPath, keyPath)
	}
	assertMode(t, certPath, 0o644)
	assertMode(t, keyPath, 0o600)

	certs, err := readCertificates(certPath)
	if err != nil {
		t.Fatal(err)
	}
	leaf := certs[0]
	if leaf.Subject.CommonName != "node-1.acme_x" {
		t.Errorf("CN = %q", leaf.Subject.CommonName)
	}
	if !slices.Equal(leaf.DNSNames, []string{"n1.dominus.test", "node-1.acme_x"}) {
		t.Errorf("DNSNames = %v", leaf.DNSNames)
	}
	var gotIPs []string
	for _, ip := range leaf.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	if !slices.Equal(gotIPs, []string{"127.0.0.1", "::1"}) {
		t.Errorf("IPAddresses = %v", gotIPs)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Error("node certificate is a CA")
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("public key is %T", leaf.PublicKey)
	}
	if err := leaf.CheckSignatureFrom(caCerts[0]); err != nil {
		t.Errorf("not signed by the CA: %v", err)
	}
	if _, err := NewReloader(Files{CA: ca.certPath, Cert: certPath, Key: keyPath}, nil); err != nil {
		t.Errorf("created material does not load: %v", err)
	}

	keyBytes, _ := os.ReadFile(keyPath)
	if _, _, err := CreateCert(dir, ca.certPath, ca.keyPath, "acme", "node-1.acme_x", nil, nil, time.Hour); err == nil || !strings.Contains(err.Error(), certPath) {
		t.Fatalf("second CreateCert = %v, want an error naming %s", err, certPath)
	}
	if got, _ := os.ReadFile(keyPath); string(got) != string(keyBytes) {
		t.Error("refused CreateCert changed the existing key")
	}

	// Validity is capped by the CA's.
	capped, _, err := CreateCert(t.TempDir(), ca.certPath, ca.keyPath, "acme", "long", nil, nil, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cc, _ := readCertificates(capped)
	if !cc[0].NotAfter.Equal(caCerts[0].NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", cc[0].NotAfter, caCerts[0].NotAfter)
	}

	// An IP literal as node name becomes an IP SAN.
	ipNode, _, err := CreateCert(t.TempDir(), ca.certPath, ca.keyPath, "acme", "10.0.0.7", nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ic, _ := readCertificates(ipNode)
	if len(ic[0].DNSNames) != 0 || len(ic[0].IPAddresses) != 1 || ic[0].IPAddresses[0].String() != "10.0.0.7" {
		t.Errorf("IP node SANs: DNS %v, IP %v", ic[0].DNSNames, ic[0].IPAddresses)
	}

	// A node certificate cannot sign others.
	nodeFiles := ca.issue(t, "signer", nil, nil)
	if _, _, err := CreateCert(t.TempDir(), nodeFiles.Cert, nodeFiles.Key, "acme", "x", nil, nil, time.Hour); err == nil {
		t.Error("CreateCert signed with a non-CA certificate")
	}
	// The CA key must match the CA certificate.
	other := newTestCA(t)
	if _, _, err := CreateCert(t.TempDir(), ca.certPath, other.keyPath, "acme", "x", nil, nil, time.Hour); err == nil || !strings.Contains(err.Error(), other.keyPath) {
		t.Errorf("CreateCert with a foreign CA key = %v, want an error naming it", err)
	}
}

func TestNodeNameValidation(t *testing.T) {
	ca := newTestCA(t)
	cases := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"node-1", true},
		{"Node_2.acme", true},
		{strings.Repeat("n", 64), true},
		{"", false},
		{strings.Repeat("n", 65), false},
		{"node/1", false},
		{"../etc", false},
		{"node 1", false},
		{"nöde", false},
		{"node\x00", false},
		{".", false},
		{"..", false},
	}
	for _, c := range cases {
		err := ValidateNodeName(c.name)
		if (err == nil) != c.ok {
			t.Errorf("ValidateNodeName(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
		dir := t.TempDir()
		_, _, err = CreateCert(dir, ca.certPath, ca.keyPath, "acme", c.name, nil, nil, time.Hour)
		if (err == nil) != c.ok {
			t.Errorf("CreateCert(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
		if !c.ok {
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Errorf("CreateCert(%q) refused but wrote %d files", c.name, len(entries))
			}
		}
	}
}

func TestNewReloaderErrorsNameTheFile(t *testing.T) {
	ca := newTestCA(t)
	a := ca.issue(t, "node-a", loopback, nil)
	b := ca.issue(t, "node-b", loopback, nil)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	cases := []struct {
		name  string
		files Files
		want  string
	}{
		{"key of another certificate", Files{CA: a.CA, Cert: a.Cert, Key: b.Key}, b.Key},
		{"missing CA", Files{CA: missing, Cert: a.Cert, Key: a.Key}, missing},
		{"missing certificate", Files{CA: a.CA, Cert: missing, Key: a.Key}, missing},
		{"missing key", Files{CA: a.CA, Cert: a.Cert, Key: missing}, missing},
		{"key file as certificate", Files{CA: a.CA, Cert: a.Key, Key: a.Key}, a.Key},
		{"certificate as CA", Files{CA: a.Cert, Cert: a.Cert, Key: a.Key}, a.Cert},
	}
	for _, c := range cases {
		_, err := NewReloader(c.files, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: NewReloader = %v, want an error naming %s", c.name, err, c.want)
		}
	}
	if _, err := NewReloader(Files{CA: a.CA, Cert: a.Cert}, nil); err == nil {
		t.Error("NewReloader accepted Files without a key")
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s mode %v, want %v", path, got, want)
	}
}

// writeBundle writes the concatenation of the PEM files srcs to dst.
func writeBundle(t *testing.T, dst string, srcs ...string) {
	t.Helper()
	var all []byte
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, all, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, time.Now().Add(time.Minute), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}
