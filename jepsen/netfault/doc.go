// Package netfault injects network faults between loopback hosts with
// iptables, and proves that they are in effect with probes of its own.
//
// What it owns: one iptables chain (DOMINUS-JEPSEN by default), jumped to
// from INPUT and OUTPUT. Every rule the harness adds lives in that chain;
// Open flushes it (left over from a crashed run) and Close removes the
// jumps, flushes and deletes it. Rules are per source and destination
// address: `-s A -d B -j DROP` (a cut, one direction), `-s A -d B -m
// statistic --mode random --probability Q -j DROP` (loss), `-p udp -s
// A -d B -j DROP` (a cut of the federation bus only: a UDP cut is in
// effect when the datagram is dropped while a TCP dial still passes) and
// `-s A -d B -j NFQUEUE --queue-num Q --queue-bypass` (latency): a
// Delayer in this process holds each such packet for the delay on its
// way out (OUTPUT), accepts it at once on its way in (INPUT), and
// releases packets in arrival order, so streams are slowed, never
// reordered. A delay is in effect when a datagram takes at least the
// delay and a TCP dial at least twice it.
//
// A Prober listens on every node IP (TCP and UDP on one port). A cut from
// A to B is in effect only when a TCP dial and a UDP datagram from A's IP
// to B's IP both fail; it is healed when both succeed again.
//
// Invariants:
//   - Nothing outside the chain is changed except the two jump rules.
//   - Without root or without iptables, Open fails with an error that
//     says so: network faults are never silently skipped.
//   - The delayer holds at most 65536 packets; beyond that (and when the
//     kernel queue is full) packets pass undelayed and are counted.
//     Close releases every held packet before it unbinds the queue.
//
// Imports: github.com/florianl/go-nfqueue/v2 and mdlayher/netlink (the
// NFQUEUE listener), golang.org/x/sys/unix, and the standard library.
package netfault
