package cli

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/kernel"
)

// federation rotate-keys: each operator signs the next key epoch with
// their key; the epoch moves on at M of N, and bus stats show it.
func TestContractFederationRotateKeys(t *testing.T) {
	keys := t.TempDir()
	k := startLiveKernelCfg(t, func(c *kernel.Config) { c.Role = fsm.RoleSovereign },
		"--operators", "alice,bob,carol", "--threshold", "2", "--key-dir", keys)
	rotate := func(op string, flags ...string) result {
		return k.as(t, k.root, append([]string{"federation", "rotate-keys", "--key", filepath.Join(keys, op+".key")}, flags...)...)
	}
	epochOf := func(m map[string]any) float64 { e, _ := m["key_epoch"].(float64); return e }

	m := rotate("alice", "--json").wantCode(t, api.ExitOK).jsonObject(t)
	wantDecision(t, m, "permit", "ok")
	if m["rotated"] != false || epochOf(m) != 0 || !slices.Equal(anyStrings(m["pending"]), []string{"alice"}) {
		t.Fatalf("one signature: %v", m)
	}
	m = rotate("alice", "--json").wantCode(t, api.ExitDenied).jsonObject(t)
	wantDecision(t, m, "deny", "duplicate_signature")
	m = rotate("bob", "--json").wantCode(t, api.ExitOK).jsonObject(t)
	if m["rotated"] != true || epochOf(m) != 1 {
		t.Fatalf("two signatures: %v", m)
	}
	st := k.as(t, k.root, "--json", "bus", "stats").wantCode(t, api.ExitOK).jsonObject(t)
	if epochOf(st) != 1 {
		t.Fatalf("bus stats after the rotation: %v", st)
	}
	if out := rotate("carol").wantCode(t, api.ExitOK).stdout; !strings.Contains(out, "carol signed the rotation to key epoch 2: signed; waiting for more operators (1 of 2)") {
		t.Fatalf("text answer: %q", out)
	}
	k.as(t, k.root, "federation", "rotate-keys").wantCode(t, api.ExitError)
}

func anyStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
