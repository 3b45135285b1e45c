package passport

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
)

// Verification failures. Verify wraps exactly one of them, with the
// passport's id and domain and the values that failed, so callers match
// with errors.Is and log the message.
var (
	ErrMalformed        = errors.New("passport: malformed")
	ErrUnknownIssuerKey = errors.New("passport: unknown issuer key")
	ErrBadSignature     = errors.New("passport: bad signature")
	ErrNotYetValid      = errors.New("passport: not yet valid")
	ErrExpired          = errors.New("passport: expired")
	ErrRevoked          = errors.New("passport: revoked")
)

// Sign returns a deep copy of p carrying the sovereign's Ed25519
// signature over p.SigningBytes() (any previous signature is replaced).
// Ed25519 is deterministic: one passport and one key always give the same
// signature. Sign does not check p: the issuer calls Validate first, and
// Verify rejects a malformed passport however it was signed. It panics,
// as ed25519.Sign does, if key is not ed25519.PrivateKeySize bytes: a
// signing key of the wrong size is a programming error.
func Sign(p Passport, key ed25519.PrivateKey) Passport {
	q := p.Clone()
	q.Signature = nil
	q.Signature = ed25519.Sign(key, q.SigningBytes())
	return q
}

// Verify reports whether p is a valid passport at ledger time now:
// well-formed, signed by the key trusted[p.KeyID], valid in [NotBefore,
// Expires), and not revoked. revoked is asked only about passports that
// pass every other check; nil means no passport is revoked (pass
// (*Revocations).Contains to use a revocation list). A trusted key of the
// wrong size counts as unknown. Verify never panics and reads nothing but
// its arguments.
//
// The trust anchor is the key: whoever holds a trusted key may issue
// passports naming any Issuer. Callers that pin the issuing kernel compare
// p.Issuer themselves.
func Verify(p Passport, trusted map[string]ed25519.PublicKey, now int64, revoked func(id string) bool) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("passport %q (domain %q): %w", p.ID, p.Domain, err)
	}
	if len(p.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: passport %q (domain %q) is unsigned", ErrMalformed, p.ID, p.Domain)
	}
	pub, ok := trusted[p.KeyID]
	if !ok {
		return fmt.Errorf("%w: passport %q (domain %q) is signed by key %q of issuer %q, which is not trusted",
			ErrUnknownIssuerKey, p.ID, p.Domain, p.KeyID, p.Issuer)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: trusted key %q has %d bytes, want %d",
			ErrUnknownIssuerKey, p.KeyID, len(pub), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(pub, p.SigningBytes(), p.Signature) {
		return fmt.Errorf("%w: passport %q (domain %q) does not verify under key %q",
			ErrBadSignature, p.ID, p.Domain, p.KeyID)
	}
	if now < p.NotBefore {
		return fmt.Errorf("%w: passport %q (domain %q) is valid from %d, now %d",
			ErrNotYetValid, p.ID, p.Domain, p.NotBefore, now)
	}
	if now >= p.Expires {
		return fmt.Errorf("%w: passport %q (domain %q) expired at %d, now %d",
			ErrExpired, p.ID, p.Domain, p.Expires, now)
	}
	if revoked != nil && revoked(p.ID) {
		return fmt.Errorf("%w: passport %q (domain %q, serial %d)", ErrRevoked, p.ID, p.Domain, p.Serial)
	}
	return nil
}

// HasNodeKey reports whether k is one of p's node keys: whether the node
// holding k may speak for p.Domain. It checks no signature or time; call
// Verify first.
func HasNodeKey(p Passport, k ed25519.PublicKey) bool {
	for _, nk := range p.NodeKeys {
		if bytes.Equal(nk, k) {
			return true
		}
	}
	return false
}
