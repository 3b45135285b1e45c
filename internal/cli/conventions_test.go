package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
)

// commandPaths lists every command of the tree (without the root's name).
func commandPaths(c *cobra.Command, prefix []string, out *[][]string) {
	for _, sub := range c.Commands() {
		if sub.Hidden || sub.Name() == "help" {
			continue
		}
		p := append(append([]string{}, prefix...), sub.Name())
		*out = append(*out, p)
		commandPaths(sub, p, out)
	}
}

// Every command's --help renders its usage and every one of its flags;
// offline commands show no network flags, the others show them all; no
// flag's value name is taken from a backquoted phrase.
func TestEveryCommandsHelpRenders(t *testing.T) {
	root := newRoot(&globals{})
	root.InitDefaultCompletionCmd()
	var paths [][]string
	commandPaths(root, nil, &paths)
	if len(paths) < 40 {
		t.Fatalf("found only %d commands", len(paths))
	}
	offlineSeen := 0
	for _, p := range paths {
		r := run(t, "", append(append([]string{}, p...), "--help")...)
		name := strings.Join(p, " ")
		if r.code != api.ExitOK || !strings.Contains(r.stdout, "Usage:") {
			t.Fatalf("%s --help: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
		cmd, _, err := root.Find(p)
		if err != nil {
			t.Fatal(err)
		}
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && !strings.Contains(r.stdout, "--"+f.Name) {
				t.Errorf("%s --help does not show --%s", name, f.Name)
			}
			if strings.Contains(f.Usage, "`") && strings.Count(f.Usage, "`") != 2 {
				t.Errorf("%s --%s: usage %q has unpaired backquotes", name, f.Name, f.Usage)
			}
		})
		for _, nf := range networkFlags {
			shown := strings.Contains(r.stdout, "--"+nf+" ")
			if offline(cmd) && shown {
				t.Errorf("%s works offline but its help shows --%s", name, nf)
			}
			if !offline(cmd) && !shown {
				t.Errorf("%s talks to a node but its help does not show --%s", name, nf)
			}
		}
		if offline(cmd) {
			offlineSeen++
		}
	}
	if offlineSeen < 8 {
		t.Fatalf("only %d offline commands checked", offlineSeen)
	}
}

func TestOfflineCommandsRefuseNetworkFlags(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "replay", "--ledger", "x", "--addr", "http://127.0.0.1:1"},
		{"tls", "ca", "create", "--token", "t"},
		{"version", "--ca-cert", "ca.pem"},
	} {
		r := run(t, "", args...)
		if r.code != api.ExitError || !strings.Contains(r.stderr, "does not apply to") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	// audit witness asks the sovereign: its network flags are its own.
	r := run(t, "", "audit", "witness", "--domain", "a", "--ledger", "missing.export", "--addr", "http://127.0.0.1:1", "--token", "t", "--timeout", "1s")
	if strings.Contains(r.stderr, "does not apply to") {
		t.Errorf("audit witness refused its network flags: %q", r.stderr)
	}
}

// With --json an error is one JSON document on stdout and stderr stays
// empty; without it, a person reads it on stderr.
func TestJSONErrorsOnStdoutOnly(t *testing.T) {
	r := run(t, "", "status", "--addr", "http://127.0.0.1:1", "--timeout", "100ms", "--json")
	r.wantCode(t, api.ExitError)
	r.wantErrorJSON(t, "error")
	r = run(t, "", "status", "--addr", "http://127.0.0.1:1", "--timeout", "100ms")
	if r.stdout != "" || !strings.HasPrefix(r.stderr, "error: ") {
		t.Fatalf("human error: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = run(t, "", "ledgr", "--json")
	r.wantErrorJSON(t, api.CodeBadRequest)
	if !strings.Contains(r.stdout, "did you mean ledger") {
		t.Fatalf("typo without a suggestion: %s", r.stdout)
	}
}

func TestVersion(t *testing.T) {
	r := run(t, "", "version", "--json").wantCode(t, api.ExitOK)
	var v VersionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version != Version || v.Commit == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("version --json: %v %+v", err, v)
	}
	if len(v.Protocols) != int(fsm.ProtocolVersion) || v.Protocols[0] != 1 || v.Protocols[len(v.Protocols)-1] != fsm.ProtocolVersion {
		t.Fatalf("protocols %v, this binary implements 1..%d", v.Protocols, fsm.ProtocolVersion)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := run(t, "", args...).wantCode(t, api.ExitOK)
		if !strings.HasPrefix(r.stdout, "dominus "+Version) {
			t.Fatalf("%v: %q", args, r.stdout)
		}
	}
	r = run(t, "", "completion", "bash").wantCode(t, api.ExitOK)
	if !strings.Contains(r.stdout, "bash completion") {
		t.Fatalf("completion bash: %.200s", r.stdout)
	}
}

// An agent flag comes from the command line, else DOMINUS_FLAG, else the
// --config file.
func TestAgentFlagsFromEnvironment(t *testing.T) {
	cmd := agentCmd()
	if err := cmd.ParseFlags([]string{"--name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOMINUS_NAME", "from-env")
	t.Setenv("DOMINUS_DATA_DIR", "/from/env")
	t.Setenv("DOMINUS_RAFT_TIMEOUT_SCALE", "2.5")
	if err := flagsFromEnv(cmd); err != nil {
		t.Fatal(err)
	}
	get := func(n string) string { return cmd.Flags().Lookup(n).Value.String() }
	if get("name") != "from-flag" || get("data-dir") != "/from/env" || get("raft-timeout-scale") != "2.5" {
		t.Fatalf("name %q data-dir %q scale %q", get("name"), get("data-dir"), get("raft-timeout-scale"))
	}
	var f agentFile
	f.DataDir = "/from/env"
	var join string
	mergeAgentFile(cmd, &f, agentFile{DataDir: "/from/file", Bind: "127.0.0.9:1"}, &join)
	if f.DataDir != "/from/env" || f.Bind != "127.0.0.9:1" {
		t.Fatalf("after the config file: data-dir %q bind %q", f.DataDir, f.Bind)
	}
	t.Setenv("DOMINUS_BOOTSTRAP_EXPECT", "three")
	cmd = agentCmd()
	if err := flagsFromEnv(cmd); err == nil || !strings.Contains(err.Error(), "DOMINUS_BOOTSTRAP_EXPECT") {
		t.Fatalf("bad value from the environment: %v", err)
	}
}
