package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
)

func init() {
	register(CmdGenesis, handlerSpec{run: applyGenesis})
	register(CmdKVPut, handlerSpec{auth: true, run: applyKVPut})
	register(CmdKVGet, handlerSpec{auth: true, run: applyKVGet})
	register(CmdKVDelete, handlerSpec{auth: true, run: applyKVDelete})
	register(CmdKVCAS, handlerSpec{auth: true, run: applyKVCAS})
	register(CmdCheckpoint, handlerSpec{auth: true, run: applyCheckpoint})
	register(CmdEpoch, handlerSpec{auth: true, run: applyEpoch})
}

// RootOperatorName is the principal created by genesis.
const RootOperatorName = "root"

func applyGenesis(l *Ledger, c *call) outcome {
	st := l.st
	c.subject = "genesis"
	if st.Initialized {
		return deny(ReasonAlreadyInitialized)
	}
	var g Genesis
	if err := Decode(c.env.Payload, &g); err != nil {
		return deny(ReasonMalformed)
	}
	if g.Protocol == 0 || g.Protocol > ProtocolVersion {
		// A ledger sealed under rules this binary lacks must not be
		// applied with other rules.
		panic(UnknownProtocolError{Protocol: g.Protocol})
	}
	if len(g.CanonHash) != sha256.Size || len(g.RootTokenHash) != sha256.Size || g.KernelID == "" || len(g.KernelID) > 128 {
		return deny(ReasonInvalidArgument)
	}
	window := g.DedupWindowNs
	if window == 0 {
		window = DefaultDedupWindow
	}
	if window < MinDedupWindow || window > MaxDedupWindow {
		return deny(ReasonInvalidArgument)
	}
	st.Initialized = true
	st.Meta = Meta{
		KernelID:      g.KernelID,
		CanonHash:     append([]byte(nil), g.CanonHash...),
		Protocol:      g.Protocol,
		GenesisTime:   c.now,
		DedupWindowNs: window,
	}
	root := &Principal{Name: RootOperatorName, Root: true, Created: st.Seq + 1}
	st.Principals[hex.EncodeToString(g.RootTokenHash)] = root
	// Genesis is attributed to the root operator it creates.
	c.principal = root
	return outcome{decision: DecisionPermit}
}

// UnknownProtocolError is the panic value for a ledger sealed under a
// protocol version newer than this binary implements.
type UnknownProtocolError struct{ Protocol uint16 }

func (e UnknownProtocolError) Error() string {
	return "fsm: ledger protocol version is not implemented by this binary; upgrade before applying it"
}

func validKey(k string) bool {
	return k != "" && len(k) <= MaxKeyBytes
}

func applyKVPut(l *Ledger, c *call) outcome {
	var p KVPut
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	c.subject = p.Key
	if !validKey(p.Key) {
		return deny(ReasonInvalidArgument)
	}
	if len(p.Value) > MaxValueBytes {
		return deny(ReasonTooLarge)
	}
	return l.kvWrite(p.Key, p.Value)
}

// kvWrite stores value at key as written by the next event.
func (l *Ledger) kvWrite(key string, value []byte) outcome {
	st := l.st
	seq := st.Seq + 1
	e := st.KV[key]
	if e == nil {
		e = &KVEntry{Created: seq}
		st.KV[key] = e
	}
	e.Value = append([]byte(nil), value...)
	e.Version = seq
	return outcome{decision: DecisionPermit, found: true, version: seq}
}

func applyKVGet(l *Ledger, c *call) outcome {
	var p KVKey
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	c.subject = p.Key
	if !validKey(p.Key) {
		return deny(ReasonInvalidArgument)
	}
	e := l.st.KV[p.Key]
	if e == nil {
		return outcome{decision: DecisionPermit, reason: ReasonNotFound}
	}
	return outcome{decision: DecisionPermit, value: append([]byte(nil), e.Value...), found: true, version: e.Version}
}

