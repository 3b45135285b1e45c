package kernel

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// A snapshot restore (POST /v1/snapshot/restore) is a ledgered new epoch:
//
//  1. The caller's token must hold snapshot.manage before a byte of the
//     body is read (403 otherwise).
//  2. The body is streamed into a file in the data dir, never held in
//     memory, up to Config.MaxRestoreBytes (413 too_large beyond, and
//     before reading when Content-Length says so; 507 disk_full when the
//     data dir cannot take it), and verified on the way: the canonical
//     snapshot file encoding, its format and its body's digest (409
//     verification_failed). The file is removed when the request ends;
//     one left by a crash is removed at the next start.
//  3. The snapshot's head must be in this node's archive or among the
//     recorded checkpoints; an archived head is checkpointed first.
//  4. From protocol 4 the snapshot is staged in epoch.chunk entries of
//     fsm.MaxEpochChunkBytes and installed by an epoch naming the staging
//     and the snapshot's SHA-256 (fsm/restore.go); a refused chunk or
//     epoch is the answer, and the staging is aborted. Before protocol 4
//     it travels inline in one epoch entry of at most fsm.MaxEpochBytes
//     (413 beyond), as every earlier release did.
//
// One restore runs at a time on a node (503 unavailable for another).

// restoreSpoolPrefix names the files restores spool into the data dir.
const restoreSpoolPrefix = "restore-spool-"

// spooledSnapshot is a restore's body in the data dir.
type spooledSnapshot struct {
	path string
	info fsm.SnapshotStreamInfo
	sum  []byte // SHA-256 of the whole snapshot: what the staged epoch names
}

func (n *Node) handleSnapshotRestore(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	// Authority first: a caller without snapshot.manage never gets a byte
	// of its body read, spooled or decoded.
	if err := n.requireScope(r.Context(), caller.Token, fsm.OpSnapshot); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if !n.restoreRun.TryLock() {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeUnavailable, Msg: "another snapshot restore is running on this node; retry when it has ended"})
		return
	}
	defer n.restoreRun.Unlock()
	start := time.Now()
	spool, err := n.spoolSnapshot(r)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	defer os.Remove(spool.path)
	spooled := time.Since(start)
	if err := n.ConsistentRead(r.Context()); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if err := n.checkpointSnapshotHead(r, caller.Token, spool.info.Head); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	var protocol uint16
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { protocol = l.State().Meta.Protocol })
	var res fsm.Result
	chunks := 0
	if protocol < fsm.ProtocolAuthority {
		res, err = n.restoreInline(r.Context(), caller.Token, spool)
	} else {
		res, chunks, err = n.restoreStaged(r.Context(), caller.Token, spool)
	}
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	// The answer came from the leader: this node reports the epoch once
	// it has applied as far (a follower may lag; then it says what it has).
	_ = n.ConsistentRead(r.Context())
	var epoch uint64
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { epoch = l.State().Epoch })
	n.log.Info("snapshot restore", "decision", res.Decision.String(), "reason", res.Reason.String(), "bytes", spool.info.Bytes,
		"chunks", chunks, "head", spool.info.Head.String(), "spooled_in", spooled.String(), "took", time.Since(start).String())
	httpedge.WriteJSON(w, http.StatusOK, api.SnapshotRestoreResponse{Outcome: httpedge.Outcome(res), Epoch: epoch, Bytes: spool.info.Bytes, Chunks: chunks,
		SnapshotHead: api.Head{Seq: spool.info.Head.Seq, Hash: hex.EncodeToString(spool.info.Head.Hash)}})
}

// restoreTooLarge is the 413 of a snapshot beyond the node's bound.
func (n *Node) restoreTooLarge(size int64) error {
	what := "a snapshot of more bytes"
	if size > 0 {
		what = fmt.Sprintf("a snapshot of %d bytes", size)
	}
	return &httpedge.Error{Code: api.CodeTooLarge, Msg: fmt.Sprintf("%s exceeds this node's restore limit of %d bytes (dominus agent --max-restore-bytes)", what, n.cfg.MaxRestoreBytes)}
}

