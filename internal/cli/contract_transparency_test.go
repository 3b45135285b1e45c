package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/kernel"
)

// The verifiable-history contract: ledger checkpoint (--sign,
// --public-key, --json), ledger prove, ledger consistency, and audit
// verify-proof's exits (0 verified, 4 failed). Node on 127.0.164.1.
func TestContractVerifiableHistory(t *testing.T) {
	k := startLiveKernelCfg(t, func(c *kernel.Config) {
		ln, err := net.Listen("tcp", "127.0.164.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.BindAddr = ln.Addr().String()
		ln.Close()
	})
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, key := range []string{"a", "b", "c"} {
		k.as(t, k.root, "kv", "put", key, "v").wantCode(t, api.ExitOK)
	}
	var cp1 api.Checkpoint
	k.as(t, k.root, "--json", "ledger", "checkpoint", "--sign").wantCode(t, api.ExitOK).decode(t, &cp1)
	m := k.as(t, k.root, "--json", "ledger", "checkpoint").wantCode(t, api.ExitOK).jsonObject(t)
	for _, f := range []string{"kernel_id", "tree_size", "root", "head", "time", "signers", "checkpoint"} {
		if _, ok := m[f]; !ok {
			t.Errorf("ledger checkpoint --json lacks %q: %v", f, m)
		}
	}
	note1 := file("cp1.note", k.as(t, k.root, "ledger", "checkpoint").wantCode(t, api.ExitOK).stdout)
	keys := file("kernel.keys", run(t, "", "--addr", k.url, "ledger", "checkpoint", "--public-key").wantCode(t, api.ExitOK).stdout)

	pr := k.as(t, k.root, "--json", "ledger", "prove", "2", "--checkpoint", note1).wantCode(t, api.ExitOK)
	pm := pr.jsonObject(t)
	for _, f := range []string{"seq", "leaf_index", "tree_size", "root", "proof", "checkpoint"} {
		if _, ok := pm[f]; !ok {
			t.Errorf("ledger prove --json lacks %q: %v", f, pm)
		}
	}
	proof := file("p.json", pr.stdout)
	v := run(t, "", "--json", "audit", "verify-proof", "--proof", proof, "--checkpoint", note1, "--kernel-key", keys).wantCode(t, api.ExitOK).jsonObject(t)
	if v["ok"] != true || v["kind"] != "inclusion" {
		t.Fatalf("verify-proof: %v", v)
	}
	var p api.InclusionProof
	_ = json.Unmarshal([]byte(pr.stdout), &p)
	p.Root = strings.Repeat("0", 64)
	bad, _ := json.Marshal(p)
	run(t, "", "audit", "verify-proof", "--proof", file("bad.json", string(bad)), "--checkpoint", note1, "--kernel-key", keys).wantCode(t, api.ExitVerify)
	run(t, "", "audit", "verify-proof", "--proof", proof, "--checkpoint", note1, "--kernel-key", keys, "--sovereign-key", keys).wantCode(t, api.ExitVerify)

	k.as(t, k.root, "kv", "put", "d", "v").wantCode(t, api.ExitOK)
	k.as(t, k.root, "ledger", "checkpoint", "--sign").wantCode(t, api.ExitOK)
	note2 := file("cp2.note", k.as(t, k.root, "ledger", "checkpoint").wantCode(t, api.ExitOK).stdout)
	cr := k.as(t, k.root, "--json", "ledger", "consistency", "--from", note1, "--to", note2).wantCode(t, api.ExitOK)
	run(t, "", "audit", "verify-proof", "--proof", file("c.json", cr.stdout), "--checkpoint", note1, "--kernel-key", keys).wantCode(t, api.ExitOK)
	run(t, "", "audit", "verify-proof", "--proof", file("c2.json", cr.stdout), "--checkpoint", note2, "--kernel-key", keys).wantCode(t, api.ExitOK)
	k.as(t, k.root, "ledger", "consistency", "--from", note2).wantCode(t, api.ExitError)
	if cp1.TreeSize == 0 {
		t.Fatal("checkpoint --sign --json: no tree size")
	}
}
