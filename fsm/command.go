package fsm

import "fmt"

// CommandType numbers a replicated command. Numbers are protocol: they are
// hand-assigned, append-only, and a retired number stays reserved forever.
// The high bit marks a command a node may skip if it does not know it; every
// command without it that a node does not know stops that node.
type CommandType uint16

// IgnoreUnknownFlag marks a command as safe to skip for nodes that do not
// know its type (it must change no state they rely on).
const IgnoreUnknownFlag CommandType = 0x8000

const (
	CmdGenesis        CommandType = 1 // seals the canon hash, kernel id, protocol version; creates the root operator
	CmdKVPut          CommandType = 2
	CmdKVGet          CommandType = 3
	CmdKVDelete       CommandType = 4
	CmdKVCAS          CommandType = 5
	CmdCheckpoint     CommandType = 6 // records the current head as one the cluster vouches for
	CmdEpoch          CommandType = 7 // replaces state from a verified snapshot, linked to the old head
	CmdCapGrant       CommandType = 8
	CmdCapDelegate    CommandType = 9
	CmdCapRevoke      CommandType = 10
	CmdSyscall        CommandType = 11
	CmdPolicySet      CommandType = 12
	CmdApprovalDecide CommandType = 13
	CmdHalt           CommandType = 14
	CmdResume         CommandType = 15
	CmdEffectComplete CommandType = 16 // proposed by the leader when an external effect finished (or is lost)

	// Federation (DESIGN.md §4). Commands without auth are proposed by
	// kernel code only (never reachable from the HTTP API) and carry their
	// own proof where one exists (signatures the FSM verifies).
	CmdFedDomainCreate   CommandType = 17 // sovereign: register a domain and its join token hash
	CmdFedJoin           CommandType = 18 // sovereign: redeem a join token with a signed passport
	CmdFedPassport       CommandType = 19 // sovereign: record a renewed passport
	CmdFedPassportRevoke CommandType = 20 // sovereign: revoke a passport
	CmdFedSigner         CommandType = 21 // sovereign: register a node's passport-signing key
	CmdFedWitness        CommandType = 22 // sovereign: record a domain's signed chain head
	CmdFedAmendPropose   CommandType = 23 // sovereign: propose a canon amendment
	CmdFedAmendSign      CommandType = 24 // sovereign: one operator's signature over an amendment
	CmdFedAmendVeto      CommandType = 25 // sovereign: a sovereign operator's veto
	CmdFedCanonAck       CommandType = 26 // sovereign: a domain acknowledged a canon version
	CmdFedUpdate         CommandType = 27 // domain: the federation view from the sovereign
	CmdFedHalt           CommandType = 28 // sovereign: halt the federation
	CmdFedResume         CommandType = 29 // sovereign: one operator's signed consent to resume
	CmdBusReceive        CommandType = 30 // domain: apply an event from another kernel
	CmdBusDelivered      CommandType = 31 // domain: record the answer to an outbox event
	CmdFedSuspend        CommandType = 32 // sovereign: suspend a domain past its acknowledgement deadline

	// Sensing (DESIGN.md §5).
	CmdSignalIngest CommandType = 33 // an external signal folded into the posture
	CmdTrustAdjust  CommandType = 34 // a governed trust adjustment
	CmdKnowledge    CommandType = 35 // sovereign: a master-cortex finding with its evidence

	CmdFedOperatorRekey CommandType = 36 // sovereign: M of N operators replace an operator's key

	// Protocol upgrades (protocol.go).
	CmdProtocolUpgrade CommandType = 37 // an operator moves the kernel to a newer protocol (sovereign: with M of N signatures)
	CmdFedProtocolAck  CommandType = 38 // sovereign: a domain runs a protocol version

	// Members (members.go).
	CmdMemberAdmit  CommandType = 39 // an operator admits a node to join without the join secret
	CmdMemberUpdate CommandType = 40 // the leader records a member's node key, or its removal

	// Federation key epochs (keyepoch.go).
	CmdFedKeysRotate CommandType = 41 // sovereign: the leader moves the key epoch on after a revocation
	CmdFedKeysSign   CommandType = 42 // sovereign: one operator's signature to move the key epoch on

	CmdLimitsSet CommandType = 43 // an operator sets the replicated limits (limits.go)

	CmdEpochChunk CommandType = 44 // stages a piece of a snapshot for an epoch (restore.go, protocol 4)

	// Caller-executed effects (callereffect.go, protocol 5).
	CmdGatewaySyscall CommandType = 45 // an agent's syscall relayed by a gateway that executes its effect
	CmdEffectReport   CommandType = 46 // a gateway reports how a caller-executed effect ended

	CmdSenseTarget CommandType = 47 // an operator sets the false-alarm target of sensing (sensing2.go, protocol 6)

	// Governed evolution and policy versions (evolve.go, protocol 8).
	CmdEvolveStart    CommandType = 50 // an operator starts a candidate's staged rollout
	CmdEvolveTick     CommandType = 51 // the leader closes an evolution's window (its verdict)
	CmdEvolvePromote  CommandType = 52 // an operator promotes a candidate awaiting promotion
	CmdEvolveAbort    CommandType = 53 // an operator aborts an evolution
	CmdEvolveResume   CommandType = 54 // an operator resumes a paused evolution
	CmdPolicyRollback CommandType = 55 // an operator reinstalls a kept version of a policy set
)

