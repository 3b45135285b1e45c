package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(kvCmd) }

func kvCmd() *cobra.Command {
	return group("kv", "Read and write the ledgered key-value store",
		kvPutCmd(), kvGetCmd(), kvDeleteCmd(), kvCASCmd())
}

// isDecision reports whether decision, as an answer carries it, is want
// (one of api.DecisionPermit, ...). Kernels before the lower-case API
// answered PERMIT, DENY and ESCALATE, so case is ignored.
func isDecision(decision, want string) bool { return strings.EqualFold(decision, want) }

// humanDecision is a decision as text for people shows it: PERMIT, DENY,
// ESCALATE.
func humanDecision(decision string) string { return strings.ToUpper(decision) }

// outcomeError returns the error for a DENY (exit 2) or ESCALATE (exit 3)
// decision, or nil. The caller has already printed the JSON answer, if any.
func outcomeError(cmd *cobra.Command, what string, o api.Outcome) error {
	switch {
	case isDecision(o.Decision, api.DecisionDeny):
		return failReported(cmd, api.ExitDenied, api.CodeDenied, fmt.Errorf("%s denied: %s (seq %d)", what, o.Reason, o.Seq))
	case isDecision(o.Decision, api.DecisionEscalate):
		return failReported(cmd, api.ExitEscalated, codeEscalated, fmt.Errorf("%s escalated for human approval: %s (seq %d)", what, o.Reason, o.Seq))
	}
	return nil
}

// answerFromError recovers a ledgered answer that the kernel sent with a
// non-2xx status (a DENY comes as 403 with the KVResponse body, a refused
// epoch as 409 with the SnapshotRestoreResponse): the client reports a body
// that is not an API error object as a *client.Error carrying the raw body.
// When err is such an error whose body holds a decision, answerFromError
// decodes the body into out and returns true.
func answerFromError(err error, out any) bool {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != api.CodeInternal {
		return false
	}
	var probe struct {
		Decision string `json:"decision"`
	}
	body := []byte(ce.Message)
	if json.Unmarshal(body, &probe) != nil || probe.Decision == "" {
		return false
	}
	return json.Unmarshal(body, out) == nil
}

// kvAnswer returns r, or the answer carried by err (see answerFromError).
func kvAnswer(r *api.KVResponse, err error) (*api.KVResponse, error) {
	if err != nil {
		var ans api.KVResponse
		if answerFromError(err, &ans) {
			return &ans, nil
		}
		return nil, err
	}
	return r, nil
}

// requestIDFlag adds --request-id to a write command.
func requestIDFlag(c *cobra.Command, rid *string) {
	c.Flags().StringVar(rid, "request-id", "", "request id, so that a retry from another process is deduplicated (default: a fresh random id)")
}

func requestOpts(rid string) []client.Option {
	if rid == "" {
		return nil
	}
	return []client.Option{client.WithRequestID(rid)}
}

// readValue returns arg, or standard input when arg is "-".
func readValue(cmd *cobra.Command, arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), api.MaxValueBytes+1))
	if err != nil {
		return "", fmt.Errorf("read value from stdin: %w", err)
	}
	if len(b) > api.MaxValueBytes {
		return "", usageError(fmt.Errorf("value from stdin exceeds %d bytes", api.MaxValueBytes))
	}
	return string(b), nil
}

// printKV prints a kv answer in JSON mode and returns the decision's error.
func printKV(cmd *cobra.Command, what string, r *api.KVResponse) (printed bool, err error) {
	if jsonMode(cmd) {
		if err := writeJSON(cmd, r); err != nil {
			return true, err
		}
		return true, outcomeError(cmd, what, r.Outcome)
	}
	return false, outcomeError(cmd, what, r.Outcome)
}

func kvPutCmd() *cobra.Command {
	var rid string
	c := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write VALUE at KEY (VALUE - reads standard input)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := readValue(cmd, args[1])
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := kvAnswer(c.KVPut(cmd.Context(), args[0], value, requestOpts(rid)...))
			if err != nil {
				return err
			}
			if printed, err := printKV(cmd, "put "+args[0], r); printed || err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "ok: %s written (version %d, seq %d)%s\n", args[0], r.Version, r.Seq, dupNote(r))
			return err
		},
	}
	requestIDFlag(c, &rid)
	return c
}

// kvGetResult is the machine output of kv get.
type kvGetResult struct {
	Key     string    `json:"key"`
	Value   string    `json:"value"`
	Version uint64    `json:"version"`
	Seq     uint64    `json:"seq"`
	AsOf    *api.AsOf `json:"as_of,omitempty"`
}

var errKeyNotFound = errors.New("key not found")

