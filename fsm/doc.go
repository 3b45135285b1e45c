// Package fsm is the deterministic ledger at the heart of every Dominus
// kernel: the state machine that hashicorp/raft replicates.
//
// It owns the command envelope and its canonical msgpack encoding, the
// registration table of command handlers (register.go), numbered reason
// codes, the
// SHA-256 hash chain over every event, the state digest, snapshots, and
// replay verification — and the syscall gate (gatecmds.go): capabilities
// (scope patterns, expiry, use counts, delegation with reserved uses,
// subtree revocation by a bounded ancestor check), Cedar policy evaluated
// in sorted order with every error a DENY (policy.go), escalations and
// approvals bound to the exact call, halts, and pending external effects
// (effects.go). From protocol 8 it also runs governed evolution
// (evolve.go): a candidate set judged in shadow beside every decision,
// then deciding for a deterministic canary cohort, each window's verdict
// computed in integers (evolvestat.go), and the kept versions of every
// ACTIVE set. The verdict's test is the one-sided Fisher exact test on
// the canary's and the baseline's counts (denials, escalations, failed
// effects), computed exactly as a ratio of integers: a 5 % cohort of a
// quiet kernel sees a handful of decisions per window, where the normal
// approximation of a two-proportion test misleads, and exact integers
// make every replica and replay agree on p to the ppm. A metric fails
// when the canary is more than 5 points worse with p <= 0.05.
//
// Gate order for a syscall on a known capability: argument checks, halt,
// revocation (ancestors), expiry (ancestors), domain, scope, remaining
// uses, ACTIVE policy (SHADOW sets are evaluated and recorded beside it),
// approval; then PERMIT consumes one use and runs the in-ledger effect or
// records a pending external one. Every decision appends exactly one event
// whose detail records the full Cedar request (with the entity's tier,
// trust and deviation and the kernel's posture on protocol 2 ledgers); a
// DENY changes nothing else but the sensing fold of its own event.
//
// Invariants:
//   - Apply is a pure function of the state and the entry bytes: it never
//     reads the wall clock, randomness, the environment, files or the
//     network, and map iteration never reaches its output
//     (determinism_test.go enforces this per symbol with internal/detcheck).
//   - Ledger time is stamped by the proposing leader and made strictly
//     increasing here: max(prev+1ns, stamped).
//   - Every entry after genesis either appends exactly one event (seq+1,
//     head = SHA-256(prev ‖ record)) or is a noop (a deduplicated retry, an
//     ignorable unknown command) that changes nothing at all.
//   - A command type without a handler, not marked ignorable, panics with
//     UnknownCommandError: a replica that cannot apply an entry stops.
//   - Numbers in this package (command types, reason codes, codec tags) are
//     protocol; golden fixtures in testdata/golden pin the encodings.
//   - One value has one byte form. The hot types (envelope, kv and syscall
//     payloads, syscall detail, chain record, archive wrapper, the state
//     body's kv and dedup tables) have hand-written encoders (canonenc.go)
//     and, where entries are read, strict decoders (canondec.go) that must
//     write and accept exactly the reflection codec's canonical bytes;
//     anything else a strict decoder hands to the codec and its canonical
//     check, so errors are the codec's. Property tests and a fuzz target
//     hold them to the codec byte for byte.
//   - What an entry's bytes alone determine (envelope, entry hash, caller,
//     a syscall's decoded payload and args digest) is prepared apart from
//     the ledger (entryPrep): inline by Apply, ahead of the ledger on
//     another goroutine by a replay (PrepareRecord).
//   - Registration (register.go): each command registers a typedSpec
//     naming who may propose it (a caller, an internal member, genesis),
//     the governance op and resource its caller's capability must cover,
//     the role and protocol it needs, its subject and actor; the payload
//     is decoded once and these checks run in one fixed order before the
//     handler, which receives the decoded payload.
//   - Federation: the role is sealed at genesis; sovereign and domain
//     commands verify every signature they rely on (passports, witness
//     heads, operator signatures over amendments and resumes) with keys
//     recorded in the ledger; bus events from one origin apply in
//     sequence order exactly once; a rejected command changes nothing but
//     seq/head. Its files follow the seam: federation.go the state
//     (FedState and its records, roles, limits, genesis sealing, standing,
//     the canon chain), fedsovereign.go the sovereign's commands (domains,
//     passport revocation, signers, witnessed heads, amendments, the
//     federation halt and resume), feddomain.go a domain's life (join,
//     renewal, canon acknowledgement, suspension, the federation view),
//     fedbus.go the bus (outbox, receipt in sequence exactly once,
//     delivery).
//   - Key epochs (keyepoch.go): the sovereign's FedState.Keys holds the
//     epoch its bus link keys and gossip key are derived in (nil: epoch
//     0, the keys of every earlier ledger; no key enters the ledger). It
//     moves from E to exactly E+1 by fed.keys.rotate, which only the
//     sovereign's leader proposes and which names a revoked domain the
//     FSM checks has no rotation answering its revocation yet
//     (no_revocation otherwise), or by fed.keys.sign, one operator's
//     signature over RotateKeysMessage(kernel id, E+1) each, anyone
//     submitting, that moves it once M distinct valid signers, one
//     sovereign-level, have signed (operatorQuorum); forged, foreign and
//     repeated signatures are denied and change nothing.
//   - Members (members.go): genesis seals the hash of the kernel's join
//     secret and the first members' node keys and addresses; member.admit
//     (an operator with operator.manage on "raft") admits a node by name
//     and address; member.update (the kernel's own leader, internal)
//     records a member's key or removal and never replaces a live member's
//     key. Node names follow the certificate rule (letters, digits, -_.).
//   - Protocols (protocol.go): a version names a set of decision rules.
//     Genesis seals one; protocol.upgrade moves the ledger to a newer one
//     at the entry that records it (State.Meta.Protocol is the version in
//     force, Meta.ProtocolHistory every move), so each entry replays under
//     the rules in force when it was written. An entry that puts in force
//     a version this binary lacks panics with UnknownProtocolError before
//     it changes anything: the replica stops. Protocol 3 judges Cedar with
//     the contract's model (policy.go: Dominus:: types, context time and
//     args_digest, principal domain); un-namespaced policies are judged
//     against the un-namespaced types they name.
//   - Who proposes (internal.go): every command is a caller command (a
//     bearer token's hash; the ledger checks the capability's scope) or
//     an internal one (no token; a member node proposes it). From
//     protocol 4 an internal command carries its member's Ed25519
//     signature over MemberCommandMessage, verified against the node key
//     the ledger holds (internal_only with a token, member_unverified
//     otherwise); fed.signer registers only the proposer's own key; a
//     domain takes a federation view only if a sovereign key it pinned at
//     join signed it, and never an older one. SECURITY.md's command table
//     lists each command's proposer and checks (commandtable_test.go).
//   - Authority (authority.go, protocol 4): a grant or delegation lies
//     within its granter's scope (wider_than_granter); governance ops
//     match only by name, never an agent's '*'; an approval is decided
//     only outside the caller's delegation chain (self_approval); halts
//     apply along the chain.
//   - Bounded state (limits.go, protocol 4): a request id binds to the
//     digest of its command and payload (request_id_reused); the dedup
//     window keeps answer digests, not values, with a per-caller quota
//     (quota_exceeded); the kv store's bytes are bounded; limits.set
//     (operator.manage) sets the bounds and per-entity rates.
//   - Restores (restore.go, protocol 4): a snapshot reaches the ledger
//     in epoch.chunk entries of at most MaxEpochChunkBytes (snapshot.manage;
//     one staging per kernel, a new restore replacing it; its declared
//     size bounded by MaxStagedBytes, twice the kv bound plus
//     MaxEpochBytes) and is installed by an epoch that names the staging
//     and the snapshot's SHA-256. The staging is replicated state, in the
//     digest and in every snapshot. Under protocol 3 an epoch carries its
//     snapshot inline (at most MaxEpochBytes); such ledgers replay as
//     they were written.
//   - Sensing (sensing.go, protocol 2): every gate decision is folded into
//     the sense.Sensor of the state; tier, trust, deviation and posture are
//     Cedar context. A ledger sealed under protocol 1 replays without it.
//   - History counters (temporal.go, protocol 7): every gate decision is
//     folded into the temporal.Book of the state after it is made; each
//     judged call carries the counters before it as context.history, in
//     its recorded Cedar request. kv.get may name an as-of seq (KVKey.AsOf),
//     judged on the current state and recorded; the value comes from the
//     node's history, not the store.
//
// Imports: standard library hashing/encoding, go-msgpack, cedar-go,
// passport, sense and temporal (all pure), and api for the public limits, names and
// operator signing messages, which fsm names again in apialias.go. No I/O.
package fsm
