package tlsutil

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
)

// PEMFileSizeMax bounds how much of a certificate or key file is read.
const PEMFileSizeMax = 1 << 20

// readFileBounded reads a whole file, refusing files over PEMFileSizeMax.
func readFileBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, PEMFileSizeMax+1))
	if err != nil {
		return nil, fmt.Errorf("tlsutil: read %s: %w", path, err)
	}
	if len(data) > PEMFileSizeMax {
		return nil, fmt.Errorf("tlsutil: %s is over the %d-byte limit", path, PEMFileSizeMax)
	}
	return data, nil
}

// parseCertificates decodes every CERTIFICATE block of data, in order. Other
// block types are an error; so is data holding no certificate.
func parseCertificates(path string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("tlsutil: %s holds a %q PEM block, want only CERTIFICATE blocks", path, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsutil: %s: certificate %d: %w", path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("tlsutil: %s holds no PEM CERTIFICATE block", path)
	}
	return certs, nil
}

// readCertificates reads and parses a PEM certificate file.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := readFileBounded(path)
	if err != nil {
		return nil, err
	}
	return parseCertificates(path, data)
}

// parsePrivateKey decodes the single private key in data (PKCS#8, SEC 1 EC
// or PKCS#1 RSA).
func parsePrivateKey(path string, data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("tlsutil: %s holds no PEM private key", path)
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("tlsutil: %s holds a %q PEM block, want a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("tlsutil: %s holds a %T, which cannot sign", path, key)
	}
	return signer, nil
}

// readPrivateKey reads and parses a PEM private key file.
func readPrivateKey(path string) (crypto.Signer, error) {
	data, err := readFileBounded(path)
	if err != nil {
		return nil, err
	}
	return parsePrivateKey(path, data)
}
