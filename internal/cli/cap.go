package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() { register(capCmd) }

func capCmd() *cobra.Command {
	return group("cap", "Grant, delegate, revoke and inspect capabilities",
		capGrantCmd(), capDelegateCmd(), capRevokeCmd(), capListCmd(), capInspectCmd())
}

// grantFlags are the flags of cap grant and cap delegate.
type grantFlags struct {
	entity    string
	ops       []string
	resources []string
	ttl       string
	uses      int64
	domain    string
}

func (g *grantFlags) add(c *cobra.Command, delegate bool) {
	f := c.Flags()
	f.StringVar(&g.entity, "entity", "", "the entity (agent) that will hold the capability (required)")
	listFlag(c, &g.ops, "ops", "operations allowed, comma-separated, e.g. kv.put,kv.get (required)")
	listFlag(c, &g.resources, "resources", "resource patterns, comma-separated, e.g. 'orders/*' (required)")
	f.Int64Var(&g.uses, "uses", 0, "number of uses allowed (0: unlimited)")
	if delegate {
		f.StringVar(&g.ttl, "ttl", "", "lifetime, a Go duration such as 1h (default: until the parent expires)")
		return
	}
	f.StringVar(&g.ttl, "ttl", "", "lifetime, a Go duration such as 1h (default: no expiry)")
	f.StringVar(&g.domain, "domain", "", "the domain the capability is valid in (default: any)")
}

func (g *grantFlags) request() (api.GrantRequest, error) {
	if err := requireString("entity", g.entity); err != nil {
		return api.GrantRequest{}, err
	}
	ops, err := cleanList("ops", g.ops, true)
	if err != nil {
		return api.GrantRequest{}, err
	}
	res, err := cleanList("resources", g.resources, true)
	if err != nil {
		return api.GrantRequest{}, err
	}
	if err := checkTTL(g.ttl); err != nil {
		return api.GrantRequest{}, err
	}
	if g.uses < 0 {
		return api.GrantRequest{}, usageError(fmt.Errorf("--uses %d: must be 0 (unlimited) or more", g.uses))
	}
	return api.GrantRequest{Entity: g.entity, Ops: ops, Resources: res, TTL: g.ttl, Uses: g.uses, Domain: g.domain}, nil
}

// printGrant prints the answer to a request that issues a token: with
// --json the answer as sent, otherwise head and then the token alone on
// the last line of stdout, so that `| tail -1` yields it.
func printGrant(cmd *cobra.Command, what string, r *api.GrantResponse, head string) error {
	if err := printAnswer(cmd, what, r, r.Outcome, func() error { return printToken(cmd, r, head) }); err != nil {
		return err
	}
	if jsonMode(cmd) && r.Token == "" {
		return tokenLost(cmd, r)
	}
	return nil
}

// grantLikeCmd builds grant and delegate: the same flags and output,
// a different endpoint.
func grantLikeCmd(use, short, long, verb, what string, delegate bool,
	call func(*client.Client, context.Context, api.GrantRequest, ...client.Option) (*api.GrantResponse, error)) *cobra.Command {
	var g grantFlags
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := g.request()
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(call(c, cmd.Context(), req))
			if err != nil {
				return err
			}
			head := fmt.Sprintf("%s %s to %s (granted by %s, seq %d)%s", verb, r.ID, req.Entity, dash(r.GrantedBy), r.Seq, retryNote(r.Outcome))
			return printGrant(cmd, what+req.Entity, r, head)
		},
	}
	g.add(c, delegate)
	return c
}

func capGrantCmd() *cobra.Command {
	return grantLikeCmd("grant --entity E --ops OPS --resources PATTERNS [--ttl D] [--uses N] [--domain D]",
		"Issue a capability to an entity (operator token with cap.grant)",
		`grant issues a capability and prints its id and, alone on the last line,
its token, which is shown only this once. A DENY answer exits 2 with the
reason.`, "granted", "grant to ", false, (*client.Client).Grant)
}

func capDelegateCmd() *cobra.Command {
	return grantLikeCmd("delegate --entity E --ops OPS --resources PATTERNS [--ttl D] [--uses N]",
		"Derive a narrower child of this token's capability for another entity",
		`delegate derives a child of the capability of --token (the parent): it
may not be wider than the parent (ops, resources, lifetime, uses). It prints
the child's id and, alone on the last line, its token, shown only this once.
A DENY answer (e.g. wider_than_parent) exits 2 with the reason.`, "delegated", "delegation to ", true, (*client.Client).Delegate)
}

func capRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a capability and every capability delegated from it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.Revoke(cmd.Context(), args[0]))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "revoke "+args[0], r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "revoked %s and its delegations (seq %d)%s\n", args[0], r.Seq, retryNote(r.Outcome))
				return err
			})
		},
	}
}

