// Package netfault injects network faults between loopback hosts with
// iptables, and proves that they are in effect with probes of its own.
//
// What it owns: one iptables chain (DOMINUS-JEPSEN by default), jumped to
// from INPUT and OUTPUT. Every rule the harness adds lives in that chain;
// Open flushes it (left over from a crashed run) and Close removes the
// jumps, flushes and deletes it. Rules are per source and destination
// address: `-s A -d B -j DROP` (a cut, one direction), `-s A -d B -m
// statistic --mode random --probability Q -j DROP` (loss) and `-p udp -s
// A -d B -j DROP` (a cut of the federation bus only: a UDP cut is in
// effect when the datagram is dropped while a TCP dial still passes).
//
// A Prober listens on every node IP (TCP and UDP on one port). A cut from
// A to B is in effect only when a TCP dial and a UDP datagram from A's IP
// to B's IP both fail; it is healed when both succeed again.
//
// Invariants:
//   - Nothing outside the chain is changed except the two jump rules.
//   - Without root or without iptables, Open fails with an error that
//     says so: network faults are never silently skipped.
//
// Imports: the standard library only.
package netfault
