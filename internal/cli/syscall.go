package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(syscallCmd) }

// maxSyscallArgsBytes is the largest --args the kernel accepts (kv.put and
// kv.cas carry values; other ops are limited to api.MaxArgsBytes, which
// the kernel enforces).
const maxSyscallArgsBytes = 2*api.MaxValueBytes + 1024

func syscallCmd() *cobra.Command {
	var args, argsFile, approval, rid, remoteToken string
	var pairs []string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "syscall OP RESOURCE [--arg KEY=VALUE ... | --args STRING | --args-file F] [--approval ID]",
		Short: "Ask the gate to perform OP on RESOURCE with this agent's capability token",
		Long: `syscall sends one governed action through the gate with the token of
--token (or DOMINUS_TOKEN), and prints the decision:

  PERMIT ok (seq 12, uses left 4)
  PERMIT ok (seq 12, uses left 4, effect pending)
  DENY uses_exhausted (seq 13)
  ESCALATE approval_required: approval apr-14 (seq 14)

For kv.get the value follows on its own line; "effect pending" means a
driver runs the external op after the decision. After an operator
approves an escalation, repeat the call with --approval ID.

The operation's arguments are passed to the effect. --arg KEY=VALUE
(repeatable) gives them by name:
  kv.put   value=V
  kv.cas   expect=OLD, expect_absent=true|false, expect_version=N, value=NEW
  other    any keys, sent as a JSON object of strings with sorted keys
           (the same flags give the same bytes, so the same args digest)
--args gives them whole (the value for kv.put; for kv.cas the JSON object
{"expect", "expect_absent", "expect_version", "value"}), and --args-file
reads them from a file; --arg is the same as the --args it builds.

--json prints {"decision": "permit"|"deny"|"escalate", "reason", "seq",
"escalation_id" (escalate; also as approval_id), "result" (kv.get: the
value; also as value), ...}.

Exit status: 0 permit, 2 deny, 3 escalate, 1 no decision (error).`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, pos []string) error {
			op, resource := pos[0], pos[1]
			args, err := syscallArgs(cmd, op, args, argsFile, pairs)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			req := api.SyscallRequest{Op: op, Resource: resource, Args: args, ApprovalID: approval, RemoteToken: remoteToken}
			r, err := gateAnswer(c.Syscall(cmd.Context(), req, requestOpts(rid)...))
			if err != nil {
				return err
			}
			if remoteToken != "" {
				return remoteSyscall(cmd, c, r, wait)
			}
			if jsonMode(cmd) {
				if err := writeJSON(cmd, r); err != nil {
					return err
				}
			} else if err := printSyscall(cmd, r); err != nil {
				return err
			}
			return syscallError(cmd, r)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&pairs, "arg", nil, "argument KEY=VALUE, repeatable (kv.put: value; kv.cas: expect, expect_absent, expect_version, value; other ops: any keys)")
	f.StringVar(&args, "args", "", "arguments of the operation whole (kv.put: the value; kv.cas: a JSON object)")
	f.StringVar(&argsFile, "args-file", "", "read the arguments whole from file F (- for standard input)")
	f.StringVar(&approval, "approval", "", "id of the approved escalation this call redeems")
	f.StringVar(&remoteToken, "remote-token", "", "cross-domain call (RESOURCE is DOMAIN:resource): the grant token that domain issued to this agent's entity")
	f.DurationVar(&wait, "wait", 5*time.Second, "with --remote-token: how long to wait for the remote decision")
	requestIDFlag(c, &rid)
	return c
}

// syscallArgs returns the arguments string of a syscall from whichever of
// --arg, --args and --args-file was given (at most one), checking a
// kv.cas object.
func syscallArgs(cmd *cobra.Command, op, args, argsFile string, pairs []string) (string, error) {
	given := 0
	for _, name := range []string{"arg", "args", "args-file"} {
		if cmd.Flags().Changed(name) {
			given++
		}
	}
	if given > 1 {
		return "", usageError(errors.New("give at most one of --arg, --args and --args-file"))
	}
	switch {
	case cmd.Flags().Changed("args-file"):
		s, err := readLimitedFile(cmd, "args-file", argsFile, maxSyscallArgsBytes)
		if err != nil {
			return "", err
		}
		args = s
	case cmd.Flags().Changed("arg"):
		s, err := argsFromPairs(op, pairs)
		if err != nil {
			return "", err
		}
		args = s
	}
	if op == "kv.cas" {
		if err := checkCASArgs(args); err != nil {
			return "", err
		}
	}
	return args, nil
}

// syscallRemote is the answer of a cross-domain call: this kernel's
// decision, the bus event and, once it arrived, the remote decision.
type syscallRemote struct {
	api.SyscallResponse
	Remote *api.RemoteRes `json:"remote,omitempty"`
	Status string         `json:"status,omitempty"`
}

