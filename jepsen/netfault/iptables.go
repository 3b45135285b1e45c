package netfault

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultChain is the chain the harness owns.
const DefaultChain = "DOMINUS-JEPSEN"

// hooks are the built-in chains that jump to ours. Loopback packets pass
// both (OUTPUT when sent, INPUT when received).
var hooks = []string{"INPUT", "OUTPUT"}

// Firewall adds and removes rules in one chain of its own.
type Firewall struct {
	chain string
	bin   string
	mu    sync.Mutex
	rules int // rules added since the last flush
	// delayer holds the packets of Delay rules; opened by the first one.
	delayer *Delayer
}

// ErrUnavailable is wrapped by Open's error when iptables cannot be used.
var ErrUnavailable = errors.New("netfault: iptables is not usable")

// Open checks that iptables can be used (root, binary present), creates
// the chain if needed, flushes it and makes INPUT and OUTPUT jump to it.
func Open(chain string) (*Firewall, error) {
	if chain == "" {
		chain = DefaultChain
	}
	if uid := os.Geteuid(); uid != 0 {
		return nil, fmt.Errorf("%w: network faults need root, running as uid %d", ErrUnavailable, uid)
	}
	bin, err := exec.LookPath("iptables")
	if err != nil {
		return nil, fmt.Errorf("%w: %v (install it: apt-get install -y iptables)", ErrUnavailable, err)
	}
	f := &Firewall{chain: chain, bin: bin}
	if _, err := f.ipt("-S", "OUTPUT"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if _, err := f.ipt("-N", chain); err != nil && !strings.Contains(err.Error(), "exists") {
		return nil, err
	}
	if _, err := f.ipt("-F", chain); err != nil {
		return nil, err
	}
	for _, h := range hooks {
		if _, err := f.ipt("-C", h, "-j", chain); err == nil {
			continue
		}
		if _, err := f.ipt("-I", h, "1", "-j", chain); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// Chain is the chain's name.
func (f *Firewall) Chain() string { return f.chain }

func (f *Firewall) ipt(args ...string) (string, error) {
	return runIptables(f.bin, args...)
}

func runIptables(bin string, args ...string) (string, error) {
	full := append([]string{"-w", "5"}, args...)
	out, err := exec.Command(bin, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// DropRule returns the iptables arguments that append a cut from src to
// dst to chain.
func DropRule(chain, src, dst string) []string {
	return []string{"-A", chain, "-s", src, "-d", dst, "-j", "DROP"}
}

// LossRule returns the iptables arguments that drop packets from src to
// dst at random. p is the loss probability per delivery; loopback
// packets meet the chain twice (OUTPUT and INPUT), so each pass drops
// with PerPassProbability(p).
func LossRule(chain, src, dst string, p float64) []string {
	q := strconv.FormatFloat(PerPassProbability(p), 'f', 6, 64)
	return []string{"-A", chain, "-s", src, "-d", dst, "-m", "statistic", "--mode", "random", "--probability", q, "-j", "DROP"}
}

// PerPassProbability is q with 1-(1-q)^2 = p.
func PerPassProbability(p float64) float64 {
	p = math.Max(0, math.Min(1, p))
	return 1 - math.Sqrt(1-p)
}

// Drop cuts packets from src to dst.
func (f *Firewall) Drop(src, dst string) error {
	return f.add(DropRule(f.chain, src, dst))
}

// Loss drops packets from src to dst with probability p.
func (f *Firewall) Loss(src, dst string, p float64) error {
	if p <= 0 || p >= 1 {
		return fmt.Errorf("netfault: loss probability %v outside (0, 1)", p)
	}
	return f.add(LossRule(f.chain, src, dst, p))
}

// Delay holds every packet from src to dst for delay (once per packet:
// on its way out, not again on its way in). All delayed pairs share one
// delay, the latest given; the delayer (an NFQUEUE listener in this
// process) is opened by the first call.
func (f *Firewall) Delay(src, dst string, delay time.Duration) error {
	if delay <= 0 {
		return fmt.Errorf("netfault: delay %s is not positive", delay)
	}
	f.mu.Lock()
	if f.delayer == nil {
		d, err := OpenDelayer(DefaultDelayQueue)
		if err != nil {
			f.mu.Unlock()
			return err
		}
		f.delayer = d
	}
	f.delayer.SetDelay(delay)
	q := f.delayer.Queue()
	f.mu.Unlock()
	return f.add(DelayRule(f.chain, src, dst, q))
}

// DelayStats returns the delayer's counters (zero before the first Delay).
func (f *Firewall) DelayStats() DelayStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delayer == nil {
		return DelayStats{}
	}
	return f.delayer.Stats()
}

func (f *Firewall) add(rule []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.ipt(rule...); err != nil {
		return err
	}
	f.rules++
	return nil
}

// Heal removes every rule of the chain.
func (f *Firewall) Heal() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.ipt("-F", f.chain); err != nil {
		return err
	}
	f.rules = 0
	return nil
}

// Rules lists the chain's rules (`iptables -S CHAIN`, without the -N line).
func (f *Firewall) Rules() ([]string, error) {
	out, err := f.ipt("-S", f.chain)
	if err != nil {
		return nil, err
	}
	var rules []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	return rules, nil
}

// Close removes the jumps, flushes and deletes the chain. It is safe to
// call more than once.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := Remove(f.bin, f.chain)
	if f.delayer != nil {
		err = errors.Join(err, f.delayer.Close())
		f.delayer = nil
	}
	return err
}

// Remove deletes chain and the jumps to it from INPUT and OUTPUT, using
// the iptables binary bin ("" finds it on PATH). A chain that does not
// exist is not an error.
func Remove(bin, chain string) error {
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("iptables"); err != nil {
			return err
		}
	}
	var errs []error
	for _, h := range hooks {
		for i := 0; i < 16; i++ { // a jump added more than once is removed once per pass
			if _, err := runIptables(bin, "-C", h, "-j", chain); err != nil {
				break
			}
			if _, err := runIptables(bin, "-D", h, "-j", chain); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	if _, err := runIptables(bin, "-S", chain); err == nil {
		if _, err := runIptables(bin, "-F", chain); err != nil {
			errs = append(errs, err)
		}
		if _, err := runIptables(bin, "-X", chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Leftovers returns every line of `iptables -S` that mentions chain
// (empty after a clean Close).
func Leftovers(chain string) ([]string, error) {
	bin, err := exec.LookPath("iptables")
	if err != nil {
		return nil, err
	}
	out, err := runIptables(bin, "-S")
	if err != nil {
		return nil, err
	}
	var left []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, chain) {
			left = append(left, l)
		}
	}
	return left, nil
}
