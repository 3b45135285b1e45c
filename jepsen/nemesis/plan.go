package nemesis

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Step is one planned fault.
type Step struct {
	At   time.Duration `json:"at"`   // offset from the nemesis's start
	Kind Kind          `json:"kind"` //
	Hold time.Duration `json:"hold"` // how long the fault lasts (kill: how long the node stays dead)
	// Node is the target's index; with Leader set it is only the
	// fallback for a moment without a leader.
	Node int `json:"node"`
	// Leader targets the node that is leader when the step begins.
	Leader bool `json:"leader,omitempty"`
	// Minority lists node indexes of the minority side (halves) or, for a
	// bridge, of one side (the bridge node is Node, the rest form the
	// other side).
	Minority []int `json:"minority,omitempty"`
	// Probability of loss per delivery (Loss).
	Probability float64 `json:"probability,omitempty"`
	// ClockOffset shifts the target's clock (Clock).
	ClockOffset time.Duration `json:"clock_offset,omitempty"`
	// Ring orders the node indexes around the ring (PartitionRing).
	Ring []int `json:"ring,omitempty"`
	// Delay is added to every packet (Latency), between all nodes with
	// AllPairs, else between the target and the others.
	Delay    time.Duration `json:"delay,omitempty"`
	AllPairs bool          `json:"all_pairs,omitempty"`
}

func (s Step) String() string {
	hold := s.Hold.Round(time.Millisecond)
	target := fmt.Sprintf("node %d", s.Node)
	if s.Leader {
		target = "the leader"
	}
	switch s.Kind {
	case PartitionHalves:
		return fmt.Sprintf("%7.1fs %-17s minority %v for %s", s.At.Seconds(), s.Kind, s.Minority, hold)
	case PartitionBridge:
		return fmt.Sprintf("%7.1fs %-17s bridge %s, side %v for %s", s.At.Seconds(), s.Kind, target, s.Minority, hold)
	case Loss:
		return fmt.Sprintf("%7.1fs %-17s p=%.2f for %s", s.At.Seconds(), s.Kind, s.Probability, hold)
	case Clock:
		return fmt.Sprintf("%7.1fs %-17s %s offset %s for %s", s.At.Seconds(), s.Kind, target, s.ClockOffset, hold)
	case PartitionRing:
		return fmt.Sprintf("%7.1fs %-17s ring %v for %s", s.At.Seconds(), s.Kind, s.Ring, hold)
	case Latency:
		if s.AllPairs {
			target = "all pairs"
		}
		return fmt.Sprintf("%7.1fs %-17s +%s on %s for %s", s.At.Seconds(), s.Kind, s.Delay, target, hold)
	}
	return fmt.Sprintf("%7.1fs %-17s %s for %s", s.At.Seconds(), s.Kind, target, hold)
}

// Schedule is a seeded plan of faults.
type Schedule struct {
	Seed     int64         `json:"seed"`
	Kinds    []Kind        `json:"kinds"`
	Duration time.Duration `json:"duration"`
	Nodes    int           `json:"nodes"`
	Steps    []Step        `json:"steps"`
}

// PlanConfig bounds a schedule.
type PlanConfig struct {
	Seed     int64
	Kinds    []Kind
	Duration time.Duration // the faults end before this
	Nodes    int
	// Warmup is fault-free time at the start (default 2s); Tail is
	// fault-free time at the end (default 2s).
	Warmup, Tail time.Duration
	// GapMin and GapMax bound the fault-free time between faults
	// (defaults 1.5s and 4s).
	GapMin, GapMax time.Duration
	// ElectionTimeout is the agents' election timeout (default 500ms):
	// short pauses stay below it, long ones exceed it three times over.
	ElectionTimeout time.Duration
}

