package faultnet

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoServe echoes every conn accepted on ln until ln is closed.
func echoServe(wg *sync.WaitGroup, ln net.Listener) {
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			})
		}
	})
}

// roundTrip dials from→to, sends a message and reads its echo.
func roundTrip(c *cluster, from, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := c.n.Dialer(from)(ctx, c.addr(to))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// TestChaosThenHeal drives round trips between every pair of nodes while a
// seeded sequence of faults changes under them, for the race detector and
// for deadlocks; then it heals and checks every pair works again.
func TestChaosThenHeal(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	c := newCluster(t, testSeed(t), names...)
	var servers sync.WaitGroup
	for _, name := range names {
		echoServe(&servers, c.lns[name])
	}

	stop := make(chan struct{})
	var workers sync.WaitGroup
	var ok, failed atomic.Int64
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			workers.Go(func() {
				msg := []byte(from + "->" + to)
				for range 500 {
					select {
					case <-stop:
						return
					default:
					}
					if err := roundTrip(c, from, to, msg); err != nil {
						failed.Add(1)
					} else {
						ok.Add(1)
					}
				}
			})
		}
	}

	pick := func() string { return names[c.n.Intn(len(names))] }
	for range 40 {
		switch c.n.Intn(6) {
		case 0:
			c.n.Partition(names[:2], names[2:])
		case 1:
			c.n.Isolate(pick())
		case 2:
			if from, to := pick(), pick(); from != to {
				c.n.Cut(from, to)
			}
		case 3:
			c.n.SetDrop(c.n.Rand().Float64() / 4)
		case 4:
			c.n.SetDelay(0, time.Duration(c.n.Intn(3))*time.Millisecond)
		case 5:
			c.n.Heal()
		}
		time.Sleep(time.Duration(1+c.n.Intn(5)) * time.Millisecond) // pacing, not synchronisation
	}
	close(stop)
	waitOrFail(t, &workers, "workers")
	t.Logf("under chaos: %d round trips ok, %d failed; %+v", ok.Load(), failed.Load(), c.n.Stats())

	c.n.Heal()
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			if err := roundTrip(c, from, to, []byte("healed")); err != nil {
				t.Fatalf("after Heal, %s->%s: %v", from, to, err)
			}
		}
	}
	c.n.Close()
	waitOrFail(t, &servers, "echo servers after Close")
}
