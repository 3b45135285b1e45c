// Package cli is the dominus command line: a cobra command tree whose
// subcommands are registered in a table (see the comment at the top of
// root.go for the hook), with the global flags --addr, --token, --ca-cert,
// --json and --timeout, and one exit-status contract for every command:
// 0 success, 1 error, 2 denied, 3 escalated, 4 verification failed
// (api.Exit*).
//
// Invariants:
//   - The CLI talks to a kernel only through the public client package,
//     the same one agents use, and takes limits and signing messages from
//     api; offline commands (tls, snapshot inspect, audit replay) use no
//     network at all. Only the files that read ledgers and snapshot files
//     offline (audit.go, snapshotfile.go) import fsm, and only agent.go
//     imports kernel (imports_test.go).
//   - Every command has machine output with --json on stdout; errors go
//     to stderr as "error: <message>" and, with --json, also to stdout as
//     {"error": {"code", "message"}} unless the command already printed
//     its JSON result (a DENY answer, a failed verification). Times are
//     RFC 3339.
//   - Files the CLI writes (exports, snapshots) appear whole or not at all:
//     a temporary file is written, fsynced and renamed into place.
//     Certificates and keys are never overwritten.
//   - Run builds a fresh command tree per call: no flag state is shared
//     between runs, so Run is safe to call repeatedly in one process.
//
// Imports: api, client, audit, fsm (offline ledger and snapshot decoding),
// canon, bench, driver, internal/tlsutil, cobra and the standard library;
// kernel only for the command that runs a node (agent). Nothing imports
// cli except cmd/dominus.
package cli
