package fsm

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden encoding fixtures")

// goldenPayloads has one representative payload per command type. The
// fixtures under testdata/golden are protocol: a change in their bytes is
// a change in the replicated format and must be deliberate.
var goldenPayloads = map[CommandType]any{
	CmdGenesis:        &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: 1, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9},
	CmdKVPut:          &KVPut{Key: "orders/1", Value: []byte("hello")},
	CmdKVGet:          &KVKey{Key: "orders/1"},
	CmdKVDelete:       &KVKey{Key: "orders/1"},
	CmdKVCAS:          &KVCAS{Key: "orders/1", ExpectExists: true, Expect: []byte("hello"), ExpectVersion: 7, Value: []byte("bye")},
	CmdCheckpoint:     &Checkpoint{Seq: 9, Hash: testCanon[:]},
	CmdEpoch:          &Epoch{Snapshot: []byte("snapshot bytes")},
	CmdCapGrant:       &CapGrant{TokenHash: otherToken[:], Entity: "agent-1", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}, TTLNs: 3600e9, Uses: 3},
	CmdCapDelegate:    &CapDelegate{TokenHash: testCanon[:], Entity: "agent-2", Ops: []string{"kv.put"}, Resources: []string{"orders/vip/*"}, Uses: 1},
	CmdCapRevoke:      &CapRevoke{ID: "cap-2"},
	CmdSyscall:        &Syscall{Op: "email.send", Resource: "mail/ops", Args: []byte(`{"to":"ops"}`), ApprovalID: "apr-9"},
	CmdPolicySet:      &PolicySet{Name: "base", Text: `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };`, Mode: PolicyActive},
	CmdApprovalDecide: &ApprovalDecide{ID: "apr-9", Approve: true},
	CmdHalt:           &HaltCmd{Entity: "agent-1", Reason: "incident 42"},
	CmdResume:         &HaltCmd{Entity: "agent-1"},
	CmdEffectComplete: &EffectComplete{Seq: 12, Status: EffectOK, Code: 200, OutputDigest: "ab"},

	CmdFedDomainCreate:   &FedDomainCreate{Name: "payments", JoinTokenHash: otherToken[:], Scopes: []string{"bus.*"}},
	CmdFedJoin:           &FedJoin{Domain: "payments", JoinTokenHash: otherToken[:], KernelID: "kernel-1", Passport: []byte("passport"), BusAddrs: []string{"127.0.0.1:7001"}},
	CmdFedPassport:       &FedPassport{Domain: "payments", Passport: []byte("passport"), BusAddrs: []string{"127.0.0.1:7001"}, CanonAck: 1},
	CmdFedPassportRevoke: &FedPassportRevoke{ID: "pp-payments-1"},
	CmdFedSigner:         &FedSigner{Node: "s1", PubKey: testCanon[:]},
	CmdFedWitness:        &FedWitness{Domain: "payments", Seq: 9, Hash: testCanon[:], NodeKey: testCanon[:], Node: "p1", Signature: []byte("sig")},
	CmdFedAmendPropose:   &FedAmendPropose{Text: "Article 1."},
	CmdFedAmendSign:      &FedAmendSign{ID: "amd-4", Operator: "alice", Signature: []byte("sig")},
	CmdFedAmendVeto:      &FedAmendVeto{ID: "amd-4"},
	CmdFedCanonAck:       &FedCanonAck{Domain: "payments", Version: 1},
	CmdFedUpdate:         &FedUpdate{SovereignID: "kernel-s", SovereignKeys: []NodeKey{{Node: "s1", PubKey: testCanon[:]}}, Passport: []byte("passport"), Peers: []PeerRecord{{Kernel: "sovereign", BusAddrs: []string{"127.0.0.1:7000"}}}, Revoked: []string{"pp-x-1"}, Canon: CanonState{Version: 1, Hash: testCanon[:]}, CanonText: "Article 1.", Halt: &FedHalt{ID: "fh-3", Reason: "drill", By: "alice"}, Operators: []OperatorKey{{Name: "alice", PubKey: testCanon[:], Level: LevelSovereign}}, Threshold: 2},
	CmdFedHalt:           &FedHaltCmd{Reason: "drill"},
	CmdFedResume:         &FedResume{HaltID: "fh-3", Operator: "alice", Signature: []byte("sig")},
	CmdBusReceive:        &BusReceive{Origin: "payments", Seq: 1, PassportID: "pp-payments-1", Entity: "agent", Op: "kv.put", Resource: "orders/1", Args: []byte("v"), TokenHash: otherToken[:], SentAt: 5},
	CmdBusDelivered:      &BusDelivered{Dest: "shipping", Seq: 1, Result: BusResult{Decision: DecisionPermit, Seq: 4}},
	CmdFedSuspend:        &FedSuspend{Domain: "payments", Reason: "canon acknowledgement overdue"},

	CmdSignalIngest:     &SignalIngest{Kind: "incident_level", Value: 100},
	CmdTrustAdjust:      &TrustAdjust{Entity: "agent-1", Delta: -200, Reason: "review"},
	CmdFedOperatorRekey: &FedOperatorRekey{Operator: "carol", NewPubKey: testCanon[:], Signatures: []OperatorSignature{{Operator: "alice", Signature: []byte("sig")}}},
	CmdProtocolUpgrade:  &ProtocolUpgrade{Version: 3, Signatures: []OperatorSignature{{Operator: "alice", Signature: []byte("sig")}}},
	CmdFedProtocolAck:   &FedProtocolAck{Domain: "payments", Version: 3},
	CmdMemberAdmit:      &MemberAdmit{Node: "n4", Addr: "127.0.0.14:8300", NonVoter: true},
	CmdMemberUpdate:     &MemberUpdate{Node: "n4", PubKey: testCanon[:], Addr: "127.0.0.14:8300"},
	CmdFedKeysRotate:    &FedKeysRotate{Epoch: 1, Domain: "payments"},
	CmdFedKeysSign:      &FedKeysSign{Epoch: 1, Operator: "alice", Signature: []byte("sig")},
	CmdLimitsSet:        &LimitsSet{DedupPerCaller: 500, KVBytes: 1 << 20, Rates: []EntityRate{{Entity: "agent-1", PerSecond: 10}}},
	CmdEpochChunk:       &EpochChunk{Offset: 0, Size: 1 << 20, Digest: testCanon[:], Data: []byte("snapshot bytes")},
	CmdGatewaySyscall:   &GatewaySyscall{Op: "mcp.fs.tool.read_file", Resource: "/srv/docs/a.txt", Args: []byte(`{"path":"/srv/docs/a.txt"}`), Gateway: testRootToken[:]},
	CmdEffectReport:     &EffectReport{Seq: 42, Status: EffectOK, OutputDigest: "sha256:00"},
	CmdEvolveStart:      &EvolveStart{Name: "base", Text: `forbid(principal, action, resource) when { resource.path like "orders/vip/*" };`, Steps: []int64{5, 25, 100}, WindowNs: 60e9, MinShadow: 20, Backtest: EvolveBacktest{From: 1, To: 99, Evaluated: 40, Changed: 3}},
	CmdEvolveTick:       &EvolveRef{ID: "ev-12"},
	CmdEvolvePromote:    &EvolveRef{ID: "ev-12"},
	CmdEvolveAbort:      &EvolveRef{ID: "ev-12"},
	CmdEvolveResume:     &EvolveRef{ID: "ev-12"},
	CmdPolicyRollback:   &PolicyRollback{Name: "base", Version: 2},
	CmdKnowledge:        &Knowledge{Kind: "correlated-anomaly", Domains: []string{"a", "b"}, Evidence: []string{"a/n1/2/7"}, Confidence: 800, Summary: "anomalies rising together", Window: 9},
}

