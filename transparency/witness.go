package transparency

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/passport"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// Countersigning. A domain's leader hands each checkpoint it signs to
// the sovereign over the bus (a frame of type frameCosign, not
// ledgered), with a consistency proof from the last checkpoint of that
// domain the sovereign countersigned. The sovereign countersigns only a
// checkpoint that
//
//   - names the domain's kernel id and is signed by a node key of the
//     domain's current passport (the node keys' registry),
//   - agrees with every head of the domain the sovereign's ledger
//     witnessed at the checkpoint's size (fed.witness), and
//   - extends, by the consistency proof, the last checkpoint of the
//     domain it countersigned (same root at the same size),
//
// so two histories of one domain cannot both carry its countersignature.
// A sovereign node keeps the last countersigned checkpoint per domain in
// DATA/transparency/witnessed/DOMAIN.note; a contradicting checkpoint is
// kept beside it as DOMAIN.conflict-SIZE.note, evidence for an operator.
const frameCosign = "checkpoint.cosign"

// WitnessedDir holds a sovereign node's last countersigned checkpoint of
// each domain, under its data dir.
const WitnessedDir = "transparency/witnessed"

type cosignRequest struct {
	Note    []byte   `codec:"note"`
	OldSize uint64   `codec:"old_size"` // the countersigned size the proof starts from
	Proof   [][]byte `codec:"proof"`
}

type cosignReply struct {
	Cosigned []byte `codec:"cosigned,omitempty"` // the note with the sovereign's signature
	Latest   []byte `codec:"latest,omitempty"`   // the last countersigned checkpoint of the domain
}

// errFork is the sovereign's refusal of a checkpoint that contradicts
// what it countersigned or witnessed.
var errFork = errors.New("transparency: the checkpoint contradicts the domain's witnessed history")

func (s *Service) witnessedPath(domain string, suffix string) string {
	return filepath.Join(s.cfg.DataDir, WitnessedDir, url.PathEscape(domain)+suffix+".note")
}

// domainKeys are the checkpoint keys of a joined domain as the
// sovereign's ledger holds them: its kernel id and its current
// passport's node keys.
func (s *Service) domainKeys(domain string) (string, tlog.Keys, []fsm.WitnessRecord, error) {
	var kid string
	var lines []string
	var heads []fsm.WitnessRecord
	var err error
	s.k.Read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		if st.Meta.Role != fsm.RoleSovereign || st.Fed == nil {
			err = errors.New("transparency: only the sovereign countersigns")
			return
		}
		d := st.Fed.Domains[domain]
		if d == nil || d.KernelID == "" || d.Revoked || d.Suspended {
			err = fmt.Errorf("transparency: domain %s is not joined and in standing", domain)
			return
		}
		pp, e := passport.Decode(d.Passport)
		if e != nil {
			err = e
			return
		}
		kid = d.KernelID
		for _, k := range pp.NodeKeys {
			v, e := tlog.VerifierKey(tlog.KeyName(kid), ed25519.PublicKey(k))
			if e == nil {
				lines = append(lines, v)
			}
		}
		heads = slices.Clone(st.Fed.Witness[domain])
	})
	if err != nil {
		return "", tlog.Keys{}, nil, err
	}
	keys, err := tlog.ParseKeys(strings.Join(lines, "\n"))
	return kid, keys, heads, err
}

// cosign is the sovereign's answer to a domain's checkpoint.
func (s *Service) cosign(_ context.Context, domain string, payload []byte) ([]byte, error) {
	var req cosignRequest
	if err := fsm.Decode(payload, &req); err != nil {
		return nil, err
	}
	kid, keys, heads, err := s.domainKeys(domain)
	if err != nil {
		return nil, err
	}
	c, err := tlog.Open(req.Note, keys)
	if err != nil {
		return nil, err
	}
	if c.KernelID != kid {
		return nil, fmt.Errorf("transparency: a checkpoint of kernel %s from domain %s (kernel %s)", c.KernelID, domain, kid)
	}
	for _, h := range heads {
		if h.Seq == c.Size && !bytes.Equal(h.Hash, c.Head) {
			s.keepConflict(domain, c)
			return nil, fmt.Errorf("%w: head %x at seq %d, the sovereign witnessed %x", errFork, c.Head, c.Size, h.Hash)
		}
	}
	s.cosignMu.Lock()
	defer s.cosignMu.Unlock()
	latest, _ := os.ReadFile(s.witnessedPath(domain, ""))
	if latest != nil {
		l, err := tlog.Open(latest, keys)
		if err != nil { // a passport since renewed without the key that signed it
			l.Checkpoint, err = parseNote(latest)
			if err != nil {
				return nil, err
			}
		}
		switch {
		case l.Size > c.Size, l.Size < c.Size && req.OldSize != l.Size:
			return fsm.Encode(&cosignReply{Latest: latest}), nil // prove from here
		case l.Size == c.Size && !bytes.Equal(l.Root, c.Root):
			s.keepConflict(domain, c)
			return nil, fmt.Errorf("%w: root %x at size %d, countersigned %x", errFork, c.Root, c.Size, l.Root)
		case l.Size < c.Size:
			if err := tlog.VerifyConsistency(l.Size, c.Size, req.Proof, l.Root, c.Root); err != nil {
				s.keepConflict(domain, c)
				return nil, fmt.Errorf("%w: not consistent with the checkpoint countersigned at %d: %v", errFork, l.Size, err)
			}
		}
	}
	key, ok := s.k.NodeSigner().(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("transparency: this node has no node key")
	}
	cosigned, err := tlog.Countersign(req.Note, tlog.NewSigner(tlog.KeyName(s.kernelID()), key))
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(s.witnessedPath(domain, ""), cosigned); err != nil {
		return nil, err
	}
	return fsm.Encode(&cosignReply{Cosigned: cosigned, Latest: cosigned}), nil
}

