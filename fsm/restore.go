package fsm

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math"
	"slices"
	"strconv"
)

// Staged restores (protocol 4): a snapshot reaches the ledger in chunks,
// so no Raft entry carries more than MaxEpochChunkBytes of it, and the
// epoch that installs it names what was staged instead of carrying it.
//
//   - epoch.chunk (snapshot.manage) with Restore "" opens a staging: it
//     declares the whole snapshot's Size and SHA-256 Digest, carries its
//     first bytes, and replaces any staging already open (a kernel holds
//     at most one; the newest restore wins). The staging's id is
//     "rst-SEQ", SEQ the opening event's; the answer's ID names it.
//   - Every later chunk names the staging, comes from the capability that
//     opened it (forbidden otherwise) and continues exactly where the
//     staged bytes end (Offset; sequence_gap otherwise); the staged bytes
//     never pass the declared Size (too_large).
//   - A staging's Size is bounded by MaxStagedBytes: twice the kv bound in
//     force plus MaxEpochBytes for what a snapshot holds besides the kv
//     store, at most MaxStagedBytesLimit (quota_exceeded beyond). An
//     operator restoring a snapshot of many tiny entries raises the kv
//     bound first (limits.set).
//   - epoch with Restore and Digest installs the staging: it must be
//     complete (restore_incomplete), Digest must be the one declared and
//     the SHA-256 of the staged bytes (snapshot_invalid), and then the
//     snapshot is judged as an inline epoch's is. An installed staging is
//     cleared; a refused epoch changes nothing, so the caller may retry or
//     abort.
//   - epoch.chunk with Abort drops the staging it names.
//
// The staging is replicated state: it is part of the state digest and of
// every snapshot, so a Raft snapshot taken while a restore is staged
// restores it, and the restore completes after. Under protocol 3 an
// epoch.chunk is unsupported_protocol and an epoch naming a staging is
// malformed (an earlier binary does not know the fields).

// Bounds of staged restores.
const (
	// MaxEpochChunkBytes is the most snapshot bytes one epoch.chunk
	// carries: a chunk entry fits MaxEnvelopeBytes like every other
	// entry but an inline epoch.
	MaxEpochChunkBytes = MaxValueBytes
	// MaxStagedBytesLimit bounds a staging whatever the kv bound: a
	// snapshot's body is one msgpack bin, at most 4 GiB - 1.
	MaxStagedBytesLimit = int64(math.MaxUint32)
)

func init() {
	registerTyped(CmdEpochChunk, typedSpec[EpochChunk]{
		proposer: proposerCaller, op: OpSnapshot, resource: "*", since: (*Ledger).authority,
		subject: func(_ *Ledger, p *EpochChunk) string {
			if p.Restore != "" {
				return "restore " + p.Restore
			}
			return "restore"
		},
		run: applyEpochChunk,
	})
}

// EpochChunk stages one piece of a snapshot for a restore (protocol 4).
type EpochChunk struct {
	Restore string `codec:"restore"`          // "" opens a staging; else the staging's id
	Offset  int64  `codec:"offset"`           // where Data goes: the bytes staged so far
	Size    int64  `codec:"size,omitempty"`   // opening chunk: the whole snapshot's bytes
	Digest  []byte `codec:"digest,omitempty"` // opening chunk: SHA-256 of the whole snapshot
	Data    []byte `codec:"data"`
	Abort   bool   `codec:"abort,omitempty"` // drop the staging Restore names (no Data)
}

// RestoreStaging is the snapshot being staged, in order, up to Size bytes.
type RestoreStaging struct {
	ID     string `codec:"id"`
	By     string `codec:"by"` // the capability that opened it
	Size   int64  `codec:"size"`
	Digest []byte `codec:"digest"`
	Data   []byte `codec:"data"`
}

// Staged returns the open staging's id, its bytes staged and declared,
// or ok false when none is open.
func (s *State) Staged() (id string, staged, size int64, ok bool) {
	if s.Staging == nil {
		return "", 0, 0, false
	}
	return s.Staging.ID, int64(len(s.Staging.Data)), s.Staging.Size, true
}

// MaxStagedBytes is the largest snapshot a staging may declare under
// the limits in force.
func (s *State) MaxStagedBytes() int64 {
	kv := s.EffectiveLimits().KVBytes
	if kv > (MaxStagedBytesLimit-MaxEpochBytes)/2 {
		return MaxStagedBytesLimit
	}
	return 2*kv + MaxEpochBytes
}

