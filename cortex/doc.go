// Package cortex owns the gossip half of the Dominus cortex: the typed,
// signed signals every node (sovereign and domain kernels alike) spreads
// over one github.com/hashicorp/memberlist cluster, the schema and byte
// form of those signals, the checks a receiver applies to them, and the
// latest accepted signal of each (domain, node, kind); and the master
// cortex's detector (Master, master.go), the pure statistical fold the
// sovereign's leader runs over accepted signals to find cross-domain
// patterns. The kernel (kernel/cortex.go) wires a Pool to the node's keys
// and passports and ledgers each Finding as an fsm.Knowledge record.
//
// # Gossip is advisory
//
// No safety property of Dominus depends on the cortex. Signals may arrive
// late, out of order, several times or never, and members may disagree
// about Latest. Anything a signal should change (trust, posture, a
// capability) changes only by a command proposed through a kernel's gate
// and recorded in its ledger; the gate, capabilities, canon, passports and
// the hash chain never read gossip directly. Losing the cortex degrades
// sensing, never correctness.
//
// # Signals
//
// A Signal has a fixed schema: Domain, Node, Kind, Value, Window, Seq,
// PassportID. Kind is a hand-numbered, append-only uint8 (TrustVelocity 1,
// AnomalyIndicator 2, OperationalTempo 3, ResourcePressure 4, DenyRate 5),
// and each kind bounds its Value (Kind.Bounds; units on the constants).
// There is no free-form field and no API that gossips anything but a
// Signal sealed by this node's key.
//
// The wire form (signal.go) is hand-written: fixed field order, u8 length
// prefixes on names, fixed-width big-endian integers, then a 64-byte
// Ed25519 signature over a context string and the body. Every signal has
// exactly one encoding and Decode accepts only bytes that Encode of its
// result reproduces. A message is at most MaxMessageBytes (512). The
// push/pull state (state.go) is a counted list of such messages, at most
// MaxStateSignals, accepted only when its framing is exact.
//
// # Invariants
//
//   - A receiver accepts a message only if, in this order: it is at most
//     MaxMessageBytes; it decodes canonically; its value is within its
//     kind's bounds; the Verifier (bound by the kernel to node keys listed
//     in passports) gives a key for (domain, node, passport); the
//     signature verifies under that key; its window is no older than
//     MaxAge and no further ahead than MaxFutureSkew of the receiver's
//     clock; and its Seq is above that of the latest accepted signal of
//     the same (domain, node, kind). Every other message is dropped and
//     counted by DropReason, and changes nothing else. An exact
//     re-delivery of a slot's accepted bytes is recognised right after the
//     bounds check and dropped as a duplicate without a signature check.
//   - Seq is per node and strictly increasing across all its kinds; the
//     replay check is per (domain, node, kind), so signals of different
//     kinds reordered by gossip are all accepted while an older signal of
//     a kind never replaces a newer one. A node publishes above both its
//     clock and its own earlier signals heard back from peers, so a restart
//     does not silence it.
//   - Latest holds one signal per (domain, node, kind), at most MaxTracked
//     of them, and is returned sorted by domain, node, kind. It does not
//     age signals out (Window says how old each is); a slot gives way to a
//     new one only when the pool is full and its window is stale.
//   - Every accepted signal is queued for gossip again (epidemic relay)
//     under its slot's name in a memberlist TransmitLimitedQueue, so a
//     newer signal replaces an older one still queued; the queue is pruned
//     to MaxQueued. Broadcasts are sent a bounded number of times to
//     random members and can miss one, so every memberlist push/pull also
//     carries the sender's freshest latest signals (at most
//     MaxStateSignals, exact bytes as received) and the other side runs
//     each through the same checks: a missed signal is repaired within a
//     push/pull interval while it is still its slot's latest and fresh.
//   - All gossip is encrypted and authenticated (AES-256-GCM,
//     memberlist's keyring, GossipVerifyIncoming/Outgoing) and labelled
//     "dominus-cortex/1". A member without a key of the pool can neither
//     join nor be heard.
//   - Every packet and stream leaves from the node's own IP (the --gossip
//     address): the pool uses its own memberlist transport that sends UDP
//     from the bound socket and dials TCP with that IP as local address,
//     and advertises exactly the bound address.
//
// # Rotating the gossip key
//
// A keyring holds the primary key (encrypts; decrypts first) and at most
// one other (decrypts). To replace key OLD with NEW across a pool, an
// operator (or the kernel acting on a ledgered command) runs three rounds,
// each on every member before the next round starts:
//
//  1. InstallKey(NEW): members now decrypt NEW but still send under OLD.
//  2. UseKey(NEW): members send under NEW; those not yet switched still
//     read it because they installed NEW in round 1.
//  3. RemoveKey(OLD): OLD no longer decrypts anything.
//
// Check each round with Keys() on every member. A member that missed round
// 1 drops gossip from switched members during round 2; a member that
// missed round 2 is cut off by round 3 until it installs and uses NEW.
// Keys in Config are only the starting ring: a restarted member needs the
// current primary key in its configuration.
//
// # Imports
//
// The standard library and github.com/hashicorp/memberlist only. Never
// kernel, fsm or any other Dominus package: the kernel composes the cortex
// (passing a Verifier and its ledger clock), not the other way round.
package cortex
