// Package kernel is the composition root of one kernel node: it wires the
// pure ledger (package fsm) to hashicorp/raft with raft-boltdb/v2 on disk
// (behind raft's LogCache of the most recent entries, --raft-log-cache),
// the fsynced ledger archive (package archive), node-to-node RPC and the
// HTTP API.
//
// Services plug in (service.go): New(cfg, services...) hands a node the
// subsystems it runs; each declares its HTTP routes with the scopes they
// need (httpedge.Route), its node-RPC methods, its leader duties, and its
// start and stop. The kernel imports no service; internal/server composes
// a node with its services, and kernel/kerneltest starts real nodes for
// services' tests. The HTTP edge (routing, authentication, per-entity
// rate, declared scopes, error mapping, JSON) is package httpedge; the
// node answers its Gate (edge.go), and handlers receive the caller's
// capability. Command builds the handler of a route that proposes one
// command (decode, propose on the caller's behalf, answer).
// Beyond Read, Propose and RequireScope a service may read the node's
// archive (ArchivedSeq, ArchivedEvents), sign with its node key
// (NodeSigner), call its kernel's members (CallMember) (servicehost.go),
// and serve or send bus frames of its own type that are not ledgered
// (HandleFrames, SendToSovereign; witnesshost.go).
//
// What it owns:
//   - one TCP port per node (--bind) multiplexing Raft and node RPC after a
//     mutual-TLS handshake; every outgoing connection is dialed from the
//     node's own bind IP;
//   - identity (identity.go): before anything listens or joins, the
//     certificate is checked against --name, --kernel (its URI SAN
//     dominus://KERNEL/NODE) and --bind, the data dir's identity.json
//     against the kernel, and free disk; node connections are refused
//     from certificates of another kernel and, by the connection hello,
//     from another kernel id, so two clusters never merge;
//   - cluster formation: bootstrap with BootstrapExpect only when the node
//     has no Raft state; joining an existing cluster through its leader,
//     as a voter or (NonVoter) a non-voting member; after genesis only
//     with the join secret or an operator's add-peer (members.go), the
//     leader keeping the ledger's member table (node keys) in step with
//     the configuration; data, membership, apply and secret RPCs are
//     served to members only;
//   - the write path: authenticate the token against ledger state (unknown
//     tokens never reach Raft), forward to the leader (concurrent writes
//     batched into one apply_batch call, each still its own Raft entry),
//     stamp the leader's time, raft.Apply, wait for the ledger's answer;
//   - ledgerFSM: applies batches to fsm.Ledger, appends them to the archive
//     before answering (fsynced before Raft may compact), verifies
//     re-applied entries against the archive, and accepts a snapshot only
//     if its head is in the archive or reachable by a verified backfill
//     from the leader; its Raft snapshots are streamed whole both ways,
//     at any size (raftsnap.go);
//   - snapshot restore (snapshotrestore.go): snapshot.manage before a
//     byte of the body is read; the body spooled to the data dir up to
//     Config.MaxRestoreBytes (413 beyond) and verified as it streams;
//     from protocol 4 staged in epoch.chunk entries of 1 MiB and
//     installed by one epoch, before it one inline epoch of at most
//     256 MiB (the archive takes records of that size);
//   - start-up checks: the embedded canon, the canon sealed in genesis, and
//     every stored Raft command entry against the archived bytes;
//   - linearizable reads (ReadIndex: a barrier once per term, the leader's
//     FSM-applied index, VerifyLeader; rounds coalesced in readindex.go,
//     each caller served by a round that started after it asked), and
//     every scope check that no ledger entry decides (requireScope: reads
//     of governance state, operator actions on a node) made on state
//     confirmed that way within ReadConfirmTimeout, else 503 stale, so no
//     node serves a capability revoked on the leader;
//   - the clock-skew guard (a leader measures its clock against its
//     quorum once per term before it stamps any write), the disk-space
//     guard, and the disk reserve (diskreserve.go: a write that fails for
//     lack of space gives the reserve up and is recorded after all; the
//     node is then disk-full, takes no writes, hands over leadership once
//     and resumes by itself when space returns);
//   - the gate's edge (gatehttp.go): size limits, token lookup, the
//     per-entity rate limit, Cedar validation against the gate's schema
//     (policycheck.go), grants that mint tokens (only their hashes are
//     proposed), read-only backtests over the archive;
//   - external effects: the leader's effect runner (effects.go) hands
//     pending effects to supervised driver processes (supervisor.go) and
//     proposes effect.complete; effects inherited from an earlier term are
//     completed as indeterminate unless their driver is idempotent;
//   - federation roles (federation.go, fedhttp.go; ARCHITECTURE.md
//     "Federation"): node keys, the sovereign's join/renewal services and
//     passport signing (a join token answers once; a repeat must be the
//     joined kernel's, signed by a node key of its passport; a revoked
//     domain gets nothing), domain renewal and witness loops, the QUIC bus
//     handler and outbox shipper, the per-origin replay windows
//     (buswindow.go: seeded from the inbox the ledger applied; a frame
//     is dropped before Raft only when the window rejects it and this
//     node's ledger confirms it applied that seq, answered with the kept
//     result or refused and counted), secrets fetched only from this
//     kernel's own leader over mutual TLS and never proposed to Raft; link and
//     gossip keys derived in the sovereign ledger's key epoch, which the
//     sovereign's leader moves on after a revocation (operators with
//     fed.keys.sign), domains taking the new keys at renewal and gossip
//     pools switching to them without a restart;
//   - protocol upgrades (protocol.go): asking every member which protocol
//     versions its binary implements (the protocol RPC), refusing an
//     upgrade while a voter (on the sovereign: a joined domain) lacks the
//     version and a joiner that lacks the one in force, sealing genesis
//     under the newest every voter implements; a ledger entry that needs
//     rules this binary lacks stops the FSM for good (ledgerFSM
//     stopApplying) and Stopped tells the agent, which exits naming the
//     version;
//   - sensing and the cortex (sensehttp.go, cortex.go, cortexkeys.go): the
//     sensing API over the ledger's state, the node's gossip pool bound to
//     passports, the domain leader's signal publisher and the sovereign
//     leader's master cortex, which ledgers its findings.
//
// Imports: fsm, archive, canon, api, driver, internal/tlsutil, passport,
// transport, sense, cortex, raft, raft-boltdb, go-metrics, cedar-go
// (validation). Never internal/cli or client.
package kernel
