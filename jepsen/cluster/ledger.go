package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
)

// FetchLedger reads what n serves: its status, its own verification
// (`dominus ledger verify --json`) and every event from seq 1 to its
// head (`ledger show` through the client, workers in parallel).
func (c *Cluster) FetchLedger(ctx context.Context, n *Node, workers int) checker.NodeLedger {
	out := checker.NodeLedger{Node: n.Name}
	st, err := c.Status(ctx, n)
	if err != nil {
		out.FetchErr = "status: " + err.Error()
		return out
	}
	out.Status = st
	stdout, stderr, code := c.CLI(ctx, n.Name, "ledger", "verify", "--json")
	var vr api.VerifyResponse
	switch {
	case json.Unmarshal([]byte(stdout), &vr) == nil && (code == 0 || code == api.ExitVerify):
		out.Verify = &vr
		if code != 0 && vr.OK {
			out.VerifyErr = fmt.Sprintf("exit %d with ok=true", code)
		}
	default:
		out.VerifyErr = fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(stderr+stdout))
	}
	events, err := c.fetchEvents(ctx, n, st.Head.Seq, workers)
	if err != nil {
		out.FetchErr = err.Error()
	}
	out.Events = events
	return out
}

// A ledger read refused rate_limited waits limitedWait and is retried,
// at most maxLimitedWaits times per event.
const (
	limitedWait     = 100 * time.Millisecond
	maxLimitedWaits = 600
)

func (c *Cluster) fetchEvents(ctx context.Context, n *Node, head uint64, workers int) ([]api.Event, error) {
	if workers <= 0 {
		workers = 8
	}
	cl, err := c.Client(n, 10*time.Second)
	if err != nil {
		return nil, err
	}
	events := make([]api.Event, head)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	seqs := make(chan uint64)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range seqs {
				var ev *api.Event
				var err error
				for attempt, limited := 0, 0; attempt < 3; attempt++ {
					if ev, err = cl.LedgerShow(ctx, s); err == nil || ctx.Err() != nil {
						break
					}
					// The node's per-entity rate refused the read before
					// serving it: wait for the bucket, without spending
					// an attempt (bounded by ctx and maxLimitedWaits).
					if client.IsCode(err, api.CodeRateLimited) && limited < maxLimitedWaits {
						limited++
						attempt--
						select {
						case <-ctx.Done():
						case <-time.After(limitedWait):
						}
					}
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("ledger show %d on %s: %w", s, n.Name, err)
				}
				if err == nil {
					events[s-1] = *ev
				}
				mu.Unlock()
			}
		}()
	}
	for s := uint64(1); s <= head; s++ {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		seqs <- s
	}
	close(seqs)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return events, firstErr
}

// VerifySourceIPs checks, from /proc/net/tcp, that every established
// connection to a node's Raft/RPC port comes from a node IP (so
// per-address faults hit node-to-node traffic). It returns the number of
// connections checked; zero connections is an error.
func (c *Cluster) VerifySourceIPs() (int, error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	nodeIP := map[string]bool{}
	for _, n := range c.nodes {
		nodeIP[n.IP] = true
	}
	checked := 0
	var bad []string
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" { // ESTABLISHED
			continue
		}
		lip, _, err1 := parseProcAddr(f[1])
		rip, rport, err2 := parseProcAddr(f[2])
		if err1 != nil || err2 != nil || rport != c.cfg.BindPort || !nodeIP[rip] {
			continue
		}
		checked++
		if !nodeIP[lip] {
			bad = append(bad, fmt.Sprintf("%s -> %s:%d", lip, rip, rport))
		}
	}
	if len(bad) > 0 {
		return checked, fmt.Errorf("cluster: node connections dialed from a non-node address: %s", strings.Join(bad, ", "))
	}
	if checked == 0 {
		return 0, fmt.Errorf("cluster: no established connections to port %d between node IPs", c.cfg.BindPort)
	}
	return checked, nil
}

// parseProcAddr decodes "0100007F:1F90" (little-endian IPv4, hex port).
func parseProcAddr(s string) (string, int, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok || len(host) != 8 {
		return "", 0, fmt.Errorf("address %q", s)
	}
	v, err := strconv.ParseUint(host, 16, 32)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return "", 0, err
	}
	ip := net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	return ip.String(), int(p), nil
}
