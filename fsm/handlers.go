package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"

	"github.com/dominus-kernel/dominus/sense"
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

// kvEffect runs a permitted kv operation against the store.
func (l *Ledger) kvEffect(op, key string, args []byte) outcome {
	switch op {
	case "kv.put":
		return l.kvWrite(key, args)
	case "kv.get":
		e := l.st.KV[key]
		if e == nil {
			return outcome{decision: DecisionPermit, reason: ReasonNotFound}
		}
		// A stored value is never written in place (kvWrite replaces it),
		// so the answer may share it.
		return outcome{decision: DecisionPermit, value: e.Value, found: true, version: e.Version}
	case "kv.delete":
		if _, ok := l.st.KV[key]; !ok {
			return outcome{decision: DecisionPermit, reason: ReasonNotFound}
		}
		l.st.kvBytes -= kvSize(key, l.st.KV[key].Value)
		delete(l.st.KV, key)
		return outcome{decision: DecisionPermit, found: true}
	case "kv.cas":
		var p KVCAS
		if err := Decode(args, &p); err != nil {
			return deny(ReasonMalformed)
		}
		return l.kvCAS(key, p)
	}
	return deny(ReasonUnknownOp)
}

// kvPrecheck validates a kv call's arguments before the gate judges it.
func kvPrecheck(op, key string, args []byte) Reason {
	if !validKey(key) {
		return ReasonInvalidArgument
	}
	switch op {
	case "kv.put":
		if len(args) > MaxValueBytes {
			return ReasonTooLarge
		}
	case "kv.get", "kv.delete":
	case "kv.cas":
		var p KVCAS
		if err := Decode(args, &p); err != nil {
			return ReasonMalformed
		}
		if len(p.Value) > MaxValueBytes || len(p.Expect) > MaxValueBytes {
			return ReasonTooLarge
		}
	default:
		return ReasonUnknownOp
	}
	return ReasonOK
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
		panic(UnknownProtocolError{Protocol: g.Protocol, Index: c.index})
	}
	if len(g.CanonHash) != sha256.Size || len(g.RootTokenHash) != sha256.Size || g.KernelID == "" || len(g.KernelID) > 128 || len(g.Domain) > MaxEntityBytes {
		return deny(ReasonInvalidArgument)
	}
	window := g.DedupWindowNs
	if window == 0 {
		window = DefaultDedupWindow
	}
	if window < MinDedupWindow || window > MaxDedupWindow {
		return deny(ReasonInvalidArgument)
	}
	if g.Domain == "" {
		g.Domain = DefaultDomain
	}
	if !validName(g.Domain) {
		return deny(ReasonInvalidArgument)
	}
	if g.SenseWindowNs != 0 {
		cfg := sense.DefaultConfig()
		cfg.WindowNs = g.SenseWindowNs
		if g.Protocol < ProtocolSensing || cfg.Validate() != nil {
			return deny(ReasonInvalidArgument)
		}
	}
	fed, opCaps, r := l.sealFederation(&g, c)
	if r != ReasonOK {
		return deny(r)
	}
	members, r := sealMembers(&g, st.Seq+1)
	if r != ReasonOK {
		return deny(r)
	}
	st.Initialized = true
	st.Meta = Meta{
		KernelID:      g.KernelID,
		CanonHash:     append([]byte(nil), g.CanonHash...),
		Protocol:      g.Protocol,
		GenesisTime:   c.now,
		DedupWindowNs: window,
	}
	st.Meta.Domain = g.Domain
	st.Meta.Role = g.Role
	st.Meta.SenseWindowNs = g.SenseWindowNs
	st.Meta.JoinSecretHash = append([]byte(nil), g.JoinSecretHash...)
	if g.JoinSecretHash == nil {
		st.Meta.JoinSecretHash = nil
	}
	st.members = members
	root := &Capability{
		ID: capID(st.Seq + 1), TokenHash: hex.EncodeToString(g.RootTokenHash), Entity: RootOperatorName,
		Operator: true, Domain: g.Domain, Ops: []string{"*"}, Resources: []string{"*"},
		GrantedBy: "genesis", Created: st.Seq + 1,
	}
	l.addCap(root)
	for _, oc := range opCaps {
		if st.CapByToken(oc.TokenHash) != nil {
			panic("fsm: genesis operator token checked unique but repeated")
		}
		l.addCap(oc)
	}
	st.Fed = fed
	// Genesis is attributed to the root operator it creates.
	c.actor = RootOperatorName
	return outcome{decision: DecisionPermit, id: root.ID}
}

