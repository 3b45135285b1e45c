package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/audit"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

func ledgerCheckpointCmd() *cobra.Command {
	var sign, publicKey, cosigned bool
	c := &cobra.Command{
		Use:   "checkpoint [--sign | --public-key]",
		Short: "Show the latest signed checkpoint of the ledger's Merkle tree (--sign: sign one now)",
		Long: `checkpoint prints the kernel's latest signed checkpoint: kernel id, tree
size, Merkle root, chain head and ledger time, signed by a member node's
key (audit.read). The "checkpoint" field is the signed note itself: save
it to a file for 'ledger prove --checkpoint' and 'audit verify-proof'.

  --sign        the leader signs a checkpoint of the ledger as it is now
                (snapshot.manage)
  --public-key  print the kernel's checkpoint verification keys (no token
                needed): a key file for 'audit verify-proof --kernel-key'
                (on the sovereign: the keys for --sovereign-key)
  --countersigned  the latest checkpoint the sovereign countersigned (a
                domain's)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if btoi(sign)+btoi(publicKey)+btoi(cosigned) > 1 {
				return usageError(errors.New("give one of --sign, --public-key, --countersigned"))
			}
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			if publicKey {
				keys, err := cl.CheckpointKeys(cmd.Context())
				if err != nil {
					return err
				}
				if jsonMode(cmd) {
					return writeJSON(cmd, keys)
				}
				_, err = fmt.Fprint(cmd.OutOrStdout(), keys.Text)
				return err
			}
			var cp *api.Checkpoint
			switch {
			case sign:
				cp, err = cl.SignCheckpoint(cmd.Context())
			case cosigned:
				cp, err = cl.CountersignedCheckpoint(cmd.Context())
			default:
				cp, err = cl.Checkpoint(cmd.Context())
			}
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, cp)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), cp.Note)
			return err
		},
	}
	c.Flags().BoolVar(&sign, "sign", false, "sign a checkpoint now (snapshot.manage)")
	c.Flags().BoolVar(&publicKey, "public-key", false, "print the kernel's checkpoint verification keys")
	c.Flags().BoolVar(&cosigned, "countersigned", false, "the latest checkpoint the sovereign countersigned")
	return c
}

// readCheckpointFile reads a checkpoint file: a signed note, or the JSON
// of 'ledger checkpoint --json'. It returns the note and its parsed text
// (signatures unverified: the verifier checks them).
func readCheckpointFile(path string) ([]byte, tlog.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, tlog.Checkpoint{}, err
	}
	if len(b) > tlog.MaxCheckpointBytes {
		return nil, tlog.Checkpoint{}, fmt.Errorf("%s: %d bytes, a checkpoint is at most %d", path, len(b), tlog.MaxCheckpointBytes)
	}
	var cp api.Checkpoint
	if err := json.Unmarshal(b, &cp); err == nil && cp.Note != "" {
		b = []byte(cp.Note)
	}
	text, _, err := tlog.SplitNote(b)
	if err != nil {
		return nil, tlog.Checkpoint{}, fmt.Errorf("%s: %w", path, err)
	}
	c, err := tlog.ParseCheckpoint(text)
	if err != nil {
		return nil, tlog.Checkpoint{}, fmt.Errorf("%s: %w", path, err)
	}
	return b, c, nil
}

func ledgerProveCmd() *cobra.Command {
	var checkpoint string
	c := &cobra.Command{
		Use:   "prove SEQ [--checkpoint FILE]",
		Short: "Print an inclusion proof of event SEQ against the latest (or a given) checkpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return usageError(fmt.Errorf("SEQ %q: want a positive integer", args[0]))
			}
			var size uint64
			var note []byte
			if checkpoint != "" {
				var cp tlog.Checkpoint
				if note, cp, err = readCheckpointFile(checkpoint); err != nil {
					return usageError(err)
				}
				size = cp.Size
			}
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			p, err := cl.ProveInclusion(cmd.Context(), seq, size)
			if err != nil {
				return err
			}
			if note != nil {
				p.Checkpoint = string(note)
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, p)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Seq\t%d\nLeaf index\t%d\nTree size\t%d\nRoot\t%s\nEvent hash\t%s\nProof hashes\t%d\n",
				p.Seq, p.LeafIndex, p.TreeSize, p.Root, p.EventHash, len(p.Proof))
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&checkpoint, "checkpoint", "", "prove against this checkpoint file (default: the latest)")
	return c
}

func ledgerConsistencyCmd() *cobra.Command {
	var from, to string
	c := &cobra.Command{
		Use:   "consistency --from FILE --to FILE",
		Short: "Print a consistency proof: the ledger of checkpoint --to extends the ledger of checkpoint --from",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageError(errors.New("give --from FILE and --to FILE"))
			}
			fn, fc, err := readCheckpointFile(from)
			if err != nil {
				return usageError(err)
			}
			tn, tc, err := readCheckpointFile(to)
			if err != nil {
				return usageError(err)
			}
			if fc.Size > tc.Size {
				return usageError(fmt.Errorf("--from has %d events, more than --to's %d", fc.Size, tc.Size))
			}
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			p, err := cl.ProveConsistency(cmd.Context(), fc.Size, tc.Size)
			if err != nil {
				return err
			}
			p.From, p.To = string(fn), string(tn)
			if jsonMode(cmd) {
				return writeJSON(cmd, p)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "From\t%d\t%s\nTo\t%d\t%s\nProof hashes\t%d\n", p.FromSize, p.FromRoot, p.ToSize, p.ToRoot, len(p.Proof))
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&from, "from", "", "the earlier checkpoint file")
	c.Flags().StringVar(&to, "to", "", "the later checkpoint file")
	return c
}

func readKeys(path string) (tlog.Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tlog.Keys{}, err
	}
	var ck api.CheckpointKeys
	if err := json.Unmarshal(b, &ck); err == nil && ck.Text != "" {
		b = []byte(ck.Text)
	}
	return tlog.ParseKeys(string(b))
}

func auditVerifyProofCmd() *cobra.Command {
	var proofPath, checkpoint, kernelKey, sovereignKey string
	c := &cobra.Command{
		Use:   "verify-proof --proof FILE --checkpoint FILE --kernel-key FILE [--sovereign-key FILE]",
		Short: "Check an inclusion or consistency proof offline (exit 0 verified, 4 failed)",
		Long: `verify-proof checks, with no server and without the ledger, a proof from
'ledger prove' or 'ledger consistency' against a checkpoint the auditor
holds and the kernel's checkpoint keys ('ledger checkpoint --public-key').
With --sovereign-key the checkpoint must also carry the sovereign's
countersignature. An inclusion proof must be against the held checkpoint;
a consistency proof must have it at one end. Exit 0: verified; 4: not.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if proofPath == "" || checkpoint == "" || kernelKey == "" {
				return usageError(errors.New("give --proof, --checkpoint and --kernel-key"))
			}
			proof, err := os.ReadFile(proofPath)
			if err != nil {
				return err
			}
			note, _, err := readCheckpointFile(checkpoint)
			if err != nil {
				return err
			}
			kk, err := readKeys(kernelKey)
			if err != nil {
				return err
			}
			var sov *tlog.Keys
			if sovereignKey != "" {
				sk, err := readKeys(sovereignKey)
				if err != nil {
					return err
				}
				sov = &sk
			}
			v := audit.VerifyProof(proof, note, kk, sov)
			if jsonMode(cmd) {
				err = writeJSON(cmd, v)
			} else {
				err = printVerdict(cmd, v)
			}
			if err != nil {
				return err
			}
			if !v.OK {
				return failReported(cmd, api.ExitVerify, api.CodeVerifyFailed, fmt.Errorf("%s proof: %s", v.Kind, v.Message))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&proofPath, "proof", "", "proof file (JSON of 'ledger prove' or 'ledger consistency')")
	f.StringVar(&checkpoint, "checkpoint", "", "the checkpoint the auditor holds")
	f.StringVar(&kernelKey, "kernel-key", "", "the kernel's checkpoint keys ('ledger checkpoint --public-key')")
	f.StringVar(&sovereignKey, "sovereign-key", "", "the sovereign's keys: require its countersignature")
	return c
}

func printVerdict(cmd *cobra.Command, v api.ProofVerdict) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	if v.OK {
		fmt.Fprintf(tw, "Result\tverified\n")
	} else {
		fmt.Fprintf(tw, "Result\tFAILED: %s\n", v.Message)
	}
	fmt.Fprintf(tw, "Proof\t%s\nKernel\t%s\nCheckpoint size\t%d\nSigned by\t%v\n", v.Kind, v.KernelID, v.TreeSize, v.Signers)
	if v.Event != nil {
		fmt.Fprintf(tw, "Event\tseq %d %s %s by %s on %s: %s\n", v.Event.Seq, formatTime(v.Event.Time), v.Event.Type, dash(v.Event.Actor), dash(v.Event.Subject), v.Event.Decision)
	}
	return tw.Flush()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
