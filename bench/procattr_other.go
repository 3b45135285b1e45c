//go:build !linux

package bench

import "syscall"

// killWithParent is a no-op where there is no parent-death signal: a
// crashed run may leave agents behind.
func killWithParent(*syscall.SysProcAttr) {}
