package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/audit"
	"github.com/dominus-kernel/dominus/fsm"
)

func init() { register(auditCmd) }

func auditCmd() *cobra.Command {
	return group("audit", "Verify a ledger offline, without a server", auditReplayCmd(), auditWitnessCmd(), auditVerifyProofCmd())
}

// replayResult is the machine output of audit replay.
type replayResult struct {
	OK          bool     `json:"ok"`
	Head        api.Head `json:"head"`
	StateDigest string   `json:"state_digest,omitempty"` // omitted when not ok
	Events      uint64   `json:"events"`
	BadSeq      *uint64  `json:"bad_seq,omitempty"`   // only when not ok
	Message     string   `json:"message,omitempty"`   // only when not ok
	TreeSize    uint64   `json:"tree_size"`           // the Merkle tree recomputed over the events
	TreeRoot    string   `json:"tree_root,omitempty"` // its root, hex
	Checkpoints int      `json:"checkpoints_checked"` // signed checkpoints checked against it
}

func newReplayResult(rep audit.Report) replayResult {
	out := replayResult{
		OK:     rep.OK,
		Head:   apiHead(rep.Head.Seq, rep.Head.Hash),
		Events: rep.Events,
	}
	if rep.OK {
		out.StateDigest = hex.EncodeToString(rep.StateDigest[:])
		out.TreeSize, out.TreeRoot, out.Checkpoints = rep.TreeSize, hex.EncodeToString(rep.TreeRoot), rep.Checkpoints
	} else {
		bad := rep.BadSeq
		out.BadSeq = &bad
		out.Message = rep.Message
	}
	return out
}

