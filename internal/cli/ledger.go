package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(ledgerCmd) }

// Bounds of `ledger tail -n`.
const (
	defaultTailEvents = 20
	maxTailEvents     = 10_000
)

func ledgerCmd() *cobra.Command {
	return group("ledger", "Read, verify and export the hash-chained ledger",
		ledgerTailCmd(), ledgerShowCmd(), ledgerVerifyCmd(), ledgerExportCmd(),
		ledgerCheckpointCmd(), ledgerProveCmd(), ledgerConsistencyCmd())
}

func ledgerTailCmd() *cobra.Command {
	var n int
	var consistent, follow bool
	c := &cobra.Command{
		Use:   "tail [-n N] [-f] [--consistent]",
		Short: "Show the last N ledger events; -f then follows new ones",
		Long: `tail prints the last N events (audit.read). With -f it then prints each
new event as the node records it, until interrupted; with --json and -f the
output is one JSON event per line (newline-delimited), not an array.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > maxTailEvents {
				return usageError(fmt.Errorf("-n %d: must lie in [1, %d]", n, maxTailEvents))
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			evs, err := c.LedgerTail(cmd.Context(), n, consistent)
			if err != nil {
				return err
			}
			if follow {
				return followLedger(cmd, c, evs)
			}
			if jsonMode(cmd) {
				if evs == nil {
					evs = []api.Event{}
				}
				return writeJSON(cmd, evs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tACTOR\tDECISION\tREASON\tSUBJECT\tDETAIL")
			for _, ev := range evs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
					ev.Seq, formatTime(ev.Time), ev.Type, dash(ev.Actor), humanDecision(ev.Decision), ev.Reason, dash(ev.Subject), eventDetail(ev))
			}
			return tw.Flush()
		},
	}
	c.Flags().IntVarP(&n, "n", "n", defaultTailEvents, "number of events")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "then print new events as they are recorded, until interrupted")
	c.Flags().BoolVar(&consistent, "consistent", false, "first confirm the node has applied everything the leader committed (the node always does now: it checks the token's audit scope on confirmed state)")
	return c
}

// followLedger prints evs and then every later event as the node records
// it; a dropped stream is resumed from the next seq, for as long as the
// command runs (interrupt to stop: exit 0).
func followLedger(cmd *cobra.Command, c *client.Client, evs []api.Event) error {
	out := cmd.OutOrStdout()
	enc := json.NewEncoder(out)
	row := func(ev api.Event) error {
		if jsonMode(cmd) {
			return enc.Encode(ev)
		}
		_, err := fmt.Fprintf(out, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			ev.Seq, formatTime(ev.Time), ev.Type, dash(ev.Actor), humanDecision(ev.Decision), ev.Reason, dash(ev.Subject), eventDetail(ev))
		return err
	}
	if !jsonMode(cmd) {
		fmt.Fprintln(out, "SEQ\tTIME\tTYPE\tACTOR\tDECISION\tREASON\tSUBJECT\tDETAIL")
	}
	next := uint64(0)
	for _, ev := range evs {
		if err := row(ev); err != nil {
			return err
		}
		next = ev.Seq + 1
	}
	if next == 0 {
		next = 1
	}
	ctx := cmd.Context()
	for {
		err := c.LedgerFollow(ctx, next, func(ev api.Event) error {
			next = ev.Seq + 1
			return row(ev)
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !retryableFollow(err) {
			return err
		}
		why := "the node closed it"
		if err != nil {
			why = err.Error()
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "the follow stream ended (%s); resuming from seq %d\n", why, next)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// retryableFollow: a stream that a node closed or lost is resumed;
// refusals (scope, bad request) end the command.
func retryableFollow(err error) bool {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Code == api.CodeUnavailable || e.Code == api.CodeNoLeader
	}
	return true
}

// eventDetail renders the gate detail of an event for a table cell:
// "op=kv.put granted_by=root", or "-".
func eventDetail(ev api.Event) string {
	var parts []string
	if ev.Op != "" {
		parts = append(parts, "op="+ev.Op)
	}
	if ev.GrantedBy != "" {
		parts = append(parts, "granted_by="+ev.GrantedBy)
	}
	return dash(strings.Join(parts, " "))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usageError(fmt.Errorf("seq %q is not a non-negative integer", s))
	}
	return seq, nil
}

func ledgerShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one ledger event",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ev, err := c.LedgerShow(cmd.Context(), seq)
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, ev)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
			row("Seq", ev.Seq)
			row("Time", formatTime(ev.Time))
			row("Epoch", ev.Epoch)
			row("Raft index", ev.Index)
			row("Type", ev.Type)
			row("Actor", dash(ev.Actor))
			row("Request ID", dash(ev.RequestID))
			row("Subject", dash(ev.Subject))
			row("Decision", humanDecision(ev.Decision))
			row("Reason", ev.Reason)
			row("Payload hash", ev.PayloadHash)
			row("Prev", ev.Prev)
			row("Hash", ev.Hash)
			return tw.Flush()
		},
	}
}

func ledgerVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Have the node re-verify every link of its archive (exit 4 if broken)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := c.LedgerVerify(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				if err := writeJSON(cmd, r); err != nil {
					return err
				}
			} else if r.OK {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "ok: %d events verified, head %s\n", r.Events, headString(r.Head))
				return err
			}
			if !r.OK {
				return failReported(cmd, api.ExitVerify, api.CodeVerifyFailed,
					fmt.Errorf("ledger verification failed at seq %d: %s", r.BadSeq, r.Message))
			}
			return nil
		},
	}
}

// exportResult is the machine output of ledger export to a file.
type exportResult struct {
	File  string `json:"file"`
	From  uint64 `json:"from"`
	Bytes int64  `json:"bytes"`
}

func ledgerExportCmd() *cobra.Command {
	var from uint64
	c := &cobra.Command{
		Use:   "export --from SEQ FILE",
		Short: "Export the archive from SEQ on into FILE (- for standard output)",
		Long: `export streams the node's archive of applied entries, from ledger seq SEQ
on, into FILE, written atomically (a temporary file renamed into place). FILE -
writes to standard output. The export is verified offline with
'dominus audit replay --snapshot S --ledger FILE'.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if from == 0 {
				from = 1 // seq 0 holds only entries applied before genesis
			}
			c, err := newStreamingClient(cmd)
			if err != nil {
				return err
			}
			if path == "-" {
				return c.LedgerExport(cmd.Context(), from, cmd.OutOrStdout())
			}
			var n int64
			err = writeFileAtomic(path, func(f *os.File) error {
				cw := &countWriter{w: f}
				err := c.LedgerExport(cmd.Context(), from, cw)
				n = cw.n
				return err
			})
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, exportResult{File: path, From: from, Bytes: n})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "exported the ledger from seq %d to %s (%d bytes)\n", from, path, n)
			return err
		},
	}
	c.Flags().Uint64Var(&from, "from", 1, "first ledger seq to export (1: from genesis)")
	return c
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
