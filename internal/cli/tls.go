package cli

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

func init() { register(tlsCmd) }

// Default validity periods of `dominus tls`.
const (
	defaultCADays   = 5 * 365
	defaultCertDays = 365
	maxDays         = 100 * 365
)

func tlsCmd() *cobra.Command {
	return group("tls", "Create the federation CA and node certificates",
		group("ca", "Manage the certificate authority", tlsCACreateCmd()),
		group("cert", "Manage node certificates", tlsCertCreateCmd()),
	)
}

// tlsPaths is the machine output of both tls commands.
type tlsPaths struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

func daysToValidity(days int) (time.Duration, error) {
	if days < 1 || days > maxDays {
		return 0, usageError(fmt.Errorf("--days %d: must lie in [1, %d]", days, maxDays))
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

func tlsCACreateCmd() *cobra.Command {
	var dir string
	var days int
	c := &cobra.Command{
		Use:   "create",
		Short: "Write a new CA as ca.pem and ca-key.pem (never overwrites)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			validity, err := daysToValidity(days)
			if err != nil {
				return err
			}
			certPath, keyPath, err := tlsutil.CreateCA(dir, validity)
			if err != nil {
				return err
			}
			return printTLSPaths(cmd, "CA", certPath, keyPath)
		},
	}
	c.Flags().StringVar(&dir, "dir", ".", "folder to write ca.pem and ca-key.pem into")
	c.Flags().IntVar(&days, "days", defaultCADays, "validity in days")
	return c
}

func tlsCertCreateCmd() *cobra.Command {
	var node, kernel, ipList, dnsList, dir, caPath, caKeyPath string
	var days int
	c := &cobra.Command{
		Use:   "create --node NAME --ip IP[,IP] --kernel KERNEL",
		Short: "Write NAME.pem and NAME-key.pem signed by the CA (never overwrites)",
		Long: `create writes a node certificate signed by the CA: its CN is --node, its
SANs the --ip addresses (and --dns names) it serves on, and the identity
dominus://KERNEL/NODE that binds it to its kernel: "sovereign", a domain's
name, or the name of a standalone kernel. A kernel serves node RPC and
Raft only to certificates of its own kernel, so another tenant's node,
with a certificate from the same CA, gets nothing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if node == "" {
				return usageError(fmt.Errorf("--node is required"))
			}
			if kernel == "" {
				return usageError(fmt.Errorf("--kernel is required: the kernel node %q belongs to (sovereign, a domain's name, or the standalone kernel's name)", node))
			}
			if err := tlsutil.ValidateNodeName(kernel); err != nil {
				return usageError(fmt.Errorf("--kernel: %v", err))
			}
			validity, err := daysToValidity(days)
			if err != nil {
				return err
			}
			var ips []net.IP
			for _, s := range splitList(ipList) {
				ip := net.ParseIP(s)
				if ip == nil {
					return usageError(fmt.Errorf("--ip %q is not an IP address", s))
				}
				ips = append(ips, ip)
			}
			if len(ips) == 0 && net.ParseIP(node) == nil && dnsList == "" {
				return usageError(fmt.Errorf("--ip is required (the addresses node %q serves on)", node))
			}
			certPath, keyPath, err := tlsutil.CreateCert(dir, caPath, caKeyPath, kernel, node, ips, splitList(dnsList), validity)
			if err != nil {
				return err
			}
			return printTLSPaths(cmd, "certificate for "+node, certPath, keyPath)
		},
	}
	f := c.Flags()
	f.StringVar(&node, "node", "", "node name: the certificate's CN and file name")
	f.StringVar(&kernel, "kernel", "", "the kernel the node belongs to: sovereign, a domain's name, or a standalone kernel's name (required)")
	f.StringVar(&ipList, "ip", "", "comma-separated IP addresses the node serves on")
	f.StringVar(&dnsList, "dns", "", "comma-separated DNS names the node serves on")
	f.StringVar(&dir, "dir", ".", "folder to write NAME.pem and NAME-key.pem into")
	f.StringVar(&caPath, "ca", tlsutil.CACertFile, "CA certificate")
	f.StringVar(&caKeyPath, "ca-key", tlsutil.CAKeyFile, "CA private key")
	f.IntVar(&days, "days", defaultCertDays, "validity in days (never beyond the CA's)")
	return c
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func printTLSPaths(cmd *cobra.Command, what, certPath, keyPath string) error {
	if jsonMode(cmd) {
		return writeJSON(cmd, tlsPaths{Cert: certPath, Key: keyPath})
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s\nwrote key: %s (keep it secret)\n", what, filepath.Clean(certPath), filepath.Clean(keyPath))
	return err
}
