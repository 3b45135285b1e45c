package netfault

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// DefaultDelayQueue is the NFQUEUE number the delayer binds.
const DefaultDelayQueue = 4242

// delayBacklog bounds the packets the delayer holds at once; packets
// beyond it are accepted at once (counted in DelayStats.Overflow). The
// kernel queue is as long, and fails open when full.
const delayBacklog = 1 << 16

// hookLocalOut is NF_INET_LOCAL_OUT. A loopback packet meets the chain
// twice (OUTPUT, then INPUT); only the first pass is held.
const hookLocalOut = 3

// DelayRule returns the iptables arguments that hand packets from src to
// dst to the delayer's queue. --queue-bypass lets packets through when
// no delayer listens (a run that crashed never leaves a black hole).
func DelayRule(chain, src, dst string, queue uint16) []string {
	return []string{"-A", chain, "-s", src, "-d", dst, "-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(queue)), "--queue-bypass"}
}

// A Delayer is a userspace NFQUEUE listener that holds every packet it
// is handed for a fixed delay and then accepts it. Packets leave in the
// order they came (one FIFO, one delay at a time), so a TCP stream is
// slowed, not reordered.
type Delayer struct {
	nf     *nfqueue.Nfqueue
	queue  uint16
	delay  atomic.Int64 // ns, for packets arriving from now on
	fifo   chan held
	cancel context.CancelFunc
	wg     sync.WaitGroup

	held, passed, overflow, verdictErrs atomic.Uint64

	mu      sync.RWMutex // stopped and closing fifo
	stopped bool
	stop    chan struct{} // closed by Close: release what is held at once
	once    sync.Once
}

type held struct {
	id  uint32
	due time.Time
}

// DelayStats counts what the delayer did.
type DelayStats struct {
	Held          uint64 `json:"held"`           // packets held for the delay
	Passed        uint64 `json:"passed"`         // second passes (INPUT) accepted at once
	Overflow      uint64 `json:"overflow"`       // accepted at once: the backlog was full
	VerdictErrors uint64 `json:"verdict_errors"` // verdicts the kernel refused
}

// OpenDelayer binds NFQUEUE queue (0: DefaultDelayQueue). It needs root.
func OpenDelayer(queue uint16) (*Delayer, error) {
	if queue == 0 {
		queue = DefaultDelayQueue
	}
	nf, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      queue,
		MaxPacketLen: 0,
		MaxQueueLen:  delayBacklog,
		Copymode:     nfqueue.NfQnlCopyMeta,
		AfFamily:     unix.AF_INET,
		Flags:        nfqueue.NfQaCfgFlagFailOpen | nfqueue.NfQaCfgFlagGSO,
		WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: open nfqueue %d: %v", ErrUnavailable, queue, err)
	}
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		nf.Close()
		return nil, fmt.Errorf("netfault: nfqueue option: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Delayer{nf: nf, queue: queue, fifo: make(chan held, delayBacklog), cancel: cancel, stop: make(chan struct{})}
	err = nf.RegisterWithErrorFunc(ctx, d.packet, func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		return 0 // keep reading: a dropped notification is the kernel's to fail open
	})
	if err != nil {
		cancel()
		nf.Close()
		return nil, fmt.Errorf("%w: bind nfqueue %d: %v", ErrUnavailable, queue, err)
	}
	d.wg.Add(1)
	go d.release()
	return d, nil
}

// Queue is the NFQUEUE number the delayer listens on.
func (d *Delayer) Queue() uint16 { return d.queue }

// SetDelay sets the delay of packets that arrive from now on.
func (d *Delayer) SetDelay(delay time.Duration) { d.delay.Store(int64(max(0, delay))) }

// Stats returns the counters so far.
func (d *Delayer) Stats() DelayStats {
	return DelayStats{Held: d.held.Load(), Passed: d.passed.Load(), Overflow: d.overflow.Load(), VerdictErrors: d.verdictErrs.Load()}
}

func (d *Delayer) packet(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	id := *a.PacketID
	if a.Hook == nil || *a.Hook != hookLocalOut {
		d.passed.Add(1)
		d.accept(id)
		return 0
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.stopped {
		d.passed.Add(1)
		d.accept(id)
		return 0
	}
	select {
	case d.fifo <- held{id: id, due: time.Now().Add(time.Duration(d.delay.Load()))}:
		d.held.Add(1)
	default:
		d.overflow.Add(1)
		d.accept(id)
	}
	return 0
}

func (d *Delayer) accept(id uint32) {
	if err := d.nf.SetVerdict(id, nfqueue.NfAccept); err != nil {
		d.verdictErrs.Add(1)
	}
}

// release accepts held packets at their due times, in order; once the
// delayer closes it accepts the rest at once.
func (d *Delayer) release() {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for p := range d.fifo {
		if wait := time.Until(p.due); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-d.stop:
			}
		}
		d.accept(p.id)
	}
}

// Close accepts every held packet at once, unbinds the queue and closes
// the socket. Packets still sent to the queue afterwards pass unheld
// (--queue-bypass). Safe to call more than once.
func (d *Delayer) Close() error {
	var err error
	d.once.Do(func() {
		d.mu.Lock()
		d.stopped = true
		close(d.stop)
		close(d.fifo)
		d.mu.Unlock()
		d.wg.Wait() // every held packet accepted
		d.cancel()  // the listener unbinds the queue
		err = d.nf.Close()
	})
	return err
}
