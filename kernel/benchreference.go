//go:build benchreference

package kernel

// benchReferenceFSM, true only in a binary built with the tag
// benchreference (bin/dominus-bench-reference, the reference target of
// `dominus bench`), swaps the ledger after genesis for a trivial state
// machine: apply = count + hash, nothing recorded, no archive. Front end,
// Raft and storage stay as they are, so the benchmark measures what
// everything Dominus adds after them costs. Such a binary never serves
// real traffic; the production build has the constant false
// (benchreference_off.go) and the code path compiled out.
const benchReferenceFSM = true
