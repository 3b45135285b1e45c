package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// OriginPrefix starts a checkpoint's origin line and its key names.
const OriginPrefix = "dominus/"

// MaxCheckpointBytes bounds a signed checkpoint (text and signatures).
const MaxCheckpointBytes = 16 << 10

// ErrCheckpoint wraps every reason a checkpoint does not parse or verify.
var ErrCheckpoint = errors.New("tlog: checkpoint")

// Checkpoint is what a kernel signs about its ledger at one size.
type Checkpoint struct {
	KernelID string
	Size     uint64 // tree size = the ledger seq it covers
	Root     []byte // tree root of Size leaves
	Head     []byte // chain head at seq Size
	Time     int64  // ledger time of event Size, unix ns
}

// KeyName is the note key name of a kernel: its members sign its
// checkpoints under it.
func KeyName(kernelID string) string { return OriginPrefix + kernelID }

// Text is the checkpoint's note text.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\nhead %x\ntime %d\n",
		KeyName(c.KernelID), c.Size, base64.StdEncoding.EncodeToString(c.Root), c.Head, c.Time)
}

// ParseCheckpoint parses a checkpoint's note text (no signatures).
func ParseCheckpoint(text string) (Checkpoint, error) {
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrCheckpoint, fmt.Sprintf(format, args...))
	}
	lines := strings.Split(text, "\n")
	if len(lines) != 6 || lines[5] != "" {
		return bad("want 5 lines, got %d", len(lines)-1)
	}
	var c Checkpoint
	var ok bool
	if c.KernelID, ok = strings.CutPrefix(lines[0], OriginPrefix); !ok || c.KernelID == "" || strings.ContainsAny(c.KernelID, " +") {
		return bad("origin %q is not %sKERNEL-ID", lines[0], OriginPrefix)
	}
	var err error
	if c.Size, err = strconv.ParseUint(lines[1], 10, 64); err != nil || strconv.FormatUint(c.Size, 10) != lines[1] {
		return bad("size %q", lines[1])
	}
	if c.Root, err = base64.StdEncoding.DecodeString(lines[2]); err != nil || len(c.Root) != HashSize {
		return bad("root %q", lines[2])
	}
	h, ok := strings.CutPrefix(lines[3], "head ")
	if c.Head, err = hex.DecodeString(h); !ok || err != nil || len(c.Head) != HashSize {
		return bad("head line %q", lines[3])
	}
	t, ok := strings.CutPrefix(lines[4], "time ")
	if c.Time, err = strconv.ParseInt(t, 10, 64); !ok || err != nil || strconv.FormatInt(c.Time, 10) != t {
		return bad("time line %q", lines[4])
	}
	if c.Text() != text {
		return bad("not in canonical form")
	}
	return c, nil
}

// signer signs notes with an Ed25519 key (the note package's Ed25519
// algorithm, so note.NewEd25519VerifierKey verifies it).
type signer struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (s *signer) Name() string                    { return s.name }
func (s *signer) KeyHash() uint32                 { return s.hash }
func (s *signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

const algEd25519 = 1

// keyHash is the note package's key hash: the first four bytes of
// SHA-256(name ‖ "\n" ‖ alg ‖ public key).
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write([]byte{algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// NewSigner signs notes as name with key.
func NewSigner(name string, key ed25519.PrivateKey) note.Signer {
	return &signer{name: name, hash: keyHash(name, key.Public().(ed25519.PublicKey)), key: key}
}

// VerifierKey is the note verifier key of pub under name.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(name, pub)
}

// Sign returns the signed note of c.
func Sign(c Checkpoint, s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.Text()}, s)
}

// Keys are the verifier keys of a key file.
type Keys struct {
	list []note.Verifier
}

// ParseKeys reads verifier keys, one per line; blank lines and lines
// starting with '#' are skipped. Duplicates count once.
func ParseKeys(text string) (Keys, error) {
	var k Keys
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || seen[line] {
			continue
		}
		v, err := note.NewVerifier(line)
		if err != nil {
			return Keys{}, fmt.Errorf("tlog: key file line %d: %w", i+1, err)
		}
		seen[line] = true
		k.list = append(k.list, v)
	}
	if len(k.list) == 0 {
		return Keys{}, errors.New("tlog: the key file holds no key")
	}
	return k, nil
}

