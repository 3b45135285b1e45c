package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"

	"github.com/dominus-kernel/dominus/sense"
)

func init() {
	registerTyped(CmdGenesis, typedSpec[Genesis]{proposer: proposerGenesis, run: applyGenesis})
	// The kv commands are syscalls on the key: the gate judges the
	// caller's capability.
	registerTyped(CmdKVPut, typedSpec[KVPut]{proposer: proposerCaller, run: func(l *Ledger, c *call, p *KVPut) outcome {
		return l.syscall(c, "kv.put", p.Key, p.Value, "")
	}})
	registerTyped(CmdKVGet, typedSpec[KVKey]{
		proposer: proposerCaller,
		// An as-of read exists from protocol 7, and names a seq the
		// ledger has reached.
		wellFormed: func(l *Ledger, p *KVKey) bool { return p.AsOf == 0 || l.temporal() && p.AsOf <= l.st.Seq },
		run: func(l *Ledger, c *call, p *KVKey) outcome {
			c.asOf = p.AsOf
			return l.syscall(c, "kv.get", p.Key, nil, "")
		},
	})
	registerTyped(CmdKVDelete, typedSpec[KVKey]{proposer: proposerCaller, wellFormed: func(_ *Ledger, p *KVKey) bool { return p.AsOf == 0 }, run: func(l *Ledger, c *call, p *KVKey) outcome {
		return l.syscall(c, "kv.delete", p.Key, nil, "")
	}})
	registerTyped(CmdKVCAS, typedSpec[KVCAS]{proposer: proposerCaller, run: func(l *Ledger, c *call, p *KVCAS) outcome {
		return l.syscall(c, "kv.cas", p.Key, Encode(p), "")
	}})
	registerTyped(CmdCheckpoint, typedSpec[Checkpoint]{
		proposer: proposerCaller, op: OpSnapshot, resource: "*",
		subject: func(*Ledger, *Checkpoint) string { return "checkpoint" },
		run:     applyCheckpoint,
	})
	registerTyped(CmdEpoch, typedSpec[Epoch]{
		proposer: proposerCaller, op: OpSnapshot, resource: "*",
		// Before protocol 4 an epoch has no staging fields: such a
		// payload did not decode, as it does not for a binary from
		// before them.
		wellFormed: func(l *Ledger, p *Epoch) bool { return !p.staged() || l.authority() },
		subject:    func(*Ledger, *Epoch) string { return "epoch" },
		run:        applyEpoch,
	})
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

func applyGenesis(l *Ledger, c *call, g *Genesis) outcome {
	st := l.st
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
	fed, opCaps, r := l.sealFederation(g, c)
	if r != ReasonOK {
		return deny(r)
	}
	members, r := sealMembers(g, st.Seq+1)
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

func applyCheckpoint(l *Ledger, c *call, p *Checkpoint) outcome {
	st := l.st
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

// staged reports whether an epoch names a staged snapshot (restore.go)
// rather than carrying one.
func (p *Epoch) staged() bool { return p.Restore != "" || p.Digest != nil }

// applyEpoch replaces the data state (the kv store) with a snapshot's,
// carried inline or (protocol 4) staged by epoch.chunk (restore.go). The
// snapshot must verify, belong to this kernel and canon, and carry a head
// the cluster recorded as a checkpoint. Governance state (principals,
// checkpoints, meta) is kept; the dedup table and any staging are
// cleared; the chain continues from the current head, so nothing is
// silently rewound.
func applyEpoch(l *Ledger, c *call, p *Epoch) outcome {
	st := l.st
	snapshot := p.Snapshot
	if p.staged() {
		var r Reason
		if snapshot, r = l.stagedSnapshot(c, p); r != ReasonOK {
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
