package fsm

import (
	"fmt"
	"testing"

	"github.com/dominus-kernel/dominus/sense"
)

func init() {
	goldenPayloads[CmdSenseTarget] = &SenseTarget{AlertsPerDayMilli: 100}
}

// model2Gate is a protocol-6 ledger with an agent whose calls built an
// established baseline: two kv.put calls a minute for 70 minutes.
func model2Gate(t *testing.T) *recordingGate {
	t.Helper()
	g := newRecordingGate(t, ProtocolSenseModel2)
	root := testRootToken[:]
	mustPermitted(t, "agent", g.grantAs(root, "agent", false, []string{"kv.put", "kv.get", "kv.delete"}, []string{"orders/*", "secrets/*"}, 0, 0))
	mustPermitted(t, "sensor", g.grantAs(root, "sensor", false, []string{OpSignalIngest}, []string{"*"}, 0, 0))
	for m := 0; m < 70; m++ {
		g.now += 60e9
		for i := 0; i < 2; i++ {
			g.rec(env(CmdSyscall, "", tokenHash("agent"), g.tick(), &Syscall{Op: "kv.put", Resource: fmt.Sprint("orders/", m), Args: []byte("v")}))
		}
	}
	return g
}

// Under model 2 the gate judges the call with itself included: the first
// call of an op the agent never used reaches Cedar with a non-zero
// deviation, and the ledger replays to the same state.
func TestModel2FirstNewOpCallCarriesDeviation(t *testing.T) {
	g := model2Gate(t)
	g.now += 60e9
	a := g.rec(env(CmdSyscall, "", tokenHash("agent"), g.tick(), &Syscall{Op: "kv.delete", Resource: "orders/1"}))
	d := syscallDetail(t, a)
	if !d.Judged || d.Request.Deviation <= 0 {
		t.Fatalf("first kv.delete judged with deviation %d (judged %v)", d.Request.Deviation, d.Judged)
	}
	if b, _ := g.State().Sense.Entities(); b != 1 {
		t.Fatalf("model-2 baselines: %d", b)
	}
	checkReplayOf(t, g)
}

// At critical posture a model-2 alert turns a permit into ESCALATE.
func TestModel2CriticalPostureEscalatesAlerts(t *testing.T) {
	g := model2Gate(t)
	a := g.rec(env(CmdSignalIngest, "", tokenHash("sensor"), g.tick(), &SignalIngest{Kind: "incident_level", Value: 100}))
	expect(t, a, DecisionPermit, ReasonOK)
	g.now += 60e9
	escalated := -1
	for i := 0; i < 60 && escalated < 0; i++ {
		a := g.rec(env(CmdSyscall, "", tokenHash("agent"), g.tick(), &Syscall{Op: "kv.put", Resource: fmt.Sprint("orders/b", i), Args: []byte("v")}))
		if a.Result.Decision == DecisionEscalate {
			escalated = i
		}
	}
	if escalated < 0 {
		t.Fatal("a 60-call burst at critical posture never escalated")
	}
	t.Logf("escalated at call %d of the burst", escalated)
	checkReplayOf(t, g)
}

// sense.target: only an operator with operator.manage on "sense" sets
// it; a malformed value or an older protocol is refused with a clear
// reason and changes nothing; the target survives snapshot and replay.
func TestSenseTargetGoverned(t *testing.T) {
	g := newRecordingGate(t, ProtocolSenseModel2)
	root := testRootToken[:]
	mustPermitted(t, "agent", g.grantAs(root, "agent", false, []string{"kv.put"}, []string{"*"}, 0, 0))
	mustPermitted(t, "limits-op", g.grantAs(root, "limits-op", true, []string{OpOperatorManage}, []string{OperatorLimits}, 0, 0))
	mustPermitted(t, "sense-op", g.grantAs(root, "sense-op", true, []string{OpOperatorManage}, []string{OperatorSense}, 0, 0))

	g.refuse("an agent setting its own target", ReasonForbidden, tokenHash("agent"), CmdSenseTarget, &SenseTarget{AlertsPerDayMilli: 1_000_000})
	g.refuse("an operator without operator.manage on sense", ReasonForbidden, tokenHash("limits-op"), CmdSenseTarget, &SenseTarget{AlertsPerDayMilli: 500})
	g.refuse("target 0", ReasonInvalidArgument, tokenHash("sense-op"), CmdSenseTarget, &SenseTarget{})
	g.refuse("negative target", ReasonInvalidArgument, tokenHash("sense-op"), CmdSenseTarget, &SenseTarget{AlertsPerDayMilli: -5})
	g.refuse("target beyond the bound", ReasonInvalidArgument, tokenHash("sense-op"), CmdSenseTarget, &SenseTarget{AlertsPerDayMilli: sense.MaxAlertsPerDayMilli + 1})
	if got := g.State().SenseAlertTarget(); got != sense.DefaultAlertsPerDayMilli {
		t.Fatalf("target after refusals: %d", got)
	}
	a := g.as(tokenHash("sense-op"), CmdSenseTarget, &SenseTarget{AlertsPerDayMilli: 250})
	mustPermitted(t, "sense-op sets 250", a)
	var d SenseTargetDetail
	if err := Decode(a.Event.Detail, &d); err != nil || d.From != sense.DefaultAlertsPerDayMilli || d.To != 250 {
		t.Fatalf("detail %+v (%v)", d, err)
	}
	mustPermitted(t, "root sets 50", g.as(root, CmdSenseTarget, &SenseTarget{AlertsPerDayMilli: 50}))
	if got := g.State().SenseAlertTarget(); got != 50 {
		t.Fatalf("target %d, want 50", got)
	}
	s := New()
	if _, err := s.Restore(g.Snapshot()); err != nil || s.State().SenseAlertTarget() != 50 {
		t.Fatalf("restored target %d (%v)", s.State().SenseAlertTarget(), err)
	}
	checkReplayOf(t, g)

	old := newRecordingGate(t, ProtocolAuthority)
	old.refuse("sense.target under protocol 4", ReasonUnsupportedProtocol, root, CmdSenseTarget, &SenseTarget{AlertsPerDayMilli: 100})
}

// A protocol-4 ledger upgraded to protocol 6 keeps its model-1 state and
// senses with model 2 from the upgrade on; the whole log replays.
func TestUpgradeToSenseModel2(t *testing.T) {
	g := newRecordingGate(t, ProtocolAuthority)
	root := testRootToken[:]
	mustPermitted(t, "agent", g.grantAs(root, "agent", false, []string{"kv.put"}, []string{"*"}, 0, 0))
	for i := 0; i < 20; i++ {
		g.rec(env(CmdSyscall, "", tokenHash("agent"), g.tick(), &Syscall{Op: "kv.put", Resource: fmt.Sprint("k", i), Args: []byte("v")}))
	}
	model1 := g.State().Sense.Encode()
	mustPermitted(t, "upgrade", g.as(root, CmdProtocolUpgrade, &ProtocolUpgrade{Version: ProtocolSenseModel2}))
	if string(g.State().Sense.Encode()) != string(model1) {
		t.Fatal("the upgrade itself changed the sensing state")
	}
	g.rec(env(CmdSyscall, "", tokenHash("agent"), g.tick(), &Syscall{Op: "kv.put", Resource: "k-after", Args: []byte("v")}))
	if b, _ := g.State().Sense.Entities(); b != 2 { // one model-1 baseline, one model-2
		t.Fatalf("baselines after the upgrade: %d", b)
	}
	checkReplayOf(t, g)
}
