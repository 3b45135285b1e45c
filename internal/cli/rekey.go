package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
)

// operatorKeyCmds are the commands that replace a lost operator key: the
// holder makes a new key pair, M other operators sign the replacement,
// anyone submits it.
func operatorKeyCmds() (keygen, rekey *cobra.Command) {
	var keyDir string
	keygen = &cobra.Command{
		Use:   "keygen NAME --key-dir DIR",
		Short: "Make a new key pair for operator NAME (the private half to DIR/NAME.key) and print its public key",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := requireString("key-dir", keyDir); err != nil {
				return err
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			path, err := writeOperatorKey(keyDir, pos[0], priv)
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, map[string]string{"operator": pos[0], "pub_key": hex.EncodeToString(pub), "key_file": path})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n(private key in %s; have %s's peers sign: dominus operator rekey sign %s --new-pub-key %s --key THEIR.key)\n",
				hex.EncodeToString(pub), path, pos[0], pos[0], hex.EncodeToString(pub))
			return err
		},
	}
	keygen.Flags().StringVar(&keyDir, "key-dir", "", "where to write the private key (required)")

	var newPub, keyFile string
	sign := &cobra.Command{
		Use:   "sign NAME --new-pub-key HEX --key YOUR.key",
		Short: "Sign the replacement of operator NAME's key with your own operator key; prints OPERATOR:SIGNATURE",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			me, key, err := readOperatorKey(keyFile)
			if err != nil {
				return err
			}
			nk, err := hex.DecodeString(newPub)
			if err != nil || len(nk) != ed25519.PublicKeySize {
				return usageError(errors.New("--new-pub-key must be a hex Ed25519 public key"))
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			cn, err := c.Canon(cmd.Context(), false)
			if err != nil {
				return err
			}
			var old []byte
			for _, o := range cn.Operators {
				if o.Name == pos[0] {
					old, _ = hex.DecodeString(o.PubKey)
				}
			}
			if old == nil {
				return fail(api.ExitError, api.CodeNotFound, fmt.Errorf("no operator %s", pos[0]))
			}
			sig := ed25519.Sign(key, api.RekeyMessage(pos[0], old, nk))
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s:%s\n", me, hex.EncodeToString(sig))
			return err
		},
	}
	sign.Flags().StringVar(&newPub, "new-pub-key", "", "the replacement public key, hex (from operator keygen)")
	sign.Flags().StringVar(&keyFile, "key", "", "your operator key file")

	var sigs []string
	submit := &cobra.Command{
		Use:   "submit NAME --new-pub-key HEX --signature OP:SIG [--signature OP:SIG ...]",
		Short: "Replace operator NAME's key with M other operators' signatures (ledgered)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			req := api.RekeyRequest{NewPubKey: newPub}
			for _, s := range sigs {
				op, sig, ok := strings.Cut(s, ":")
				if !ok {
					return usageError(fmt.Errorf("--signature %q: want OPERATOR:HEX", s))
				}
				req.Signatures = append(req.Signatures, api.RekeySignature{Operator: op, Signature: sig})
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.OperatorRekey(cmd.Context(), pos[0], req))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "operator key replacement", r, r.Outcome, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s's key replaced (seq %d)\n", pos[0], r.Seq)
				return err
			})
		},
	}
	submit.Flags().StringVar(&newPub, "new-pub-key", "", "the replacement public key, hex")
	submit.Flags().StringSliceVar(&sigs, "signature", nil, "OPERATOR:SIGNATURE from operator rekey sign (M of them)")
	return keygen, group("rekey", "Replace a lost operator key with M of N operators' signatures", sign, submit)
}