func applyKVDelete(l *Ledger, c *call) outcome {
	var p KVKey
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	c.subject = p.Key
	if !validKey(p.Key) {
		return deny(ReasonInvalidArgument)
	}
	if _, ok := l.st.KV[p.Key]; !ok {
		return outcome{decision: DecisionPermit, reason: ReasonNotFound}
	}
	delete(l.st.KV, p.Key)
	return outcome{decision: DecisionPermit, found: true}
}

func applyKVCAS(l *Ledger, c *call) outcome {
	var p KVCAS
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	c.subject = p.Key
	if !validKey(p.Key) {
		return deny(ReasonInvalidArgument)
	}
	if len(p.Value) > MaxValueBytes || len(p.Expect) > MaxValueBytes {
		return deny(ReasonTooLarge)
	}
	e := l.st.KV[p.Key]
	match := false
	switch {
	case !p.ExpectExists:
		match = e == nil
	case e != nil:
		match = bytes.Equal(e.Value, p.Expect) && (p.ExpectVersion == 0 || p.ExpectVersion == e.Version)
	}
	if !match {
		// A failed comparison is a permitted operation with a negative
		// answer: the caller learns the current value.
		out := outcome{decision: DecisionPermit, reason: ReasonCASMismatch}
		if e != nil {
			out.value, out.found, out.version = append([]byte(nil), e.Value...), true, e.Version
		}
		return out
	}
	return l.kvWrite(p.Key, p.Value)
}

func applyCheckpoint(l *Ledger, c *call) outcome {
	var p Checkpoint
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	st := l.st
	c.subject = "checkpoint"
	if !c.principal.Root {
		return deny(ReasonForbidden)
	}
	if len(p.Hash) != sha256.Size || p.Seq == 0 || p.Seq > st.Seq {
		return deny(ReasonInvalidArgument)
	}
	if p.Seq == st.Seq && !bytes.Equal(p.Hash, st.Head[:]) {
		return deny(ReasonHeadMismatch)
	}
	l.addCheckpoint(HeadRef{Seq: p.Seq, Hash: append([]byte(nil), p.Hash...)})
	return outcome{decision: DecisionPermit}
}

func (l *Ledger) addCheckpoint(h HeadRef) {
	st := l.st
	if st.HasCheckpoint(h) {
		return
	}
	st.Checkpoints = append(st.Checkpoints, h)
	if len(st.Checkpoints) > MaxCheckpoints {
		st.Checkpoints = append([]HeadRef(nil), st.Checkpoints[len(st.Checkpoints)-MaxCheckpoints:]...)
	}
}

// applyEpoch replaces the data state (the kv store) with a snapshot's. The
// snapshot must verify, belong to this kernel and canon, and carry a head
// the cluster recorded as a checkpoint. Governance state (principals,
// checkpoints, meta) is kept; the dedup table is cleared; the chain
// continues from the current head, so nothing is silently rewound.
func applyEpoch(l *Ledger, c *call) outcome {
	var p Epoch
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	st := l.st
	c.subject = "epoch"
	if !c.principal.Root {
		return deny(ReasonForbidden)
	}
	f, snap, err := DecodeSnapshot(p.Snapshot)
	if err != nil {
		return deny(ReasonSnapshotInvalid)
	}
	c.subject = "epoch from " + f.Head.String()
	if !snap.Initialized || snap.Meta.KernelID != st.Meta.KernelID || !bytes.Equal(snap.Meta.CanonHash, st.Meta.CanonHash) {
		return deny(ReasonSnapshotInvalid)
	}
	if !st.HasCheckpoint(f.Head) {
		return deny(ReasonHeadMismatch)
	}
	st.KV = snap.KV
	st.Epoch++
	st.dedup = map[dedupKey]int{}
	st.dedupQueue = nil
	st.dedupBase = 0
	l.digestOK = false
	return outcome{decision: DecisionPermit}
}
