package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(snapshotCmd) }

func snapshotCmd() *cobra.Command {
	return group("snapshot", "Save, inspect and restore ledger snapshots",
		snapshotSaveCmd(), snapshotInspectCmd(), snapshotRestoreCmd())
}

func snapshotSaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of the current state to FILE (- for standard output; verified, written atomically)",
		Long: `save streams a snapshot of the node's current state into FILE. The node
records the snapshot's head as a checkpoint, so the snapshot can later be
restored. The file is verified before it is renamed into place; a snapshot
that does not verify is discarded and the command exits 4.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			c, err := newStreamingClient(cmd)
			if err != nil {
				return err
			}
			if path == "-" {
				return saveSnapshotToStdout(cmd, c)
			}
			var info snapshotInfo
			err = writeFileAtomic(path, func(f *os.File) error {
				if err := c.SnapshotSave(cmd.Context(), f); err != nil {
					return err
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return err
				}
				b, err := io.ReadAll(f)
				if err != nil {
					return fmt.Errorf("read back %s: %w", f.Name(), err)
				}
				info = inspectSnapshot(path, b)
				if !info.Valid {
					return errSnapshotInvalid
				}
				return nil
			})
			if errors.Is(err, errSnapshotInvalid) {
				if jsonMode(cmd) {
					if werr := writeJSON(cmd, info); werr != nil {
						return werr
					}
				}
				return failReported(cmd, api.ExitVerify, api.CodeVerifyFailed,
					fmt.Errorf("the node sent a snapshot that does not verify (not saved): %s", info.Message))
			}
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, info)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "saved snapshot at head %s to %s (%d bytes, %d keys)\n",
				headString(info.Head), path, info.Bytes, info.Keys)
			return err
		},
	}
}

var errSnapshotInvalid = errors.New("snapshot does not verify")

// saveSnapshotToStdout receives a snapshot in memory, verifies it, and only
// then writes it to standard output.
func saveSnapshotToStdout(cmd *cobra.Command, c *client.Client) error {
	var buf bytes.Buffer
	if err := c.SnapshotSave(cmd.Context(), &buf); err != nil {
		return err
	}
	if info := inspectSnapshot("-", buf.Bytes()); !info.Valid {
		return fail(api.ExitVerify, api.CodeVerifyFailed,
			fmt.Errorf("the node sent a snapshot that does not verify (not written): %s", info.Message))
	}
	_, err := cmd.OutOrStdout().Write(buf.Bytes())
	return err
}

func snapshotRestoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a snapshot into the live cluster as a new, ledgered epoch",
		Long: `restore verifies FILE offline (its encoding and its body's digest; exit 4
if it does not verify), then streams it to the kernel, which adopts its
state as a new epoch. The kernel accepts only a snapshot of this kernel
whose head it recorded as a checkpoint (see snapshot save); the chain
continues from the current head, so history is never rewound. A node
refuses a snapshot above its restore limit (dominus agent
--max-restore-bytes, default 4 GiB) before it takes any of it; from
protocol 4 the kernel stages it in chunks of 1 MiB, before that it
carries at most 256 MiB in one entry.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, size, err := openVerifiedSnapshot(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			c, err := newStreamingClient(cmd)
			if err != nil {
				return err
			}
			r, err := c.SnapshotRestoreFrom(cmd.Context(), f, size)
			if err != nil {
				var ans api.SnapshotRestoreResponse
				if client.IsCode(err, api.CodeTooLarge) {
					return fail(api.ExitError, api.CodeTooLarge, fmt.Errorf("the node refuses %s (%d bytes): %w", args[0], size, err))
				}
				if !answerFromError(err, &ans) {
					return err
				}
				r = &ans
			}
			if jsonMode(cmd) {
				if err := writeJSON(cmd, r); err != nil {
					return err
				}
				return outcomeError(cmd, "snapshot restore", r.Outcome)
			}
			if err := outcomeError(cmd, "snapshot restore", r.Outcome); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "restored snapshot %s as epoch %d (seq %d, %d bytes)\n", headString(r.SnapshotHead), r.Epoch, r.Seq, r.Bytes)
			return err
		},
	}
}
