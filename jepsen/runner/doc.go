// Package runner runs one fault test end to end and writes its report:
// start a kernel of real processes (package cluster), set the workload up
// (before any fault), run its clients while the nemesis injects a seeded
// schedule of faults, heal everything, read the final state of every
// replica, apply the checkers and write the report folder (run.json,
// schedule.json, faults.json, history.jsonl, ledger-NODE.jsonl,
// verdicts.json, timeline.svg, summary.txt, logs/).
//
// It also runs the targeted scenarios (package scenario) on a kernel of
// their own, and federation runs (RunFederation): a sovereign and two
// domain kernels, the fed workload, the federation nemesis and checkers,
// per-kernel ledger checks and one report folder.
//
// Both runs embed base (base.go): the report folder and run.log, the
// log and the harness failures, the iptables chain and probes, the
// history, the ops-under-faults and heal phases, the final ledger reads,
// the verdicts' frame and the report files. What differs (the kernels,
// the workload, the nemesis, the checkers) stays with each run.
//
// Invariants:
//   - Whatever happens (a checker fails, the harness errs, the context
//     is cancelled) the faults are healed, the iptables chain is removed
//     and every agent is stopped before Run returns.
//   - A run is valid only if every checker's verdict is valid and the
//     harness itself did not fail.
//
// Imports: every jepsen package, api, client and the standard library.
package runner
