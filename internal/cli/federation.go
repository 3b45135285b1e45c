package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

func init() {
	register(domainCmd)
	register(passportCmd)
	register(canonCmd)
	register(busCmd)
	register(federationCmd)
}

// Operator keys are Ed25519 seeds in PEM blocks of this type; the file
// name is the operator's name.
const operatorKeyPEM = "DOMINUS OPERATOR KEY"

func writeOperatorKey(dir, name string, key ed25519.PrivateKey) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".key")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("operator key %s: %w (keys are never overwritten)", path, err)
	}
	defer f.Close()
	if err := pem.Encode(f, &pem.Block{Type: operatorKeyPEM, Headers: map[string]string{"Operator": name}, Bytes: key.Seed()}); err != nil {
		return "", err
	}
	return path, f.Sync()
}

// readOperatorKey returns the operator's name and private key.
func readOperatorKey(path string) (string, ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, usageError(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != operatorKeyPEM || len(blk.Bytes) != ed25519.SeedSize || blk.Headers["Operator"] == "" {
		return "", nil, usageError(fmt.Errorf("%s is not a Dominus operator key", path))
	}
	return blk.Headers["Operator"], ed25519.NewKeyFromSeed(blk.Bytes), nil
}

// initFederated handles `operator init` for a sovereign (--operators) or a
// domain (--join-token).
func initFederated(cmd *cobra.Command, c *client.Client, operators string, threshold int, keyDir, joinToken string, protocol uint16) (*api.OperatorInitResponse, error) {
	req := api.OperatorInitRequest{JoinToken: joinToken, Threshold: threshold, Protocol: protocol}
	keys := map[string]ed25519.PrivateKey{}
	if operators != "" {
		if keyDir == "" {
			return nil, usageError(errors.New("--operators needs --key-dir for the operators' private keys"))
		}
		for _, name := range strings.Split(operators, ",") {
			name = strings.TrimSpace(name)
			level := ""
			if n, l, ok := strings.Cut(name, ":"); ok {
				name, level = n, l
			}
			if name == "" {
				continue
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			keys[name] = priv
			req.Operators = append(req.Operators, api.OperatorInit{Name: name, PubKey: hex.EncodeToString(pub), Level: level})
		}
		if threshold == 0 {
			return nil, usageError(errors.New("--operators needs --threshold M"))
		}
	}
	r, err := c.InitWith(cmd.Context(), req)
	if err != nil {
		return nil, err
	}
	for i, o := range r.Operators {
		path, err := writeOperatorKey(keyDir, o.Name, keys[o.Name])
		if err != nil {
			return r, err
		}
		r.Operators[i].KeyFile = path
	}
	return r, nil
}

func domainCmd() *cobra.Command {
	var scopes string
	create := &cobra.Command{
		Use:   "create NAME [--scopes bus.*]",
		Short: "Register a domain on the sovereign and print its one-time join token",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			req := api.DomainCreateRequest{Name: pos[0]}
			if scopes != "" {
				req.Scopes = splitList(scopes)
			}
			r, err := gateAnswer(c.DomainCreate(cmd.Context(), req))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "domain create", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "Domain:     %s\nJoin token: %s\n\nStart every node of the domain with --role domain --domain %s --join-token TOKEN --sovereign URL,\nthen run `dominus operator init --join-token TOKEN` against one of them.\n", r.Domain, r.JoinToken, r.Domain)
				return err
			})
		},
	}
	create.Flags().StringVar(&scopes, "scopes", "", "comma-separated federation scopes of the domain's passports (default bus.*)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the sovereign's domains",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ds, err := c.Domains(cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd, ds, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DOMAIN\tJOINED\tPASSPORT\tCANON ACK\tSUSPENDED\tBUS")
				for _, d := range ds {
					fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%v\t%s\n", d.Name, d.Joined, d.Passport, d.CanonAck, d.Suspended, strings.Join(d.BusAddrs, ","))
				}
				return tw.Flush()
			})
		},
	}
	return group("domain", "Register and list the federation's domains (sovereign)", create, list)
}

func passportCmd() *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List passports (every issued one on the sovereign; this domain's and its peers' on a domain)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ps, err := c.Passports(cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd, ps, func() error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tDOMAIN\tEXPIRES\tREVOKED\tCURRENT")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", p.ID, p.Domain, p.Expires.Format(time.RFC3339), p.Revoked, p.Current)
				}
				return tw.Flush()
			})
		},
	}
	inspect := &cobra.Command{
		Use:   "inspect ID",
		Short: "Show one passport",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.Passport(cmd.Context(), pos[0])
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, p)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ID:        %s\nDomain:    %s\nSerial:    %d\nIssued:    %s\nExpires:   %s\nRevoked:   %v\nIssuer:    %s (key %s, by %s)\nScopes:    %s\nNode keys: %d\n",
				p.ID, p.Domain, p.Serial, p.Issued.Format(time.RFC3339), p.Expires.Format(time.RFC3339), p.Revoked, p.Issuer, p.KeyID, p.IssuedBy, strings.Join(p.Scopes, ","), len(p.NodeKeys))
			return nil
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a passport (sovereign); every kernel refuses the domain's bus events within the passport bound",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.PassportRevoke(cmd.Context(), pos[0]))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "passport revoke", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (seq %d)\n", pos[0], r.Seq)
				return err
			})
		},
	}
	return group("passport", "List, inspect and revoke domain passports", list, inspect, revoke)
}

