// Package bench measures a Dominus kernel side by side with a reference:
// the harness behind `dominus bench`, plus in-process micro-benchmarks of
// hot functions (`go test -bench . ./bench`).
//
// It owns:
//   - starting local clusters of real `dominus agent` processes on
//     loopback (temp dirs, mutual TLS between nodes, plaintext HTTP API),
//     one cluster per target and client count: the gate (the real kernel,
//     Config.Exe) on BindBase and the next addresses, the reference
//     (Config.ReferenceExe, the same command built with the tag
//     benchreference: same front end, Raft and storage, an FSM that only
//     counts and hashes) on the addresses after those, so the two never
//     share an address. Before any cluster starts, the binaries' build
//     info is checked: the reference must carry the tag, the gate must
//     not;
//   - the closed-loop load (RunLoad): C workers issuing requests one after
//     the other through one shared keep-alive HTTP client, spread
//     round-robin over the nodes (or all to the leader), never retried;
//   - latency histograms (Histogram: fixed log-linear buckets, < 0.8 %
//     relative bucket width, bounded memory) and the report (Report: the
//     `{"results": [...]}` JSON contract and the human table with
//     gate/reference ratios);
//   - the failover (kill -9 of the leader to the first committed write),
//     replay (`dominus audit replay --data-dir` of a stopped node) and
//     elections (term increments during a no-fault run under load) modes;
//   - (subpackage senseeval) the evaluation of sensing model 2: a seeded
//     workload generator with labelled attack episodes and its measures
//     (`make sense-eval`, sense/EVALUATION.md);
//   - the offline ledger modes (ledgermodes.go), in this process on an
//     fsm.Ledger fed as a leader would, no cluster: snapshot (size,
//     encode, write+fsync, restore), memory (heap per 1000 capabilities
//     and per 1M gated puts) and revocation (revoke and leaf-check cost
//     against subtree size);
//   - CPU accounting of the client and every agent from /proc/PID/stat.
//
// How requests reach the kernel is a value (Path): SyscallPath, the
// default, is the agents' way in — POST /v1/syscall through the
// capability gate with a capability token per client, granted before the
// run; KVPath is PUT /v1/kv with the root token. The reference keeps no
// grants, so a path may name another path for it (SyscallPath's reference
// uses KVPath: no per-entity rate limit on one shared root entity). Every
// result names the path it measured.
//
// Invariants: every wait and loop is bounded; a run never retries a
// failed request (errors are counted, not folded into latency); clusters
// are stopped and their dirs removed on every return path; nothing listens
// or dials outside 127.0.0.0/8 except an explicit --addr. The workload has
// no random choices: keys and values are functions of (worker, request
// number).
//
// Imports: api, client, fsm (the offline ledger modes), internal/tlsutil
// and the standard library; the package tests run internal/cli in a
// child process as the agent, and build the reference binary with the go
// tool.
package bench
