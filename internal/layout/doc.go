// Package layout holds no code: its test keeps the import DAG of the
// repository honest (DESIGN.md §6) — the pure core imports no I/O, the
// kernels do not import the CLI, clients and the fault-testing harness do
// not import server internals, api is a leaf and client reaches only api.
// rules lists what a package must not reach, allowRules all it may.
package layout
