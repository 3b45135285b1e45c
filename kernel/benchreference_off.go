//go:build !benchreference

package kernel

// benchReferenceFSM is false in every binary but the benchmark reference
// (see benchreference.go).
const benchReferenceFSM = false
