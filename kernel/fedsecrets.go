package kernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transport"
)

// loadNodeKey reads (or creates, once) this node's Ed25519 key. Only the
// public half ever leaves the node.
func loadNodeKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, "node.key")
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != ed25519.SeedSize {
			return nil, fmt.Errorf("node key %s is %d bytes, want %d", path, len(b), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(b), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if err := writeSecretFile(path, seed); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// writeSecretFile writes a 0600 file durably (temp + fsync + rename).
func writeSecretFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// secrets file: the master (sovereign) or the link keys (domain) and the
// key epoch they were derived in (the sovereign's epoch is in its ledger).
type fedSecrets struct {
	Master   []byte            `codec:"master"`
	Links    map[string][]byte `codec:"links"`
	KeyEpoch uint64            `codec:"key_epoch,omitempty"`
}

func (fd *fed) secretsPath() string { return filepath.Join(fd.n.cfg.DataDir, "federation.secrets") }

func (fd *fed) loadSecrets() {
	b, err := os.ReadFile(fd.secretsPath())
	if err != nil {
		return
	}
	var s fedSecrets
	if err := fsm.Decode(b, &s); err != nil {
		fd.n.log.Error("federation secrets file unreadable; fetching again", "err", err)
		return
	}
	fd.mu.Lock()
	fd.master = s.Master
	if s.Links != nil {
		fd.links = s.Links
	}
	fd.epoch = s.KeyEpoch
	fd.mu.Unlock()
}

func (fd *fed) secrets() fedSecrets {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	links := make(map[string][]byte, len(fd.links))
	for k, v := range fd.links {
		links[k] = v
	}
	return fedSecrets{Master: fd.master, Links: links, KeyEpoch: fd.epoch}
}

// setSecrets stores new secrets when they differ from the held ones: new
// link keys replace the old ones, in memory and in the secrets file.
func (fd *fed) setSecrets(s fedSecrets) error {
	fd.mu.Lock()
	same := bytes.Equal(fd.master, s.Master) && len(fd.links) == len(s.Links) && fd.epoch == s.KeyEpoch
	if same {
		for k, v := range s.Links {
			if !bytes.Equal(fd.links[k], v) {
				same = false
				break
			}
		}
	}
	if !same {
		fd.master = s.Master
		if s.Links == nil {
			s.Links = map[string][]byte{}
		}
		fd.links = s.Links
		fd.epoch = s.KeyEpoch
	}
	fd.mu.Unlock()
	if same {
		return nil
	}
	return writeSecretFile(fd.secretsPath(), fsm.Encode(&s))
}

// keyEpoch is the epoch of the link and gossip keys this node uses: on
// the sovereign the one its ledger holds, on a domain the one of the keys
// its last renewal (or its leader) handed it.
func (fd *fed) keyEpoch() uint64 {
	if fd.n.cfg.Role == fsm.RoleSovereign {
		var epoch uint64
		fd.n.fedState(func(_ *fsm.State, f *fsm.FedState) { epoch = f.CurrentKeyEpoch() })
		return epoch
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return fd.epoch
}

// linkKey is the bus's key lookup: the sovereign derives the key in the
// epoch its ledger holds, a domain has the keys of its last renewal. A
// frame under an earlier epoch's key does not verify.
func (fd *fed) linkKey(from, to string) ([]byte, bool) {
	var epoch uint64
	if fd.n.cfg.Role == fsm.RoleSovereign {
		epoch = fd.keyEpoch() // before fd.mu: it reads the ledger
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.master != nil {
		k, err := transport.DeriveLinkKeyEpoch(fd.master, from, to, epoch)
		return k, err == nil
	}
	k, ok := fd.links[linkName(from, to)]
	return k, ok
}

// linksFor derives, in key epoch epoch, every link key a domain needs: to
// and from each other kernel of the federation, and the gossip key.
func (fd *fed) linksFor(domain string, others []string, epoch uint64) (map[string][]byte, error) {
	fd.mu.Lock()
	master := fd.master
	fd.mu.Unlock()
	if master == nil {
		return nil, errors.New("federation master secret not available on this node yet")
	}
	out := map[string][]byte{}
	for _, o := range others {
		if o == domain {
			continue
		}
		for _, pair := range [][2]string{{domain, o}, {o, domain}} {
			k, err := transport.DeriveLinkKeyEpoch(master, pair[0], pair[1], epoch)
			if err != nil {
				return nil, err
			}
			out[linkName(pair[0], pair[1])] = k
		}
	}
	// The federation's gossip key travels with the link keys.
	k, err := cortexGossipKey(master, epoch)
	if err != nil {
		return nil, err
	}
	out[cortexKeyLink] = k
	return out, nil
}

// fetchSecrets asks the leader for the federation secrets.
func (fd *fed) fetchSecrets() {
	n := fd.n
	addr := n.leaderAddr()
	if addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	var s fedSecrets
	if err := n.pool.call(ctx, addr, rpcFedSecrets, &struct{}{}, &s); err != nil {
		return
	}
	if s.Master == nil && len(s.Links) == 0 {
		return
	}
	if err := fd.setSecrets(s); err != nil {
		n.log.Error("storing federation secrets", "err", err)
	}
}

// serveSecrets answers a member of this kernel's own Raft configuration.
func (n *Node) serveSecrets(ctx context.Context, peer string, _ []byte) ([]byte, error) {
	if n.fed == nil {
		return nil, errors.New("not a federated kernel")
	}
	if n.tls != nil && !n.isMember(peer) {
		return nil, fmt.Errorf("federation secrets refused: %q is not a member of this kernel", peer)
	}
	s := n.fed.secrets()
	return fsm.Encode(&s), nil
}
