package kernel

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// Who a node is, checked before it touches the network.
//
//   - Its certificate names it (CN = --name), its kernel (URI SAN
//     dominus://KERNEL/NODE = --kernel, which defaults to the
//     certificate's) and the IP of --bind. A certificate that names no
//     kernel is accepted only with --allow-legacy-certs (and --kernel).
//   - Its data dir belongs to its kernel: DATA/identity.json records the
//     kernel's name from the first start on and its kernel id once
//     genesis is known; a node refuses to start on another kernel's data
//     dir, and refuses connections from nodes of another kernel or of
//     another kernel id (two clusters on one CA never merge, even when an
//     operator gave them the same name).
//
// ErrIdentity wraps every refusal; its message names both sides and the
// fix.
var ErrIdentity = errors.New("node identity")

const identityFile = "identity.json"

// dataIdentity is DATA/identity.json.
type dataIdentity struct {
	Kernel   string `json:"kernel"`
	KernelID string `json:"kernel_id,omitempty"`
	// JoinSecretSHA256 is the digest of the join secret the node was first
	// started with (it joined an initialized kernel with it).
	JoinSecretSHA256 string `json:"join_secret_sha256,omitempty"`
}

// kernelIdentity is this node's kernel as connections announce it.
type kernelIdentity struct {
	mu       sync.Mutex
	name     string
	id       string // "" until genesis is known
	dataPath string
}

func (k *kernelIdentity) get() (name, id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.name, k.id
}

// learnID records the kernel id once genesis is applied here.
func (k *kernelIdentity) learnID(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id == "" || k.id == id {
		return nil
	}
	if k.id != "" {
		return fmt.Errorf("%w: this node's data dir belongs to kernel id %s, but its ledger now names %s", ErrIdentity, k.id, id)
	}
	k.id = id
	return writeDataIdentity(k.dataPath, dataIdentity{Kernel: k.name, KernelID: id})
}

// resolveIdentity checks the certificate against --name, --kernel and
// --bind and settles the kernel name (before anything listens).
func (n *Node) resolveIdentity() (string, error) {
	cfg := &n.cfg
	kernel := cfg.Kernel
	if n.tls != nil {
		id, err := n.tls.Identity()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrIdentity, err)
		}
		leaf := n.tls.Leaf()
		if id.Node != cfg.Name {
			return "", fmt.Errorf("%w: the certificate %s is for node %q, but this node is --name %q: use %s's certificate or --name %s", ErrIdentity, cfg.TLS.Cert, id.Node, cfg.Name, cfg.Name, id.Node)
		}
		switch {
		case id.Legacy && !cfg.AllowLegacyCerts:
			return "", fmt.Errorf("%w: the certificate %s names no kernel (made before certificates were bound to kernels): issue one with `dominus tls cert create --node %s --ip IP --kernel KERNEL`, or start with --allow-legacy-certs --kernel KERNEL while you roll new certificates out", ErrIdentity, cfg.TLS.Cert, cfg.Name)
		case id.Legacy && kernel == "":
			return "", fmt.Errorf("%w: the certificate %s names no kernel: give --kernel KERNEL", ErrIdentity, cfg.TLS.Cert)
		case id.Legacy:
			n.log.Warn("accepting node certificates that name no kernel (--allow-legacy-certs): any node of this CA can join; issue kernel-bound certificates, roll the nodes and drop the flag", "kernel", kernel)
		case kernel == "":
			kernel = id.Kernel
		case id.Kernel != kernel:
			return "", fmt.Errorf("%w: the certificate %s is for kernel %q, but this node is --kernel %q: use a certificate of %q (dominus tls cert create --node %s --kernel %s) or --kernel %s", ErrIdentity, cfg.TLS.Cert, id.Kernel, kernel, kernel, cfg.Name, kernel, id.Kernel)
		}
		ip, _, _ := splitIPPort(cfg.BindAddr)
		if !ip.IsUnspecified() {
			if err := leaf.VerifyHostname(ip.String()); err != nil {
				return "", fmt.Errorf("%w: the certificate %s does not name --bind's IP %s (it names %v): peers would refuse it; issue one with --ip %s", ErrIdentity, cfg.TLS.Cert, ip, leaf.IPAddresses, ip)
			}
		}
	}
	if kernel == "" {
		kernel = defaultKernelName(cfg)
	}
	switch {
	case cfg.Role == fsm.RoleSovereign && kernel != fsm.SovereignKernel:
		return "", fmt.Errorf("%w: a sovereign node belongs to kernel %q, not %q", ErrIdentity, fsm.SovereignKernel, kernel)
	case cfg.Role == fsm.RoleDomain && kernel != cfg.Domain:
		return "", fmt.Errorf("%w: a node of domain %q belongs to kernel %q, not %q", ErrIdentity, cfg.Domain, cfg.Domain, kernel)
	}
	if err := validName(kernel); err != nil {
		return "", fmt.Errorf("%w: kernel name: %v", ErrIdentity, err)
	}
	return kernel, nil
}

// defaultKernelName names a kernel when neither --kernel nor a
// certificate does (plaintext test nodes).
func defaultKernelName(cfg *Config) string {
	switch cfg.Role {
	case fsm.RoleSovereign:
		return fsm.SovereignKernel
	case fsm.RoleDomain:
		return cfg.Domain
	}
	return "default"
}

