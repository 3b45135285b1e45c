package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// fedDomainsAB is the layout of the federation fixtures: one replica per
// domain (a1, b1); s1 is the sovereign.
var fedDomainsAB = map[string][]string{"a": {"a1"}, "b": {"b1"}}

func fedInput(t *testing.T, dir, ledgerA, ledgerB string) *Input {
	t.Helper()
	return &Input{
		History:   readHistory(t, dir),
		Ledgers:   []NodeLedger{readLedger(t, "a1", dir+"/"+ledgerA), readLedger(t, "b1", dir+"/"+ledgerB)},
		StartWall: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func TestFedExactlyOnce(t *testing.T) {
	c := FedExactlyOnce{Domains: fedDomainsAB}
	t.Run("valid", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b.jsonl"))
		wantValid(t, v)
		if v.Stats["delivered_permit"] != 3 || v.Stats["receive_permits"] != 3 || v.Stats["calls"] != 3 {
			t.Errorf("stats %v: want 3 calls, 3 delivered permits (one of an unknown-outcome call), 3 receive permits", v.Stats)
		}
	})
	t.Run("written twice", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b-twice.jsonl"))
		wantViolation(t, v, "b1: fed/a-2 was permitted by bus.receive 2 times (seqs [4 6]): written twice")
		if v.ViolationCount != 1 {
			t.Errorf("%d violations, want exactly 1", v.ViolationCount)
		}
	})
	t.Run("forged", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b-forged.jsonl"))
		wantViolation(t, v,
			"seq 6: bus.receive PERMIT of fed/a-99 from a has no permitted cross-domain syscall of b:fed/a-99 in a's ledger (forged)",
			"seq 6: bus.receive PERMIT of fed/a-99 from a matches no client's call from a in the history (forged)")
	})
	t.Run("lost", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b-lost.jsonl"))
		wantViolation(t, v, "event b/2 from a (fed/a-2) was acknowledged delivered with PERMIT at seq 4 but no bus.receive PERMIT of it is in the ledger (lost)")
	})
	t.Run("wrong seq and order", func(t *testing.T) {
		in := fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b.jsonl")
		for i := range in.History {
			op := &in.History[i]
			if op.F == FFedStatus && op.Type == history.OK {
				switch op.Key {
				case "b/1":
					op.Seq = 4
				case "b/2":
					op.Seq = 3
				}
			}
		}
		v := check(t, c, in)
		wantViolation(t, v,
			"event b/1 from a (fed/a-1) was acknowledged as PERMIT at seq 4 but the ledger permitted it at seq 3",
			"link a>b: event b/2 was applied at seq 3, not after event b/1 at seq 4 (out of sequence order)")
	})
	t.Run("reported denied yet permitted", func(t *testing.T) {
		in := fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b.jsonl")
		for i := range in.History {
			if op := &in.History[i]; op.F == FFedStatus && op.Type == history.OK && op.Key == "b/3" {
				op.Decision, op.Reason = DecisionDeny, "unknown_token"
			}
		}
		wantViolation(t, check(t, c, in), "event b/3 from a (fed/a-3) was reported delivered deny unknown_token, yet the ledger permitted it at seq 5")
	})
	t.Run("unreadable ledger", func(t *testing.T) {
		in := fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b.jsonl")
		in.Ledgers[1].FetchErr = "connection refused"
		wantViolation(t, check(t, c, in), "b1: ledger could not be read", "domain b: no ledger could be read")
	})
}

func TestFedDelivery(t *testing.T) {
	c := FedDelivery{Domains: fedDomainsAB}
	in := fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b.jsonl")
	wantValid(t, check(t, c, in))
	for i := range in.History {
		if op := &in.History[i]; op.F == FFedStatus && op.Type == history.OK && op.Key == "b/2" {
			op.Result, op.Decision, op.Seq = BusPending, "", 0
		}
	}
	wantViolation(t, check(t, c, in), `event b/2 from a to b (fed/a-2) is still "pending"`)
	// Links touching the revoked domain are not judged.
	c.Revoked = "b"
	v := check(t, c, in)
	wantValid(t, v)
	if v.Stats["revoked_link_pending"] != 1 {
		t.Errorf("stats %v: want the pending event counted as not judged", v.Stats)
	}
}

