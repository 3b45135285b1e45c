// Package cortex will own the typed, signed signals kernels gossip over
// memberlist (trust velocity, anomaly indicators, operational tempo,
// resource pressure) and the sovereign's aggregation of them. Gossip is
// advisory: no safety property depends on it.
//
// (Empty until the sensing work lands.)
package cortex
