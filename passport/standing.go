package passport

import "math"

// StandingDeadline is the first ledger time at which a kernel refuses bus
// events from the peer whose latest known passport is p: p.Expires plus
// slack, with slack clamped to [0, MaxRenewalSlack] and the sum saturating
// at math.MaxInt64. The clamp makes the revocation bound hold whatever a
// kernel is configured with: a passport revoked at ledger time r stops
// being honoured everywhere by r + RevocationBound.
func StandingDeadline(p Passport, slack int64) int64 {
	return deadline(p.Expires, slack)
}

// Fresh reports whether a peer whose latest known passport is p still has
// standing at ledger time now: now < StandingDeadline(p, slack). With
// slack 0 this is exactly "not expired". Fresh checks no signature or
// revocation; a bus receiver requires both Verify (at the time the event
// was recorded) and Fresh (at its own time).
func Fresh(p Passport, now, slack int64) bool {
	return now < StandingDeadline(p, slack)
}

func deadline(expires, slack int64) int64 {
	slack = min(max(slack, 0), MaxRenewalSlack)
	if expires > math.MaxInt64-slack {
		return math.MaxInt64
	}
	return expires + slack
}
