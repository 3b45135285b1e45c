package clustertests

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/internal/proctest"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// Trust boundaries between nodes, tried with real processes: a
// certificate, a data dir or a join attempt from elsewhere gives nothing.

func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("real processes only: the test process orchestrates and has nothing for the race detector; it runs in the plain pass")
	}
}

// startInit starts every node of c (bootstrap-expect all), waits for a
// leader and initializes it; it returns the root token.
func (c *procCluster) startInit(names ...string) string {
	c.t.Helper()
	bin := proctest.Binary(c.t, "")
	for _, n := range names {
		c.start(n, bin, len(names))
	}
	proctest.Eventually(c.t, 20*time.Second, c.kernel+": a leader", func() bool { s, ok := c.status(names[0]); return ok && s.Leader != "" })
	var ir api.InitResponse
	c.json(names[0], 0, &ir, "operator", "init")
	if ir.JoinSecret == "" {
		c.t.Fatal("operator init --json printed no join_secret")
	}
	c.env = append(c.env, "DOMINUS_TOKEN="+ir.RootToken)
	c.joinSecret = ir.JoinSecret
	return ir.RootToken
}

// peers is the Raft configuration as list-peers shows it.
func (c *procCluster) peers(via string) []api.Peer {
	c.t.Helper()
	var ps []api.Peer
	c.json(via, 0, &ps, "operator", "raft", "list-peers")
	return ps
}

func hasPeer(ps []api.Peer, name string) bool {
	for _, p := range ps {
		if p.ID == name {
			return true
		}
	}
	return false
}

// neverPeer requires name to stay out of the configuration for d.
func (c *procCluster) neverPeer(via, name string, d time.Duration) {
	c.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if hasPeer(c.peers(via), name) {
			c.t.Fatalf("%s entered %s's configuration", name, c.kernel)
		}
	}
}

// rawRPC speaks node RPC to addr as a node with the given certificate
// would: TLS, the connection kind, a hello naming kernel, then one call.
func rawRPC(files tlsutil.Files, fromIP, addr, kernel, method string) (code, message string, err error) {
	r, err := tlsutil.NewReloader(files, nil)
	if err != nil {
		return "", "", err
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fromIP)}, Timeout: 3 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return "", "", err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	host, _, _ := net.SplitHostPort(addr)
	c := tls.Client(raw, r.ClientConfig(host))
	if err := c.Handshake(); err != nil {
		return "", "", err
	}
	frame := func(v any) error {
		b := fsm.Encode(v)
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
		_, err := c.Write(append(hdr[:], b...))
		return err
	}
	br := bufio.NewReader(c)
	read := func(v any) error {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		return fsm.Decode(b, v)
	}
	type hello struct {
		Kernel   string `codec:"kernel"`
		KernelID string `codec:"kernel_id"`
	}
	if _, err := c.Write([]byte{'c'}); err != nil {
		return "", "", err
	}
	if err := frame(&hello{Kernel: kernel}); err != nil {
		return "", "", err
	}
	var theirs hello
	if err := read(&theirs); err != nil {
		return "", "", fmt.Errorf("no hello: %w", err)
	}
	type request struct {
		Method string `codec:"method"`
		Body   []byte `codec:"body"`
	}
	type response struct {
		Code    string `codec:"code"`
		Message string `codec:"message"`
		Leader  string `codec:"leader"`
		Body    []byte `codec:"body"`
	}
	if err := frame(&request{Method: method, Body: fsm.Encode(&struct{}{})}); err != nil {
		return "", "", err
	}
	var resp response
	if err := read(&resp); err != nil {
		return "", "", err
	}
	return resp.Code, resp.Message, nil
}

// nodeRPCMethods are every node RPC method a kernel serves.
var nodeRPCMethods = []string{"identify", "join", "apply", "apply_batch", "read_index", "archive_range", "clock",
	"remove_peer", "transfer_leadership", "fed_secrets", "fed_sign", "protocol", "add_peer"}

