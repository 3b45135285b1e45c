// Package driver holds the effect drivers: user-space processes that the
// kernel supervises to carry out the external effect of a permitted
// syscall, after the decision is committed. A driver crash or hang never
// takes the kernel down; the kernel restarts it and records the effect as
// indeterminate.
//
// Protocol: the kernel writes one JSON Request per line on the driver's
// standard input and reads one JSON Response per line from its standard
// output, strictly in order. Request.ID is the syscall's ledger seq: a
// driver passes it on (X-Dominus-Syscall-Id header, DOMINUS_SYSCALL_ID
// environment variable) so the systems it touches can stay idempotent.
//
// Built-in drivers (run as `dominus driver webhook|exec`):
//   - webhook: op webhook.call; the resource is a URL that must start with
//     an allow-listed prefix; args are POSTed as the body; ok on 2xx.
//   - exec: op exec.run; the resource is a command that must be exactly
//     allow-listed; args is a JSON array of string arguments; ok on exit 0.
//
// Imports: the standard library only.
package driver
