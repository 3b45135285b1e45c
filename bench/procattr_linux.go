package bench

import "syscall"

// killWithParent makes the kernel SIGKILL a child when the harness dies
// without stopping it, so no agent outlives a crashed run holding its
// ports.
func killWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