func (c *PlanConfig) defaults() {
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Tail == 0 {
		c.Tail = 2 * time.Second
	}
	if c.GapMin == 0 {
		c.GapMin = 1500 * time.Millisecond
	}
	if c.GapMax < c.GapMin {
		c.GapMax = max(c.GapMin, 4*time.Second)
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
}

// Plan draws a schedule from the seed: kinds come in rounds, each round
// a seeded permutation of every kind, so every kind appears once before
// any appears twice. Steps that would not end before Duration-Tail are
// not planned.
func Plan(cfg PlanConfig) Schedule {
	cfg.defaults()
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6a657073656e)) // "jepsen"
	s := Schedule{Seed: cfg.Seed, Kinds: cfg.Kinds, Duration: cfg.Duration, Nodes: cfg.Nodes}
	if len(cfg.Kinds) == 0 {
		return s
	}
	end := cfg.Duration - cfg.Tail
	at := cfg.Warmup
	var round []Kind
	for i := 0; i < 10000; i++ {
		if len(round) == 0 {
			round = append([]Kind(nil), cfg.Kinds...)
			rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		k := round[0]
		round = round[1:]
		st := draw(rng, k, cfg)
		st.At = at
		if at+st.Hold+settle(k) > end {
			break
		}
		s.Steps = append(s.Steps, st)
		at += st.Hold + settle(k) + between(rng, cfg.GapMin, cfg.GapMax)
	}
	return s
}

// settle is time a kind needs after its hold to be undone (a restart).
func settle(k Kind) time.Duration {
	switch k {
	case Kill, Clock:
		return time.Second
	case Membership, SnapshotLag:
		return 3 * time.Second // join or install a snapshot, and catch up
	}
	return 0
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

func draw(rng *rand.Rand, k Kind, cfg PlanConfig) Step {
	n := cfg.Nodes
	st := Step{Kind: k, Node: rng.IntN(n)}
	et := cfg.ElectionTimeout
	switch k {
	case PartitionLeader:
		st.Leader = true
		st.Hold = between(rng, 3*time.Second, 7*time.Second)
	case PartitionOne:
		st.Hold = between(rng, 3*time.Second, 7*time.Second)
	case PartitionHalves:
		perm := rng.Perm(n)
		minority := map[int]bool{}
		for _, i := range perm[:n/2] {
			minority[i] = true
		}
		st.Minority = sortedInts(minority)
		st.Node = st.Minority[0]
		st.Hold = between(rng, 3*time.Second, 7*time.Second)
	case PartitionBridge:
		perm := rng.Perm(n)
		st.Node = perm[0]
		side := map[int]bool{}
		for _, i := range perm[1 : 1+(n-1)/2] {
			side[i] = true
		}
		st.Minority = sortedInts(side)
		st.Hold = between(rng, 3*time.Second, 7*time.Second)
	case PartitionOneWay:
		if rng.IntN(2) == 0 {
			st.Leader = true
		}
		st.Hold = between(rng, 3*time.Second, 6*time.Second)
	case Loss:
		st.Probability = []float64{0.1, 0.2, 0.3, 0.5}[rng.IntN(4)]
		st.Hold = between(rng, 3*time.Second, 6*time.Second)
	case Kill:
		if rng.IntN(2) == 0 {
			st.Leader = true
		}
		st.Hold = between(rng, 500*time.Millisecond, 4*time.Second)
	case PauseShort:
		if rng.IntN(2) == 0 {
			st.Leader = true
		}
		st.Hold = between(rng, et/5, et*4/5)
	case PauseLong:
		if rng.IntN(2) == 0 {
			st.Leader = true
		}
		st.Hold = between(rng, 3*et, 8*et)
	case Clock:
		if rng.IntN(2) == 0 {
			st.Leader = true
		}
		offsets := []time.Duration{300 * time.Millisecond, 1500 * time.Millisecond, 5 * time.Second, 30 * time.Second}
		st.ClockOffset = offsets[rng.IntN(len(offsets))]
		if rng.IntN(2) == 0 {
			st.ClockOffset = -st.ClockOffset
		}
		st.Hold = between(rng, 4*time.Second, 8*time.Second)
	case Membership:
		// Node is the planned follower; the leader is never removed.
		st.Hold = between(rng, 2*time.Second, 5*time.Second)
	case PartitionRing:
		st.Ring = rng.Perm(n)
		st.Node = st.Ring[0]
		st.Hold = between(rng, 3*time.Second, 7*time.Second)
	case Latency:
		st.Delay = []time.Duration{10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}[rng.IntN(4)]
		switch rng.IntN(3) {
		case 0:
			st.AllPairs = true
		case 1:
			st.Leader = true
		}
		st.Hold = between(rng, 4*time.Second, 8*time.Second)
	case SnapshotLag:
		// Node is the planned follower, paused while the leader compacts
		// past it; the hold counts from the compaction.
		st.Hold = between(rng, time.Second, 3*time.Second)
	}
	return st
}
