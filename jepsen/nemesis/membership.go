package nemesis

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Membership removes a follower from the Raft configuration (operator
// raft remove-peer), stops it and wipes its data dir; after the hold it
// starts again without state and without bootstrap, joins the cluster
// through the others and is a caught-up voter before the next fault.
const Membership Kind = "membership"

// OptInKinds are single-kernel kinds that "all" does not include: they
// run only when named. (None at present: a kind starts here until it
// passes repeatedly, then moves to AllKinds.)
var OptInKinds []Kind

// KnownKinds is every single-kernel kind: AllKinds, then OptInKinds.
var KnownKinds = append(append([]Kind(nil), AllKinds...), OptInKinds...)

// Members is what the membership kind needs beyond Processes. A
// Processes that does not implement it cannot run that kind.
type Members interface {
	// RemovePeer removes the named server from the Raft configuration
	// and returns once the leader's configuration no longer holds it.
	RemovePeer(ctx context.Context, name string) error
	// Wipe removes the stopped node's state (its data dir).
	Wipe(name string) error
	// StartJoining starts a node that may only join an existing cluster
	// (no bootstrap).
	StartJoining(name string) error
	// WaitMember returns once the node is a voter in the configuration
	// and caught up with the leader, or fails after limit.
	WaitMember(ctx context.Context, name string, limit time.Duration) error
}

// memberWait bounds a rejoin: start, join, and catching up a ledger of a
// few minutes of ops (log replay or a snapshot and archive backfill).
const memberWait = 90 * time.Second

// follower returns the planned node unless it leads, else the next node
// in index order that neither leads nor is stopped or paused.
func (n *Nemesis) follower(ctx context.Context, planned int) (string, string) {
	names := n.procs.Names()
	leader := n.leader(ctx, 3*time.Second)
	for i := range names {
		nm := names[(planned+i)%len(names)]
		if nm != leader && n.procs.Running(nm) && !n.procs.Paused(nm) {
			if i == 0 {
				return nm, ""
			}
			return nm, " (planned node leads or is down; next follower)"
		}
	}
	return names[planned], " (no follower found; planned node)"
}

// removeMember applies a membership step to target and returns its undo.
func (n *Nemesis) removeMember(ctx context.Context, target string) (func(context.Context) error, error) {
	m, ok := n.procs.(Members)
	if !ok {
		return nil, errors.New("these processes cannot change the Raft configuration")
	}
	n.mu.Lock()
	if n.removed == nil {
		n.removed = map[string]bool{}
	}
	n.removed[target] = true // from here on the heal must rejoin it
	n.members++
	n.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.RemovePeer(rctx, target); err != nil {
		return nil, err
	}
	if n.procs.Running(target) {
		if err := n.procs.Stop(target); err != nil {
			return nil, err
		}
	}
	if err := m.Wipe(target); err != nil {
		return nil, err
	}
	return func(uctx context.Context) error { return n.rejoin(uctx, m, target) }, nil
}

// rejoin starts a removed, wiped node so that it joins again, and waits
// until it is a caught-up voter.
func (n *Nemesis) rejoin(ctx context.Context, m Members, name string) error {
	if !n.procs.Running(name) {
		if err := m.StartJoining(name); err != nil {
			return err
		}
	}
	if err := m.WaitMember(ctx, name, memberWait); err != nil {
		return err
	}
	n.mu.Lock()
	delete(n.removed, name)
	n.mu.Unlock()
	return nil
}

// healMembers rejoins every node a membership step removed and did not
// see back, wiping it first when it runs on its old state (which no
// longer lists it as a member and so would never ask to join); then,
// if any membership step ran, it waits until every node is a caught-up
// voter.
func (n *Nemesis) healMembers(ctx context.Context) error {
	n.mu.Lock()
	var pending []string
	for _, nm := range n.procs.Names() {
		if n.removed[nm] {
			pending = append(pending, nm)
		}
	}
	used := n.members > 0
	n.mu.Unlock()
	if !used {
		return nil
	}
	m, ok := n.procs.(Members)
	if !ok {
		return errors.New("membership was changed but the processes cannot rejoin a node")
	}
	var errs []error
	for _, nm := range pending {
		n.logf("nemesis: heal: %s was removed from the configuration; rejoining it without state", nm)
		if n.procs.Running(nm) {
			if err := n.procs.Stop(nm); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		// A failed removal may have left it a member: remove it for
		// certain before it starts without state under its old name.
		if err := m.RemovePeer(ctx, nm); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.Wipe(nm); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, n.rejoin(ctx, m, nm))
	}
	for _, nm := range n.procs.Names() {
		if err := m.WaitMember(ctx, nm, memberWait); err != nil {
			errs = append(errs, fmt.Errorf("after the heal: %w", err))
		}
	}
	return errors.Join(errs...)
}

// removedNode reports whether a membership step removed name and it has
// not rejoined yet.
func (n *Nemesis) removedNode(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.removed[name]
}
