// Package faultnet owns the seeded, fault-injecting TCP network that the
// Dominus cluster-tests run real Raft nodes over, in one process, on
// loopback.
//
// Every node registered with a [Network] has its own loopback IP
// (see [Loopback]). A node listens on its IP with [Network.Listen] and dials
// from its IP with the function returned by [Network.Dialer], so the
// accepting side names the dialer by the remote IP of the connection. The
// kernel's Raft stream layer is handed exactly these two things — a
// net.Listener and a dial function — and layers TLS on top of the returned
// connections, which therefore behave like plain TCP connections: Read,
// Write, Close, addresses and deadlines pass through to the socket.
//
// # Fault model
//
// Faults describe which directed paths between nodes carry bytes:
// [Network.Partition], [Network.Isolate] and [Network.Cut] remove paths,
// [Network.Reachable] reports them, and [Network.Heal] restores every path
// and switches off drops and delays. Removals accumulate: each call only
// narrows reachability, and only Heal widens it.
//
// TCP cannot lose bytes and stay open, so loss is modelled as connection
// loss:
//
//   - A dial from A to B succeeds only while the path A→B exists. Otherwise
//     it fails with [ErrUnreachable] after a short bounded wait (at most
//     50ms, less if the context's deadline is nearer), as a lost SYN would;
//     it never outlives its context.
//   - A Write by A on a connection to B first checks the path A→B. If it is
//     gone, nothing is written, both ends of the connection are closed, and
//     the Write returns an error wrapping [ErrConnBroken].
//   - When a fault removes a path, every tracked connection between the two
//     nodes (in either orientation) is closed at once, both ends, because
//     bytes may be in flight. Blocked Reads and Writes on those ends return
//     errors wrapping [ErrConnBroken].
//   - One-way cuts follow from these rules. After Cut(A, B), A cannot dial
//     B, but B can dial A and A receives what B writes; the connection is
//     reset the first time A writes on it. At the Raft level, B's requests
//     reach A and A's responses never reach B.
//   - [Network.SetDrop] gives each Write on a cross-node connection a seeded
//     probability of resetting that connection (both ends), and
//     [Network.SetDelay] makes each such Write sleep a seeded duration first,
//     holding the connection's write lock so bytes stay in order. A delayed
//     Write that passes its write deadline fails with a timeout, as TCP
//     would.
//
// # Invariants
//
//   - Every random choice comes from a source derived from the seed given to
//     [New], and the seed is logged. Drop decisions and delay durations use
//     their own streams, so the same seed and the same sequence of Writes
//     give the same decisions; [Network.Rand] is a third stream for the
//     tests' own choices and does not perturb the faults.
//   - A fault change and the admission of a new connection are serialised,
//     so no connection admitted across a removed path survives it.
//   - The package starts no goroutines. Blocked operations wake on their
//     connection closing, their context ending, or [Network.Close], which
//     closes every tracked listener and connection.
//   - Connections with an end that is not a registered node (an unknown
//     dialed address, or an accepted connection from an unregistered IP) are
//     passed through untracked: faults do not apply to them and Close does
//     not close them.
//   - Naming an unregistered node in a fault, or registering an IP that is
//     not loopback, panics: a fault aimed at a typo would make a test pass
//     without testing anything, and this package never touches a
//     non-loopback address.
//
// The logger given to [New] (t.Logf in tests) is called only from New and
// from the fault-changing methods and Close, on the caller's goroutine,
// never from connection I/O, so a Raft goroutine that outlives its test
// cannot log through it.
//
// # Imports
//
// Standard library only. faultnet is test infrastructure: only tests and
// test harnesses (cluster-tests) may import it, never a kernel or the pure
// core.
package faultnet