var commandNames = map[CommandType]string{
	CmdGenesis:        "genesis",
	CmdKVPut:          "kv.put",
	CmdKVGet:          "kv.get",
	CmdKVDelete:       "kv.delete",
	CmdKVCAS:          "kv.cas",
	CmdCheckpoint:     "checkpoint",
	CmdEpoch:          "epoch",
	CmdCapGrant:       "cap.grant",
	CmdCapDelegate:    "cap.delegate",
	CmdCapRevoke:      "cap.revoke",
	CmdSyscall:        "syscall",
	CmdPolicySet:      "policy.set",
	CmdApprovalDecide: "approval.decide",
	CmdHalt:           "halt",
	CmdResume:         "resume",
	CmdEffectComplete: "effect.complete",

	CmdFedDomainCreate:   "fed.domain.create",
	CmdFedJoin:           "fed.join",
	CmdFedPassport:       "fed.passport",
	CmdFedPassportRevoke: "fed.passport.revoke",
	CmdFedSigner:         "fed.signer",
	CmdFedWitness:        "fed.witness",
	CmdFedAmendPropose:   "fed.amend.propose",
	CmdFedAmendSign:      "fed.amend.sign",
	CmdFedAmendVeto:      "fed.amend.veto",
	CmdFedCanonAck:       "fed.canon.ack",
	CmdFedUpdate:         "fed.update",
	CmdFedHalt:           "fed.halt",
	CmdFedResume:         "fed.resume",
	CmdBusReceive:        "bus.receive",
	CmdBusDelivered:      "bus.delivered",
	CmdFedSuspend:        "fed.suspend",

	CmdSignalIngest: "signal.ingest",
	CmdTrustAdjust:  "trust.adjust",
	CmdKnowledge:    "knowledge",

	CmdFedOperatorRekey: "fed.operator.rekey",

	CmdProtocolUpgrade: "protocol.upgrade",
	CmdFedProtocolAck:  "fed.protocol.ack",

	CmdMemberAdmit:   "member.admit",
	CmdMemberUpdate:  "member.update",
	CmdFedKeysRotate: "fed.keys.rotate",
	CmdFedKeysSign:   "fed.keys.sign",

	CmdLimitsSet: "limits.set",

	CmdEpochChunk: "epoch.chunk",

	CmdGatewaySyscall: "syscall.gateway",
	CmdEffectReport:   "effect.report",
	CmdSenseTarget:    "sense.target",

	CmdEvolveStart:    "evolve.start",
	CmdEvolveTick:     "evolve.tick",
	CmdEvolvePromote:  "evolve.promote",
	CmdEvolveAbort:    "evolve.abort",
	CmdEvolveResume:   "evolve.resume",
	CmdPolicyRollback: "policy.rollback",
}