// Len is the number of keys.
func (k Keys) Len() int { return len(k.list) }

// Verifiers is the keys as note.Verifiers.
func (k Keys) Verifiers() note.Verifiers { return note.VerifierList(k.list...) }

// Signed is a checkpoint whose signatures verified.
type Signed struct {
	Checkpoint
	Note  []byte   // the signed note as given
	Names []string // the key names that signed it, as verified
}

// Open verifies a signed checkpoint against a kernel's keys: at least one
// signature by a key of kernel under the kernel's key name, whose text
// parses; other signatures are kept unverified.
func Open(msg []byte, kernel Keys) (Signed, error) {
	if len(msg) > MaxCheckpointBytes {
		return Signed{}, fmt.Errorf("%w: %d bytes, limit %d", ErrCheckpoint, len(msg), MaxCheckpointBytes)
	}
	n, err := note.Open(msg, kernel.Verifiers())
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Signed{}, err
	}
	if err := canonicalSigs(append(n.Sigs, n.UnverifiedSigs...)); err != nil {
		return Signed{}, err
	}
	s := Signed{Checkpoint: c, Note: msg}
	for _, sig := range n.Sigs {
		s.Names = append(s.Names, sig.Name)
	}
	if !slices.Contains(s.Names, KeyName(c.KernelID)) {
		return Signed{}, fmt.Errorf("%w: signed by %v, none of them the kernel %s's key", ErrCheckpoint, s.Names, KeyName(c.KernelID))
	}
	return s, nil
}

// OpenCountersigned verifies a checkpoint signed by a key of kernel and
// countersigned by a key of sovereign (under a name other than the
// kernel's).
func OpenCountersigned(msg []byte, kernel, sovereign Keys) (Signed, error) {
	s, err := Open(msg, kernel)
	if err != nil {
		return Signed{}, err
	}
	n, err := note.Open(msg, sovereign.Verifiers())
	if err != nil {
		return Signed{}, fmt.Errorf("%w: no countersignature by the sovereign's keys: %v", ErrCheckpoint, err)
	}
	for _, sig := range n.Sigs {
		if sig.Name != KeyName(s.KernelID) {
			s.Names = append(s.Names, sig.Name)
			return s, nil
		}
	}
	return Signed{}, fmt.Errorf("%w: no countersignature by the sovereign's keys", ErrCheckpoint)
}

// Countersign adds a signature by s to a signed checkpoint, keeping the
// signatures it carries. The checkpoint must parse; the caller has
// verified what it vouches for.
func Countersign(msg []byte, s note.Signer) ([]byte, error) {
	// Open with the countersigner's own key as the only known one: every
	// existing signature stays as it is (unverified), in order.
	n, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unverified):
		n = unverified.Note
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if _, err := ParseCheckpoint(n.Text); err != nil {
		return nil, err
	}
	n.Sigs = append(n.Sigs, n.UnverifiedSigs...)
	n.UnverifiedSigs = nil
	return note.Sign(n, s)
}

// SplitNote returns a signed note's text and the key names of its
// signature lines, without verifying them.
func SplitNote(msg []byte) (string, []string, error) {
	_, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return "", nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	var names []string
	for _, sig := range unverified.Note.UnverifiedSigs {
		names = append(names, sig.Name)
	}
	return unverified.Note.Text, names, nil
}

// CheckpointDir is where a node keeps the checkpoints it signed or
// accepted, under its data dir: one signed note per tree size,
// SIZE.note (20 digits).
const CheckpointDir = "transparency/checkpoints"

// canonicalSigs refuses a signature line whose base64 is not in its one
// canonical form (the decoder ignores the padding bits of the last
// character), so a checkpoint has exactly one encoding of each signature.
func canonicalSigs(sigs []note.Signature) error {
	for _, sig := range sigs {
		b, err := base64.StdEncoding.Strict().DecodeString(sig.Base64)
		if err != nil || base64.StdEncoding.EncodeToString(b) != sig.Base64 {
			return fmt.Errorf("%w: the signature of %s is not canonical base64", ErrCheckpoint, sig.Name)
		}
	}
	return nil
}
