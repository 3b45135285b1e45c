// Package jepsen will hold black-box fault tests of real dominus agent
// processes: a nemesis (partitions with iptables, kill -9, SIGSTOP, clock
// offsets), concurrent clients recording histories, and checkers that are
// independent of the server code (they never import fsm).
//
// (Empty until the fault-testing work lands.)
package jepsen
