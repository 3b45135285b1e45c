package kernel

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent callers share read-index rounds, and each is served by a
// round that started after it arrived.
func TestReadRoundsCoalesceAndStartAfterEachCaller(t *testing.T) {
	var started atomic.Uint64
	rr := &readRounds{base: context.Background(), timeout: time.Second, fetch: func(ctx context.Context) (uint64, error) {
		k := started.Add(1) // the round's number is its index
		time.Sleep(2 * time.Millisecond)
		return k, nil
	}}
	const callers, calls = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				before := started.Load() // rounds that started before this call
				idx, err := rr.index(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if idx <= before {
					errs <- errors.New("served by a round that started before the call")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total, rounds := uint64(callers*calls), rr.rounds.Load()
	t.Logf("%d calls, %d rounds", total, rounds)
	if rounds == 0 || rounds > total/4 {
		t.Fatalf("%d rounds for %d concurrent calls: not coalesced", rounds, total)
	}
}

// A caller's context bounds its wait; the round, bounded by its own
// timeout, still serves the others.
func TestReadRoundsCallerContextAndRoundTimeout(t *testing.T) {
	release := make(chan struct{})
	rr := &readRounds{base: context.Background(), timeout: 50 * time.Millisecond, fetch: func(ctx context.Context) (uint64, error) {
		select {
		case <-release:
			return 7, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := rr.index(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller past its deadline: %v", err)
	}
	if _, err := rr.index(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a round past its timeout: %v", err)
	}
	close(release)
	if idx, err := rr.index(context.Background()); err != nil || idx != 7 {
		t.Fatalf("a round after the stuck ones: %d %v", idx, err)
	}
}

func TestReplayState(t *testing.T) {
	for _, tc := range []struct {
		applied, commit, last uint64
		replaying             bool
		target                uint64
	}{
		{0, 0, 0, false, 0},           // a fresh node
		{0, 0, 4000, true, 4000},      // restarted, commit index not learned yet
		{120, 4000, 4000, true, 4000}, // replaying its log
		{3990, 4000, 4010, false, 0},  // a follower a few entries behind
		{4000, 4000, 5000, false, 0},  // uncommitted entries are not a replay
		{100, 5000, 4000, true, 5000}, // catching up beyond its own log
	} {
		r, target := replayState(tc.applied, tc.commit, tc.last)
		if r != tc.replaying || target != tc.target {
			t.Errorf("applied %d commit %d last %d: replaying %v to %d, want %v to %d", tc.applied, tc.commit, tc.last, r, target, tc.replaying, tc.target)
		}
	}
}