// spoolSnapshot streams the request body into a file in the data dir and
// verifies it on the way; the caller removes the file.
func (n *Node) spoolSnapshot(r *http.Request) (_ *spooledSnapshot, err error) {
	if r.ContentLength > n.cfg.MaxRestoreBytes {
		return nil, n.restoreTooLarge(r.ContentLength)
	}
	if r.ContentLength > 0 {
		if err := n.checkDiskFor(r.ContentLength); err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp(n.cfg.DataDir, restoreSpoolPrefix+"*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	sum := sha256.New()
	bw := bufio.NewWriterSize(f, 1<<20)
	info, err := fsm.VerifySnapshotStream(io.TeeReader(r.Body, io.MultiWriter(bw, sum)))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, n.restoreTooLarge(r.ContentLength)
	case errors.Is(err, syscall.ENOSPC):
		return nil, fmt.Errorf("%w: spooling the snapshot: %v", ErrDiskFull, err)
	case errors.Is(err, fsm.ErrSnapshotEncoding), errors.Is(err, fsm.ErrSnapshotFormat), errors.Is(err, fsm.ErrSnapshotDigest):
		return nil, &httpedge.Error{Code: api.CodeVerifyFailed, Msg: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("read the snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("spool the snapshot: %w", err)
	}
	return &spooledSnapshot{path: f.Name(), info: info, sum: sum.Sum(nil)}, nil
}

// removeRestoreSpools removes the spool files a crash left in the data dir.
func removeRestoreSpools(dataDir string) {
	left, _ := filepath.Glob(filepath.Join(dataDir, restoreSpoolPrefix+"*"))
	for _, p := range left {
		os.Remove(p)
	}
}

// checkpointSnapshotHead requires the snapshot's head among the recorded
// checkpoints, or in this node's archive, then recorded as a checkpoint.
func (n *Node) checkpointSnapshotHead(r *http.Request, token string, head fsm.HeadRef) error {
	var checkpointed bool
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { checkpointed = l.State().HasCheckpoint(head) })
	if checkpointed {
		return nil
	}
	rec, err := n.arch.ReadSeq(head.Seq)
	ok := false
	if err == nil {
		if ae, err := fsm.DecodeArchived(rec.Data); err == nil && hex.EncodeToString(ae.Head) == hex.EncodeToString(head.Hash) {
			ok = true
		}
	}
	if !ok {
		return &httpedge.Error{Code: api.CodeVerifyFailed, Msg: fmt.Sprintf("snapshot head %s matches neither the ledger archive nor a recorded checkpoint", head)}
	}
	res, err := n.propose(r, token, fsm.CmdCheckpoint, &fsm.Checkpoint{Seq: head.Seq, Hash: head.Hash})
	if err != nil {
		return err
	}
	if res.Decision != fsm.DecisionPermit {
		return &httpedge.Error{Code: api.CodeForbidden, Msg: "checkpoint denied: " + res.Reason.String()}
	}
	return nil
}

// restoreInline proposes the snapshot in one epoch entry (before
// protocol 4).
func (n *Node) restoreInline(ctx context.Context, token string, spool *spooledSnapshot) (fsm.Result, error) {
	if spool.info.Bytes > fsm.MaxEpochBytes {
		return fsm.Result{}, &httpedge.Error{Code: api.CodeTooLarge, Msg: fmt.Sprintf("a snapshot of %d bytes exceeds the %d one epoch entry carries before protocol 4; upgrade the kernel (dominus operator protocol upgrade %d) to restore it in chunks",
			spool.info.Bytes, fsm.MaxEpochBytes, fsm.ProtocolAuthority)}
	}
	snap, err := os.ReadFile(spool.path)
	if err != nil {
		return fsm.Result{}, err
	}
	if _, _, err := fsm.DecodeSnapshot(snap); err != nil {
		return fsm.Result{}, &httpedge.Error{Code: api.CodeVerifyFailed, Msg: err.Error()}
	}
	return n.Apply(ctx, fsm.Envelope{Type: fsm.CmdEpoch, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.Epoch{Snapshot: snap})})
}

// restoreStaged stages the snapshot in epoch.chunk entries and proposes
// the epoch that installs it (protocol 4). The answer is the epoch's, or
// the refused chunk's; a staging left behind is aborted.
func (n *Node) restoreStaged(ctx context.Context, token string, spool *spooledSnapshot) (res fsm.Result, chunks int, err error) {
	f, err := os.Open(spool.path)
	if err != nil {
		return fsm.Result{}, 0, err
	}
	defer f.Close()
	auth := TokenHash(token)
	id := ""
	defer func() {
		if id != "" && (err != nil || res.Decision != fsm.DecisionPermit) {
			n.abortStaging(auth, id)
		}
	}()
	buf := make([]byte, fsm.MaxEpochChunkBytes)
	for off := int64(0); off < spool.info.Bytes; {
		k, rerr := io.ReadFull(f, buf)
		if k == 0 || (rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF)) {
			return fsm.Result{}, chunks, fmt.Errorf("read the spooled snapshot at %d: %v", off, rerr)
		}
		p := fsm.EpochChunk{Restore: id, Offset: off, Data: buf[:k]}
		if id == "" {
			p.Size, p.Digest = spool.info.Bytes, spool.sum
		}
		res, err = n.Apply(ctx, fsm.Envelope{Type: fsm.CmdEpochChunk, Auth: auth, Payload: fsm.Encode(&p)})
		if err != nil {
			return res, chunks, fmt.Errorf("stage the snapshot at byte %d of %d: %w", off, spool.info.Bytes, err)
		}
		if res.Decision != fsm.DecisionPermit {
			return res, chunks, nil
		}
		id = res.ID
		chunks++
		off += int64(k)
	}
	// The epoch hashes and decodes the whole snapshot as it applies: give
	// it a second per 64 MiB beyond the usual bound.
	ectx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout+time.Duration(spool.info.Bytes>>26)*time.Second)
	defer cancel()
	res, err = n.Apply(ectx, fsm.Envelope{Type: fsm.CmdEpoch, Auth: auth, Payload: fsm.Encode(&fsm.Epoch{Restore: id, Digest: spool.sum})})
	return res, chunks, err
}

// abortStaging drops a staging this node's restore left behind, so the
// kernel does not keep its bytes (best effort: the next restore replaces
// it anyway).
func (n *Node) abortStaging(auth []byte, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	res, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdEpochChunk, Auth: auth, Payload: fsm.Encode(&fsm.EpochChunk{Restore: id, Abort: true})})
	if err != nil || res.Decision != fsm.DecisionPermit {
		n.log.Warn("abort of a snapshot restore's staging", "restore", id, "err", err, "reason", res.Reason.String())
	}
}
