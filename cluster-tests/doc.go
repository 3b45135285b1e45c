// Package clustertests runs real kernel nodes — hashicorp/raft, the real
// ledger FSM, raft-boltdb and the archive in temp dirs, mutual TLS — in
// one process over a seeded fault-injecting network of real loopback TCP
// sockets (internal/faultnet): partitions, one-way cuts, drops, delays,
// kills and restarts, snapshot installs on a lagging follower with
// archive backfill. Every test ends by requiring identical chain heads and
// state digests on all nodes, and every acknowledged write present.
//
// Address range: 127.0.60.0/24 and up (one block per test). Random
// choices are seeded; the seed is logged and DOMINUS_SEED replays it.
package clustertests
