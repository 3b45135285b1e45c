package passport

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on a passport. Lifetimes and slacks are nanoseconds of ledger
// time.
const (
	MaxNameBytes    = 128                           // ID, Domain, Issuer, IssuedBy, KeyID
	MaxScopeBytes   = 128                           // one scope pattern
	MaxScopes       = 32                            // scope patterns per passport
	MaxNodeKeys     = 16                            // node public keys per passport
	MaxLifetime     = int64(24 * time.Hour)         // Expires - NotBefore
	MaxRenewalSlack = int64(time.Hour)              // largest slack StandingDeadline honours
	RevocationBound = MaxLifetime + MaxRenewalSlack // revocation reaches every kernel within this
)

// Passport is a domain kernel's credential, issued and signed by the
// sovereign. All fields but Signature are signed. Slices are owned by the
// Passport; Sign and Decode return passports that share no memory with
// their inputs.
type Passport struct {
	ID        string   `codec:"id"`         // issuer-derived, conventionally IDFor(seq)
	Domain    string   `codec:"domain"`     // the domain this passport speaks for
	Issuer    string   `codec:"issuer"`     // the sovereign kernel's id
	IssuedBy  string   `codec:"issued_by"`  // the human operator who issued it
	Serial    uint64   `codec:"serial"`     // >= 1, increasing per domain
	NotBefore int64    `codec:"not_before"` // ledger time of issue, unix ns
	Expires   int64    `codec:"expires"`    // first ledger time at which it is invalid
	Scopes    []string `codec:"scopes"`     // federation scopes, exact or ending in '*'; sorted
	NodeKeys  [][]byte `codec:"node_keys"`  // Ed25519 public keys of the domain's nodes; sorted
	KeyID     string   `codec:"key_id"`     // which sovereign signing key signed it
	Signature []byte   `codec:"signature"`  // Ed25519 over SigningBytes; empty when unsigned
}

// IDFor is the conventional passport id for an issuer sequence number:
// "pp-<seq>".
func IDFor(seq uint64) string {
	return "pp-" + strconv.FormatUint(seq, 10)
}

// Clone returns a deep copy of p. Nil slices stay nil.
func (p Passport) Clone() Passport {
	q := p
	q.Scopes = slices.Clone(p.Scopes)
	if p.NodeKeys != nil {
		q.NodeKeys = make([][]byte, len(p.NodeKeys))
		for i, k := range p.NodeKeys {
			q.NodeKeys[i] = bytes.Clone(k)
		}
	}
	q.Signature = bytes.Clone(p.Signature)
	return q
}

// SortedNodeKeys returns a sorted copy of keys without duplicates, the
// order Validate requires.
func SortedNodeKeys(keys [][]byte) [][]byte {
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		out = append(out, bytes.Clone(k))
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

// Validate reports whether p is well-formed (see the package invariants).
// Every error wraps ErrMalformed and names the offending field.
func (p Passport) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"id", p.ID}, {"domain", p.Domain}, {"issuer", p.Issuer},
		{"issued_by", p.IssuedBy}, {"key_id", p.KeyID},
	} {
		if err := checkName(f.name, f.v); err != nil {
			return err
		}
	}
	if p.Serial == 0 {
		return malformed("serial is 0; serials start at 1")
	}
	if p.NotBefore < 0 {
		return malformed("not_before %d is negative", p.NotBefore)
	}
	if p.Expires <= p.NotBefore {
		return malformed("expires %d is not after not_before %d", p.Expires, p.NotBefore)
	}
	// NotBefore >= 0 and Expires > NotBefore, so the difference fits.
	if life := p.Expires - p.NotBefore; life > MaxLifetime {
		return malformed("lifetime %dns exceeds the maximum %dns", life, MaxLifetime)
	}
	if len(p.Scopes) == 0 || len(p.Scopes) > MaxScopes {
		return malformed("%d scopes, want 1..%d", len(p.Scopes), MaxScopes)
	}
	for i, s := range p.Scopes {
		if err := checkScope(i, s); err != nil {
			return err
		}
		if i > 0 && p.Scopes[i-1] >= s {
			return malformed("scopes not sorted and unique at %d: %q after %q", i, s, p.Scopes[i-1])
		}
	}
	if len(p.NodeKeys) == 0 || len(p.NodeKeys) > MaxNodeKeys {
		return malformed("%d node keys, want 1..%d", len(p.NodeKeys), MaxNodeKeys)
	}
	for i, k := range p.NodeKeys {
		if len(k) != ed25519.PublicKeySize {
			return malformed("node key %d has %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
		if i > 0 && bytes.Compare(p.NodeKeys[i-1], k) >= 0 {
			return malformed("node keys not sorted and unique at %d", i)
		}
	}
	if n := len(p.Signature); n != 0 && n != ed25519.SignatureSize {
		return malformed("signature has %d bytes, want %d", n, ed25519.SignatureSize)
	}
	return nil
}

// Allows reports whether p's scopes permit scope. A pattern matches
// exactly, or, if it ends in '*', any scope starting with the rest
// ("bus.*" matches "bus.send" and "bus."; "*" matches everything). scope
// itself must be a concrete scope name: one that is empty, too long,
// contains '*' or characters outside the name alphabet is allowed by
// nothing. Allows checks no signature or time; call Verify first.
func Allows(p Passport, scope string) bool {
	if scope == "" || len(scope) > MaxScopeBytes || !nameChars(scope) {
		return false
	}
	for _, pat := range p.Scopes {
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			if strings.HasPrefix(scope, prefix) {
				return true
			}
		} else if pat == scope {
			return true
		}
	}
	return false
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func checkName(field, s string) error {
	if s == "" {
		return malformed("%s is empty", field)
	}
	if len(s) > MaxNameBytes {
		return malformed("%s has %d bytes, max %d", field, len(s), MaxNameBytes)
	}
	if !nameChars(s) {
		return malformed("%s %q has characters outside [A-Za-z0-9-_./@]", field, s)
	}
	return nil
}

func checkScope(i int, s string) error {
	if s == "" {
		return malformed("scope %d is empty", i)
	}
	if len(s) > MaxScopeBytes {
		return malformed("scope %d has %d bytes, max %d", i, len(s), MaxScopeBytes)
	}
	if body := strings.TrimSuffix(s, "*"); !nameChars(body) {
		return malformed("scope %d %q: '*' only at the end, other characters [A-Za-z0-9-_./@]", i, s)
	}
	return nil
}

// nameChars reports whether every byte of s is in [A-Za-z0-9-_./@]. The
// empty string passes (a scope of just "*" has an empty body).
func nameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '/' || c == '@') {
			return false
		}
	}
	return true
}
