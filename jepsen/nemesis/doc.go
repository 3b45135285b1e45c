// Package nemesis plans and injects faults into a running kernel:
// network partitions of several shapes (leader, one node, halves, bridge,
// a ring of overlapping majorities) and one-way cuts, packet loss, added
// latency (every packet held in an NFQUEUE delayer), kill -9 with a
// restart after a pause, SIGSTOP/SIGCONT shorter and longer than an
// election timeout, restarts with a shifted clock, membership changes (a
// follower removed from the Raft configuration, wiped and joined again
// without state), and forced snapshots with a lagging follower (a
// follower killed while the leader snapshots and compacts its log past
// it, restarted to catch up by installing the snapshot), one at a time;
// and, for a federation (FedKinds, FedPlan, FedNemesis), cuts of the
// bus (UDP) between two domains, kills of a domain's leader, and the
// revocation of a domain's passport (always last: it is permanent).
//
// What it owns: the fault kinds and their names (the JEPSEN_NEMESIS
// vocabulary), the seeded schedule (Plan: the same seed, kinds and
// duration give the same schedule), the execution of a schedule against
// a Processes and a Network, and the record of every fault as it was
// actually applied (which nodes, from when to when). Nemesis and
// FedNemesis walk their schedules with one loop (schedule.go); each
// supplies only how a step of its kinds is injected and undone.
//
// Invariants:
//   - One fault at a time: each is undone before the next begins.
//   - A partition is recorded as in effect only after a Probe confirmed
//     it, and as healed only after the Probe found every path open; a
//     latency fault only after the Probe measured the delay both ways;
//     a snapshot-lag step only after the leader's answer shows its log
//     compacted past the follower's end, and undone only once the
//     follower reports that snapshot installed.
//   - Heal undoes everything (rules, paused and stopped processes,
//     clock offsets, removed members) and proves the network open; it
//     runs at the end of every run, also after an error. A node a
//     membership step removed is only ever started again without state
//     and without bootstrap; the node it removes did not lead when the
//     step began.
//   - Every wait is bounded by the schedule or by the context.
//
// Imports: jepsen/netfault (Pair) and the standard library.
package nemesis
