// Package transport will own the federation bus between kernels: QUIC
// (quic-go) on one UDP socket per node bound to its own IP, TLS 1.3 with
// mutual certificates, bounded frames carrying an HMAC per directed link,
// per-origin sequence numbers and passport ids. It holds no state of its
// own beyond connections; delivery state (outbox, inbox dedup) lives in
// the ledgers of the sending and receiving kernels.
//
// It may import internal/tlsutil and the standard library, never fsm or
// the kernel packages. (Empty until the federation work lands.)
package transport
