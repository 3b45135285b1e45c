// Package clean is deterministic code that detcheck must not flag: it uses
// time only for durations and fixed instants, iterates maps only under an
// allow comment with a reason or through slices.Sorted(maps.Keys(m)), and
// has its own symbols named like forbidden ones.
package clean

import (
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync/atomic"
	"time"
)

// Entry is a ledger-like record stamped by its proposer.
type Entry struct {
	StampNs int64
	TTL     time.Duration
}

// Stamp converts a proposer's stamp to a time in UTC.
func Stamp(e Entry) time.Time { return time.Unix(0, e.StampNs).UTC() }

// Expired judges expiry at ledger time, never at the wall clock.
func Expired(e Entry, ledgerNs int64) bool {
	return Stamp(e).Add(e.TTL).Before(time.Unix(0, ledgerNs))
}

// SortedKeys collects a map's keys and sorts them.
func SortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	// detcheck:ordered keys are sorted before they are returned
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Sum adds a map's values; addition of integers ignores order.
func Sum(m map[string]int) (n int) {
	for _, v := range m { // detcheck:ordered: integer addition is commutative
		n += v
	}
	return n
}

// Keys is the iterator form of SortedKeys.
func Keys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// Values sorts a map's integer values.
func Values(m map[int]uint64) []uint64 { return slices.Sorted(maps.Values(m)) }

// Ranges over everything that is not a map.
func Ranges(s []int, str string, n int, seq func(func(int) bool)) (total int) {
	for _, v := range s {
		total += v
	}
	for i := range str {
		total += i
	}
	for i := range n {
		total += i
	}
	for v := range seq {
		total += v
	}
	return total
}

// clock has a method named like time.Now.
type clock struct{ ns int64 }

func (c clock) Now() int64 { return c.ns }

// zone has a field named like time.Local.
type zone struct{ Local bool }

// Lookalikes uses symbols whose names match forbidden ones but which are
// not the forbidden symbols.
func Lookalikes() (int64, bool, time.Time) {
	Now := func() int64 { return 7 }
	var c clock
	z := zone{Local: true}
	var seq atomic.Uint64
	seq.Add(1)
	_ = reflect.TypeOf(z)
	return c.Now() + Now() + int64(seq.Load()), z.Local, time.Unix(0, 0).UTC()
}
