// Package temporal keeps the per-entity activity counters that Cedar
// policies read as context.history (protocol 7): how many calls, denials,
// errors and escalations an entity had over the last hour and day of
// ledger time, how often it called this op, how many distinct resources
// it touched in the last hour, and how long ago it was first seen. Like
// sense, it is a pure fold that the deterministic ledger (fsm) owns: every
// input carries its ledger time, nothing reads the clock, arithmetic is
// integer, iteration is sorted, and Encode/Decode give the canonical bytes
// fsm snapshots carry.
//
// # Windows
//
// Counters are bucketed so an entity's bookkeeping is bounded whatever
// its traffic. The hour is kept in 12 buckets of 5 minutes and the day in
// 24 buckets of an hour, each a ring indexed by ⌊t/width⌋. A window at
// ledger time now covers the bucket now falls in and the ones before it:
// the "1h" counters count events at or after (⌊now/5min⌋ − 11)×5min, the
// "24h" counters those at or after (⌊now/1h⌋ − 23)×1h. So a 1h counter
// covers between 55 and 60 minutes, a 24h counter between 23 and 24
// hours: an event drops out of the window at a bucket edge, never earlier
// than 55 minutes (23 hours) after it happened.
//
// # Bounds
//
//   - MaxEntities entities (100,000); a new entity beyond that evicts the
//     one least recently seen (ties by name).
//   - MaxOps ops per entity (32) with their own hour and day rings; a new
//     op beyond that evicts the entity's least recently called op (ties
//     by name), whose counts start again from zero if it returns.
//   - MaxResources resources per entity (256) with the ledger time each
//     was last touched, kept in touch order: touches older than the hour
//     window are dropped as the entity's calls move on, and a new
//     resource at the bound evicts the least recently touched (an
//     entity's calls have distinct ledger times, so the order is
//     canonical). distinct_resources_1h is exact up to 256 and saturates
//     there; it costs O(1) amortized per call.
//
// # What counts
//
// fsm records every syscall decision of a capability's entity (permit,
// deny, escalate; also the gate's early denials such as out_of_scope or
// uses_exhausted) after the decision, so the context a call is judged
// with describes the calls before it. An external effect that ends in
// error counts as an error of the entity that called it.
package temporal