func (t CommandType) String() string {
	if n, ok := commandNames[t]; ok {
		return n
	}
	return fmt.Sprintf("command(%d)", uint16(t))
}

// CommandTypeByName returns the type with the given name.
func CommandTypeByName(name string) (CommandType, bool) {
	for t, n := range commandNames { // detcheck:ordered names are unique, the result does not depend on order
		if n == name {
			return t, true
		}
	}
	return 0, false
}

// Envelope is the unit of replication: one Raft log entry's data is the
// canonical encoding of one Envelope. The leader fills Time as it proposes;
// Auth is the SHA-256 of the caller's bearer token, never the token.
type Envelope struct {
	Type      CommandType `codec:"type"`
	RequestID string      `codec:"rid"`
	Auth      []byte      `codec:"auth"`
	Time      int64       `codec:"ts"` // unix nanoseconds, stamped by the proposing leader
	Payload   []byte      `codec:"p"`  // canonical encoding of the type's payload struct
	// Node and NodeSig are an internal command's member evidence
	// (internal.go): the proposing member and its signature. Absent on
	// caller commands and in entries from before protocol 4.
	Node    string `codec:"node,omitempty"`
	NodeSig []byte `codec:"nsig,omitempty"`
}

// Limits on what may enter the log. Checked at the edge before Raft and
// again in the FSM, which must reject (not trust) anything larger.
const (
	MaxEnvelopeBytes = MaxValueBytes + 64<<10
	MaxEpochBytes    = 256 << 20 // an inline epoch carries a whole snapshot (from protocol 4 the kernel stages it in chunks: restore.go)
)

// Payload types. Each is a plain struct with explicit codec tags.

// Genesis seals a new ledger. RootTokenHash is the SHA-256 of the root
// operator token, generated outside the FSM.
type Genesis struct {
	KernelID      string `codec:"kernel_id"`
	CanonHash     []byte `codec:"canon_hash"`
	Protocol      uint16 `codec:"protocol"`
	RootTokenHash []byte `codec:"root_token_hash"`
	DedupWindowNs int64  `codec:"dedup_window_ns"`
	Domain        string `codec:"domain"` // the kernel's domain; "" = "default"

	// Federation (absent on a standalone kernel).
	Role      string            `codec:"role,omitempty"`
	Operators []GenesisOperator `codec:"operators,omitempty"` // sovereign: the named operators
	Threshold int               `codec:"threshold,omitempty"` // sovereign: M of the N operators

	// SenseWindowNs is the ledger-time window of behavioural baselines
	// (protocol 2); 0 = sense.DefaultConfig's 10 s.
	SenseWindowNs int64 `codec:"sense_window_ns,omitempty"`

	// JoinSecretHash is JoinSecretHash(the kernel's join secret), made
	// outside the FSM; Members the node keys of the first members
	// (members.go). Absent in ledgers sealed before they existed.
	JoinSecretHash []byte          `codec:"join_secret_hash,omitempty"`
	Members        []GenesisMember `codec:"members,omitempty"`
}

// KVPut writes Value at Key.
type KVPut struct {
	Key   string `codec:"key"`
	Value []byte `codec:"value"`
}

// KVKey names one key (get, delete).
type KVKey struct {
	Key string `codec:"key"`
	// AsOf (kv.get, protocol 7) asks for the key's value at that seq: the
	// gate judges the call on the current state and the event records
	// the seq; the node answers from its history (package history).
	AsOf uint64 `codec:"as_of,omitempty"`
}

