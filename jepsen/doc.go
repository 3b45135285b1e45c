// Package jepsen is the root of Dominus's black-box fault tests of real
// processes: a kernel of `dominus agent` processes on loopback hosts,
// concurrent clients recording a history, a seeded nemesis (iptables
// partitions and packet loss, kill -9, SIGSTOP/SIGCONT, clock offsets),
// and checkers that judge the history and every replica's ledger with
// code of their own.
//
// Layout (each package's doc.go says what it owns):
//
//	history    the history file: ops, the recorder, pairing
//	checker    the Checker interface and every checker (linearizability
//	           with porcupine, ledger chain, convergence, request ids,
//	           acknowledged-before order, one leader per term, capability
//	           use limits and revocation, ...)
//	workload   the Workload interface, the kv register workload, the
//	           capability workload and their mix
//	nemesis    fault kinds, the seeded schedule, its execution, heal
//	netfault   the iptables chain and the probes that prove a cut
//	cluster    the agent processes, TLS material, the CLI, final reads
//	scenario   targeted scenarios (kill the leader mid-batch, corrupt a
//	           snapshot, corrupt raft.db)
//	report     the timeline picture and summary
//	runner     one run end to end, the scenarios, and federation runs
//	           (a sovereign and domains a, b; -federation)
//	cmd/jepsen the program behind `make jepsen` and `make jepsen-smoke`
//
// Growing it: a new workload (federation, delegation) implements
// workload.Workload (and Setup and Functions where it needs them),
// registers in workload.Registry and returns its checkers; a new property
// implements checker.Checker; a new fault adds a nemesis.Kind with its
// plan and its undo.
//
// Invariant: the harness talks to the system only as a client (the
// public client package and api types) and as an operator of its
// processes (the dominus CLI, signals, files, iptables). No package under
// jepsen imports the server's packages (fsm, kernel, archive, audit, or
// anything else of the module but api and client); imports_test.go
// enforces it.
package jepsen
