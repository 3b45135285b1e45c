// Package passport owns passports: the signed, time-bounded, revocable
// credentials the sovereign kernel issues to each domain kernel, naming the
// domain, what it may do across the federation (Scopes), the Ed25519 keys
// of its nodes and the issuing authority (Issuer, IssuedBy, KeyID). It
// owns their byte form, their signing and pure verification at a given
// ledger time, the scope patterns, the standing rule bus receivers apply
// to peers, and the revocation list.
//
// # Byte form
//
// The encoding is hand-written, not msgpack: the signed bytes are a
// protocol between kernels that must not move with a codec library's
// version or handle options, and a fixed layout is easy to reimplement.
// Fields are written in a fixed order; integers are fixed-width big-endian
// (int64 as two's complement); strings and byte strings carry a uint32
// length prefix; lists a uint32 count. The form is therefore injective and
// every value has exactly one encoding: Decode accepts only bytes that
// Encode of the result reproduces. See encode.go for the layout. The
// fixtures in testdata are protocol: a change in their bytes is a change
// of format and needs a new version byte.
//
// A signature covers SigningBytes: a context string that no other
// Dominus signature uses, followed by every field except Signature.
// Ed25519 signing is deterministic, so signing one passport with one key
// yields the same bytes on every replica.
//
// # Invariants
//
//   - A passport is well-formed (Validate) when: every name (ID, Domain,
//     Issuer, IssuedBy, KeyID) is 1..MaxNameBytes of [A-Za-z0-9-_./@];
//     Serial >= 1; 0 <= NotBefore < Expires <= NotBefore+MaxLifetime;
//     1..MaxScopes scopes, each a name optionally ending in '*', sorted,
//     no duplicates; 1..MaxNodeKeys node keys of ed25519.PublicKeySize
//     bytes, sorted, no duplicates; Signature empty or
//     ed25519.SignatureSize bytes. Decode returns only well-formed
//     passports; Verify rejects any other with ErrMalformed.
//   - Verify checks, in this order, and reports the first failure:
//     ErrMalformed, ErrUnknownIssuerKey, ErrBadSignature, ErrNotYetValid,
//     ErrExpired, ErrRevoked. Authenticity comes before time, and expiry
//     before revocation, so a passport whose revocation entry has been
//     evicted (it had expired anyway) gets the same answer as before.
//   - Validity is the half-open interval [NotBefore, Expires) of ledger
//     time: valid at NotBefore, expired at exactly Expires.
//   - The issuer sets NotBefore to the ledger time of issue and never
//     post-dates a passport, so every passport issued at or before time t
//     expires by t+MaxLifetime.
//
// # Standing and the revocation bound
//
// A kernel's standing toward a peer domain is the latest passport it
// knows for that domain. The standing lasts until StandingDeadline: the
// passport's Expires plus a renewal slack, clamped to [0,
// MaxRenewalSlack], which absorbs the ledger-time difference between
// kernels and the delivery delay of events recorded before expiry. A
// kernel refuses bus events from a peer unless the passport the event
// names verifies (Verify, at the time the event was recorded) and the
// standing is fresh (Fresh, at the receiver's ledger time).
//
// Domains keep passports until they expire, so revocation (and a
// federation halt) reaches a partitioned kernel within lifetime + slack,
// never later: a passport revoked at ledger time r expires by
// r+MaxLifetime, and after r+MaxLifetime+slack no kernel accepts events
// under it, whether or not the revocation list reached it.
// RevocationBound is that bound at its maximum. Domains must therefore
// renew well within MaxLifetime.
//
// Revocations is the list of revoked passport ids, each with the Expires
// of its passport. An entry is needed only while that passport can still
// be accepted anywhere, so entries are evicted once their StandingDeadline
// at MaxRenewalSlack has passed; an unexpired entry is never evicted, and
// a full list refuses to grow (ErrRevocationsFull) rather than forget a
// revocation.
//
// # Purity and imports
//
// This package runs inside the sovereign's FSM and in bus receivers. It
// has no clock (callers pass ledger time, int64 unix nanoseconds), no
// randomness (callers pass keys; Ed25519 signing is deterministic), no
// goroutines, no map iteration and no I/O. It imports only the standard
// library (crypto/ed25519, bytes, encoding/binary, errors, fmt, slices,
// math, strconv, strings, time for durations), never os, net, syscall,
// crypto/rand, math/rand or any Dominus server package
// (internal/layout, internal/detcheck).
package passport