// KVCAS writes Value at Key only if the key's current state matches:
// with ExpectExists, the current value must equal Expect (and, when
// ExpectVersion is non-zero, the current version must equal it);
// without it, the key must be absent.
type KVCAS struct {
	Key           string `codec:"key"`
	ExpectExists  bool   `codec:"expect_exists"`
	Expect        []byte `codec:"expect"`
	ExpectVersion uint64 `codec:"expect_version"`
	Value         []byte `codec:"value"`
}

// Checkpoint records the head at Seq (the current head when proposed).
// It is rejected if Seq/Hash do not match the ledger when applied.
type Checkpoint struct {
	Seq  uint64 `codec:"seq"`
	Hash []byte `codec:"hash"`
}

// Epoch replaces the state with a snapshot's, starting a new epoch whose
// first event links the old head to the snapshot's head. The snapshot is
// carried inline, or (protocol 4) named by the staging that holds it:
// Restore, its id, and Digest, the snapshot's SHA-256 (restore.go).
type Epoch struct {
	Snapshot []byte `codec:"snapshot"`
	Restore  string `codec:"restore,omitempty"`
	Digest   []byte `codec:"digest,omitempty"`
}

// CapGrant issues a capability (an operator's when Operator is set).
// TokenHash is the SHA-256 of a token generated outside the FSM.
type CapGrant struct {
	TokenHash []byte   `codec:"token_hash"`
	Entity    string   `codec:"entity"`
	Operator  bool     `codec:"operator"`
	Domain    string   `codec:"domain"` // "" = this kernel's domain
	Ops       []string `codec:"ops"`
	Resources []string `codec:"resources"`
	TTLNs     int64    `codec:"ttl_ns"` // from ledger time; 0 = no expiry
	Uses      int64    `codec:"uses"`   // 0 = unlimited
}

// CapDelegate derives a child from the caller's capability.
type CapDelegate struct {
	TokenHash []byte   `codec:"token_hash"`
	Entity    string   `codec:"entity"`
	Ops       []string `codec:"ops"`
	Resources []string `codec:"resources"`
	TTLNs     int64    `codec:"ttl_ns"` // 0 = the parent's expiry
	Uses      int64    `codec:"uses"`   // reserved from the parent; 0 = unlimited (only from an unlimited parent)
}

// CapRevoke revokes a capability and, through the ancestor check, its
// whole subtree.
type CapRevoke struct {
	ID string `codec:"id"`
}

// Syscall asks the gate to permit op on resource. Args is opaque to the
// gate except for kv ops; its digest binds approvals.
type Syscall struct {
	Op         string `codec:"op"`
	Resource   string `codec:"resource"`
	Args       []byte `codec:"args"`
	ApprovalID string `codec:"approval_id"`
	// RemoteTokenHash, for a call on another domain's resource
	// ("DOMAIN:resource"), is the hash of the grant token that domain
	// issued to this caller.
	RemoteTokenHash []byte `codec:"remote_token_hash,omitempty"`
}

// PolicySet installs (or, with empty Text, removes) a named Cedar policy set.
type PolicySet struct {
	Name string `codec:"name"`
	Text string `codec:"text"`
	Mode string `codec:"mode"` // ACTIVE or SHADOW
}

// ApprovalDecide approves or denies an escalation.
type ApprovalDecide struct {
	ID      string `codec:"id"`
	Approve bool   `codec:"approve"`
}

// HaltCmd halts an entity ("" = the whole kernel) or resumes it.
type HaltCmd struct {
	Entity string `codec:"entity"`
	Reason string `codec:"reason"`
}

// EffectComplete records how the external effect of the permitted syscall
// at Seq ended. Status is one of EffectOK, EffectFailed, EffectIndeterminate;
// Code is the driver's numeric result (HTTP status, exit code); no error
// text enters the ledger.
type EffectComplete struct {
	Seq          uint64 `codec:"seq"`
	Status       string `codec:"status"`
	Code         int64  `codec:"code"`
	OutputDigest string `codec:"output_digest"`
}
