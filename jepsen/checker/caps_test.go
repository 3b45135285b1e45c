package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// capsInput loads a capability fixture: a history and one replica's
// ledger (or the same ledger on two replicas).
func capsInput(t *testing.T, historyPath, ledgerPath string, replicas int) *Input {
	t.Helper()
	ops, err := history.Read(testdata + "/" + historyPath)
	if err != nil {
		t.Fatal(err)
	}
	in := &Input{History: ops, LedgerFinal: true}
	for i := 0; i < replicas; i++ {
		in.Ledgers = append(in.Ledgers, readLedger(t, []string{"n1", "n2", "n3"}[i], ledgerPath))
	}
	return in
}

func wantValid(t *testing.T, v Verdict) {
	t.Helper()
	if !v.Valid {
		t.Fatalf("%s: sound input judged invalid: %v", v.Checker, v.Violations)
	}
}

func TestCapLimit(t *testing.T) {
	t.Run("permit beyond the limit", func(t *testing.T) {
		in := capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger.jsonl", 2)
		v := check(t, CapLimit{}, in)
		wantViolation(t, v,
			"n1: cap-2 (limit 2) has 3 PERMIT events; the limit was reached at seq 4 and exceeded at seq 5 (request id s2)",
			"n2: cap-2 (limit 2) has 3 PERMIT events")
		if v.ViolationCount != 2 {
			t.Errorf("%d violations, want 2 (one per replica)", v.ViolationCount)
		}
	})
	t.Run("sound", func(t *testing.T) {
		in := capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger-valid.jsonl", 2)
		v := check(t, CapLimit{}, in)
		wantValid(t, v)
		if v.Stats["ledger_permits"] != 2 || v.Stats["caps_used_up"] != 1 || v.Stats["denied_uses_exhausted"] != 2 {
			t.Errorf("stats %v: want 2 permits, 1 capability used up, 2 exhausted denials", v.Stats)
		}
	})
	t.Run("clients told more permits than the limit", func(t *testing.T) {
		in := capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger.jsonl", 1)
		in.History[7].Type, in.History[7].Seq, in.History[7].Decision, in.History[7].Error = history.OK, 5, DecisionPermit, ""
		v := check(t, CapLimit{}, in)
		wantViolation(t, v, "the clients were told PERMIT 3 times for cap-2, whose limit is 2", "has 3 PERMIT events")
	})
	t.Run("exhausted before the limit", func(t *testing.T) {
		in := capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger-valid.jsonl", 1)
		ev := &in.Ledgers[0].Events[3] // s3's PERMIT becomes an early denial
		ev.Decision, ev.Reason = DecisionDeny, ReasonUsesExhausted
		in.History[6].Type, in.History[6].Decision, in.History[6].Reason = history.Fail, DecisionDeny, ReasonUsesExhausted
		v := check(t, CapLimit{}, in)
		wantViolation(t, v, "cap-2 (limit 2) was denied uses_exhausted at seq 4 (request id s3) after only 1 PERMIT(s)")
	})
	t.Run("acknowledged permit not in the ledger as told", func(t *testing.T) {
		in := capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger-valid.jsonl", 1)
		in.History[4].Seq = 5            // s1 told seq 5; the ledger has it at 3
		in.History[9].Reason = "revoked" // s4 told revoked; the ledger says uses_exhausted
		in.Ledgers[0].Events[3].CapID = "cap-9"
		v := check(t, CapLimit{}, in)
		wantViolation(t, v,
			"syscall op 2 (request id s1) was answered PERMIT at seq 5, but the ledger has it at seq 3",
			"syscall op 8 (request id s4) was answered DENY revoked at seq 6, but the ledger records DENY uses_exhausted",
			"syscall op 5 (request id s3) used cap-2, but the ledger charges cap-9 at seq 4",
			"PERMIT at seq 4 (request id s3) under cap-9, which no acknowledged grant of the history created")
	})
	t.Run("a ledger that could not be read", func(t *testing.T) {
		in := capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger-valid.jsonl", 1)
		in.Ledgers[0].FetchErr = "timeout"
		wantViolation(t, check(t, CapLimit{}, in), "ledger could not be read")
		wantViolation(t, check(t, CapLimit{}, &Input{History: in.History}), "no ledgers were collected")
	})
}