func applyEpochChunk(l *Ledger, c *call, p *EpochChunk) outcome {
	if r := l.chunkFits(c, p); r != ReasonOK {
		return deny(r)
	}
	st := l.st
	if p.Abort {
		st.Staging = nil
		c.detail = Encode(&GovernanceDetail{Target: p.Restore, Note: "aborted"})
		return outcome{decision: DecisionPermit, id: p.Restore}
	}
	if p.Restore == "" {
		st.Staging = &RestoreStaging{ID: "rst-" + strconv.FormatUint(st.Seq+1, 10), By: c.cap.ID, Size: p.Size, Digest: append([]byte(nil), p.Digest...)}
		c.subject = "restore " + st.Staging.ID
	}
	s := st.Staging
	if int64(cap(s.Data)) < s.Size {
		// One allocation of the declared size (bounded by MaxStagedBytes)
		// rather than a copy at every growth.
		s.Data = slices.Grow(s.Data, int(s.Size)-len(s.Data))
	}
	// Appending never writes below len(Data): a captured state body
	// (DigestLater) keeps seeing the bytes it captured.
	s.Data = append(s.Data, p.Data...)
	c.detail = Encode(&GovernanceDetail{Target: s.ID, Note: "staged " + strconv.FormatInt(p.Offset, 10) + ".." +
		strconv.FormatInt(int64(len(s.Data)), 10) + " of " + strconv.FormatInt(s.Size, 10) + " bytes"})
	return outcome{decision: DecisionPermit, id: s.ID}
}

// chunkFits checks an epoch.chunk against the staging it opens, extends
// or aborts.
func (l *Ledger) chunkFits(c *call, p *EpochChunk) Reason {
	if p.Restore == "" { // opens a staging
		switch {
		case p.Abort || p.Offset != 0 || p.Size <= 0 || len(p.Digest) != sha256.Size || len(p.Data) == 0:
			return ReasonInvalidArgument
		case p.Size > l.st.MaxStagedBytes():
			return ReasonQuotaExceeded
		case len(p.Data) > MaxEpochChunkBytes || int64(len(p.Data)) > p.Size:
			return ReasonTooLarge
		}
		return ReasonOK
	}
	if p.Size != 0 || p.Digest != nil {
		return ReasonInvalidArgument // only the opening chunk declares them
	}
	if p.Abort && (p.Offset != 0 || p.Data != nil) || !p.Abort && len(p.Data) == 0 {
		return ReasonInvalidArgument
	}
	s := l.st.Staging
	switch {
	case s == nil || s.ID != p.Restore:
		return ReasonNotFound
	case s.By != c.cap.ID:
		return ReasonForbidden
	case p.Abort:
		return ReasonOK
	case p.Offset != int64(len(s.Data)):
		return ReasonSequenceGap
	case len(p.Data) > MaxEpochChunkBytes || p.Offset+int64(len(p.Data)) > s.Size:
		return ReasonTooLarge
	}
	return ReasonOK
}

// stagedSnapshot is the snapshot an epoch names by its staging, once the
// staging is complete and its bytes are the ones named.
func (l *Ledger) stagedSnapshot(c *call, p *Epoch) ([]byte, Reason) {
	s := l.st.Staging
	switch {
	case p.Snapshot != nil || p.Restore == "" || len(p.Digest) != sha256.Size:
		return nil, ReasonInvalidArgument
	case s == nil || s.ID != p.Restore:
		return nil, ReasonNotFound
	case s.By != c.cap.ID:
		return nil, ReasonForbidden
	case int64(len(s.Data)) != s.Size:
		return nil, ReasonRestoreIncomplete
	case !bytes.Equal(p.Digest, s.Digest):
		return nil, ReasonSnapshotInvalid
	}
	if sum := sha256.Sum256(s.Data); !bytes.Equal(sum[:], s.Digest) {
		return nil, ReasonSnapshotInvalid
	}
	return s.Data, ReasonOK
}

// validStaging checks a staging read from a snapshot.
func validStaging(s *RestoreStaging) bool {
	return s.ID != "" && s.By != "" && len(s.Digest) == sha256.Size && s.Size > 0 &&
		s.Size <= MaxStagedBytesLimit && int64(len(s.Data)) <= s.Size
}

func (s *RestoreStaging) appendCanonical(b []byte) []byte { return s.encode(b, nil) }

// encode appends the staging to b or, with a sink, writes what b holds
// and the staged bytes to it, returning the rest (stateBody.encode).
func (s *RestoreStaging) encode(b []byte, sink io.Writer) []byte {
	if s == nil {
		return mpNil(b)
	}
	b = mpMap(b, 5)
	b = mpStr(mpStr(b, "by"), s.By)
	b = mpStr(b, "data")
	switch {
	case s.Data == nil:
		b = mpNil(b)
	case sink != nil:
		_, _ = sink.Write(mpBinHeader(b, len(s.Data)))
		_, _ = sink.Write(s.Data)
		b = b[:0]
	default:
		b = mpBin(b, s.Data)
	}
	b = mpBin(mpStr(b, "digest"), s.Digest)
	b = mpStr(mpStr(b, "id"), s.ID)
	return mpInt(mpStr(b, "size"), s.Size)
}

var _ canonicalAppender = (*RestoreStaging)(nil)
