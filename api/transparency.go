package api

// Checkpoint is a signed checkpoint of a kernel's ledger
// (GET/POST /v1/ledger/checkpoint): Note is the signed note itself, the
// rest is its text parsed for reading.
type Checkpoint struct {
	KernelID string   `json:"kernel_id"`
	TreeSize uint64   `json:"tree_size"`
	Root     string   `json:"root"` // hex
	Head     string   `json:"head"` // hex: the chain head at seq tree_size
	Time     int64    `json:"time"` // ledger time of event tree_size, unix ns
	Signers  []string `json:"signers"`
	Note     string   `json:"checkpoint"`
}

// CheckpointKeys are a kernel's checkpoint verification keys
// (GET /v1/ledger/checkpoint/keys): the note verifier key of every member
// node key the ledger recorded, with the seq that recorded it. Text is
// the key file `dominus audit verify-proof --kernel-key` reads.
type CheckpointKeys struct {
	KernelID string          `json:"kernel_id"`
	KeyName  string          `json:"key_name"`
	Keys     []CheckpointKey `json:"keys"`
	Text     string          `json:"text"`
}

// CheckpointKey is one member's verifier key.
type CheckpointKey struct {
	Node    string `json:"node"`
	Key     string `json:"key"`
	Since   uint64 `json:"since"` // seq of the event that recorded it
	Removed bool   `json:"removed,omitempty"`
}

// InclusionProof proves that event Seq is leaf LeafIndex (= Seq-1) of the
// tree of TreeSize leaves whose root is Root, which Checkpoint signs
// (GET /v1/ledger/proof/inclusion/{seq}). EventHash is the leaf (the
// chain head after the event); EventRecord, when present, is the event's
// canonical record (base64), which hashes with its prev to EventHash.
type InclusionProof struct {
	Seq         uint64   `json:"seq"`
	LeafIndex   uint64   `json:"leaf_index"`
	TreeSize    uint64   `json:"tree_size"`
	Root        string   `json:"root"`
	Proof       []string `json:"proof"`
	Checkpoint  string   `json:"checkpoint"`
	EventHash   string   `json:"event_hash"`
	EventRecord string   `json:"event_record,omitempty"`
}

// ConsistencyProof proves that the tree of FromSize leaves (root
// FromRoot, signed by From) is a prefix of the tree of ToSize leaves
// (root ToRoot, signed by To) (GET /v1/ledger/proof/consistency).
type ConsistencyProof struct {
	FromSize uint64   `json:"from_size"`
	ToSize   uint64   `json:"to_size"`
	FromRoot string   `json:"from_root"`
	ToRoot   string   `json:"to_root"`
	Proof    []string `json:"proof"`
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
}

// ProofVerdict is what `dominus audit verify-proof` reports.
type ProofVerdict struct {
	OK            bool     `json:"ok"`
	Kind          string   `json:"kind"` // inclusion or consistency
	KernelID      string   `json:"kernel_id,omitempty"`
	TreeSize      uint64   `json:"tree_size,omitempty"`
	Seq           uint64   `json:"seq,omitempty"`
	FromSize      uint64   `json:"from_size,omitempty"`
	Signers       []string `json:"signers,omitempty"`
	Countersigned bool     `json:"countersigned"`
	Event         *Event   `json:"event,omitempty"`
	Message       string   `json:"message,omitempty"`
}
