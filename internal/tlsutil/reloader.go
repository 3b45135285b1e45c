package tlsutil

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWatchInterval is the polling interval Watch uses when given a
// non-positive one.
const DefaultWatchInterval = 5 * time.Second

// Files names a node's TLS material on disk.
type Files struct {
	CA   string // PEM bundle of trusted CA certificates (several during CA rotation)
	Cert string // PEM node certificate, optionally followed by intermediates
	Key  string // PEM private key of the node certificate
}

// material is one consistent, validated set of CA pool, certificate and key.
// It is immutable once built; Reloader swaps whole values.
type material struct {
	cert tls.Certificate // Leaf is set
	pool *x509.CertPool
}

// fileStamp identifies a version of a file by size and modification time.
type fileStamp struct {
	modTimeUnixNano int64
	size            int64
	statErr         bool
}

// Reloader holds a node's current TLS material and replaces it when the
// files change. The *tls.Config values it returns read the current material
// on every handshake, so a reload affects new connections without rebuilding
// them; established connections keep the material they were made with.
//
// A Reloader is safe for concurrent use.
type Reloader struct {
	files  Files
	logger *slog.Logger
	cur    atomic.Pointer[material]

	mu        sync.Mutex   // serialises loads
	attempted [3]fileStamp // stamps of the files at the last load attempt; guarded by mu
}

// NewReloader loads and validates f: the certificate must chain to a CA in
// f.CA and be valid now, and the key must match the certificate. Errors name
// the offending file. A nil logger discards logs.
func NewReloader(f Files, logger *slog.Logger) (*Reloader, error) {
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("tlsutil: TLS files CA=%q Cert=%q Key=%q: all three are required", f.CA, f.Cert, f.Key)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{files: f, logger: logger}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.loadLocked(r.stampFiles()); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload re-reads the CA, certificate and key and installs them together. On
// any error the material in use is kept and the error returned. It is what a
// SIGHUP handler calls.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked(r.stampFiles())
}

// Watch polls the files' sizes and modification times every interval and
// reloads when any of them changed since the last load attempt, until ctx is
// done. A failed reload is logged and retried only after the files change
// again. A non-positive interval means DefaultWatchInterval.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.reloadIfChanged()
		}
	}
}

func (r *Reloader) reloadIfChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps := r.stampFiles()
	if stamps == r.attempted {
		return
	}
	_ = r.loadLocked(stamps) // logged by loadLocked
}

// loadLocked loads the material and installs it on success. stamps were
// taken before reading, so a change during the read triggers another load.
func (r *Reloader) loadLocked(stamps [3]fileStamp) error {
	r.attempted = stamps
	m, err := loadMaterial(r.files, time.Now())
	if err != nil {
		if r.cur.Load() != nil {
			r.logger.Warn("tls material reload failed; keeping current material",
				"error", err.Error(), "serial", fmt.Sprintf("%x", r.Leaf().SerialNumber))
		}
		return err
	}
	r.cur.Store(m)
	r.logger.Info("tls material loaded",
		"cert_file", r.files.Cert, "ca_file", r.files.CA,
		"common_name", m.cert.Leaf.Subject.CommonName,
		"serial", fmt.Sprintf("%x", m.cert.Leaf.SerialNumber),
		"not_after", m.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (r *Reloader) stampFiles() [3]fileStamp {
	var s [3]fileStamp
	for i, p := range [3]string{r.files.CA, r.files.Cert, r.files.Key} {
		st, err := os.Stat(p)
		if err != nil {
			s[i] = fileStamp{statErr: true}
			continue
		}
		s[i] = fileStamp{modTimeUnixNano: st.ModTime().UnixNano(), size: st.Size()}
	}
	return s
}

// loadMaterial reads and validates one consistent set of material.
func loadMaterial(f Files, now time.Time) (*material, error) {
	caCerts, err := readCertificates(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for i, c := range caCerts {
		if !c.IsCA {
			return nil, fmt.Errorf("tlsutil: %s: certificate %d (CN %q) is not a CA certificate", f.CA, i+1, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	chain, err := readCertificates(f.Cert)
	if err != nil {
		return nil, err
	}
	key, err := readPrivateKey(f.Key)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("tlsutil: key %s does not match certificate %s", f.Key, f.Cert)
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("tlsutil: certificate %s does not chain to a CA in %s: %w", f.Cert, f.CA, err)
	}
	ders := make([][]byte, len(chain))
	for i, c := range chain {
		ders[i] = c.Raw
	}
	return &material{
		cert: tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: leaf},
		pool: pool,
	}, nil
}

// Leaf returns the current certificate. The caller must not modify it.
func (r *Reloader) Leaf() *x509.Certificate {
	return r.cur.Load().cert.Leaf
}

// certificate returns the current certificate and key for a handshake.
func (r *Reloader) certificate() *tls.Certificate {
	return &r.cur.Load().cert
}

// ServerConfig returns a TLS 1.3 server configuration presenting the current
// certificate. With clientAuth, every client must present a certificate
// valid for client authentication that chains to the current CA pool.
//
// The client certificate is checked in VerifyConnection rather than through
// ClientCAs: ClientCAs is fixed for the life of a tls.Config, and the HTTP
// server and QUIC clone the config they are given, so only a callback that
// reads the Reloader sees a reloaded CA. VerifyConnection also runs on
// resumed sessions, so a session resumed after a CA change is re-checked.
// Callers must not replace VerifyConnection or ClientAuth.
func (r *Reloader) ServerConfig(clientAuth bool) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.certificate(), nil
		},
	}
	if clientAuth {
		// RequireAnyClientCert makes the handshake demand a certificate and
		// its proof of possession; the chain is judged below.
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			_, err := r.verifyPeer(cs, x509.ExtKeyUsageClientAuth, "")
			return err
		}
	}
	return cfg
}

