package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// File names written by CreateCA and CreateCert.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// CASubjectCommonName is the subject CN of a CA made by CreateCA.
const CASubjectCommonName = "Dominus CA"

// NodeNameLengthMax bounds the node name carried in a certificate's CN.
const NodeNameLengthMax = 64

// clockSkewAllowance backdates NotBefore so that a node whose clock is a
// little behind the issuer's accepts a certificate issued just now.
const clockSkewAllowance = 5 * time.Minute

const (
	certFileMode fs.FileMode = 0o644
	keyFileMode  fs.FileMode = 0o600
)

// ValidateNodeName checks a node name: 1 to NodeNameLengthMax characters,
// each a letter, digit, '-', '_' or '.', and not "." or "..". Node names
// become file names and certificate CNs.
func ValidateNodeName(node string) error {
	if len(node) == 0 || len(node) > NodeNameLengthMax {
		return fmt.Errorf("tlsutil: node name %q has %d characters, want 1 to %d", node, len(node), NodeNameLengthMax)
	}
	if node == "." || node == ".." {
		return fmt.Errorf("tlsutil: node name %q is not allowed", node)
	}
	for i := 0; i < len(node); i++ {
		c := node[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("tlsutil: node name %q contains %q at offset %d; allowed are letters, digits, '-', '_' and '.'", node, c, i)
		}
	}
	return nil
}

// CreateCA writes a new self-signed federation CA to dir as ca.pem (0644)
// and ca-key.pem (0600), valid from now for validity. It refuses to
// overwrite either file.
func CreateCA(dir string, validity time.Duration) (certPath, keyPath string, err error) {
	if validity <= 0 {
		return "", "", fmt.Errorf("tlsutil: CA validity %v must be positive", validity)
	}
	certPath, keyPath = filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("tlsutil: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CASubjectCommonName},
		NotBefore:             now.Add(-clockSkewAllowance),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("tlsutil: create CA certificate: %w", err)
	}
	if err := writePair(certPath, der, keyPath, key); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// CreateCert writes a certificate for node of kernel, signed by the CA at
// caCertPath and caKeyPath, to dir as <node>.pem (0644) and <node>-key.pem
// (0600). The certificate has CN node; its SANs are the identity URI
// dominus://<kernel>/<node>, ips, dnsNames and node itself (as an IP SAN if
// node is an IP literal, else as a DNS SAN); it is valid for both server
// and client authentication; it expires after validity or when the CA
// does, whichever is first. It refuses to overwrite either file. An empty
// kernel makes a certificate that names no kernel, as before certificates
// were bound to kernels (kernels accept those only with
// --allow-legacy-certs).
func CreateCert(dir, caCertPath, caKeyPath, kernel, node string, ips []net.IP, dnsNames []string, validity time.Duration) (certPath, keyPath string, err error) {
	if err := ValidateNodeName(node); err != nil {
		return "", "", err
	}
	if kernel != "" {
		if err := ValidateNodeName(kernel); err != nil {
			return "", "", fmt.Errorf("tlsutil: kernel name: %w", err)
		}
	}
	if validity <= 0 {
		return "", "", fmt.Errorf("tlsutil: certificate validity %v must be positive", validity)
	}
	certPath, keyPath = filepath.Join(dir, node+".pem"), filepath.Join(dir, node+"-key.pem")
	if err := refuseExisting(certPath, keyPath); err != nil {
		return "", "", err
	}
	caCert, caKey, err := loadCA(caCertPath, caKeyPath)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if caCert.NotAfter.Before(notAfter) {
		notAfter = caCert.NotAfter
	}
	if !notAfter.After(now) {
		return "", "", fmt.Errorf("tlsutil: CA %s expired at %s", caCertPath, caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	notBefore := now.Add(-clockSkewAllowance)
	if notBefore.Before(caCert.NotBefore) {
		notBefore = caCert.NotBefore
	}

	sanIPs := make([]net.IP, 0, len(ips)+1)
	seenIP := make(map[string]bool)
	addIP := func(ip net.IP) {
		if k := ip.String(); !seenIP[k] {
			seenIP[k] = true
			sanIPs = append(sanIPs, ip)
		}
	}
	for _, ip := range ips {
		if ip == nil || (ip.To4() == nil && ip.To16() == nil) {
			return "", "", fmt.Errorf("tlsutil: invalid IP address %v for node %q", ip, node)
		}
		addIP(ip)
	}
	sanDNS := make([]string, 0, len(dnsNames)+1)
	seenDNS := make(map[string]bool)
	for _, name := range dnsNames {
		if name == "" {
			return "", "", fmt.Errorf("tlsutil: empty DNS name for node %q", node)
		}
		if !seenDNS[name] {
			seenDNS[name] = true
			sanDNS = append(sanDNS, name)
		}
	}
	if ip := net.ParseIP(node); ip != nil {
		addIP(ip)
	} else if !seenDNS[node] {
		sanDNS = append(sanDNS, node)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("tlsutil: generate key for node %q: %w", node, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: node},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           sanIPs,
		DNSNames:              sanDNS,
	}
	if kernel != "" {
		tmpl.URIs = []*url.URL{identityURI(kernel, node)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("tlsutil: sign certificate for node %q: %w", node, err)
	}
	if err := writePair(certPath, der, keyPath, key); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// loadCA reads a CA certificate and its private key for signing.
func loadCA(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certs, err := readCertificates(certPath)
	if err != nil {
		return nil, nil, err
	}
	caCert := certs[0]
	if !caCert.IsCA || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("tlsutil: %s is not a CA certificate allowed to sign certificates", certPath)
	}
	signer, err := readPrivateKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("tlsutil: CA key %s is %T, want an ECDSA key", keyPath, signer)
	}
	pub, ok := caCert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, fmt.Errorf("tlsutil: CA key %s does not match CA certificate %s", keyPath, certPath)
	}
	return caCert, key, nil
}

// refuseExisting returns an error naming the first path that already exists.
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("tlsutil: %s already exists; refusing to overwrite it", p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tlsutil: check %s: %w", p, err)
		}
	}
	return nil
}

// writePair writes a certificate and its key, each created exclusively. If
// either write fails, any file this call created is removed.
func writePair(certPath string, certDER []byte, keyPath string, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlsutil: encode key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	if err := writeExclusive(keyPath, keyPEM, keyFileMode); err != nil {
		return err
	}
	if err := writeExclusive(certPath, certPEM, certFileMode); err != nil {
		_ = os.Remove(keyPath)
		return err
	}
	return nil
}

// writeExclusive creates path (failing if it exists), sets mode regardless
// of the umask, writes data and syncs it.
func writeExclusive(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("tlsutil: %s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("tlsutil: create %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("tlsutil: close %s: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("tlsutil: chmod %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tlsutil: sync %s: %w", path, err)
	}
	return nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
