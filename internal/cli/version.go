package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/dominus-kernel/dominus/fsm"
)

// Version is the dominus release, set at build time with
// -ldflags "-X github.com/dominus-kernel/dominus/internal/cli.Version=...".
var Version = "dev"

// Commit is the source revision, set at build time like Version; when it
// is not set, the revision Go recorded in the binary (if any).
var Commit = ""

// VersionInfo is `dominus version --json`.
type VersionInfo struct {
	Version   string   `json:"version"`
	Commit    string   `json:"commit"`
	Go        string   `json:"go"`
	Protocols []uint16 `json:"protocols"`
}

func versionInfo() VersionInfo {
	commit := Commit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	v := VersionInfo{Version: Version, Commit: commit, Go: runtime.Version()}
	for p := uint16(1); p <= fsm.ProtocolVersion; p++ {
		v.Protocols = append(v.Protocols, p)
	}
	return v
}

func (v VersionInfo) String() string {
	return fmt.Sprintf("dominus %s (commit %s, %s, protocols %d..%d)", v.Version, v.Commit, v.Go, v.Protocols[0], v.Protocols[len(v.Protocols)-1])
}

func init() {
	register(func() *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the version, commit, Go release and the ledger protocols this binary implements",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				v := versionInfo()
				if jsonMode(cmd) {
					return writeJSON(cmd, v)
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), v.String())
				return err
			},
		}
	})
}
