package cli

// Helpers shared by the gate commands (syscall, cap, operator add/list/
// revoke, policy, approvals, halt): recovering a ledgered answer, printing
// it, and reading list flags and files.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

// codeTokenLost is the --json error code of a grant whose token was
// returned to an earlier attempt of the same request and is gone.
const codeTokenLost = "token_lost"

// gateAnswer returns r, or the ledgered answer carried by a non-2xx
// response (see answerFromError).
func gateAnswer[T any](r *T, err error) (*T, error) {
	if err != nil {
		var ans T
		if answerFromError(err, &ans) {
			return &ans, nil
		}
		return nil, err
	}
	return r, nil
}

// printAnswer prints a ledgered answer: with --json the answer as the API
// sent it, otherwise human() when the decision is PERMIT. It returns the
// decision's error (DENY: exit 2, ESCALATE: exit 3).
func printAnswer(cmd *cobra.Command, what string, v any, o api.Outcome, human func() error) error {
	if jsonMode(cmd) {
		if err := writeJSON(cmd, v); err != nil {
			return err
		}
		return outcomeError(cmd, what, o)
	}
	if err := outcomeError(cmd, what, o); err != nil {
		return err
	}
	return human()
}

// printList prints a listing: with --json the array as the API sent it
// (never null), otherwise human().
func printList[T any](cmd *cobra.Command, items []T, human func() error) error {
	if jsonMode(cmd) {
		if items == nil {
			items = []T{}
		}
		return writeJSON(cmd, items)
	}
	return human()
}

// retryNote marks an answer that the ledger returned for a retried request.
func retryNote(o api.Outcome) string {
	if o.Duplicate {
		return " [retry: first answer returned]"
	}
	return ""
}

// listFlag adds a comma-separated list flag (it may also be repeated).
func listFlag(c *cobra.Command, p *[]string, name, usage string) {
	c.Flags().StringSliceVar(p, name, nil, usage)
}

// cleanList trims the elements of a list flag and rejects empty ones; with
// required, the list must not be empty.
func cleanList(name string, in []string, required bool) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, usageError(fmt.Errorf("--%s holds an empty element", name))
		}
		out = append(out, s)
	}
	if required && len(out) == 0 {
		return nil, usageError(fmt.Errorf("--%s is required", name))
	}
	return out, nil
}

// requireString rejects an empty required string flag.
func requireString(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return usageError(fmt.Errorf("--%s is required", name))
	}
	return nil
}

// checkTTL validates a --ttl value: empty, or a positive Go duration.
func checkTTL(ttl string) error {
	if ttl == "" {
		return nil
	}
	d, err := time.ParseDuration(ttl)
	if err != nil || d <= 0 {
		return usageError(fmt.Errorf("--ttl %q is not a positive duration (e.g. 30m, 1h)", ttl))
	}
	return nil
}

// readLimitedFile returns the contents of path (- reads standard input),
// refusing more than limit bytes.
func readLimitedFile(cmd *cobra.Command, flag, path string, limit int) (string, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--%s: %w", flag, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return "", fmt.Errorf("--%s: read %s: %w", flag, path, err)
	}
	if len(b) > limit {
		return "", fail(api.ExitError, api.CodeTooLarge, fmt.Errorf("--%s %s exceeds %d bytes", flag, path, limit))
	}
	return string(b), nil
}

// printToken prints a newly issued token as the last line of stdout, after
// the lines of head, and reminds on stderr that it is shown only once. A
// permitted answer without a token means an earlier attempt of the same
// request received it: the capability exists but its token is lost.
func printToken(cmd *cobra.Command, r *api.GrantResponse, head string) error {
	if r.Token == "" {
		return tokenLost(cmd, r)
	}
	w := cmd.OutOrStdout()
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "The token of %s (the last line) is shown once and is not stored by the kernel. Keep it safe.\n", r.ID)
	_, err := fmt.Fprintln(w, r.Token)
	return err
}

// tokenLost is the error of a permitted grant whose answer holds no token.
func tokenLost(cmd *cobra.Command, r *api.GrantResponse) error {
	return failReported(cmd, api.ExitError, codeTokenLost, fmt.Errorf(
		"capability %s was issued to an earlier attempt of this request and its token is not shown again (seq %d): revoke it and issue a new one", r.ID, r.Seq))
}

// policyError rewrites a policy_invalid answer as the server's message.
func policyError(what string, err error) error {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Code == api.CodePolicyInvalid {
		return fail(api.ExitError, api.CodePolicyInvalid, fmt.Errorf("%s: invalid policy: %s", what, ce.Message))
	}
	return err
}

// unlimited renders a count where -1 means no limit.
func unlimited(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// joinOr renders a list for a table cell.
func joinOr(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	return strings.Join(list, ",")
}

// formatExpiry renders an expiry time, or "never".
func formatExpiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
