// Package dirty breaks each default detcheck rule once; detcheck_test.go
// lists the violation expected on each line.
package dirty

import (
	_ "crypto/rand"
	"fmt"
	_ "hash/maphash"
	_ "io/fs"
	_ "io/ioutil"
	"maps"
	_ "math/rand"
	_ "math/rand/v2"
	_ "net"
	_ "net/http"
	_ "os"
	_ "os/exec"
	_ "os/signal"
	"path/filepath"
	_ "plugin"
	_ "runtime"
	_ "runtime/debug"
	"slices"
	_ "syscall"
	t "time"
	_ "unsafe"
)

func Clock() {
	_ = t.Now()
	f := t.Now
	_ = f
	_ = t.Since(t.Time{})
	_ = t.Until(t.Time{})
	_ = t.After(t.Second)
	_ = t.AfterFunc(t.Second, func() {})
	_ = t.Tick(t.Second)
	_ = t.NewTicker(t.Second)
	_ = t.NewTimer(t.Second)
	t.Sleep(t.Nanosecond)
	_, _ = t.LoadLocation("UTC")
	_ = t.Local
}

func Input() {
	var s string
	_, _ = fmt.Scan(&s)
	_, _ = fmt.Scanf("%s", &s)
	_, _ = fmt.Scanln(&s)
	_, _ = filepath.Abs(".")
	_, _ = filepath.EvalSymlinks(".")
	_, _ = filepath.Glob("*")
}

func MapOrder(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	// detcheck:ordered
	for k := range m {
		out = append(out, k)
	}
	out = append(out, slices.Collect(maps.Keys(m))...)
	for k := range maps.All(m) {
		out = append(out, k)
	}
	// detcheck:ordered this marker sits above no map iteration
	return out
}

type Counts map[string]int

func Named(c Counts) (n int) {
	for _, v := range c {
		n += v
	}
	return n
}

func Generic[M ~map[string]int](m M) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

func Floats(m map[string]float64) []float64 {
	return slices.Sorted(maps.Values(m))
}

func Concurrency() {
	done := make(chan struct{})
	go close(done)
	select {
	case <-done:
	}
}

func OneMarkerOneIteration(m map[string]int) []string {
	// detcheck:ordered allows the maps.Keys below but not the maps.Values
	return append(slices.Collect(maps.Keys(m)), fmt.Sprint(slices.Collect(maps.Values(m))))
}