// checkDataDir compares the data dir's recorded identity with this node's
// kernel and the kernel id of its archived genesis, and records it on
// first start.
func (n *Node) checkDataDir(kernel string) (*kernelIdentity, error) {
	path := filepath.Join(n.cfg.DataDir, identityFile)
	genesisID, err := archivedKernelID(n.arch)
	if err != nil {
		return nil, err
	}
	rec, err := readDataIdentity(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		rec = dataIdentity{Kernel: kernel, KernelID: genesisID}
		if n.cfg.JoinSecret != "" && genesisID == "" {
			s := sha256.Sum256([]byte(n.cfg.JoinSecret))
			rec.JoinSecretSHA256 = hex.EncodeToString(s[:])
		}
		if err := writeDataIdentity(path, rec); err != nil {
			return nil, fmt.Errorf("record the data dir's identity: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", ErrIdentity, path, err)
	case rec.Kernel != kernel:
		return nil, fmt.Errorf("%w: the data dir %s belongs to kernel %q (kernel id %s), but this node is of kernel %q: start it on a data dir of %q, or on an empty one to join as a new member", ErrIdentity, n.cfg.DataDir, rec.Kernel, orUnknown(rec.KernelID), kernel, kernel)
	case rec.KernelID != "" && genesisID != "" && rec.KernelID != genesisID:
		return nil, fmt.Errorf("%w: the data dir %s records kernel id %s, but its ledger archive begins with kernel id %s: it was assembled from two kernels; restore it from a backup of one", ErrIdentity, n.cfg.DataDir, rec.KernelID, genesisID)
	case rec.KernelID == "" && genesisID != "":
		rec.KernelID = genesisID
		if err := writeDataIdentity(path, rec); err != nil {
			return nil, err
		}
	}
	return &kernelIdentity{name: kernel, id: rec.KernelID, dataPath: path}, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "not yet known"
	}
	return s
}

// archivedKernelID is the kernel id of the genesis in the archive ("" if
// none).
func archivedKernelID(arch *archive.Archive) (string, error) {
	rec, err := arch.ReadSeq(1)
	if errors.Is(err, archive.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read genesis from archive: %w", err)
	}
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil {
		return "", fmt.Errorf("decode archived genesis: %w", err)
	}
	env, err := fsm.DecodeEnvelope(ae.Entry)
	if err != nil {
		return "", fmt.Errorf("decode archived genesis: %w", err)
	}
	var g fsm.Genesis
	if err := fsm.Decode(env.Payload, &g); err != nil {
		return "", fmt.Errorf("decode archived genesis: %w", err)
	}
	return g.KernelID, nil
}

func readDataIdentity(path string) (dataIdentity, error) {
	var rec dataIdentity
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Kernel == "" {
		return rec, fmt.Errorf("not a data dir identity (%v)", err)
	}
	return rec, nil
}

func writeDataIdentity(path string, rec dataIdentity) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeSecretFile(path, append(b, '\n'))
}

// checkFreeDisk refuses to start on a data dir that is already below the
// minimum free space: such a node could not record anything.
func (n *Node) checkFreeDisk() error {
	if n.cfg.MinFreeDiskBytes == 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.cfg.DataDir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", n.cfg.DataDir, err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < n.cfg.MinFreeDiskBytes {
		return fmt.Errorf("%w: %s has %d bytes free, below --min-free-disk %d: free some space (or lower --min-free-disk) and start again", ErrDiskFull, n.cfg.DataDir, free, n.cfg.MinFreeDiskBytes)
	}
	return nil
}

// Connection hello: after TLS and the kind byte, each side of a node
// connection says which kernel (name and id) it belongs to, dialer first;
// either side closes a connection from another kernel id. Kinds with a
// hello replace the first ones, which only --allow-legacy-certs still
// accepts (nodes from before the hello).

type connHello struct {
	Kernel   string `codec:"kernel"`
	KernelID string `codec:"kernel_id"`
}

const maxHello = 512

func writeHello(w io.Writer, k *kernelIdentity) error {
	name, id := k.get()
	return writeFrame(w, &connHello{Kernel: name, KernelID: id})
}

func readHello(r *bufio.Reader) (connHello, error) {
	var h connHello
	if err := readFrameMax(r, &h, maxHello); err != nil {
		return h, fmt.Errorf("connection hello: %w", err)
	}
	return h, nil
}

// checkHello refuses a peer of another kernel or kernel id.
func checkHello(own *kernelIdentity, peer connHello, who string) error {
	name, id := own.get()
	switch {
	case peer.Kernel != name:
		return fmt.Errorf("%w: %s speaks for kernel %q; this is kernel %q", ErrIdentity, who, peer.Kernel, name)
	case peer.KernelID != "" && id != "" && peer.KernelID != id:
		return fmt.Errorf("%w: %s belongs to kernel id %s; this node's data dir belongs to kernel id %s (two clusters of kernel %q must never merge: start this node on a data dir of the right one)", ErrIdentity, who, peer.KernelID, id, name)
	}
	return nil
}

// helloConn is a connection whose reads go through the reader that read
// the hello (it may have buffered bytes beyond it).
type helloConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *helloConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// checkPeerCert judges a node connection's certificate: it must name this
// kernel (or, with --allow-legacy-certs, no kernel).
func (n *Node) checkPeerCert(id tlsutil.Identity) error {
	name, _ := n.identity.get()
	switch {
	case id.Legacy && !n.cfg.AllowLegacyCerts:
		return fmt.Errorf("%w: node %q presented a certificate that names no kernel (allowed only with --allow-legacy-certs)", ErrIdentity, id.Node)
	case !id.Legacy && id.Kernel != name:
		return fmt.Errorf("%w: node %q presented a certificate of kernel %q; this is kernel %q", ErrIdentity, id.Node, id.Kernel, name)
	}
	return nil
}
