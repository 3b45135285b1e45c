package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// MaxProofBytes bounds a proof file.
const MaxProofBytes = 1 << 20

// VerifyProof checks an inclusion or a consistency proof (the JSON of
// `dominus ledger prove` or `ledger consistency`) offline, against a
// checkpoint the auditor holds and the kernel's checkpoint keys; with
// sovereign keys (may be nil), the checkpoint must also carry the
// sovereign's countersignature. Nothing but the arguments is read.
//
// An inclusion proof must be against the held checkpoint itself (its
// size and root). A consistency proof must have the held checkpoint at
// one end, by size and root, and both of its own checkpoints signed by
// the kernel: so a history that forked from the held checkpoint cannot
// prove consistency with it.
func VerifyProof(proofJSON, checkpoint []byte, kernel tlog.Keys, sovereign *tlog.Keys) api.ProofVerdict {
	var probe map[string]json.RawMessage
	if len(proofJSON) > MaxProofBytes {
		return api.ProofVerdict{Message: fmt.Sprintf("the proof is %d bytes, limit %d", len(proofJSON), MaxProofBytes)}
	}
	if err := json.Unmarshal(proofJSON, &probe); err != nil {
		return api.ProofVerdict{Message: "the proof is not JSON: " + err.Error()}
	}
	held, err := openHeld(checkpoint, kernel, sovereign)
	var v api.ProofVerdict
	switch {
	case probe["leaf_index"] != nil:
		v.Kind = "inclusion"
	case probe["from_size"] != nil:
		v.Kind = "consistency"
	default:
		v.Message = "the file is neither an inclusion nor a consistency proof"
		return v
	}
	if err != nil {
		v.Message = "the checkpoint: " + err.Error()
		return v
	}
	v.KernelID, v.TreeSize, v.Signers, v.Countersigned = held.KernelID, held.Size, held.Names, sovereign != nil
	if v.Kind == "inclusion" {
		var p api.InclusionProof
		if err := json.Unmarshal(proofJSON, &p); err != nil {
			v.Message = "the proof: " + err.Error()
			return v
		}
		v.Seq = p.Seq
		ev, err := verifyInclusion(p, held)
		v.Event = ev
		if err != nil {
			v.Message = err.Error()
			return v
		}
	} else {
		var p api.ConsistencyProof
		if err := json.Unmarshal(proofJSON, &p); err != nil {
			v.Message = "the proof: " + err.Error()
			return v
		}
		v.FromSize = p.FromSize
		if err := verifyConsistency(p, held, kernel); err != nil {
			v.Message = err.Error()
			return v
		}
	}
	v.OK = true
	return v
}

func openHeld(checkpoint []byte, kernel tlog.Keys, sovereign *tlog.Keys) (tlog.Signed, error) {
	if sovereign != nil {
		return tlog.OpenCountersigned(checkpoint, kernel, *sovereign)
	}
	return tlog.Open(checkpoint, kernel)
}

func decodeHashes(hs []string) ([][]byte, error) {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d (%q) is not %d hex bytes", i, h, tlog.HashSize)
		}
		out[i] = b
	}
	return out, nil
}

func decodeHash(what, h string) ([]byte, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != tlog.HashSize {
		return nil, fmt.Errorf("%s %q is not %d hex bytes", what, h, tlog.HashSize)
	}
	return b, nil
}

func verifyInclusion(p api.InclusionProof, held tlog.Signed) (*api.Event, error) {
	switch {
	case p.TreeSize != held.Size:
		return nil, fmt.Errorf("the proof is for a tree of %d events, the checkpoint signs %d", p.TreeSize, held.Size)
	case p.Seq == 0 || p.LeafIndex != p.Seq-1:
		return nil, fmt.Errorf("seq %d is not leaf %d", p.Seq, p.LeafIndex)
	case p.Seq > held.Size:
		return nil, fmt.Errorf("seq %d is beyond the checkpoint's %d events", p.Seq, held.Size)
	}
	root, err := decodeHash("root", p.Root)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(root, held.Root) {
		return nil, fmt.Errorf("the proof's root %x is not the checkpoint's %x", root, held.Root)
	}
	eventHash, err := decodeHash("event hash", p.EventHash)
	if err != nil {
		return nil, err
	}
	hashes, err := decodeHashes(p.Proof)
	if err != nil {
		return nil, err
	}
	var ev *api.Event
	if p.EventRecord != "" {
		if ev, err = checkEventRecord(p.EventRecord, p.Seq, eventHash); err != nil {
			return nil, err
		}
	}
	if p.Seq == held.Size && !bytes.Equal(eventHash, held.Head) {
		return ev, fmt.Errorf("event %d hashes to %x, the checkpoint's head at that seq is %x", p.Seq, eventHash, held.Head)
	}
	if err := tlog.VerifyInclusion(p.LeafIndex, p.TreeSize, eventHash, hashes, held.Root); err != nil {
		return ev, fmt.Errorf("event %d is not in the checkpoint's tree: %v", p.Seq, err)
	}
	return ev, nil
}