func TestCapRevoke(t *testing.T) {
	t.Run("permit after revoke", func(t *testing.T) {
		in := capsInput(t, "permit-after-revoke/history.jsonl", "permit-after-revoke/ledger.jsonl", 1)
		v := check(t, CapRevoke{}, in)
		wantViolation(t, v,
			// s3 began after the revoke was acknowledged
			"syscall op 8 with cap-2 was invoked at 0.000s, after the revoke of cap-2 was acknowledged at 0.000s (op 4, seq 4), yet it was told PERMIT at seq 6",
			// s2 was concurrent with the revoke but got a seq above it
			"syscall op 5 with cap-2 was told PERMIT at seq 5, above seq 4 of the acknowledged revoke (op 4)",
			"n1: PERMIT for cap-2 at seq 5 (request id s2), after its revoke at seq 4",
			"n1: PERMIT for cap-2 at seq 6 (request id s3), after its revoke at seq 4")
		if v.ViolationCount != 4 {
			t.Errorf("%d violations, want 4", v.ViolationCount)
		}
		// The limit checker has nothing to say: 3 permits of 10.
		wantValid(t, check(t, CapLimit{}, in))
	})
	t.Run("sound", func(t *testing.T) {
		in := capsInput(t, "permit-after-revoke/history-valid.jsonl", "permit-after-revoke/ledger-valid.jsonl", 3)
		v := check(t, CapRevoke{}, in)
		wantValid(t, v)
		if v.Stats["acknowledged_revokes"] != 1 || v.Stats["invoked_after_revoke"] != 1 || v.Stats["denied_revoked"] != 1 {
			t.Errorf("stats %v: want 1 revoke, 1 syscall after it, 1 denied revoked", v.Stats)
		}
		wantValid(t, check(t, CapLimit{}, in))
		wantValid(t, check(t, LedgerChain{}, in))
	})
	t.Run("ledger only: an unacknowledged revoke still counts", func(t *testing.T) {
		in := capsInput(t, "permit-after-revoke/history.jsonl", "permit-after-revoke/ledger.jsonl", 1)
		in.History[6].Type, in.History[6].Seq, in.History[6].Error = history.Info, 0, "timeout"
		v := check(t, CapRevoke{}, in)
		wantViolation(t, v, "n1: PERMIT for cap-2 at seq 5 (request id s2), after its revoke at seq 4")
		if v.ViolationCount != 2 {
			t.Errorf("%d violations, want the 2 ledger ones only", v.ViolationCount)
		}
	})
	t.Run("revoke not in the ledger; denial without a revoke", func(t *testing.T) {
		in := capsInput(t, "permit-after-revoke/history-valid.jsonl", "permit-after-revoke/ledger-valid.jsonl", 1)
		in.Ledgers[0].Events[4].Decision = DecisionDeny // the revoke was refused, yet acknowledged and enforced
		v := check(t, CapRevoke{}, in)
		wantViolation(t, v,
			"acknowledged revoke of cap-2 (op 4, request id r1) was told seq 5; the ledger has cap.revoke deny",
			"cap-2 denied revoked at seq 6 (request id s3), but no earlier event revokes it")
	})
}