func auditReplayCmd() *cobra.Command {
	var dataDir, snapshotPath, ledgerPath, checkpointDir string
	c := &cobra.Command{
		Use:   "replay (--data-dir D | --snapshot S --ledger E | --ledger E) [--checkpoints DIR]",
		Short: "Rebuild the state from recorded history and verify every record (exit 4 on tamper)",
		Long: `replay rebuilds a kernel's state in a fresh ledger, offline, re-applying every
recorded entry and requiring exactly the recorded chain record and head:

  --data-dir D             the archive of a stopped node (D/archive), from
                           genesis; D is not modified
  --snapshot S --ledger E  the state of snapshot S (from 'snapshot save'), then
                           the records of export E (from 'ledger export') after
                           the snapshot's head; the first must link to it
  --ledger E               export E alone, from genesis

It prints the final head and state digest. Any record that does not verify
(tamper, a gap, a chain mismatch) exits 4 naming the first bad seq.

It also recomputes the RFC 6962 Merkle tree over the events and checks
every signed checkpoint it finds against it as the replay reaches the
checkpoint's size: root, chain head, ledger time, and a signature by a
member key the ledger holds at that seq. Checkpoints are not in the
ledger: with --data-dir they are the node's own (D/transparency/
checkpoints); --checkpoints DIR names a folder of *.note files instead
(for an export, the ones an auditor collected). A checkpoint the history
contradicts, or one beyond its end (a truncation), exits 4.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bar := newProgressBar(cmd.ErrOrStderr(), "replaying")
			var rep audit.Report
			var err error
			switch {
			case dataDir != "" && (snapshotPath != "" || ledgerPath != ""):
				return usageError(errors.New("give either --data-dir or --snapshot/--ledger, not both"))
			case checkpointDir != "" && snapshotPath != "":
				return usageError(errors.New("--checkpoints is for --data-dir or --ledger alone"))
			case dataDir != "" && checkpointDir == "":
				rep, err = audit.ReplayDataDir(dataDir, bar.update)
			case dataDir != "":
				var notes [][]byte
				if notes, err = audit.LoadCheckpoints(checkpointDir); err == nil {
					rep, err = audit.ReplayDataDirCheckpoints(dataDir, notes, bar.update)
				}
			case snapshotPath != "" && ledgerPath != "":
				rep, err = audit.ReplaySnapshot(snapshotPath, ledgerPath, bar.update)
			case ledgerPath != "":
				var notes [][]byte
				if notes, err = audit.LoadCheckpoints(checkpointDir); err == nil || checkpointDir == "" {
					rep, err = audit.ReplayExportCheckpoints(ledgerPath, notes, bar.update)
				}
			case snapshotPath != "":
				return usageError(errors.New("--snapshot needs --ledger (an export reaching the snapshot's head)"))
			default:
				return usageError(errors.New("give --data-dir D, or --snapshot S --ledger E"))
			}
			bar.finish()
			if err != nil {
				return err
			}
			res := newReplayResult(rep)
			if jsonMode(cmd) {
				err = writeJSON(cmd, res)
			} else {
				err = printReplay(cmd, res)
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				return failReported(cmd, api.ExitVerify, api.CodeVerifyFailed,
					fmt.Errorf("verification failed at seq %d: %s", rep.BadSeq, rep.Message))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&dataDir, "data-dir", "", "data folder of a stopped node")
	f.StringVar(&snapshotPath, "snapshot", "", "snapshot file from 'dominus snapshot save'")
	f.StringVar(&ledgerPath, "ledger", "", "export file from 'dominus ledger export'")
	f.StringVar(&checkpointDir, "checkpoints", "", "folder of signed checkpoints (*.note) to check (default with --data-dir: the node's own)")
	return c
}

func printReplay(cmd *cobra.Command, res replayResult) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	if res.OK {
		fmt.Fprintf(tw, "Result\tok\n")
		fmt.Fprintf(tw, "Events replayed\t%d\n", res.Events)
		fmt.Fprintf(tw, "Head\t%s\n", headString(res.Head))
		fmt.Fprintf(tw, "State digest\t%s\n", res.StateDigest)
		if res.TreeSize == 0 {
			// The tree covers a history from genesis; a replay that
			// starts at a snapshot has none to build.
			fmt.Fprintf(tw, "Merkle tree\tnot recomputed (the history does not start at genesis)\n")
		} else {
			fmt.Fprintf(tw, "Merkle tree\t%d events, root %s\n", res.TreeSize, res.TreeRoot)
		}
		fmt.Fprintf(tw, "Checkpoints checked\t%d\n", res.Checkpoints)
	} else {
		fmt.Fprintf(tw, "Result\tFAILED at seq %d\n", *res.BadSeq)
		fmt.Fprintf(tw, "Events verified\t%d\n", res.Events)
		fmt.Fprintf(tw, "Last good head\t%s\n", headString(res.Head))
	}
	return tw.Flush()
}

func auditWitnessCmd() *cobra.Command {
	var domain, ledgerPath, dataDir string
	c := &cobra.Command{
		Use:   "witness --domain NAME (--ledger EXPORT | --data-dir D)",
		Short: "Compare a domain's ledger export with the heads the sovereign witnessed (exit 4 on rewrite or truncation)",
		Long: `witness fetches the heads the sovereign witnessed for --domain (from the
sovereign at --addr, with a token holding audit.read) and replays the
domain's export (from 'ledger export --from 0' on the domain), or the
archive of a stopped domain node's data folder (--data-dir, not modified),
from genesis.
Every witnessed seq must carry exactly the witnessed head, and the export
must reach the last witnessed seq; otherwise the history was rewritten or
truncated and the command exits 4 naming the first bad seq.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireString("domain", domain); err != nil {
				return err
			}
			if (ledgerPath == "") == (dataDir == "") {
				return usageError(errors.New("give exactly one of --ledger and --data-dir"))
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ws, err := c.Witness(cmd.Context(), domain)
			if err != nil {
				return err
			}
			var heads []fsm.HeadRef
			for _, w := range ws {
				h, err := hex.DecodeString(w.Hash)
				if err != nil {
					return fmt.Errorf("witnessed head %d: %w", w.Seq, err)
				}
				heads = append(heads, fsm.HeadRef{Seq: w.Seq, Hash: h})
			}
			bar := newProgressBar(cmd.ErrOrStderr(), "replaying")
			rep, err := audit.Witness(ledgerPath, dataDir, heads, bar.update)
			if err != nil {
				return err
			}
			res := witnessResult{replayResult: newReplayResult(rep), Domain: domain, Witnessed: len(heads)}
			if len(heads) > 0 {
				res.LastWitnessed = heads[len(heads)-1].Seq
			}
			if jsonMode(cmd) {
				err = writeJSON(cmd, res)
			} else {
				err = printReplay(cmd, res.replayResult)
				fmt.Fprintf(cmd.OutOrStdout(), "Witnessed heads checked: %d (last seq %d)\n", res.Witnessed, res.LastWitnessed)
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				return failReported(cmd, api.ExitVerify, api.CodeVerifyFailed,
					fmt.Errorf("witness check failed at seq %d: %s", rep.BadSeq, rep.Message))
			}
			return nil
		},
	}
	c.Flags().StringVar(&domain, "domain", "", "the domain whose witnessed heads to check (required)")
	c.Flags().StringVar(&ledgerPath, "ledger", "", "the domain's export from 'dominus ledger export'")
	c.Flags().StringVar(&dataDir, "data-dir", "", "the data folder of a stopped node of the domain")
	return c
}

type witnessResult struct {
	replayResult
	Domain        string `json:"domain"`
	Witnessed     int    `json:"witnessed"`
	LastWitnessed uint64 `json:"last_witnessed"`
}
