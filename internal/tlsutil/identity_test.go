package tlsutil

import (
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCertIdentity(t *testing.T) {
	ca := newTestCA(t)
	bound := ca.issue(t, "n1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	r, err := NewReloader(bound, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Identity()
	if err != nil || id != (Identity{Kernel: "acme", Node: "n1"}) || id.String() != "dominus://acme/n1" {
		t.Fatalf("identity %+v %v", id, err)
	}

	c, k, err := CreateCert(t.TempDir(), ca.certPath, ca.keyPath, "", "old", nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := NewReloader(Files{CA: ca.certPath, Cert: c, Key: k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := lr.Identity(); err != nil || !id.Legacy || id.Kernel != "" || id.Node != "old" {
		t.Fatalf("a certificate without a kernel: %+v %v", id, err)
	}
	if _, _, err := CreateCert(t.TempDir(), ca.certPath, ca.keyPath, "bad/kernel", "n", nil, nil, time.Hour); err == nil {
		t.Fatal("a kernel name with a slash was accepted")
	}

	// Malformed or ambiguous identities are refused.
	leaf := r.Leaf()
	for _, c := range []struct {
		name string
		uris []string
	}{
		{"another node", []string{"dominus://acme/n2"}},
		{"two kernels", []string{"dominus://acme/n1", "dominus://globex/n1"}},
		{"a port", []string{"dominus://acme:80/n1"}},
		{"a query", []string{"dominus://acme/n1?x=1"}},
		{"no kernel", []string{"dominus:///n1"}},
	} {
		cp := *leaf
		cp.URIs = nil
		for _, s := range c.uris {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			cp.URIs = append(cp.URIs, u)
		}
		if id, err := CertIdentity(&cp); err == nil {
			t.Errorf("%s: accepted as %+v", c.name, id)
		}
	}
	// Other URI schemes are not identities.
	cp := *leaf
	cp.URIs = []*url.URL{{Scheme: "spiffe", Host: "acme", Path: "/n1"}}
	if id, err := CertIdentity(&cp); err != nil || !id.Legacy {
		t.Errorf("a spiffe URI: %+v %v", id, err)
	}
}

// Over a real handshake each side learns the other's identity.
func TestPeerIdentityOverHandshake(t *testing.T) {
	ca := newTestCA(t)
	srv, err := NewReloader(ca.issue(t, "n1", []net.IP{net.ParseIP("127.0.0.1")}, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := CreateCert(t.TempDir(), ca.certPath, ca.keyPath, "globex", "g3", []net.IP{net.ParseIP("127.0.0.1")}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewReloader(Files{CA: ca.certPath, Cert: c, Key: k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.ServerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan Identity, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- Identity{}
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- Identity{}
			return
		}
		id, _ := srv.PeerIdentity(tc.ConnectionState())
		got <- id
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), cli.ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if id, err := cli.PeerIdentity(conn.ConnectionState()); err != nil || id != (Identity{Kernel: "acme", Node: "n1"}) {
		t.Fatalf("client sees %+v %v", id, err)
	}
	if id := <-got; id != (Identity{Kernel: "globex", Node: "g3"}) {
		t.Fatalf("server sees %+v", id)
	}
	if !strings.HasPrefix(ErrLegacyCertificate.Error(), "tlsutil:") {
		t.Fatal("sentinel without the package prefix")
	}
}