// TestForeignKernelNodeGetsNothing: a node of kernel globex, with a valid
// certificate from the same CA, joins acme's nodes: it is refused at join
// and at every node RPC, never enters list-peers, and leaves no record in
// acme's ledger. A node of acme itself that is not a member gets no data,
// membership, apply or secret RPC either.
func TestForeignKernelNodeGetsNothing(t *testing.T) {
	skipUnderRace(t)
	acme := newProcClusterOf(t, "acme", "", 110, "n1", "n2", "n3")
	acme.startInit("n1", "n2", "n3")
	if r := acme.cli("n1", "kv", "put", "secret/1", "acme's data"); r.Code != 0 {
		t.Fatalf("put: %s", r.Stderr)
	}
	globex := newProcClusterOf(t, "globex", acme.tlsDir, 111, "g3")
	globex.binds = acme.binds // g3 asks acme's nodes to let it in
	g3 := globex.start("g3", proctest.Binary(t, ""), 0)
	acme.neverPeer("n1", "g3", 6*time.Second)
	if s, ok := globex.status("g3"); ok && s.Initialized {
		t.Fatalf("g3 holds a ledger: %+v", s)
	}
	refused := false
	for _, n := range []string{"n1", "n2", "n3"} {
		if strings.Contains(acme.procs[n].LogText(), `certificate of kernel \"globex\"`) {
			refused = true
		}
	}
	if !refused {
		t.Fatal("no acme node logged refusing globex's certificate")
	}
	g3.Stop(syscall.SIGTERM)

	files := func(c *procCluster, node string) tlsutil.Files {
		return tlsutil.Files{CA: filepath.Join(c.tlsDir, "ca.pem"), Cert: filepath.Join(c.tlsDir, node+".pem"), Key: filepath.Join(c.tlsDir, node+"-key.pem")}
	}
	// Every RPC, even announcing acme as its kernel in the hello.
	for _, m := range nodeRPCMethods {
		for _, claim := range []string{"globex", "acme"} {
			code, msg, err := rawRPC(files(globex, "g3"), "127.0.111.1", acme.procs["n1"].Bind, claim, m)
			if err == nil {
				t.Errorf("globex's g3 (hello %q) was answered %s: %q %q", claim, m, code, msg)
			}
		}
	}
	// A node of acme outside the configuration: identity yes, data no.
	acme.cert(proctest.Binary(t, ""), "n9", "127.0.110.9")
	if code, msg, err := rawRPC(files(acme, "n9"), "127.0.110.9", acme.procs["n1"].Bind, "acme", "identify"); err != nil || code != "" {
		t.Fatalf("identify from a node of acme: %q %q %v", code, msg, err)
	}
	for _, m := range []string{"apply", "apply_batch", "read_index", "archive_range", "clock", "remove_peer", "transfer_leadership", "fed_secrets", "fed_sign", "add_peer"} {
		code, msg, err := rawRPC(files(acme, "n9"), "127.0.110.9", acme.procs["n1"].Bind, "acme", m)
		if err != nil || code != api.CodeForbidden || !strings.Contains(msg, "not a member") {
			t.Errorf("%s from acme's non-member n9: code %q message %q err %v, want forbidden", m, code, msg, err)
		}
	}

	// No record of either in acme's ledger, and acme is whole.
	var events []api.Event
	acme.json("n1", 0, &events, "ledger", "tail", "-n", "1000")
	for _, ev := range events {
		if ev.Subject == "g3" || ev.Subject == "n9" {
			t.Fatalf("acme's ledger records %s: %+v", ev.Subject, ev)
		}
	}
	acme.sameHeads(20*time.Second, "n1", "n2", "n3")
}

