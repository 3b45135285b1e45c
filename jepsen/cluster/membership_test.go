package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJoinOnlyArgs: a node started to join leaves out --bootstrap-expect
// and lists only the other nodes in --join; a normal start has both.
func TestJoinOnlyArgs(t *testing.T) {
	c := &Cluster{cfg: Config{}, tls: "/tls"}
	for i, ip := range []string{"127.0.90.1", "127.0.90.2", "127.0.90.3"} {
		c.nodes = append(c.nodes, &Node{Name: "n" + string(rune('1'+i)), Bind: ip + ":8300", HTTPAddr: ip + ":8101", DataDir: "/d"})
	}
	full := strings.Join(c.args(c.nodes[1], 0, false), " ")
	if !strings.Contains(full, "--bootstrap-expect 3") || !strings.Contains(full, "--join 127.0.90.1:8300,127.0.90.2:8300,127.0.90.3:8300") {
		t.Fatalf("normal start: %s", full)
	}
	join := strings.Join(c.args(c.nodes[1], 0, true), " ")
	if strings.Contains(join, "--bootstrap-expect") || !strings.Contains(join, "--join 127.0.90.1:8300,127.0.90.3:8300 ") {
		t.Fatalf("join-only start: %s", join)
	}
}

// TestWipeMovesDataAside: a stopped node's data dir is moved to a fresh
// DataDir.wiped-K each time, so the next start has no state.
func TestWipeMovesDataAside(t *testing.T) {
	dir := t.TempDir()
	n := &Node{Name: "n1", DataDir: filepath.Join(dir, "n1")}
	c := &Cluster{nodes: []*Node{n}}
	for k := 1; k <= 2; k++ {
		if err := os.MkdirAll(filepath.Join(n.DataDir, "raft"), 0o700); err != nil {
			t.Fatal(err)
		}
		aside, err := c.Wipe(n)
		if err != nil {
			t.Fatal(err)
		}
		if want := n.DataDir + ".wiped-" + string(rune('0'+k)); aside != want {
			t.Fatalf("wipe %d moved the data to %q, want %q", k, aside, want)
		}
		if _, err := os.Stat(n.DataDir); !os.IsNotExist(err) {
			t.Fatalf("wipe %d left the data dir: %v", k, err)
		}
	}
	if aside, err := c.Wipe(n); err != nil || aside != "" {
		t.Fatalf("wipe without a data dir: %q, %v", aside, err)
	}
}