func TestFedRevocation(t *testing.T) {
	c := FedRevocation{Domains: fedDomainsAB, Domain: "b", Bound: 50 * time.Second, Slack: 30 * time.Second}
	t.Run("valid", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b.jsonl"))
		wantValid(t, v)
		for _, s := range []string{"revoked at run time 20.100s", "peers applied b's last event 400ms after the revocation",
			"a reported it 1s after the revocation", "b's own gate denied all 1 decisions after its standing ended at run time 65.000s"} {
			if !strings.Contains(v.Summary, s) {
				t.Errorf("summary %q does not say %q", v.Summary, s)
			}
		}
	})
	t.Run("applied after the peer knew", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-revocation", "ledger-a-after-known.jsonl", "ledger-b.jsonl"))
		wantViolation(t, v, "a1: seq 6: bus.receive PERMIT of fed/b-3 from b/agent at ledger time 2026-01-01T00:00:36Z, 14.9s after a itself reported b's passport revoked")
		if v.ViolationCount != 1 {
			t.Errorf("%d violations, want 1 (the event is within the bound)", v.ViolationCount)
		}
	})
	t.Run("applied after the bound", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-revocation", "ledger-a-late.jsonl", "ledger-b.jsonl"))
		wantViolation(t, v, "a1: seq 6: bus.receive PERMIT of fed/b-4 from b/agent at ledger time 2026-01-01T00:01:11Z, 50.9s after the revocation (bound 50s)")
	})
	t.Run("own gate permits after standing", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b-late-permit.jsonl"))
		wantViolation(t, v, "b1: seq 6: syscall PERMIT of fedlocal/b-late at ledger time 2026-01-01T00:01:06Z, after b's standing ended at 2026-01-01T00:01:05Z")
	})
	t.Run("client told permit after standing", func(t *testing.T) {
		in := fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b.jsonl")
		last := &in.History[len(in.History)-1]
		last.Type, last.Decision, last.Reason = history.OK, DecisionPermit, "ok"
		wantViolation(t, check(t, c, in), "op 10: fed-local fedlocal/b-final-0 invoked at 70.000s on b1, after b's standing ended, was told PERMIT (seq 6)")
	})
	t.Run("run ends before the standing deadline", func(t *testing.T) {
		v := check(t, c, fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b-short.jsonl"))
		wantValid(t, v)
		if !strings.Contains(v.Summary, "b's own gate NOT JUDGED") || !strings.Contains(v.Summary, "the run ended before") {
			t.Errorf("summary %q does not say the own-gate part was skipped", v.Summary)
		}
	})
	t.Run("no revocation", func(t *testing.T) {
		in := fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b.jsonl")
		var ops []history.Op
		for _, op := range in.History {
			if op.F != FPassportRevoke && op.F != FPassportRead {
				ops = append(ops, op)
			}
		}
		in.History = ops
		v := check(t, c, in)
		wantValid(t, v)
		if !strings.Contains(v.Summary, "nothing to judge") {
			t.Errorf("summary %q", v.Summary)
		}
	})
	t.Run("unacknowledged revoke never seen", func(t *testing.T) {
		in := fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b.jsonl")
		var ops []history.Op
		for _, op := range in.History {
			if op.F == FPassportRead {
				continue
			}
			if op.F == FPassportRevoke && op.Type == history.OK {
				op.Type, op.Decision = history.Info, ""
			}
			ops = append(ops, op)
		}
		in.History = ops
		wantViolation(t, check(t, c, in), "neither acknowledged nor seen in effect")
	})
}
