package api

import (
	"encoding/hex"
	"strconv"
)

// Operator signing messages. A federation operator signs one of these
// with their Ed25519 key (dominus operator init --key-dir writes it) and
// the ledger verifies the signature against the operator keys it holds.
// Each message begins with a context string that no other Dominus
// signature uses, so a signature over one can never stand for another.
// The bytes are protocol: a change breaks every signature already given.
const (
	ctxAmendment  = "dominus-canon-amendment-v1\x00"
	ctxResume     = "dominus-federation-resume-v1\x00"
	ctxRotateKeys = "dominus-federation-keys-v1\x00"
	ctxRekey      = "dominus-operator-rekey-v1\x00"
	ctxProtocol   = "dominus-protocol-upgrade-v1\x00"
)

// AmendmentMessage is what an operator signs to ratify amendment id over
// the exact text whose SHA-256 is textHash.
func AmendmentMessage(id string, textHash []byte) []byte {
	return []byte(ctxAmendment + id + "\x00" + hex.EncodeToString(textHash))
}

// ResumeMessage is what an operator signs to resume the federation after
// halt id.
func ResumeMessage(haltID string) []byte { return []byte(ctxResume + haltID) }

// RotateKeysMessage is what a federation operator signs to move the key
// epoch of the sovereign kernel sovereignID on to epoch.
func RotateKeysMessage(sovereignID string, epoch uint64) []byte {
	return []byte(ctxRotateKeys + sovereignID + "\x00" + strconv.FormatUint(epoch, 10))
}

// RekeyMessage is what an operator signs to replace operator's key oldKey
// with newKey. Naming the old key makes a signature good for one
// replacement only.
func RekeyMessage(operator string, oldKey, newKey []byte) []byte {
	return []byte(ctxRekey + operator + "\x00" + hex.EncodeToString(oldKey) + "\x00" + hex.EncodeToString(newKey))
}

// ProtocolMessage is what a federation operator signs to move the
// federation of the sovereign kernel sovereignID to protocol version.
func ProtocolMessage(sovereignID string, version uint16) []byte {
	return []byte(ctxProtocol + sovereignID + "\x00" + strconv.FormatUint(uint64(version), 10))
}
