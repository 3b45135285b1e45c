// Package tlsutil owns the mutual-TLS material of Dominus nodes: creating a
// federation CA and node certificates (used by `dominus tls`), loading and
// hot-reloading a node's CA, certificate and key, and building the
// *tls.Config values that Raft (node-to-node mTLS), the HTTP API (server
// certificate) and the QUIC bus use.
//
// # Invariants
//
//   - Keys are ECDSA P-256. Key files are written 0600, certificates 0644;
//     existing files are never overwritten.
//   - Node certificates are valid for both server and client authentication,
//     name the node in the CN and the SANs, and never outlive their CA.
//   - Material is loaded as a whole (CA, certificate, key) and installed only
//     when the certificate chains to the CA and the key matches the
//     certificate; a failed reload keeps the material in use.
//   - Every handshake, in both roles, is verified against the CA pool current
//     at that moment, so replacing the CA file and reloading takes effect for
//     new connections without rebuilding any *tls.Config.
//   - TLS 1.3 is the minimum version everywhere.
//
// # Imports
//
// Standard library only (crypto, encoding/pem, log/slog, os, net, time). It
// performs file I/O and reads the clock, so nothing in the pure core (canon,
// passport, fsm) may import it.
package tlsutil
