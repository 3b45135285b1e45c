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
	CmdGenesis    CommandType = 1 // seals the canon hash, kernel id, protocol version; creates the root operator
	CmdKVPut      CommandType = 2
	CmdKVGet      CommandType = 3
	CmdKVDelete   CommandType = 4
	CmdKVCAS      CommandType = 5
	CmdCheckpoint CommandType = 6 // records the current head as one the cluster vouches for
	CmdEpoch      CommandType = 7 // replaces state from a verified snapshot, linked to the old head
)

var commandNames = map[CommandType]string{
	CmdGenesis:    "genesis",
	CmdKVPut:      "kv.put",
	CmdKVGet:      "kv.get",
	CmdKVDelete:   "kv.delete",
	CmdKVCAS:      "kv.cas",
	CmdCheckpoint: "checkpoint",
	CmdEpoch:      "epoch",
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
}

// Limits on what may enter the log. Checked at the edge before Raft and
// again in the FSM, which must reject (not trust) anything larger.
const (
	MaxRequestIDBytes = 128
	MaxKeyBytes       = 1024
	MaxValueBytes     = 1 << 20
	MaxEnvelopeBytes  = MaxValueBytes + 64<<10
	MaxEpochBytes     = 256 << 20 // an epoch command carries a whole snapshot
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
}

// KVPut writes Value at Key.
type KVPut struct {
	Key   string `codec:"key"`
	Value []byte `codec:"value"`
}

// KVKey names one key (get, delete).
type KVKey struct {
	Key string `codec:"key"`
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
// first event links the old head to the snapshot's head.
type Epoch struct {
	Snapshot []byte `codec:"snapshot"`
}