func kvGetCmd() *cobra.Command {
	var rid, asOf string
	c := &cobra.Command{
		Use:   "get KEY [--as-of SEQ|TIME]",
		Short: "Read KEY through the ledger (a recorded, linearizable read)",
		Long: `get reads KEY through the gate: the read is judged on your capability and
recorded in the ledger. With --as-of it reads the value KEY had right
after event SEQ, or at an RFC 3339 ledger time: the read is still judged
on your capability now, and the event records the seq it read at.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := kvAnswer(c.KVGet(cmd.Context(), args[0], append(requestOpts(rid), client.WithAsOf(asOf))...))
			if client.IsCode(err, api.CodeNotFound) {
				return fail(api.ExitError, api.CodeNotFound, fmt.Errorf("%w: %s", errKeyNotFound, args[0]))
			}
			if err != nil {
				return err
			}
			if err := outcomeError(cmd, "get "+args[0], r.Outcome); err != nil {
				if jsonMode(cmd) {
					if werr := writeJSON(cmd, r); werr != nil {
						return werr
					}
				}
				return err
			}
			if !r.Found {
				return fail(api.ExitError, api.CodeNotFound, fmt.Errorf("%w: %s (seq %d)", errKeyNotFound, args[0], r.Seq))
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, kvGetResult{Key: r.Key, Value: r.Value, Version: r.Version, Seq: r.Seq, AsOf: r.AsOf})
			}
			noteAsOf(cmd, r.AsOf)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), r.Value)
			return err
		},
	}
	requestIDFlag(c, &rid)
	asOfFlag(c, &asOf)
	return c
}

func kvDeleteCmd() *cobra.Command {
	var rid string
	c := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete KEY (deleting a missing key succeeds and says so)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := kvAnswer(c.KVDelete(cmd.Context(), args[0], requestOpts(rid)...))
			if err != nil {
				return err
			}
			if printed, err := printKV(cmd, "delete "+args[0], r); printed || err != nil {
				return err
			}
			msg := "ok: %s deleted (seq %d)%s\n"
			if !r.Found || r.Reason == api.ReasonNotFound {
				msg = "ok: %s did not exist (seq %d)%s\n"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), msg, args[0], r.Seq, dupNote(r))
			return err
		},
	}
	requestIDFlag(c, &rid)
	return c
}

func kvCASCmd() *cobra.Command {
	var rid, expect string
	var expectAbsent bool
	var expectVersion uint64
	c := &cobra.Command{
		Use:   "cas KEY NEW (--expect OLD [--expect-version N] | --expect-absent)",
		Short: "Write NEW at KEY only if its current value is OLD (or it is absent)",
		Long: `cas writes NEW at KEY only if KEY currently holds OLD (and, with
--expect-version, has that version), or, with --expect-absent, does not exist.
It exits 0 if the value was swapped and 1, showing the current value, if the
comparison failed. NEW - reads standard input.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			hasExpect := cmd.Flags().Changed("expect")
			if hasExpect == expectAbsent {
				return usageError(errors.New("give exactly one of --expect OLD and --expect-absent"))
			}
			if expectAbsent && cmd.Flags().Changed("expect-version") {
				return usageError(errors.New("--expect-version goes with --expect, not --expect-absent"))
			}
			value, err := readValue(cmd, args[1])
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			req := api.KVCASRequest{Expect: expect, ExpectAbsent: expectAbsent, ExpectVersion: expectVersion, Value: value}
			r, err := kvAnswer(c.KVCAS(cmd.Context(), args[0], req, requestOpts(rid)...))
			if err != nil {
				return err
			}
			printed, err := printKV(cmd, "cas "+args[0], r)
			if err != nil {
				return err
			}
			if !r.Succeeded {
				return failReported(cmd, api.ExitError, codeCASFailed, casFailure(args[0], r))
			}
			if printed {
				return nil
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "ok: %s swapped (version %d, seq %d)%s\n", args[0], r.Version, r.Seq, dupNote(r))
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&expect, "expect", "", "the value KEY must hold")
	f.BoolVar(&expectAbsent, "expect-absent", false, "KEY must not exist")
	f.Uint64Var(&expectVersion, "expect-version", 0, "the version KEY must have (with --expect)")
	requestIDFlag(c, &rid)
	return c
}

// casFailure describes a failed comparison with the current value.
func casFailure(key string, r *api.KVResponse) error {
	if !r.Found {
		return fmt.Errorf("compare failed: %s does not exist (seq %d)", key, r.Seq)
	}
	return fmt.Errorf("compare failed: %s is currently %q (version %d, seq %d)", key, r.Value, r.Version, r.Seq)
}

func dupNote(r *api.KVResponse) string {
	if r.Duplicate {
		return " [retry: first answer returned]"
	}
	return ""
}