func remoteSyscall(cmd *cobra.Command, c *client.Client, r *api.SyscallResponse, wait time.Duration) error {
	out := syscallRemote{SyscallResponse: *r}
	if r.EventID != "" {
		deadline := time.Now().Add(wait)
		for i := 0; ; i++ {
			e, err := c.BusEvent(cmd.Context(), r.EventID, i == 0)
			if err == nil {
				out.Status = e.Status
				if e.Remote != nil {
					out.Remote = e.Remote
					break
				}
			}
			if !time.Now().Before(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if jsonMode(cmd) {
		if err := writeJSON(cmd, out); err != nil {
			return err
		}
	} else {
		if err := printSyscall(cmd, r); err != nil {
			return err
		}
		if r.EventID != "" {
			w := cmd.OutOrStdout()
			if out.Remote == nil {
				fmt.Fprintf(w, "event %s %s; no remote decision yet (dominus bus status %s)\n", r.EventID, out.Status, r.EventID)
			} else {
				fmt.Fprintf(w, "event %s: remote %s %s (seq %d)\n", r.EventID, humanDecision(out.Remote.Decision), out.Remote.Reason, out.Remote.Seq)
				if out.Remote.Result != "" {
					fmt.Fprintln(w, out.Remote.Result)
				}
			}
		}
	}
	if err := syscallError(cmd, r); err != nil {
		return err
	}
	if out.Remote != nil && !isDecision(out.Remote.Decision, api.DecisionPermit) {
		return failReported(cmd, api.ExitDenied, api.CodeDenied, fmt.Errorf("remote %s: %s", humanDecision(out.Remote.Decision), out.Remote.Reason))
	}
	return nil
}

// checkCASArgs checks that the kv.cas arguments are the JSON object the
// kernel expects, so that a misspelt field is reported rather than read as
// an empty expectation.
func checkCASArgs(args string) error {
	if strings.TrimSpace(args) == "" {
		return usageError(errors.New(`kv.cas needs --args '{"expect": OLD, "value": NEW}' (or "expect_absent": true)`))
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(args)))
	dec.DisallowUnknownFields()
	var req api.KVCASRequest
	if err := dec.Decode(&req); err != nil {
		return usageError(fmt.Errorf("kv.cas --args must be a JSON object {expect, expect_absent, expect_version, value}: %v", err))
	}
	if dec.More() {
		return usageError(errors.New("kv.cas --args holds more than one JSON value"))
	}
	return nil
}

// syscallLine is the human form of a decision.
func syscallLine(r *api.SyscallResponse) string {
	switch {
	case isDecision(r.Decision, api.DecisionPermit):
		effect := ""
		if r.Effect != "" {
			effect = ", effect " + r.Effect
		}
		return fmt.Sprintf("PERMIT %s (seq %d, uses left %s%s)%s", r.Reason, r.Seq, unlimited(r.UsesLeft), effect, retryNote(r.Outcome))
	case isDecision(r.Decision, api.DecisionEscalate):
		return fmt.Sprintf("ESCALATE %s: approval %s (seq %d)%s", r.Reason, escalationID(r), r.Seq, retryNote(r.Outcome))
	}
	return fmt.Sprintf("%s %s (seq %d)%s", humanDecision(r.Decision), r.Reason, r.Seq, retryNote(r.Outcome))
}

// escalationID is the approval an escalated call waits for.
func escalationID(r *api.SyscallResponse) string {
	if r.EscalationID != "" {
		return r.EscalationID
	}
	return r.ApprovalID
}

func printSyscall(cmd *cobra.Command, r *api.SyscallResponse) error {
	w := cmd.OutOrStdout()
	if _, err := fmt.Fprintln(w, syscallLine(r)); err != nil {
		return err
	}
	if r.Op == "kv.get" && r.Found && isDecision(r.Decision, api.DecisionPermit) {
		_, err := fmt.Fprintln(w, r.Value)
		return err
	}
	return nil
}

// syscallError returns the exit error of a DENY or ESCALATE decision.
func syscallError(cmd *cobra.Command, r *api.SyscallResponse) error {
	what := fmt.Sprintf("syscall %s %s", r.Op, r.Resource)
	if isDecision(r.Decision, api.DecisionEscalate) {
		id := escalationID(r)
		return failReported(cmd, api.ExitEscalated, codeEscalated, fmt.Errorf(
			"%s escalated for human approval: %s; once approval %s is approved, repeat the call with --approval %s (seq %d)",
			what, r.Reason, id, id, r.Seq))
	}
	return outcomeError(cmd, what, r.Outcome)
}