// checkEventRecord decodes an event's canonical record and checks that
// it is event seq and hashes, with the prev it names, to eventHash.
func checkEventRecord(b64 string, seq uint64, eventHash []byte) (*api.Event, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("event record: %v", err)
	}
	var ev fsm.Event
	if err := fsm.Decode(raw, &ev); err != nil {
		return nil, fmt.Errorf("event record: %v", err)
	}
	if ev.Seq != seq {
		return nil, fmt.Errorf("the event record is seq %d, the proof names %d", ev.Seq, seq)
	}
	if h := fsm.ChainHash(ev.Prev, &ev); !bytes.Equal(h[:], eventHash) {
		return nil, fmt.Errorf("the event record hashes to %x, not the proven event hash %x", h, eventHash)
	}
	out := &api.Event{Seq: ev.Seq, Time: time.Unix(0, ev.Time).UTC(), Epoch: ev.Epoch, Index: ev.Index, Type: ev.Type.String(),
		Actor: ev.Actor, RequestID: ev.RequestID, Subject: ev.Subject, Decision: ev.Decision.JSON(), Reason: ev.Reason.String(),
		PayloadHash: hex.EncodeToString(ev.PayloadHash), Prev: hex.EncodeToString(ev.Prev), Hash: hex.EncodeToString(eventHash)}
	var d fsm.SyscallDetail
	if len(ev.Detail) > 0 && fsm.Decode(ev.Detail, &d) == nil {
		out.Op, out.CapID = d.Op, d.CapID
	}
	return out, nil
}

func verifyConsistency(p api.ConsistencyProof, held tlog.Signed, kernel tlog.Keys) error {
	if p.FromSize > p.ToSize {
		return fmt.Errorf("from size %d is beyond to size %d", p.FromSize, p.ToSize)
	}
	from, err := tlog.Open([]byte(p.From), kernel)
	if err != nil {
		return fmt.Errorf("the proof's from checkpoint: %w", err)
	}
	to, err := tlog.Open([]byte(p.To), kernel)
	if err != nil {
		return fmt.Errorf("the proof's to checkpoint: %w", err)
	}
	switch {
	case from.KernelID != to.KernelID || from.KernelID != held.KernelID:
		return fmt.Errorf("the checkpoints name kernels %s, %s and %s", held.KernelID, from.KernelID, to.KernelID)
	case from.Size != p.FromSize || to.Size != p.ToSize:
		return fmt.Errorf("the proof's sizes %d..%d are not its checkpoints' %d..%d", p.FromSize, p.ToSize, from.Size, to.Size)
	}
	atFrom := held.Size == from.Size && bytes.Equal(held.Root, from.Root)
	atTo := held.Size == to.Size && bytes.Equal(held.Root, to.Root)
	if !atFrom && !atTo {
		return fmt.Errorf("the held checkpoint (size %d, root %x) is at neither end of the proof (%d: %x, %d: %x): a different history",
			held.Size, held.Root, from.Size, from.Root, to.Size, to.Root)
	}
	hashes, err := decodeHashes(p.Proof)
	if err != nil {
		return err
	}
	if err := tlog.VerifyConsistency(from.Size, to.Size, hashes, from.Root, to.Root); err != nil {
		return fmt.Errorf("the history at %d does not extend the history at %d: %v", to.Size, from.Size, err)
	}
	return nil
}
