package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// IdentityScheme is the URI scheme of a node certificate's identity SAN:
// dominus://<kernel>/<node>.
const IdentityScheme = "dominus"

// Identity is who a node certificate speaks for: the node (its CN) and the
// kernel it belongs to (its URI SAN dominus://<kernel>/<node>). A
// certificate made before certificates named their kernel has no kernel:
// Legacy is set and Kernel is empty.
type Identity struct {
	Kernel string
	Node   string
	Legacy bool
}

func (id Identity) String() string {
	if id.Legacy {
		return id.Node + " (a certificate that names no kernel)"
	}
	return IdentityScheme + "://" + id.Kernel + "/" + id.Node
}

// ErrLegacyCertificate is returned for a certificate that names no kernel
// where one is required.
var ErrLegacyCertificate = errors.New("tlsutil: the certificate names no kernel (made before certificates were bound to kernels)")

// identityURI is the SAN that binds a node certificate to its kernel.
func identityURI(kernel, node string) *url.URL {
	return &url.URL{Scheme: IdentityScheme, Host: kernel, Path: "/" + node}
}

// CertIdentity reads the identity of a node certificate: its CN and, if
// present, its dominus:// URI SAN, which must name the same node and be
// the only one.
func CertIdentity(c *x509.Certificate) (Identity, error) {
	cn := c.Subject.CommonName
	if err := ValidateNodeName(cn); err != nil {
		return Identity{}, fmt.Errorf("tlsutil: certificate CN is not a node name: %w", err)
	}
	var found []Identity
	for _, u := range c.URIs {
		if u.Scheme != IdentityScheme {
			continue
		}
		node := strings.TrimPrefix(u.Path, "/")
		if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || ValidateNodeName(u.Host) != nil || node != cn {
			return Identity{}, fmt.Errorf("tlsutil: certificate %q carries a malformed identity %q (want %s://KERNEL/%s)", cn, u.String(), IdentityScheme, cn)
		}
		found = append(found, Identity{Kernel: u.Host, Node: cn})
	}
	switch len(found) {
	case 0:
		return Identity{Node: cn, Legacy: true}, nil
	case 1:
		return found[0], nil
	}
	return Identity{}, fmt.Errorf("tlsutil: certificate %q names %d kernels", cn, len(found))
}

// Identity is the identity of this node's own current certificate.
func (r *Reloader) Identity() (Identity, error) {
	return CertIdentity(r.Leaf())
}

// PeerIdentity returns the identity of the peer of a completed handshake
// made with a configuration from this Reloader, verifying the peer's
// certificate against the current CA pool.
func (r *Reloader) PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	leaf, err := r.peerLeaf(cs)
	if err != nil {
		return Identity{}, err
	}
	return CertIdentity(leaf)
}
