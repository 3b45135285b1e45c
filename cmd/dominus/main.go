// Command dominus operates a Dominus governance kernel; see internal/cli.
package main

import (
	"os"

	"github.com/dominus-kernel/dominus/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
