package fsm

import (
	"testing"

	"github.com/dominus-kernel/dominus/passport"
)

// A domain cut off from the sovereign keeps governing its own agents until
// its last recorded passport expires plus StandingSlack, and not a
// nanosecond longer; governance still works after, and a renewal that
// reaches it restores the gate. Peers refuse its bus events on the same
// bound (PeerStanding).
func TestDomainStandingEndsAtPassportExpiryPlusSlack(t *testing.T) {
	k := newFedKeys(t)
	acme := newDomainLedger(t, "acme").viewsBy(k)
	acme.must("view", CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	pp, err := passport.Decode(acme.State().Fed.Passport)
	if err != nil {
		t.Fatal(err)
	}
	acme.must("grant", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	put := &Syscall{Op: "kv.put", Resource: "k", Args: []byte("v")}
	bound := pp.Expires + StandingSlack
	acme.mustAt(pp.Expires+1, "after expiry, within the slack", CmdSyscall, tokenHash("agent"), put)
	acme.mustAt(bound-1, "the last nanosecond of standing", CmdSyscall, tokenHash("agent"), put)
	acme.rejectAt(bound, "at the bound", ReasonPassportInvalid, CmdSyscall, tokenHash("agent"), put)
	acme.mustAt(bound+1, "governance goes on", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("agent2"), Entity: "agent2", Ops: []string{"kv.put"}, Resources: []string{"*"}})

	// The peer's passport, as acme recorded it, has the same bound.
	if _, r := acme.State().PeerStanding("other", PassportID("other", 1), bound-1); r != ReasonOK {
		t.Fatalf("peer standing before the bound: %s", r)
	}
	if _, r := acme.State().PeerStanding("other", PassportID("other", 1), bound); r != ReasonPassportInvalid {
		t.Fatalf("peer standing at the bound: %s", r)
	}

	// A renewal that arrives restores the gate.
	u := k.view("acme", []string{"other"}, nil)
	u.Passport = k.issue("acme", 2, bound+2, nil)
	acme.mustAt(bound+3, "renewed view", CmdFedUpdate, nil, u)
	acme.mustAt(bound+4, "after renewal", CmdSyscall, tokenHash("agent"), put)
}

// A domain that has not acknowledged a ratified amendment by the deadline
// is suspended (not waited for): suspension before the deadline or of a
// domain that acknowledged is refused; a suspended domain is not renewed.
func TestDomainSuspendedPastTheAcknowledgementDeadline(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	for _, d := range []string{"acme", "globex"} {
		w.create(d)
		w.join(d)
	}
	text := "Article 9. Acknowledge or be suspended.\n"
	id := w.must("propose", CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: text}).Result.ID
	w.must("alice", CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id, text))
	ratified := w.must("bob", CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", id, text)).Result.Time
	w.must("globex acknowledges", CmdFedCanonAck, nil, &FedCanonAck{Domain: "globex", Version: 1})

	deadline := ratified + AckDeadline
	w.rejectAt(deadline-1, "before the deadline", ReasonInvalidArgument, CmdFedSuspend, nil, &FedSuspend{Domain: "acme"})
	w.rejectAt(deadline+1, "a domain that acknowledged", ReasonInvalidArgument, CmdFedSuspend, nil, &FedSuspend{Domain: "globex"})
	w.mustAt(deadline+2, "acme past the deadline", CmdFedSuspend, nil, &FedSuspend{Domain: "acme"})
	if d := w.State().Fed.Domains["acme"]; !d.Suspended {
		t.Fatal("acme not suspended")
	}
	w.rejectAt(deadline+3, "renewal of a suspended domain", ReasonSuspended, CmdFedPassport, nil, w.renewal("acme", 2, deadline+3))
	w.mustAt(deadline+4, "globex renews", CmdFedPassport, nil, w.renewal("globex", 2, deadline+4))
}

// A revoked passport never regains standing: passport.Verify reports an
// expired passport as expired even when it is also revoked, and the
// renewal slack of an expired passport must not bring the revoked one
// back. (Found by the jepsen federation run: a peer applied a revoked
// domain's queued events in the slack after the revoked passport
// expired.) A call into such a domain is refused at the origin.
func TestRevokedPassportHasNoStandingInItsSlack(t *testing.T) {
	k := newFedKeys(t)
	acme := newDomainLedger(t, "acme").viewsBy(k)
	acme.must("view with other revoked", CmdFedUpdate, nil, k.view("acme", []string{"other"}, []string{PassportID("other", 1)}))
	pp, _ := passport.Decode(acme.State().Fed.Peers["other"].Passport)
	for _, at := range []int64{pp.Expires - 1, pp.Expires, pp.Expires + StandingSlack/2} {
		if _, r := acme.State().PeerStanding("other", pp.ID, at); r != ReasonPassportInvalid {
			t.Fatalf("revoked peer's standing at expiry%+d: %s", at-pp.Expires, r)
		}
	}
	acme.must("grant", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	acme.reject("a call into the revoked domain", ReasonPassportInvalid, CmdSyscall, tokenHash("agent"),
		&Syscall{Op: "kv.put", Resource: "other:orders/1", Args: []byte("v"), RemoteTokenHash: tokenHash("grant")})
	if len(acme.State().Fed.Outbox) != 0 {
		t.Fatal("an event to a domain without standing was queued")
	}
}