func validKey(k string) bool {
	return k != "" && len(k) <= MaxKeyBytes
}

func applyKVPut(l *Ledger, c *call) outcome {
	var p KVPut
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	return l.syscall(c, "kv.put", p.Key, p.Value, "")
}

// kvWrite stores value at key as written by the next event.
func (l *Ledger) kvWrite(key string, value []byte) outcome {
	st := l.st
	seq := st.Seq + 1
	e := st.KV[key]
	if e == nil {
		e = &KVEntry{Created: seq}
		st.KV[key] = e
		st.kvBytes += int64(len(key))
	}
	st.kvBytes += int64(len(value) - len(e.Value))
	e.Value = append([]byte(nil), value...)
	e.Version = seq
	return outcome{decision: DecisionPermit, found: true, version: seq}
}

func applyKVGet(l *Ledger, c *call) outcome {
	var p KVKey
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	return l.syscall(c, "kv.get", p.Key, nil, "")
}

func applyKVDelete(l *Ledger, c *call) outcome {
	var p KVKey
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	return l.syscall(c, "kv.delete", p.Key, nil, "")
}

func applyKVCAS(l *Ledger, c *call) outcome {
	var p KVCAS
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	return l.syscall(c, "kv.cas", p.Key, Encode(&p), "")
}

func (l *Ledger) kvCAS(key string, p KVCAS) outcome {
	e := l.st.KV[key]
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
	return l.kvWrite(key, p.Value)
}

func applyCheckpoint(l *Ledger, c *call) outcome {
	var p Checkpoint
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	st := l.st
	c.subject = "checkpoint"
	if r := l.govern(c, OpSnapshot, "*"); r != ReasonOK {
		return deny(r)
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

// applyEpoch replaces the data state (the kv store) with a snapshot's,
// carried inline or (protocol 4) staged by epoch.chunk (restore.go). The
// snapshot must verify, belong to this kernel and canon, and carry a head
// the cluster recorded as a checkpoint. Governance state (principals,
// checkpoints, meta) is kept; the dedup table and any staging are
// cleared; the chain continues from the current head, so nothing is
// silently rewound.
func applyEpoch(l *Ledger, c *call) outcome {
	var p Epoch
	if err := Decode(c.env.Payload, &p); err != nil {
		return deny(ReasonMalformed)
	}
	staged := p.Restore != "" || p.Digest != nil
	if staged && !l.authority() {
		// Before protocol 4 an epoch has no such fields: the payload did
		// not decode, as it does not for a binary from before them.
		return deny(ReasonMalformed)
	}
	st := l.st
	c.subject = "epoch"
	if r := l.govern(c, OpSnapshot, "*"); r != ReasonOK {
		return deny(r)
	}
	snapshot := p.Snapshot
	if staged {
		var r Reason
		if snapshot, r = l.stagedSnapshot(c, &p); r != ReasonOK {
			return deny(r)
		}
	}
	f, snap, err := DecodeSnapshot(snapshot)
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
	st.kvBytes = snap.kvBytes
	st.Epoch++
	st.dedup = map[dedupKey]int{}
	st.dedupQueue = dedupRing{}
	st.dedupBase = 0
	st.dedupCount = map[string]int{}
	st.Staging = nil
	l.digestOK = false
	return outcome{decision: DecisionPermit}
}
