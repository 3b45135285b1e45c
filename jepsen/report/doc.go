// Package report renders a fault test's outcome for people: a timeline
// picture (SVG, one lane per client process with ops colored by outcome,
// fault intervals shaded, and completions per second below) and a plain
// text summary with the command that reproduces the run.
//
// Invariants: the picture's size is bounded by its width and the number
// of lanes, never by the number of ops (adjacent ops of one outcome
// merge into one bar).
//
// Imports: jepsen/history and the standard library.
package report
