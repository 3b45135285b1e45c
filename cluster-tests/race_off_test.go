//go:build !race

package clustertests

const raceEnabled = false