// TestForeignDataDirIsRefused: acme's n3 started on the data dir of
// another kernel (beta) refuses to start, naming both; started on the data
// dir of another cluster that was also named acme, it starts, but neither
// side accepts the other's replication, and acme's heads stay equal.
func TestForeignDataDirIsRefused(t *testing.T) {
	skipUnderRace(t)
	bin := proctest.Binary(t, "")
	acme := newProcClusterOf(t, "acme", "", 112, "n1", "n2", "n3")
	acme.startInit("n1", "n2", "n3")
	for i := 0; i < 5; i++ {
		if r := acme.cli("n1", "kv", "put", fmt.Sprint("k", i), "v"); r.Code != 0 {
			t.Fatalf("put: %s", r.Stderr)
		}
	}
	acme.sameHeads(20*time.Second, "n1", "n2", "n3")
	n3 := acme.procs["n3"]
	n3.Stop(syscall.SIGTERM)
	own := n3.DataDir + ".own"
	if err := os.Rename(n3.DataDir, own); err != nil {
		t.Fatal(err)
	}

	// Another kernel's data dir: refused at start, naming both kernels.
	beta := newProcClusterOf(t, "beta", acme.tlsDir, 113, "b1")
	beta.startInit("b1")
	if r := beta.cli("b1", "kv", "put", "beta/1", "v"); r.Code != 0 {
		t.Fatalf("beta put: %s", r.Stderr)
	}
	beta.procs["b1"].Stop(syscall.SIGTERM)
	copyDir(t, beta.procs["b1"].DataDir, n3.DataDir)
	acme.start("n3", bin, 0)
	code, exited := n3.Exited(20 * time.Second)
	log := n3.LogText()
	if !exited || code != 1 || !strings.Contains(log, `belongs to kernel "beta"`) || !strings.Contains(log, `this node is of kernel "acme"`) {
		t.Fatalf("n3 on beta's data dir: exited %v code %d:\n%s", exited, code, tail(log, 5))
	}
	if err := os.RemoveAll(n3.DataDir); err != nil {
		t.Fatal(err)
	}

	// A second cluster also named acme, on the same CA: its data dir
	// starts (the name matches) but never merges with acme.
	twin := newProcClusterOf(t, "acme", acme.tlsDir, 114, "t1")
	twin.startInit("t1")
	if r := twin.cli("t1", "kv", "put", "twin/1", "v"); r.Code != 0 {
		t.Fatalf("twin put: %s", r.Stderr)
	}
	twinHead, _ := twin.status("t1")
	twin.procs["t1"].Stop(syscall.SIGTERM)
	copyDir(t, twin.procs["t1"].DataDir, n3.DataDir)
	acme.start("n3", bin, 0)
	for i := 0; i < 5; i++ {
		if r := acme.cli("n1", "kv", "put", fmt.Sprint("after", i), "v"); r.Code != 0 {
			t.Fatalf("put with the twin's dir running: %s", r.Stderr)
		}
	}
	live := acme.sameHeads(20*time.Second, "n1", "n2")
	proctest.Eventually(t, 15*time.Second, "a refusal logged on either side", func() bool {
		for _, n := range []string{"n1", "n2", "n3"} {
			if strings.Contains(acme.procs[n].LogText(), "belongs to kernel id") {
				return true
			}
		}
		return false
	})
	if s, ok := acme.status("n3"); ok && (s.KernelID == live.KernelID || s.Head.Seq > twinHead.Head.Seq) {
		t.Fatalf("n3 on the twin's data dir took acme's entries: kernel id %s head %+v (twin's head %+v)", s.KernelID, s.Head, twinHead.Head)
	}
	if s, _ := acme.status("n1"); s.Head.Seq < live.Head.Seq || s.KernelID == twinHead.KernelID {
		t.Fatalf("acme moved back or took the twin's identity: %+v", s)
	}
	n3.Stop(syscall.SIGTERM)

	// Its own data dir back, n3 catches up.
	if err := os.RemoveAll(n3.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(own, n3.DataDir); err != nil {
		t.Fatal(err)
	}
	acme.start("n3", bin, 0)
	acme.sameHeads(30*time.Second, "n1", "n2", "n3")
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v %s", from, to, err, out)
	}
}

