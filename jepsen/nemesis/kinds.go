package nemesis

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is a kind of fault.
type Kind string

// The fault kinds.
const (
	// PartitionLeader isolates the current leader from every other node.
	PartitionLeader Kind = "partition-leader"
	// PartitionOne isolates one node chosen by the schedule.
	PartitionOne Kind = "partition-one"
	// PartitionHalves splits the nodes into a minority and a majority.
	PartitionHalves Kind = "partition-halves"
	// PartitionBridge splits the nodes into two sides that both still
	// reach one bridge node.
	PartitionBridge Kind = "partition-bridge"
	// PartitionRing gives every node a majority of its own that no other
	// node shares: on a ring of the nodes each keeps only its neighbours
	// (with 3 nodes, a one-way cycle: each hears exactly one other).
	PartitionRing Kind = "partition-ring"
	// PartitionOneWay drops every packet one node sends to the others
	// (it still hears them): a one-way cut, -s A -d B -j DROP only.
	PartitionOneWay Kind = "partition-oneway"
	// Loss drops packets between every pair of nodes at random.
	Loss Kind = "loss"
	// Latency delays every packet between the nodes (or between one node
	// and the others) by a fixed time, in an NFQUEUE delayer.
	Latency Kind = "latency"
	// Kill sends SIGKILL to a node (the leader half the time) and
	// restarts it after a pause.
	Kill Kind = "kill"
	// PauseShort stops a node with SIGSTOP for less than an election
	// timeout, then SIGCONT.
	PauseShort Kind = "pause-short"
	// PauseLong stops a node for several election timeouts.
	PauseLong Kind = "pause-long"
	// Clock restarts a node with a shifted clock (--test-clock-offset),
	// and later restarts it with the true clock.
	Clock Kind = "clock"
)

// AllKinds lists every kind in a stable order.
var AllKinds = []Kind{PartitionLeader, PartitionOne, PartitionHalves, PartitionBridge, PartitionRing, PartitionOneWay,
	Loss, Latency, Kill, PauseShort, PauseLong, Clock, Membership, SnapshotLag}

// aliases expand to several kinds in JEPSEN_NEMESIS.
var aliases = map[string][]Kind{
	"all":       AllKinds,
	"partition": {PartitionLeader, PartitionOne, PartitionHalves, PartitionBridge, PartitionRing, PartitionOneWay},
	"pause":     {PauseShort, PauseLong},
	"none":      {},
}

// Network reports whether the kind needs iptables.
func (k Kind) Network() bool {
	switch k {
	case PartitionLeader, PartitionOne, PartitionHalves, PartitionBridge, PartitionRing, PartitionOneWay, Loss, Latency:
		return true
	}
	return false
}

// ParseKinds parses a comma-separated list of kinds and aliases (all,
// partition, pause, none); the kinds of OptInKinds are only taken when
// named. The result is deduplicated, in KnownKinds order.
func ParseKinds(s string) ([]Kind, error) {
	return parseKinds(s, KnownKinds, aliases, "fault", "all, partition, pause, none")
}

// parseKinds parses a comma-separated list of the known kinds and the
// aliases; what and aliasNames word the error. The result is
// deduplicated, in known order.
func parseKinds(s string, known []Kind, aliases map[string][]Kind, what, aliasNames string) ([]Kind, error) {
	set := map[Kind]bool{}
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(strings.ToLower(w))
		if w == "" {
			continue
		}
		if ks, ok := aliases[w]; ok {
			for _, k := range ks {
				set[k] = true
			}
			continue
		}
		found := false
		for _, k := range known {
			if string(k) == w {
				set[k], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("nemesis: unknown %s %q (known: %s, or %s)", what, w, KindNames(known), aliasNames)
		}
	}
	var out []Kind
	for _, k := range known {
		if set[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

// KindNames joins kinds with commas (the JEPSEN_NEMESIS form).
func KindNames(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

// NeedsNetwork reports whether any kind needs iptables.
func NeedsNetwork(ks []Kind) bool {
	for _, k := range ks {
		if k.Network() {
			return true
		}
	}
	return false
}

func sortedInts(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
