package bench_test

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// BenchmarkNodeTLSHandshake is one node-to-node connection set-up as the
// kernel's mux makes it: a TCP connection on loopback and a mutual TLS 1.3
// handshake with the nodes' ECDSA P-256 certificates, using the same
// tlsutil configurations (client and server in this process, so ns/op is
// the CPU of both ends). A write forwarded from a follower pays this
// whenever the follower's pool of idle RPC connections to the leader is
// empty.
func BenchmarkNodeTLSHandshake(b *testing.B) {
	dir := b.TempDir()
	ca, cakey, err := tlsutil.CreateCA(dir, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	files := func(name, ip string) tlsutil.Files {
		cert, key, err := tlsutil.CreateCert(dir, ca, cakey, "bench", name, []net.IP{net.ParseIP(ip)}, nil, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		return tlsutil.Files{CA: filepath.Join(dir, tlsutil.CACertFile), Cert: cert, Key: key}
	}
	srvTLS, err := tlsutil.NewReloader(files("n1", "127.0.0.1"), nil)
	if err != nil {
		b.Fatal(err)
	}
	cliTLS, err := tlsutil.NewReloader(files("n2", "127.0.0.1"), nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	srvCfg := srvTLS.ServerConfig(true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, srvCfg)
				_ = tc.Handshake()
				var one [1]byte
				_, _ = tc.Read(one[:]) // the connection kind byte
				tc.Close()
			}()
		}
	}()
	cliCfg := cliTLS.ClientConfig("127.0.0.1")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(c, cliCfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if _, err := tc.Write([]byte{'C'}); err != nil {
			b.Fatal(err)
		}
		tc.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
