// Package client is the public Go client of the Dominus HTTP API: the one
// package agents and the dominus CLI use to talk to a kernel.
//
// Every write carries a request id (generated per call unless the caller
// sets one) and is retried with the same id on connection failures and
// leaderless moments, so a retry is deduplicated by the ledger rather than
// applied twice. Retries are bounded by Config.RetryFor.
//
// Imports: api and the standard library.
package client
