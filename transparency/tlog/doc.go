// Package tlog is the verifiable-history core of a Dominus kernel: an
// RFC 6962 Merkle tree over the ledger's event hashes, its inclusion and
// consistency proofs, and signed checkpoints in the signed-note format
// (golang.org/x/mod/sumdb/note) that Go's checksum database and
// Sigstore use.
//
// # Leaves
//
// Leaf i of a kernel's tree is the event hash of ledger seq i+1: the
// chain head after that event, SHA-256(previous head ‖ event record)
// (fsm.ChainHash). Its leaf hash is RFC 6962's SHA-256(0x00 ‖ event
// hash); an interior node is SHA-256(0x01 ‖ left ‖ right). The tree of
// size N therefore commits to the first N events and, through their
// heads, to the chain; a checkpoint names both the root of size N and
// the head at seq N.
//
// # Checkpoints
//
// A checkpoint's text is
//
//	dominus/KERNEL-ID
//	N
//	ROOT (base64)
//	head HEX
//	time UNIX-NS
//
// the origin line, the tree size and root of the transparency-dev
// checkpoint layout, then the chain head at seq N and the ledger time
// of that event. A member node of the kernel signs it with its node key
// (Ed25519) under the key name "dominus/KERNEL-ID"; a sovereign
// countersigns with its own node key under its own kernel's name. Key
// files hold note verifier keys, one per line ('#' starts a comment).
//
// # Imports
//
// The standard library, transparency-dev/merkle, x/mod/sumdb/note and
// api (proof shapes). No kernel, no I/O beyond what callers pass in:
// audit verifies proofs offline with it, the transparency service
// builds the tree and signs with it.
package tlog