func capListCmd() *cobra.Command {
	var entity, asOf string
	c := &cobra.Command{
		Use:   "list [--entity E]",
		Short: "List capabilities (never their tokens), optionally of one entity",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			caps, err := c.Caps(cmd.Context(), entity, client.WithAsOf(asOf))
			if err != nil {
				return err
			}
			return printList(cmd, caps, func() error {
				if len(caps) > 0 {
					noteAsOf(cmd, caps[0].AsOf)
				}
				return printCaps(cmd, caps)
			})
		},
	}
	c.Flags().StringVar(&entity, "entity", "", "only the capabilities of this entity")
	asOfFlag(c, &asOf)
	return c
}

func printCaps(cmd *cobra.Command, caps []api.Capability) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENTITY\tOPS\tRESOURCES\tUSED\tREMAINING\tEXPIRES\tSTATE\tGRANTED_BY\tPARENT")
	for _, c := range caps {
		entity := c.Entity
		if c.Operator {
			entity += " (operator)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.ID, entity, joinOr(c.Ops), joinOr(c.Resources),
			c.Used, unlimited(c.Remaining), formatExpiry(c.Expires), c.Effective, dash(c.GrantedBy), dash(c.Parent))
	}
	return tw.Flush()
}

func capInspectCmd() *cobra.Command {
	var asOf string
	c := &cobra.Command{
		Use:   "inspect ID",
		Short: "Show one capability (cap.read, or the holder's own token)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			cp, err := c.Cap(cmd.Context(), args[0], client.WithAsOf(asOf))
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, cp)
			}
			noteAsOf(cmd, cp.AsOf)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
			row("ID", cp.ID)
			row("Entity", cp.Entity)
			row("Operator", cp.Operator)
			row("Domain", dash(cp.Domain))
			row("Ops", joinOr(cp.Ops))
			row("Resources", joinOr(cp.Resources))
			row("Expires", formatExpiry(cp.Expires))
			row("Uses", unlimitedIfZero(cp.Uses))
			row("Used", cp.Used)
			row("Reserved", cp.Reserved)
			row("Remaining", unlimited(cp.Remaining))
			row("Parent", dash(cp.Parent))
			row("Depth", cp.Depth)
			row("Granted by", dash(cp.GrantedBy))
			row("Revoked", cp.Revoked)
			row("State", cp.Effective)
			row("Created at seq", cp.Created)
			return tw.Flush()
		},
	}
	asOfFlag(c, &asOf)
	return c
}

// unlimitedIfZero renders a use limit where 0 means no limit.
func unlimitedIfZero(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// Operator subcommands, added to the operator group of operator.go.

func operatorAddCmd() *cobra.Command {
	var scopes, resources []string
	var ttl string
	c := &cobra.Command{
		Use:   "add NAME --scopes SCOPES [--resources PATTERNS] [--ttl D]",
		Short: "Issue a governance capability to a named human and print its token once",
		Long: `add issues an operator capability with the given scopes and prints its id
and, alone on the last line, its token, shown only this once. Scopes are
governance operations (cap.grant, cap.revoke, cap.read, policy.set,
approval.decide, halt, operator.manage, audit.read, snapshot.manage, ...)
and the ops of the capabilities the operator will grant: from protocol 4 a
grant lies within its granter's own scope (ops, resources, expiry, uses),
so an operator who grants kv.put on orders/* holds it, e.g.
--scopes cap.grant,kv.* --resources 'orders/*'.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			sc, err := cleanList("scopes", scopes, true)
			if err != nil {
				return err
			}
			res, err := cleanList("resources", resources, false)
			if err != nil {
				return err
			}
			if err := checkTTL(ttl); err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.OperatorAdd(cmd.Context(), api.OperatorRequest{Name: name, Scopes: sc, Resources: res, TTL: ttl}))
			if err != nil {
				return err
			}
			head := fmt.Sprintf("operator %s: %s, scopes %s (granted by %s, seq %d)%s", name, r.ID, strings.Join(sc, ","), dash(r.GrantedBy), r.Seq, retryNote(r.Outcome))
			return printGrant(cmd, "operator add "+name, r, head)
		},
	}
	listFlag(c, &scopes, "scopes", "governance operations and the ops the operator may grant, comma-separated (required)")
	listFlag(c, &resources, "resources", "resource patterns the scopes apply to (default '*')")
	c.Flags().StringVar(&ttl, "ttl", "", "lifetime, a Go duration such as 720h (default: no expiry)")
	return c
}

func operatorListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List operators' capabilities",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			caps, err := c.Operators(cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd, caps, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tID\tSCOPES\tRESOURCES\tEXPIRES\tSTATE\tGRANTED_BY")
				for _, c := range caps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Entity, c.ID, joinOr(c.Ops), joinOr(c.Resources),
						formatExpiry(c.Expires), c.Effective, dash(c.GrantedBy))
				}
				return tw.Flush()
			})
		},
	}
}

func operatorRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke every active capability of the named operator",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.OperatorRevoke(cmd.Context(), args[0]))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "operator revoke "+args[0], r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "revoked operator %s (seq %d)%s\n", args[0], r.Seq, retryNote(r.Outcome))
				return err
			})
		},
	}
}