// TestNodeThatCannotServeNeverJoins: a node whose HTTP port is taken
// exits before it joins; it never appears in list-peers.
func TestNodeThatCannotServeNeverJoins(t *testing.T) {
	skipUnderRace(t)
	c := newProcClusterOf(t, "acme", "", 115, "n1", "n2", "n3", "n4")
	c.startInit("n1", "n2", "n3")
	ln, err := net.Listen("tcp", c.procs["n4"].HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p4 := c.start("n4", proctest.Binary(t, ""), 0)
	code, exited := p4.Exited(20 * time.Second)
	log := p4.LogText()
	if !exited || code != 1 || !strings.Contains(log, "listen http on "+c.procs["n4"].HTTP) {
		t.Fatalf("n4 with its HTTP port taken: exited %v code %d:\n%s", exited, code, tail(log, 5))
	}
	c.neverPeer("n1", "n4", 3*time.Second)
}

// TestJoiningNeedsTheSecretOrAnAdmission: after init a node of the
// kernel joins only with the join secret, or once an operator admitted it
// with add-peer; an agent cannot admit; each member's key is in the ledger.
func TestJoiningNeedsTheSecretOrAnAdmission(t *testing.T) {
	skipUnderRace(t)
	bin := proctest.Binary(t, "")
	c := newProcClusterOf(t, "acme", "", 116, "n1", "n2", "n3", "n4", "n5")
	c.startInit("n1", "n2", "n3")
	secret := c.joinSecret

	// Without the secret, and with a wrong one: refused.
	c.joinSecret = ""
	p4 := c.start("n4", bin, 0)
	c.neverPeer("n1", "n4", 5*time.Second)
	p4.Stop(syscall.SIGTERM)
	c.joinSecret = "dms_not-the-secret"
	p4 = c.start("n4", bin, 0)
	c.neverPeer("n1", "n4", 4*time.Second)
	p4.Stop(syscall.SIGTERM)
	logs := c.procs["n1"].LogText() + c.procs["n2"].LogText() + c.procs["n3"].LogText()
	if !strings.Contains(logs, "join refused") {
		t.Fatal("no member logged a refused join")
	}
	// With it: a member, its key recorded.
	c.joinSecret = secret
	c.start("n4", bin, 0)
	proctest.Eventually(t, 20*time.Second, "n4 a member with its key in the ledger", func() bool {
		for _, p := range c.peers("n1") {
			if p.ID == "n4" && p.NodeKey != "" {
				return true
			}
		}
		return false
	})

	// add-peer: an agent may not admit; an operator may, and n5 then
	// joins without the secret.
	var grant api.GrantResponse
	c.json("n1", 0, &grant, "cap", "grant", "--entity", "agent", "--ops", "kv.put", "--resources", "*", "--ttl", "1h")
	addr := c.procs["n5"].Bind
	r := proctest.Run(t, bin, append(c.env, "DOMINUS_TOKEN="+grant.Token), "operator", "raft", "add-peer", "n5", addr, "--addr", c.url("n1"))
	if r.Code != api.ExitDenied {
		t.Fatalf("add-peer with an agent token: exit %d %s", r.Code, r.Stderr)
	}
	c.joinSecret = ""
	c.start("n5", bin, 0)
	c.neverPeer("n1", "n5", 3*time.Second)
	var added api.AddPeerResponse
	c.json("n1", 0, &added, "operator", "raft", "add-peer", "n5", addr)
	if !added.Added || !strings.EqualFold(added.Decision, "permit") {
		t.Fatalf("add-peer: %+v", added)
	}
	proctest.Eventually(t, 20*time.Second, "n5 a member with its key in the ledger", func() bool {
		for _, p := range c.peers("n1") {
			if p.ID == "n5" && p.NodeKey != "" {
				return true
			}
		}
		return false
	})
	var events []api.Event
	c.json("n1", 0, &events, "ledger", "tail", "-n", "1000")
	var admit, keys int
	for _, ev := range events {
		switch {
		case ev.Type == "member.admit" && ev.Subject == "n5" && ev.Actor == "root":
			admit++
		case ev.Type == "member.update" && (ev.Subject == "n4" || ev.Subject == "n5"):
			keys++
		}
	}
	if admit != 1 || keys < 2 {
		t.Fatalf("the ledger's membership records: %d admissions of n5 by root, %d key records of n4 and n5", admit, keys)
	}
	c.sameHeads(30*time.Second, "n1", "n2", "n3", "n4", "n5")
}

// TestSlowLeaderStepsDown: a node whose clock is 5 s behind its quorum's,
// made leader, stops leading; a capability expired by the quorum's clock
// is judged expired, never by the slow clock.
func TestSlowLeaderStepsDown(t *testing.T) {
	skipUnderRace(t)
	bin := proctest.Binary(t, "")
	c := newProcClusterOf(t, "acme", "", 117, "n1", "n2", "n3")
	c.start("n1", bin, 3, "--test-clock-offset", "-5s")
	c.start("n2", bin, 3)
	c.start("n3", bin, 3)
	proctest.Eventually(t, 20*time.Second, "a leader", func() bool { s, ok := c.status("n2"); return ok && s.Leader != "" })
	var ir api.InitResponse
	proctest.Eventually(t, 20*time.Second, "init", func() bool {
		r := proctest.Run(t, bin, c.env, "operator", "init", "--json", "--addr", c.url("n2"))
		return r.Code == 0 && jsonUnmarshal(r.Stdout, &ir) == nil
	})
	c.env = append(c.env, "DOMINUS_TOKEN="+ir.RootToken)
	var grant api.GrantResponse
	c.json("n2", 0, &grant, "cap", "grant", "--entity", "agent", "--ops", "kv.put", "--resources", "*", "--ttl", "2s")
	time.Sleep(3 * time.Second) // expired by the quorum's clocks, not by n1's

	_ = c.cli("n2", "operator", "raft", "transfer-leadership", "n1")
	proctest.Eventually(t, 15*time.Second, "n1 stepping down", func() bool {
		s, ok := c.status("n2")
		return ok && s.Leader != "" && s.Leader != "n1" && strings.Contains(c.procs["n1"].LogText(), "leader clock is behind its quorum")
	})
	r := proctest.Run(t, bin, append(c.env, "DOMINUS_TOKEN="+grant.Token), "syscall", "kv.put", "k", "--arg", "value=v", "--json", "--addr", c.url("n1"))
	if r.Code != api.ExitDenied || !strings.Contains(r.Stdout, `"expired"`) {
		t.Fatalf("a call with the expired capability: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	c.sameHeads(20*time.Second, "n1", "n2", "n3")
}

// TestLegacyCertificateNeedsTheFlag: a certificate that names no kernel
// (made before kernel-bound certificates) starts a node only with
// --allow-legacy-certs and --kernel, and the node warns while it is set.
func TestLegacyCertificateNeedsTheFlag(t *testing.T) {
	skipUnderRace(t)
	bin := proctest.Binary(t, "")
	c := newProcClusterOf(t, "acme", "", 118, "old")
	for _, f := range []string{"old.pem", "old-key.pem"} {
		if err := os.Remove(filepath.Join(c.tlsDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := tlsutil.CreateCert(c.tlsDir, filepath.Join(c.tlsDir, "ca.pem"), filepath.Join(c.tlsDir, "ca-key.pem"), "", "old",
		[]net.IP{net.ParseIP("127.0.118.1")}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	p := c.start("old", bin, 1)
	code, exited := p.Exited(20 * time.Second)
	if log := p.LogText(); !exited || code != 1 || !strings.Contains(log, "names no kernel") || !strings.Contains(log, "--allow-legacy-certs") {
		t.Fatalf("a legacy certificate without the flag: exited %v code %d:\n%s", exited, code, tail(log, 5))
	}
	c.start("old", bin, 1, "--allow-legacy-certs", "--kernel", "acme")
	proctest.Eventually(t, 20*time.Second, "a leader", func() bool { s, ok := c.status("old"); return ok && s.Leader == "old" })
	if log := p.LogText(); !strings.Contains(log, "accepting node certificates that name no kernel") {
		t.Fatalf("no warning while --allow-legacy-certs is set:\n%s", tail(log, 10))
	}
	if r := c.cli("old", "operator", "init"); r.Code != 0 {
		t.Fatalf("init: %s", r.Stderr)
	}
}
