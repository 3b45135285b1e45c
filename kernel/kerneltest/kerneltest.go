// Package kerneltest starts real kernel nodes for the tests of the
// services that plug into package kernel: Raft on disk in a temporary
// data dir, node RPC on a loopback address the test names, the HTTP API
// through kernel.Node.Handler. It is imported by tests only.
package kerneltest

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/kernel"
)

// SingleNode starts a one-node kernel bound to ip (a 127.0.0.0/8 address
// the test owns) with services, waits until it leads, and closes it when
// the test ends. mod (may be nil) adjusts the configuration.
func SingleNode(t testing.TB, ip string, mod func(*kernel.Config), services ...kernel.Service) *kernel.Node {
	t.Helper()
	cfg := kernel.DefaultConfig()
	cfg.Name = "solo"
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = fmt.Sprintf("%s:%d", ip, FreePort(t, ip))
	cfg.BootstrapExpect = 1
	cfg.Logger = Logger()
	cfg.RaftLogOutput = Output()
	cfg.MinFreeDiskBytes = 0
	if mod != nil {
		mod(&cfg)
	}
	n, err := kernel.New(cfg, services...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for n.Raft().State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// FreePort is a TCP port free on ip now.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Logger discards the node's log unless DOMINUS_TEST_LOG is set.
func Logger() *slog.Logger { return slog.New(slog.NewTextHandler(Output(), nil)) }

// Output is where Raft's own log goes: stderr with DOMINUS_TEST_LOG,
// else nowhere.
func Output() io.Writer {
	if os.Getenv("DOMINUS_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