func TestEveryCommandHasHandlerNameAndGolden(t *testing.T) {
	var types []CommandType
	for ct := range commandNames { // test code: order fixed by the sort below
		types = append(types, ct)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	for _, ct := range types {
		if _, ok := handlers[ct]; !ok {
			t.Errorf("command %s has no handler", ct)
		}
		p, ok := goldenPayloads[ct]
		if !ok {
			t.Errorf("command %s has no golden payload", ct)
			continue
		}
		data := Encode(&Envelope{Type: ct, RequestID: "rid-1", Auth: testRootToken[:], Time: t0, Payload: Encode(p)})
		checkGolden(t, strings.ReplaceAll(ct.String(), ".", "_"), data)
	}
	for ct := range handlers { // test code: reporting only
		if _, ok := commandNames[ct]; !ok {
			t.Errorf("handler for unnamed command %d", ct)
		}
	}
}

// goldenForms are further payload forms of a command, each its own
// fixture: the staged epoch (protocol 4) and a later epoch.chunk.
var goldenForms = map[string]struct {
	t CommandType
	p any
}{
	"epoch_staged":      {CmdEpoch, &Epoch{Restore: "rst-12", Digest: testCanon[:]}},
	"epoch_chunk_later": {CmdEpochChunk, &EpochChunk{Restore: "rst-12", Offset: 1 << 20, Data: []byte("more bytes")}},
	"epoch_chunk_abort": {CmdEpochChunk, &EpochChunk{Restore: "rst-12", Abort: true}},
}

func TestGoldenForms(t *testing.T) {
	names := make([]string, 0, len(goldenForms))
	for n := range goldenForms { // test code: order fixed by the sort below
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := goldenForms[n]
		checkGolden(t, n, Encode(&Envelope{Type: f.t, RequestID: "rid-1", Auth: testRootToken[:], Time: t0, Payload: Encode(f.p)}))
	}
}

// checkGolden compares an entry with testdata/golden/NAME.hex (or, with
// -update, writes it).
func checkGolden(t *testing.T, name string, data []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".hex")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(data)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v (run go test ./fsm -run Golden -update to create)", name, err)
		return
	}
	if got := hex.EncodeToString(data); got != strings.TrimSpace(string(want)) {
		t.Errorf("%s encodes differently from its golden fixture:\n got %s\nwant %s", name, got, want)
	}
	// The fixture decodes back to an envelope.
	raw, _ := hex.DecodeString(strings.TrimSpace(string(want)))
	if _, err := DecodeEnvelope(raw); err != nil {
		t.Errorf("%s golden does not decode: %v", name, err)
	}
}

func TestReasonAndCommandNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range reasonNames {
		if seen[n] {
			t.Errorf("reason name %q used twice", n)
		}
		seen[n] = true
	}
	seen = map[string]bool{}
	for _, n := range commandNames {
		if seen[n] {
			t.Errorf("command name %q used twice", n)
		}
		seen[n] = true
	}
}
