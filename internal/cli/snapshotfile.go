package cli

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/canon"
	"github.com/dominus-kernel/dominus/fsm"
)

// Snapshot files, offline: decoding and verifying a snapshot file needs
// the ledger's codec (fsm), and no kernel. snapshot inspect is this alone;
// snapshot save verifies what it received, and snapshot restore what it
// is about to send, with the same code.

// snapshotInfo is what inspect (and save) report about a snapshot file.
type snapshotInfo struct {
	File  string `json:"file"`
	Bytes int64  `json:"bytes"`
	// Valid: the file decodes canonically, its digest matches its body and
	// the body's head matches the header.
	Valid        bool      `json:"valid"`
	Message      string    `json:"message,omitempty"` // why it is not valid
	Head         api.Head  `json:"head"`
	StateDigest  string    `json:"state_digest"`
	Epoch        uint64    `json:"epoch"`
	KernelID     string    `json:"kernel_id"`
	CanonHash    string    `json:"canon_hash"`
	CanonMatch   bool      `json:"canon_matches_binary"` // canon_hash is this binary's canon
	Initialized  bool      `json:"initialized"`
	Protocol     uint16    `json:"protocol"`
	LedgerTime   time.Time `json:"ledger_time"`
	Keys         int       `json:"keys"`
	Capabilities int       `json:"capabilities"`
	Checkpoints  int       `json:"checkpoints"`
}

// inspectSnapshot verifies b and describes it. A snapshot that does not
// verify still reports what its header says, when the header decodes.
func inspectSnapshot(file string, b []byte) snapshotInfo {
	info := snapshotInfo{File: file, Bytes: int64(len(b))}
	f, st, err := fsm.DecodeSnapshot(b)
	if err != nil {
		info.Message = err.Error()
		var hdr fsm.SnapshotFile
		if fsm.Decode(b, &hdr) == nil {
			info.Head = apiHead(hdr.Head.Seq, hdr.Head.Hash)
			info.Epoch = hdr.Epoch
			info.StateDigest = hex.EncodeToString(hdr.Digest)
		}
		return info
	}
	info.Valid = true
	info.Head = apiHead(f.Head.Seq, f.Head.Hash)
	info.StateDigest = hex.EncodeToString(f.Digest)
	info.Epoch = f.Epoch
	info.KernelID = st.Meta.KernelID
	info.CanonHash = hex.EncodeToString(st.Meta.CanonHash)
	sealed := canon.Hash()
	info.CanonMatch = st.Initialized && info.CanonHash == hex.EncodeToString(sealed[:])
	info.Initialized = st.Initialized
	info.Protocol = st.Meta.Protocol
	if st.Time != 0 {
		info.LedgerTime = time.Unix(0, st.Time).UTC()
	}
	info.Keys = len(st.KV)
	info.Capabilities = len(st.Caps)
	info.Checkpoints = len(st.Checkpoints)
	return info
}

func apiHead(seq uint64, hash []byte) api.Head {
	return api.Head{Seq: seq, Hash: hex.EncodeToString(hash)}
}

func printSnapshotInfo(cmd *cobra.Command, info snapshotInfo) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("File", info.File)
	row("Bytes", info.Bytes)
	if info.Valid {
		row("Valid", "yes")
	} else {
		row("Valid", "NO: "+info.Message)
	}
	row("Head", headString(info.Head))
	row("State digest", dash(info.StateDigest))
	row("Epoch", info.Epoch)
	if info.Valid {
		row("Kernel ID", dash(info.KernelID))
		canonNote := ""
		if info.Initialized && !info.CanonMatch {
			canonNote = " (differs from this binary's canon)"
		}
		row("Canon hash", dash(info.CanonHash)+canonNote)
		row("Protocol", info.Protocol)
		row("Ledger time", formatTime(info.LedgerTime))
		row("Keys", info.Keys)
		row("Capabilities", info.Capabilities)
		row("Checkpoints", info.Checkpoints)
	}
	return tw.Flush()
}

// snapshotVerifyError is the exit-4 error of a snapshot that does not verify.
func snapshotVerifyError(cmd *cobra.Command, info snapshotInfo) error {
	return failReported(cmd, api.ExitVerify, api.CodeVerifyFailed,
		fmt.Errorf("snapshot %s does not verify: %s", info.File, info.Message))
}

// readSnapshotFile reads a whole snapshot file, whatever its size.
func readSnapshotFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func snapshotInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE",
		Short: "Verify a snapshot file offline and describe it (exit 4 if it does not verify)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readSnapshotFile(args[0])
			if err != nil {
				return err
			}
			info := inspectSnapshot(args[0], b)
			if jsonMode(cmd) {
				err = writeJSON(cmd, info)
			} else {
				err = printSnapshotInfo(cmd, info)
			}
			if err != nil {
				return err
			}
			if !info.Valid {
				return snapshotVerifyError(cmd, info)
			}
			return nil
		},
	}
}

// openVerifiedSnapshot opens a snapshot file and verifies it as a stream
// (encoding, format, body digest; exit 4 if it does not verify), ready
// to be read again from its start.
func openVerifiedSnapshot(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	info, err := fsm.VerifySnapshotStream(bufio.NewReaderSize(f, 1<<20))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, fsm.ErrSnapshotEncoding) || errors.Is(err, fsm.ErrSnapshotFormat) || errors.Is(err, fsm.ErrSnapshotDigest) {
			return nil, 0, fail(api.ExitVerify, api.CodeVerifyFailed, fmt.Errorf("snapshot %s does not verify: %w", path, err))
		}
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return f, info.Bytes, nil
}
