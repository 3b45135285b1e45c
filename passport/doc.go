// Package passport will own passports: time-bounded, revocable credentials
// the sovereign signs for a domain kernel, naming the domain, what it may
// do across the federation and the issuing authority; and their pure
// verification (signature, not-before, expiry, revocation) at a given
// ledger time.
//
// Pure core: no clock, randomness or I/O; callers pass the time.
// (Empty until the federation work lands.)
package passport