func parseNote(note []byte) (tlog.Checkpoint, error) {
	text, _, err := tlog.SplitNote(note)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	return tlog.ParseCheckpoint(text)
}

func (s *Service) keepConflict(domain string, c tlog.Signed) {
	s.log.Error("a domain's checkpoint contradicts its witnessed history", "domain", domain, "size", c.Size, "root", fmt.Sprintf("%x", c.Root))
	_ = writeFileSync(s.witnessedPath(domain, fmt.Sprintf(".conflict-%d", c.Size)), c.Note)
}

func writeFileSync(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// countersigned reports whether a note carries a signature other than
// its own kernel's.
func countersigned(note []byte) bool {
	text, names, err := tlog.SplitNote(note)
	if err != nil {
		return false
	}
	c, err := tlog.ParseCheckpoint(text)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(names, func(n string) bool { return n != tlog.KeyName(c.KernelID) })
}

// requestCosign hands the latest checkpoint to the sovereign (a domain's
// leader), proving it from the last size the sovereign countersigned;
// the countersigned note replaces the checkpoint in the store and goes
// to the other members.
func (s *Service) requestCosign(ctx context.Context) error {
	var role string
	s.k.Read(func(l *fsm.Ledger, _ uint64) { role = l.State().Meta.Role })
	if role != fsm.RoleDomain {
		return nil
	}
	note, size := s.store.last()
	if note == nil || countersigned(note) {
		return nil
	}
	for attempt := 0; attempt < 2; attempt++ {
		s.mu.Lock()
		old := s.sovSize
		s.mu.Unlock()
		req := cosignRequest{Note: note, OldSize: old}
		if old > 0 && old < size {
			p, err := s.tree.ConsistencyProof(old, size)
			if err != nil {
				return err
			}
			req.Proof = p
		}
		b, err := s.k.SendToSovereign(ctx, frameCosign, fsm.Encode(&req))
		if err != nil {
			return err
		}
		var rep cosignReply
		if err := fsm.Decode(b, &rep); err != nil {
			return err
		}
		if rep.Cosigned != nil {
			if c, err := parseNote(rep.Cosigned); err != nil || c.Size != size || !countersigned(rep.Cosigned) {
				return fmt.Errorf("transparency: the sovereign answered a countersignature of another checkpoint")
			}
			s.mu.Lock()
			s.sovSize = size
			s.mu.Unlock()
			if err := s.store.put(size, rep.Cosigned); err != nil {
				return err
			}
			s.push(ctx, rep.Cosigned)
			return nil
		}
		l, err := parseNote(rep.Latest)
		if err != nil {
			return err
		}
		if own, err := s.tree.Root(l.Size); err != nil || !bytes.Equal(own, l.Root) {
			s.log.Error("the sovereign countersigned a checkpoint of this domain that this node's tree contradicts", "size", l.Size, "root", fmt.Sprintf("%x", l.Root))
			return fmt.Errorf("%w: countersigned root %x at %d", errFork, l.Root, l.Size)
		}
		s.mu.Lock()
		s.sovSize = l.Size
		s.mu.Unlock()
	}
	return errors.New("transparency: the sovereign did not countersign")
}

// startWitnessing registers the sovereign's side of countersigning.
func (s *Service) startWitnessing(k *kernel.Node) {
	k.HandleFrames(frameCosign, s.cosign)
}
