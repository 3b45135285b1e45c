// Package clustertests runs real kernel nodes — hashicorp/raft, the real
// ledger FSM, raft-boltdb and the archive in temp dirs, mutual TLS — in
// one process over a seeded fault-injecting network of real loopback TCP
// sockets (internal/faultnet): partitions, one-way cuts, drops, delays,
// kills and restarts, snapshot installs on a lagging follower with
// archive backfill. Every test ends by requiring identical chain heads and
// state digests on all nodes, and every acknowledged write present.
//
// The federation tests (federation_test.go) run sovereign and domain
// kernels with real TCP, HTTPS and the QUIC bus on real UDP sockets, and
// cut bus links with iptables rules in a chain of their own (jumped to
// from INPUT only, so packets are lost, not refused); they need root and
// iptables, remove every rule they add, and use 127.0.80-83.x.
//
// The real-process tests (protocol_test.go, trust_test.go,
// fedtrust_test.go, on the harness
// of procharness_test.go) run dominus agents as
// separate OS processes (internal/proctest builds the binary, also with
// the dominus_protocol2 tag, which stands in for an older release); they
// run in the plain pass of make test, not under -race, since the test
// process only orchestrates.
//
// Address range: 127.0.60.0/24 and up (one block per test; 127.0.70.x for
// the protocol upgrade, 127.0.110-121.x for the trust boundaries,
// 127.0.163.x and 127.0.165.x for verifiable history). Random choices are seeded; the seed is logged and
// DOMINUS_SEED replays it.
package clustertests