func canonCmd() *cobra.Command {
	var withText bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the canon version and hash this kernel runs under, and the amendments",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			cn, err := c.Canon(cmd.Context(), withText)
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, cn)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Version:  %d\nHash:     %s\nCompiled: %s\n", cn.Version, cn.Hash, cn.Compiled)
			for _, a := range cn.Amendments {
				fmt.Fprintf(w, "  %s  v%d  %-10s signed by %s\n", a.ID, a.Version, a.State, strings.Join(a.Signers, ","))
			}
			return nil
		},
	}
	show.Flags().BoolVar(&withText, "text", false, "include the amendment texts")
	var file string
	propose := &cobra.Command{
		Use:   "propose --file NEW.md",
		Short: "Propose a new canon text (sovereign); it ratifies with M operators' signatures",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			text, err := readLimitedFile(cmd, "file", file, api.MaxCanonBytes)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.AmendPropose(cmd.Context(), text))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "amendment proposal", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "proposed %s (seq %d); operators sign it with: dominus canon amend sign %s --key FILE\n", r.ID, r.Seq, r.ID)
				return err
			})
		},
	}
	propose.Flags().StringVar(&file, "file", "", "the full new canon text (required)")
	var keyFile string
	sign := &cobra.Command{
		Use:   "sign ID --key OPERATOR.key",
		Short: "Sign an amendment's exact text with an operator's key",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			name, key, err := readOperatorKey(keyFile)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			cn, err := c.Canon(cmd.Context(), false)
			if err != nil {
				return err
			}
			var hash []byte
			for _, a := range cn.Amendments {
				if a.ID == pos[0] {
					hash, _ = hex.DecodeString(a.Hash)
				}
			}
			if hash == nil {
				return fail(api.ExitError, api.CodeNotFound, fmt.Errorf("no amendment %s", pos[0]))
			}
			sig := ed25519.Sign(key, api.AmendmentMessage(pos[0], hash))
			r, err := gateAnswer(c.AmendSign(cmd.Context(), pos[0], api.AmendSignRequest{Operator: name, Signature: hex.EncodeToString(sig)}))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "amendment signature", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s signed %s: %s (seq %d)\n", name, r.ID, r.State, r.Seq)
				return err
			})
		},
	}
	sign.Flags().StringVar(&keyFile, "key", "", "the operator's key `file` from 'operator init --key-dir' (required)")
	veto := &cobra.Command{
		Use:   "veto ID",
		Short: "Veto a pending amendment (sovereign operator)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.AmendVeto(cmd.Context(), pos[0]))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "veto", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "vetoed %s (seq %d)\n", pos[0], r.Seq)
				return err
			})
		},
	}
	return group("canon", "Show the canon and amend it (M of N operators)", show, group("amend", "Propose, sign and veto canon amendments", propose, sign, veto))
}

func busCmd() *cobra.Command {
	status := &cobra.Command{
		Use:   "status EVENT_ID",
		Short: "Show a cross-domain call's delivery and the remote decision",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			e, err := c.BusEvent(cmd.Context(), pos[0], true)
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, e)
			}
			return printBusEvent(cmd, e)
		},
	}
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Show this node's bus counters",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			s, err := c.BusStats(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Bus:       %s\nKey epoch: %d\nAccepted:  %d\nPending:   %d\nDelivered: %d\nReplays dropped: %d\n", s.Addr, s.KeyEpoch, s.Accepted, s.Pending, s.Delivered, s.ReplayDropped)
			for k, v := range s.Rejected {
				if v > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Rejected %s: %d\n", k, v)
				}
			}
			return nil
		},
	}
	return group("bus", "Inspect the federation bus", status, stats)
}

func federationCmd() *cobra.Command {
	var keyFile string
	rotate := &cobra.Command{
		Use:   "rotate-keys --key OPERATOR.key",
		Short: "Sign the rotation of the federation's bus link keys and gossip key (sovereign); it takes effect once M operators have signed",
		Long: `Sign, with an operator's key, the move of the federation's key epoch to the
next one. Once M of the N operators (one of them sovereign-level) have
signed, the sovereign derives every bus link key and the gossip key in the
new epoch; each domain receives its new keys at its next renewal, and a
frame under an old key is refused. The sovereign also rotates on its own
after a passport revocation.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return usageError(errors.New("rotate-keys needs --key OPERATOR.key"))
			}
			name, key, err := readOperatorKey(keyFile)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ks, err := c.FedKeys(cmd.Context())
			if err != nil {
				return err
			}
			next := ks.KeyEpoch + 1
			sig := ed25519.Sign(key, api.RotateKeysMessage(ks.KernelID, next))
			r, err := gateAnswer(c.FedRotateKeys(cmd.Context(), api.KeyRotateRequest{Epoch: next, Operator: name, Signature: hex.EncodeToString(sig)}))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "key rotation", r, r.Outcome, func() error {
				state := fmt.Sprintf("signed; waiting for more operators (%d of %d)", len(r.Pending), ks.Threshold)
				if r.Rotated {
					state = fmt.Sprintf("keys rotated to epoch %d", r.KeyEpoch)
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s signed the rotation to key epoch %d: %s (seq %d)\n", name, next, state, r.Seq)
				return err
			})
		},
	}
	rotate.Flags().StringVar(&keyFile, "key", "", "the operator's key `file` from 'operator init --key-dir' (required)")
	return group("federation", "Federation-wide operations (sovereign)", rotate)
}

func printBusEvent(cmd *cobra.Command, e *api.BusEvent) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "Event:  %s (%s %s by %s)\nStatus: %s\n", e.ID, e.Op, e.Resource, e.Entity, e.Status)
	if e.Remote != nil {
		fmt.Fprintf(w, "Remote: %s %s (seq %d)\n", humanDecision(e.Remote.Decision), e.Remote.Reason, e.Remote.Seq)
		if e.Remote.Result != "" {
			fmt.Fprintln(w, e.Remote.Result)
		}
	}
	return nil
}
