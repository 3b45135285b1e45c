package passport

import (
	"bytes"
	"crypto/ed25519"
	"strings"
)

// Fixed keys: tests are reproducible byte for byte.
var (
	sovKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x51}, ed25519.SeedSize))
	otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x52}, ed25519.SeedSize))
	trusted  = map[string]ed25519.PublicKey{"sov-1/k1": sovKey.Public().(ed25519.PublicKey)}
)

const (
	t0   = int64(1_700_000_000_000_000_000) // ledger time of issue
	hour = int64(3600e9)
)

func nodeKey(b byte) []byte {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
}

// sample is a well-formed, unsigned passport.
func sample() Passport {
	return Passport{
		ID:        IDFor(42),
		Domain:    "payments",
		Issuer:    "sov-1",
		IssuedBy:  "alice@example.org",
		Serial:    7,
		NotBefore: t0,
		Expires:   t0 + 12*hour,
		Scopes:    []string{"bus.receive", "bus.send", "witness.*"},
		NodeKeys:  SortedNodeKeys([][]byte{nodeKey(1), nodeKey(2), nodeKey(3)}),
		KeyID:     "sov-1/k1",
	}
}

func signed() Passport { return Sign(sample(), sovKey) }

func nKeys(n int) [][]byte {
	ks := make([][]byte, n)
	for i := range ks {
		ks[i] = nodeKey(byte(i + 1))
	}
	return SortedNodeKeys(ks)
}

func nScopes(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = "scope." + string(rune('a'+i/26)) + string(rune('a'+i%26))
	}
	return s
}

func name(n int) string { return strings.Repeat("n", n) }
