// Package planner will own the autonomic loop (monitor, analyze, plan,
// execute) over the ledger: proposals carry confidence, blast radius and
// reversibility and act only by proposing commands through the gate. Its
// decision functions are pure and tested against a fake of the read-only
// state they declare.
//
// (Empty until the learning work lands.)
package planner
