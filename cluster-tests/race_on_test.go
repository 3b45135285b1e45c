//go:build race

package clustertests

const raceEnabled = true
