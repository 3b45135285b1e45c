package tlsutil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ioTimeout bounds every network operation in these tests.
const ioTimeout = 10 * time.Second

var loopback = []net.IP{net.ParseIP("127.0.0.1")}

// testLogger writes through t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// testCA is a CA created by CreateCA in its own directory.
type testCA struct {
	certPath, keyPath string
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	c, k, err := CreateCA(t.TempDir(), 24*time.Hour)
	if err != nil {
		t.Fatalf("CreateCA: %v", err)
	}
	return testCA{certPath: c, keyPath: k}
}

// issue creates a certificate for node in a fresh directory and returns the
// Files for it, trusting only this CA.
func (ca testCA) issue(t *testing.T, node string, ips []net.IP, dnsNames []string) Files {
	t.Helper()
	c, k, err := CreateCert(t.TempDir(), ca.certPath, ca.keyPath, "acme", node, ips, dnsNames, time.Hour)
	if err != nil {
		t.Fatalf("CreateCert(%s): %v", node, err)
	}
	return Files{CA: ca.certPath, Cert: c, Key: k}
}

// issueWithUsage creates a certificate for node with exactly the given
// extended key usages, bypassing CreateCert.
func (ca testCA) issueWithUsage(t *testing.T, node string, usages []x509.ExtKeyUsage) Files {
	t.Helper()
	caCert, caKey, err := loadCA(ca.certPath, ca.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  loopback,
		DNSNames:     []string{node},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := Files{CA: ca.certPath, Cert: filepath.Join(dir, node+".pem"), Key: filepath.Join(dir, node+"-key.pem")}
	if err := writePair(f.Cert, der, f.Key, key); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustReloader(t *testing.T, f Files) *Reloader {
	t.Helper()
	r, err := NewReloader(f, testLogger(t))
	if err != nil {
		t.Fatalf("NewReloader(%+v): %v", f, err)
	}
	return r
}

// replaceFile atomically replaces dst with the contents of src and gives it
// a modification time distinct from any earlier one.
func replaceFile(t *testing.T, src, dst string, mtime time.Time) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// copyToTemp copies a file into a fresh directory, so a test may rewrite it.
func copyToTemp(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	replaceFile(t, src, dst, time.Now())
	return dst
}

// handshakeResult is the outcome of one TLS connection over loopback TCP.
type handshakeResult struct {
	client    tls.ConnectionState
	clientErr error // handshake error, or the error reading the server's first byte
	server    tls.ConnectionState
	serverErr error
}

// handshake connects a client to a server over 127.0.0.1 TCP. After a
// successful handshake the server writes one byte, which the client reads:
// in TLS 1.3 the client finishes its handshake before the server has judged
// the client certificate, so a refusal reaches the client on that read.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type serverOut struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan serverOut, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- serverOut{err: err}
			return
		}
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(ioTimeout))
		c := tls.Server(raw, serverCfg)
		if err := c.Handshake(); err != nil {
			done <- serverOut{err: err}
			return
		}
		_, err = c.Write([]byte{'k'})
		done <- serverOut{state: c.ConnectionState(), err: err}
	}()

	var res handshakeResult
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(ioTimeout))
	c := tls.Client(raw, clientCfg)
	res.clientErr = c.Handshake()
	if res.clientErr == nil {
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err != nil {
			res.clientErr = err
		} else if buf[0] != 'k' {
			res.clientErr = errors.New("unexpected byte from server")
		}
		res.client = c.ConnectionState()
	}
	_ = c.Close()

	select {
	case out := <-done:
		res.server, res.serverErr = out.state, out.err
	case <-time.After(ioTimeout):
		t.Fatal("server did not finish within the timeout")
	}
	return res
}
