package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/api"
)

func init() {
	register(operatorCmd)
	register(statusCmd)
}

func operatorCmd() *cobra.Command {
	keygen, rekey := operatorKeyCmds()
	return group("operator", "Initialize a kernel, manage operators and the Raft group",
		operatorInitCmd(),
		operatorAddCmd(), operatorListCmd(), operatorRevokeCmd(), keygen, rekey, operatorProtocolCmd(), operatorLimitsCmd(),
		group("raft", "Inspect and change the Raft configuration",
			raftListPeersCmd(), raftAddPeerCmd(), raftRemovePeerCmd(), raftTransferLeadershipCmd(), raftLeaveCmd(), raftSnapshotCmd()),
	)
}

func operatorInitCmd() *cobra.Command {
	var operators, keyDir, joinToken string
	var threshold int
	var protocol uint16
	c := &cobra.Command{
		Use:   "init [--operators a,b,c --threshold M --key-dir DIR | --join-token T]",
		Short: "Seal genesis and print the root operator token (once per kernel)",
		Long: `init seals a kernel's genesis and prints its root token once.

On a sovereign kernel (--role sovereign), --operators names the humans who
govern the federation and --threshold how many of them must sign an
amendment or a federation resume; each gets a token (printed once) and an
Ed25519 key pair whose private half is written to --key-dir/NAME.key for
its holder (only the public half enters the ledger). A name may carry a
level: alice:co-operator (default sovereign).

On a domain kernel (--role domain), --join-token redeems the token from
'dominus domain create' with the sovereign (once; the same kernel may
retry) and prints the domain's root token: domain-sovereign authority.

--protocol seals genesis under an older protocol version (a standalone or
sovereign kernel; default: the newest every voter implements); move it
forward later with 'dominus operator protocol upgrade'.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			var r *api.OperatorInitResponse
			switch {
			case operators != "" || joinToken != "":
				r, err = initFederated(cmd, c, operators, threshold, keyDir, joinToken, protocol)
			case protocol != 0:
				r, err = c.InitWith(cmd.Context(), api.OperatorInitRequest{Protocol: protocol})
			default:
				var ir *api.InitResponse
				if ir, err = c.Init(cmd.Context()); err == nil {
					r = &api.OperatorInitResponse{InitResponse: *ir}
				}
			}
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, r)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Root token: %s\n", r.RootToken)
			if r.JoinSecret != "" {
				fmt.Fprintf(w, "Join secret: %s (for nodes that join later: dominus agent --join-secret)\n", r.JoinSecret)
			}
			fmt.Fprintf(w, "Kernel ID:  %s\n", r.KernelID)
			fmt.Fprintf(w, "Head:       %s\n", headString(r.Head))
			for _, o := range r.Operators {
				fmt.Fprintf(w, "Operator %s: token %s, key %s\n", o.Name, o.Token, o.KeyFile)
			}
			_, err = fmt.Fprintln(w, "\nTokens are shown once and are not stored by the kernel. Keep them safe.")
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&operators, "operators", "", "sovereign: comma-separated operator names (name[:level])")
	f.IntVar(&threshold, "threshold", 0, "sovereign: M, the signatures an amendment or federation resume needs")
	f.StringVar(&keyDir, "key-dir", "", "sovereign: directory for the operators' private key files")
	f.StringVar(&joinToken, "join-token", "", "domain: the join `token` from 'dominus domain create'")
	f.Uint16Var(&protocol, "protocol", 0, "seal genesis under this protocol version (default: the newest every voter implements)")
	return c
}

func statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the node's Raft and ledger status",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			s, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, s)
			}
			return printStatus(cmd, s)
		},
	}
}

func printStatus(cmd *cobra.Command, s *api.Status) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("Node", s.Node)
	row("Kernel ID", s.KernelID)
	row("Initialized", s.Initialized)
	switch {
	case s.DiskFull != "":
		row("State", "disk full: "+s.DiskFull)
	case s.Replaying:
		row("State", fmt.Sprintf("replaying %d/%d", s.AppliedIndex, s.ReplayTarget))
	case !s.Initialized:
		row("State", "not initialized")
	case s.Halted:
		row("State", "halted")
	default:
		row("State", "serving")
	}
	row("Raft state", s.RaftState)
	leader := s.Leader
	if s.LeaderAddr != "" {
		leader += " (" + s.LeaderAddr + ")"
	}
	row("Leader", leader)
	row("Term", s.Term)
	row("Applied index", s.AppliedIndex)
	row("Commit index", s.CommitIndex)
	row("Head", headString(s.Head))
	row("State digest", s.StateDigest)
	row("Epoch", s.Epoch)
	row("Ledger time", formatTime(s.LedgerTime))
	row("Peers", len(s.Peers))
	row("Canon hash", s.CanonHash)
	role := s.Role
	if role == "" {
		role = "standalone"
	}
	row("Role", role)
	if s.Domain != "" {
		row("Domain", s.Domain)
	}
	if s.Role != "" {
		row("Canon version", s.CanonVersion)
		if s.Passport != nil {
			row("Passport", s.Passport.ID+" (expires "+formatTime(s.Passport.Expires)+")")
		}
	}
	halted := "no"
	switch {
	case s.FedHalted:
		halted = "yes (federation halt)"
	case s.Halted:
		halted = "yes (kernel halt: dominus resume)"
	}
	row("Halted", halted)
	if s.Posture != "" {
		row("Posture", s.Posture)
	}
	row("Protocol", fmt.Sprintf("%d (this binary implements up to %d)", s.Protocol, s.ProtocolSupported))
	row("Version", s.Version)
	return tw.Flush()
}

func raftListPeersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list-peers",
		Short: "List the servers of the Raft configuration",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			peers, err := c.RaftPeers(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				if peers == nil {
					peers = []api.Peer{}
				}
				return writeJSON(cmd, peers)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tLEADER")
			for _, p := range peers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Address, p.Suffrage, strconv.FormatBool(p.Leader))
			}
			return tw.Flush()
		},
	}
}

// raftResult is the machine output of remove-peer and transfer-leadership.
type raftResult struct {
	OK bool   `json:"ok"`
	ID string `json:"id,omitempty"`
}

func raftAddPeerCmd() *cobra.Command {
	var nonVoter bool
	var rid string
	c := &cobra.Command{
		Use:   "add-peer NAME ADDR [--non-voter]",
		Short: "Admit node NAME at --bind address ADDR and add it to the Raft configuration (operator.manage)",
		Long: `add-peer admits a node of this kernel (its certificate names the kernel and
NAME) by name and --bind address, in the ledger (member.admit), and adds it
to the Raft configuration, as a voter or with --non-voter as a non-voting
member. The node then needs no join secret: start it with --join (or with
neither --join nor --bootstrap-expect, to wait to be contacted).

Exit status: 0 added, 2 denied (no operator.manage), 1 error.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := gateAnswer(c.AddPeer(cmd.Context(), api.AddPeerRequest{ID: args[0], Address: args[1], NonVoter: nonVoter}, requestOpts(rid)...))
			if err != nil {
				return err
			}
			return printAnswer(cmd, "add-peer "+args[0], r, r.Outcome, func() error {
				kind := "voter"
				if nonVoter {
					kind = "non-voter"
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "admitted %s at %s and added it as a %s (seq %d)\n", args[0], args[1], kind, r.Seq)
				return err
			})
		},
	}
	c.Flags().BoolVar(&nonVoter, "non-voter", false, "add a non-voting member (replicates and applies, never votes)")
	requestIDFlag(c, &rid)
	return c
}

func raftRemovePeerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove-peer ID",
		Short: "Remove a server from the Raft configuration",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			if err := c.RemovePeer(cmd.Context(), args[0]); err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, raftResult{OK: true, ID: args[0]})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed peer %s\n", args[0])
			return err
		},
	}
}

func raftSnapshotCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot",
		Short: "Take a Raft snapshot on the node addressed now and compact its Raft log",
		Long: `snapshot makes the node named by --addr take a Raft snapshot of its ledger
now, as it does on its own every --snapshot-interval once --snapshot-threshold
entries accumulated, and compact its Raft log behind it (keeping
--trailing-logs entries for slow followers). The ledger and its archive are
unchanged; nothing is proposed. The answer gives the snapshot's index and the
log the node still holds: a follower whose log ends before first_log_index-1
can only catch up by installing a snapshot.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.RaftSnapshot(cmd.Context())
			if err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, res)
			}
			verb := "took"
			if !res.Taken {
				verb = "nothing applied yet; last"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s snapshot at index %d (term %d); raft log now %d..%d\n",
				res.Node, verb, res.Index, res.Term, res.FirstLogIndex, res.LastLogIndex)
			return err
		},
	}
}

func raftTransferLeadershipCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leadership [ID]",
		Short: "Hand leadership to server ID, or to the most up-to-date follower",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			if err := c.TransferLeadership(cmd.Context(), id); err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, raftResult{OK: true, ID: id})
			}
			target := id
			if target == "" {
				target = "a follower"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "leadership transferred to %s\n", target)
			return err
		},
	}
}

func headString(h api.Head) string {
	if h.Hash == "" {
		return strconv.FormatUint(h.Seq, 10)
	}
	return fmt.Sprintf("%d:%s", h.Seq, h.Hash)
}

// formatTime renders a ledger time for people (RFC 3339, UTC).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func raftLeaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Remove the node at --addr from its cluster (it hands over leadership first); stop it afterwards",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			if err := c.Leave(cmd.Context()); err != nil {
				return err
			}
			if jsonMode(cmd) {
				return writeJSON(cmd, raftResult{OK: true})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "left the cluster; the process can now be stopped")
			return err
		},
	}
}
