// Package transparency is the kernel service that makes a ledger's
// history verifiable to third parties: beside the hash chain, every node
// keeps an RFC 6962 Merkle tree over the ledger's event hashes
// (transparency/tlog), built from its own archive and never on the
// FSM's decision path; the leader signs checkpoints of it; any node
// answers inclusion and consistency proofs.
//
// # The tree
//
// Start rebuilds the tree from the archive (from seq 1; a node whose
// archive starts after genesis serves no proofs and says so), checking
// each archived event against its head and the head before it; a
// follower goroutine then appends what the archive gains, every
// Config.FollowEvery. The tree lives in memory (about 64 bytes per
// event): it is a pure function of the archive, rebuilt at every start,
// so it needs no durability of its own.
//
// # Checkpoints
//
// The leader signs a checkpoint (tlog.Checkpoint: kernel id, tree size,
// root, chain head, ledger time of the last event) with its node key
// under the kernel's key name every Config.CheckpointEvery when the
// tree grew, and on demand (POST /v1/ledger/checkpoint, snapshot.manage;
// a follower forwards it to the leader). Checkpoints are not ledgered:
// each is stored as DATA/transparency/checkpoints/SIZE.note on the
// leader, pushed to the other members (which verify it against the
// member keys in their ledger and against their own tree before
// storing it), and read from there by `dominus audit replay --data-dir`.
// Any member's checkpoint is checkable against any replica's tree: the
// tree is a function of the ledger. A leader signs only a size by which its ledger
// already holds its own node key, so `audit replay` can check the signer
// against the members at the checkpoint's seq.
//
// # Countersigning
//
// On a domain, each checkpoint the leader signs goes to the sovereign
// over the bus (witness.go: a service frame, not ledgered) with a
// consistency proof from the last one the sovereign countersigned; the
// sovereign countersigns it only if it is signed by a node key of the
// domain's passport, agrees with the heads its ledger witnessed and
// extends what it countersigned before. The countersigned note replaces
// the checkpoint in the domain's store (GET
// /v1/ledger/checkpoint?countersigned=1).
//
// # Imports
//
// kernel (the service seam), fsm (reading state and events), passport
// (a domain's node keys), httpedge, api, transparency/tlog. The kernel
// never imports this package.
package transparency
