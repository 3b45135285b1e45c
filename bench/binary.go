package bench

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ReferenceBuildTag is the build tag that makes a dominus binary the
// benchmark reference (kernel/benchreference.go): after genesis its state
// machine only counts and hashes. The reference target's agents run such a
// binary (Config.ReferenceExe); the gate's agents must not.
const ReferenceBuildTag = "benchreference"

// ReferenceBinaryName is the file name of the reference binary; the
// Makefile builds it into bin/ beside dominus.
const ReferenceBinaryName = "dominus-bench-reference"

// runsCluster reports whether any mode starts local agents.
func (c *Config) runsCluster() bool {
	return len(c.Addr) == 0 && slices.ContainsFunc(c.Modes, func(m string) bool { return !isLedgerMode(m) })
}

// runsReference reports whether a reference cluster will be started.
func (c *Config) runsReference() bool {
	return len(c.Addr) == 0 && slices.Contains(c.Targets, TargetReference) && slices.ContainsFunc(c.Modes, isLoadMode)
}

// checkBinaries makes sure, before any cluster starts, that the gate's
// binary is a real kernel and the reference binary exists and is built
// with ReferenceBuildTag: a mix-up would otherwise measure one target
// twice without a word.
func (c *Config) checkBinaries() error {
	if !c.runsCluster() {
		return nil
	}
	gate, gateErr := buildinfo.ReadFile(c.Exe)
	if gateErr == nil && slices.Contains(buildTags(gate), ReferenceBuildTag) {
		return fmt.Errorf("bench: %s is built with -tags %s: its state machine only counts and hashes, so it cannot run the gate", c.Exe, ReferenceBuildTag)
	}
	if !c.runsReference() {
		return nil
	}
	if _, err := os.Stat(c.ReferenceExe); err != nil {
		return fmt.Errorf("bench: the reference target needs the reference binary: %w; build it with `make build` (go build -tags %s -o bin/%s ./cmd/dominus), name it with --reference-binary, or measure only the gate with --targets gate",
			err, ReferenceBuildTag, ReferenceBinaryName)
	}
	ref, err := buildinfo.ReadFile(c.ReferenceExe)
	if err != nil {
		return fmt.Errorf("bench: reference binary %s: %w", c.ReferenceExe, err)
	}
	if !slices.Contains(buildTags(ref), ReferenceBuildTag) {
		return fmt.Errorf("bench: reference binary %s is not built with -tags %s: its agents would run the real ledger", c.ReferenceExe, ReferenceBuildTag)
	}
	if gateErr == nil && vcsState(gate) != vcsState(ref) {
		c.logf("warning: the reference binary (%s) and the gate binary (%s) come from different sources (%s, %s): rebuild both with `make build`",
			c.ReferenceExe, c.Exe, vcsState(ref), vcsState(gate))
	}
	return nil
}

// buildTags returns the -tags a binary was built with.
func buildTags(bi *buildinfo.BuildInfo) []string {
	for _, s := range bi.Settings {
		if s.Key == "-tags" {
			return strings.Split(s.Value, ",")
		}
	}
	return nil
}

// vcsState names the commit a binary was built from, with "+modified"
// for a dirty tree ("unknown" when the build recorded none).
func vcsState(bi *buildinfo.BuildInfo) string {
	rev, modified := "unknown", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			modified = "+modified"
		}
	}
	return rev + modified
}