// TestRequestIDsLedgeredRefusals: a DENY is a Fail with a seq; it must
// be in the ledger at that seq, and never as a PERMIT.
func TestRequestIDsLedgeredRefusals(t *testing.T) {
	rids := RequestIDs{EventType: map[string]string{FSyscall: EventSyscall, FGrant: EventCapGrant, FRevoke: EventCapRevoke}, SubjectIsKey: true}
	wantValid(t, check(t, rids, capsInput(t, "permit-after-revoke/history-valid.jsonl", "permit-after-revoke/ledger-valid.jsonl", 1)))
	wantValid(t, check(t, rids, capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger-valid.jsonl", 1)))

	in := capsInput(t, "permit-after-revoke/history-valid.jsonl", "permit-after-revoke/ledger.jsonl", 1)
	wantViolation(t, check(t, rids, in), "request id s3 was refused DENY revoked at seq 6, but the ledger records PERMIT ok")

	in = capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger-valid.jsonl", 1)
	in.Ledgers[0].Events = in.Ledgers[0].Events[:5] // s4's denial is gone
	wantViolation(t, check(t, rids, in), "syscall caps/4 (request id s4, op 8) was refused DENY uses_exhausted at seq 6, but is missing from the ledger")
}

// lowerDecisions rewrites the decisions of in's ledgers (and, with
// history, of its history) in lower case, as kernels answer them now; the
// fixtures were recorded from kernels that answered PERMIT, DENY and
// ESCALATE.
func lowerDecisions(in *Input, history bool) {
	for li := range in.Ledgers {
		for i := range in.Ledgers[li].Events {
			ev := &in.Ledgers[li].Events[i]
			ev.Decision = strings.ToLower(ev.Decision)
		}
	}
	if history {
		for i := range in.History {
			in.History[i].Decision = strings.ToLower(in.History[i].Decision)
		}
	}
}

// TestDecisionsCompareWithoutCase: every checker that reads decisions
// gives the same verdict on a fixture whose decisions are in lower case,
// in its ledgers alone or in its history too, as on the fixture as
// recorded in upper case.
func TestDecisionsCompareWithoutCase(t *testing.T) {
	rids := RequestIDs{EventType: map[string]string{FSyscall: EventSyscall, FGrant: EventCapGrant, FRevoke: EventCapRevoke}, SubjectIsKey: true}
	fedRev := FedRevocation{Domains: fedDomainsAB, Domain: "b", Bound: 50 * time.Second, Slack: 30 * time.Second}
	cases := []struct {
		name  string
		c     Checker
		input func(t *testing.T) *Input
	}{
		{"cap-limit over", CapLimit{}, func(t *testing.T) *Input {
			return capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger.jsonl", 2)
		}},
		{"cap-limit sound", CapLimit{}, func(t *testing.T) *Input {
			return capsInput(t, "cap-over-limit/history.jsonl", "cap-over-limit/ledger-valid.jsonl", 2)
		}},
		{"cap-revoke after", CapRevoke{}, func(t *testing.T) *Input {
			return capsInput(t, "permit-after-revoke/history.jsonl", "permit-after-revoke/ledger.jsonl", 1)
		}},
		{"cap-revoke sound", CapRevoke{}, func(t *testing.T) *Input {
			return capsInput(t, "permit-after-revoke/history-valid.jsonl", "permit-after-revoke/ledger-valid.jsonl", 1)
		}},
		{"request-ids refused", rids, func(t *testing.T) *Input {
			return capsInput(t, "permit-after-revoke/history-valid.jsonl", "permit-after-revoke/ledger.jsonl", 1)
		}},
		{"request-ids sound", rids, func(t *testing.T) *Input {
			return capsInput(t, "permit-after-revoke/history-valid.jsonl", "permit-after-revoke/ledger-valid.jsonl", 1)
		}},
		{"fed-exactly-once lost", FedExactlyOnce{Domains: fedDomainsAB}, func(t *testing.T) *Input {
			return fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b-lost.jsonl")
		}},
		{"fed-exactly-once sound", FedExactlyOnce{Domains: fedDomainsAB}, func(t *testing.T) *Input {
			return fedInput(t, "fed-exactly-once", "ledger-a.jsonl", "ledger-b.jsonl")
		}},
		{"fed-revocation late permit", fedRev, func(t *testing.T) *Input {
			return fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b-late-permit.jsonl")
		}},
		{"fed-revocation sound", fedRev, func(t *testing.T) *Input {
			return fedInput(t, "fed-revocation", "ledger-a.jsonl", "ledger-b.jsonl")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recorded := check(t, tc.c, tc.input(t))
			for _, history := range []bool{false, true} {
				in := tc.input(t)
				lowerDecisions(in, history)
				v := check(t, tc.c, in)
				if v.Valid != recorded.Valid || v.ViolationCount != recorded.ViolationCount || len(v.Violations) != len(recorded.Violations) {
					t.Fatalf("lower-case decisions (history too: %v): valid=%v with %d violations; as recorded: valid=%v with %d",
						history, v.Valid, v.ViolationCount, recorded.Valid, recorded.ViolationCount)
				}
			}
		})
	}
}
