package canon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// compiledHash is compiledHashHex decoded once. A constant that is not 64
// hex digits is a broken build, not an operating error, so it panics at
// package initialisation rather than letting a kernel start with no canon.
var compiledHash = mustDecodeHash(compiledHashHex)

func mustDecodeHash(s string) [32]byte {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		panic(fmt.Sprintf("canon: compiled canon hash %q is not 32 bytes of hex", s))
	}
	copy(h[:], b)
	return h
}

// Text returns the embedded canon text. The caller owns the returned slice;
// changing it does not change the canon.
func Text() []byte {
	return []byte(embedded)
}

// Hash returns the canon hash compiled into this binary. It is the value a
// ledger genesis seals and the value every boot checks the text against.
func Hash() [32]byte {
	return compiledHash
}

// HashHex returns the canon hash compiled into this binary, as lowercase hex.
func HashHex() string {
	return compiledHashHex
}

// Verify checks that the embedded text hashes to the compiled constant. A
// kernel calls it before anything else at boot and refuses to start when it
// returns an error, which is then a *MismatchError.
func Verify() error {
	sum := sha256.Sum256([]byte(embedded))
	if sum != compiledHash {
		return &MismatchError{Computed: hex.EncodeToString(sum[:]), Compiled: compiledHashHex}
	}
	return nil
}

// CheckSealed compares the canon hash sealed into a ledger's genesis with the
// one this binary carries. A node must not serve a ledger sealed under a
// different canon; the error is then a *SealMismatchError.
func CheckSealed(sealed [32]byte) error {
	if sealed != compiledHash {
		return &SealMismatchError{Sealed: hex.EncodeToString(sealed[:]), Binary: compiledHashHex}
	}
	return nil
}

// MismatchError reports that the embedded canon text does not hash to the
// constant compiled into the binary: the text or the constant was altered.
type MismatchError struct {
	Computed string // hex SHA-256 of the embedded text
	Compiled string // hex canon hash compiled into the binary
}

func (e *MismatchError) Error() string {
	return "canon: embedded text hashes to " + e.Computed +
		" but the binary's compiled canon hash is " + e.Compiled
}

// SealMismatchError reports that a ledger was sealed under a canon other than
// the one this binary carries.
type SealMismatchError struct {
	Sealed string // hex canon hash recorded in the ledger genesis
	Binary string // hex canon hash compiled into this binary
}

func (e *SealMismatchError) Error() string {
	return "canon: ledger genesis sealed canon " + e.Sealed +
		" but this binary carries canon " + e.Binary
}
