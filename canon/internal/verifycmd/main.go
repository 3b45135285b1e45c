// Command verifycmd checks the canon embedded in its own binary. It prints
// the canon hash and exits 0 when canon.Verify passes, and prints the error
// to stderr and exits 1 when it fails. Tests build it with each canon build
// tag to check the behaviour of a real binary.
package main

import (
	"fmt"
	"os"

	"github.com/dominus-kernel/dominus/canon"
)

func main() {
	if err := canon.Verify(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(canon.HashHex())
}
