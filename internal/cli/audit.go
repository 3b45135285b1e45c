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
	BadSeq      *uint64  `json:"bad_seq,omitempty"` // only when not ok
	Message     string   `json:"message,omitempty"` // only when not ok
}

func newReplayResult(rep audit.Report) replayResult {
	out := replayResult{
		OK:     rep.OK,
		Head:   apiHead(rep.Head.Seq, rep.Head.Hash),
		Events: rep.Events,
	}
	if rep.OK {
		out.StateDigest = hex.EncodeToString(rep.StateDigest[:])
	} else {
		bad := rep.BadSeq
		out.BadSeq = &bad
		out.Message = rep.Message
	}
	return out
}

func auditReplayCmd() *cobra.Command {
	var dataDir, snapshotPath, ledgerPath string
	c := &cobra.Command{
		Use:   "replay (--data-dir D | --snapshot S --ledger E | --ledger E)",
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
(tamper, a gap, a chain mismatch) exits 4 naming the first bad seq.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bar := newProgressBar(cmd.ErrOrStderr(), "replaying")
			var rep audit.Report
			var err error
			switch {
			case dataDir != "" && (snapshotPath != "" || ledgerPath != ""):
				return usageError(errors.New("give either --data-dir or --snapshot/--ledger, not both"))
			case dataDir != "":
				rep, err = audit.ReplayDataDir(dataDir, bar.update)
			case snapshotPath != "" && ledgerPath != "":
				rep, err = audit.ReplaySnapshot(snapshotPath, ledgerPath, bar.update)
			case ledgerPath != "":
				rep, err = audit.ReplayExport(ledgerPath, bar.update)
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
	return c
}

func printReplay(cmd *cobra.Command, res replayResult) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	if res.OK {
		fmt.Fprintf(tw, "Result\tok\n")
		fmt.Fprintf(tw, "Events replayed\t%d\n", res.Events)
		fmt.Fprintf(tw, "Head\t%s\n", headString(res.Head))
		fmt.Fprintf(tw, "State digest\t%s\n", res.StateDigest)
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
