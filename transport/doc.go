// Package transport owns the wire layer of the federation bus between
// kernels: the frame and ack encodings with their per-link MACs, the
// derivation of link keys, the anti-replay sequence window, and the QUIC
// bus that carries one frame and one ack per stream.
//
// # What it does not own
//
// Delivery state. The sending kernel's ledger records an event in its
// outbox and, on a verified ack, its delivery; the receiving kernel checks
// the sender's passport, applies the event through its own gate and
// deduplicates on (origin, seq) in its own ledger. The bus holds only
// connections and counters, and a Window is state a kernel keeps and may
// persist, not state of this package.
//
// # Invariants
//
//   - A frame or ack is accepted only if it has the one canonical encoding
//     of its fields (Decode(b) succeeds only when Encode of the result is b),
//     every field is within its limit (payload MaxPayloadBytes, whole frame
//     MaxFrameBytes) and its MAC verifies, in constant time, under the key
//     of the directed link it names: Origin → Destination for an event,
//     Responder → Origin for an ack. The version and kind bytes are under
//     the MAC, so an ack is never an event and a version is never
//     downgraded. Failures are typed: ErrMalformed, ErrTooLarge, ErrVersion,
//     ErrUnknownLink, ErrBadMAC.
//   - Link keys are per direction: DeriveLinkKey(master, A, B) differs from
//     DeriveLinkKey(master, B, A), and only A and B hold the A→B key, so a
//     frame that verifies names its sender. DeriveLinkKeyEpoch derives the
//     same link's key in a later key epoch (epoch 0 is DeriveLinkKey), so a
//     key taken from a kernel stops verifying once the federation rotates.
//   - A Window accepts a sequence number at most once: never 0, never twice,
//     never WindowSize or more below the highest accepted (ErrReplay,
//     ErrTooOld). It is a pure function of the calls made on it.
//     AcceptUpTo records a whole prefix 1..seq at once, the state of a
//     receiver whose ledger applies an origin's events in order, so a
//     kernel seeds a Window from its ledger. The receiver's ledger stays
//     the authority on what was applied.
//   - The bus binds exactly one UDP socket, on the node's own IP; every
//     connection it accepts or dials uses that socket, so peers see the
//     node's own address and per-address network faults are real.
//   - Every connection is QUIC with TLS 1.3, ALPN "dominus-bus/1" and a
//     certificate on both sides verified against the federation CA. 0-RTT
//     is never accepted nor attempted: state-changing frames are not
//     replayable at the TLS layer.
//   - Every read is bounded: a length prefix is checked against its limit
//     before a buffer is allocated, and every stream has a deadline.
//   - Every refused connection or frame is counted by reason (Stats) and
//     reaches the sender as a *RemoteError wrapping the same sentinel.
//
// # Imports
//
// The standard library, internal/tlsutil (node-name rules) and
// github.com/quic-go/quic-go. Never fsm, kernel or any server package: the
// kernel composes the bus with its ledger, not the other way round.
package transport
