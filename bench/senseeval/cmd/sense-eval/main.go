// Command sense-eval runs the evaluation of package sense (make
// sense-eval): the tuning seeds, then the held-out seeds, as markdown.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dominus-kernel/dominus/bench/senseeval"
)

func main() {
	smoke := flag.Bool("smoke", false, "the CI-sized workload (80 entities)")
	set := flag.String("set", "both", "tuning, held-out or both")
	flag.Parse()
	var ps []senseeval.Params
	if *set != "held-out" {
		ps = append(ps, senseeval.Tuning())
	}
	if *set != "tuning" {
		ps = append(ps, senseeval.HeldOut())
	}
	for _, p := range ps {
		if *smoke {
			p = p.Smoke()
		}
		r := senseeval.RunAll(p, os.Stderr)
		r.Print(os.Stdout)
	}
	fmt.Println("command: go run ./bench/senseeval/cmd/sense-eval", os.Args[1:])
}
