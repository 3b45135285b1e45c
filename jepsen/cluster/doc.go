// Package cluster runs a kernel of real `dominus agent` processes for
// fault tests, each on its own loopback host (prefix.1, prefix.2, ...)
// with mutual TLS between nodes, and operates it the way an operator
// would: through the dominus CLI (TLS material, operator init, ledger
// verify, snapshots) and the public client package.
//
// What it owns: the processes (start, kill -9, SIGSTOP/SIGCONT, graceful
// stop, restart with a clock offset, a start without state that may only
// join), membership changes (operator raft remove-peer, a wipe that moves
// a stopped node's data dir aside, the wait until a node is a caught-up
// voter), their log files, the record of
// every process exit (and whether the harness caused it), the cluster's
// root token, and read-only views of the nodes (status, leader, the full
// ledger each node serves, convergence). The kernels of a federation are
// clusters that share one TLS folder (one CA) and carry their role's
// flags (Config.ExtraArgs); InitWith passes a sovereign's operators or a
// domain's join token to `operator init`.
//
// Invariants:
//   - Every node IP differs from 127.0.0.1, the address clients dial
//     from, so node-to-node faults never cut clients off.
//   - Close leaves no process behind: paused processes are resumed and
//     every process is killed and waited for, within a bound.
//   - Every wait is bounded by a context or an explicit limit.
//
// Imports: api, client, jepsen/checker (for its record types) and the
// standard library. Never fsm, kernel, archive or audit.
package cluster