// ClientConfig returns a TLS 1.3 client configuration presenting the current
// certificate and verifying the server against the current CA pool. The
// server certificate must be valid for server authentication. If serverName
// is an IP literal it must be among the certificate's IP SANs; if it is a
// name, among its DNS SANs; if it is empty, only the chain is verified and
// the caller establishes which node it reached with PeerNode.
//
// The standard verifier is switched off (InsecureSkipVerify) because its
// RootCAs are fixed for the life of a tls.Config, which Raft transports and
// HTTP clients keep for the life of the process. VerifyConnection performs
// the complete verification instead — chain to the current CA pool, validity
// period, ExtKeyUsageServerAuth and the name — on every handshake, including
// resumed ones. Callers must not replace VerifyConnection.
func (r *Reloader) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         serverName,
		InsecureSkipVerify: true, // verified in VerifyConnection; see above
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.certificate(), nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := r.verifyPeer(cs, x509.ExtKeyUsageServerAuth, serverName)
			return err
		},
	}
}

// PeerNode returns the node name (certificate CN) of the peer of a completed
// handshake made with a configuration from this Reloader. The peer's
// certificate is verified against the current CA pool.
func (r *Reloader) PeerNode(cs tls.ConnectionState) (string, error) {
	leaf, err := r.peerLeaf(cs)
	if err != nil {
		return "", err
	}
	cn := leaf.Subject.CommonName
	if err := ValidateNodeName(cn); err != nil {
		return "", fmt.Errorf("tlsutil: peer certificate CN is not a node name: %w", err)
	}
	return cn, nil
}

// peerLeaf is the verified certificate of the peer of a completed
// handshake.
func (r *Reloader) peerLeaf(cs tls.ConnectionState) (*x509.Certificate, error) {
	if !cs.HandshakeComplete {
		return nil, errors.New("tlsutil: handshake not complete")
	}
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		return cs.VerifiedChains[0][0], nil
	}
	return r.verifyPeer(cs, x509.ExtKeyUsageAny, "")
}

// verifyPeer verifies the peer's certificate chain against the current CA
// pool for usage and, if name is not empty, for name (DNS or IP SAN).
func (r *Reloader) verifyPeer(cs tls.ConnectionState, usage x509.ExtKeyUsage, name string) (*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("tlsutil: peer presented no certificate")
	}
	m := r.cur.Load()
	leaf := cs.PeerCertificates[0]
	intermediates := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         m.pool,
		Intermediates: intermediates,
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return nil, fmt.Errorf("tlsutil: peer certificate CN %q serial %x rejected: %w",
			leaf.Subject.CommonName, leaf.SerialNumber, err)
	}
	return leaf, nil
}

// ClientCAConfig returns a TLS 1.3 client configuration that verifies an
// HTTPS server against the CA certificates in caPath and presents no client
// certificate. It is for CLI clients of the HTTP API.
func ClientCAConfig(caPath string) (*tls.Config, error) {
	certs, err := readCertificates(caPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}, nil
}
