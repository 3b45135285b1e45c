package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/client"
)

// Path is how a workload's requests reach the kernel: the write and read
// requests and the credentials each worker presents. Write and Read
// return an error for anything but a committed PERMIT.
type Path struct {
	Name string // the --op name
	// Describe says what a run of mode (put, read, mixed) against target
	// measured, for the report.
	Describe func(target, mode string) string
	// Tokens returns one token per worker, obtained through admin (a
	// client holding the root or an operator token) on a cluster of the
	// given target; nil means every worker uses the admin token.
	Tokens func(ctx context.Context, admin *client.Client, target string, workers int) ([]string, error)
	Write  func(ctx context.Context, c *client.Client, key, value string) error
	Read   func(ctx context.Context, c *client.Client, key string) error
	// Reference, if set, is the path the reference target uses instead.
	Reference *Path
}

// forTarget returns the path a run against target uses.
func (p Path) forTarget(target string) Path {
	if target == TargetReference && p.Reference != nil {
		r := *p.Reference
		r.Describe = p.Describe
		return r
	}
	return p
}

// SyscallPath is the agents' path through the capability gate: POST
// /v1/syscall {op: kv.put | kv.get} with a capability token per worker
// (entity bench-W, ops kv.put and kv.get, resources bench/W/*), granted
// before the run. The reference ledger records nothing after genesis, so
// no grant exists there, and on /v1/syscall the root token would put every
// worker under one entity's rate limit (per node, before Raft): the
// reference target takes KVPath, the same HTTP server, authentication,
// forwarding and Raft without the limiter.
var SyscallPath = Path{
	Name: "syscall",
	Describe: func(target, mode string) string {
		if target == TargetReference {
			return kvEndpoints(mode) + " with the root token (the reference keeps no grants; /v1/syscall would rate-limit the one root entity)"
		}
		op := map[string]string{ModeRead: "kv.get", ModeMixed: "kv.put and kv.get alternating"}[mode]
		if op == "" {
			op = "kv.put"
		}
		return "POST /v1/syscall " + op + " with a capability token per client (entity bench-W, scope bench/W/*)"
	},
	Tokens:    grantPerWorker,
	Reference: &KVPath,
	Write: func(ctx context.Context, c *client.Client, key, value string) error {
		r, err := c.Syscall(ctx, api.SyscallRequest{Op: "kv.put", Resource: key, Args: value})
		if err != nil {
			return err
		}
		return permitted(&r.Outcome)
	},
	Read: func(ctx context.Context, c *client.Client, key string) error {
		r, err := c.Syscall(ctx, api.SyscallRequest{Op: "kv.get", Resource: key})
		if err != nil {
			return err
		}
		return permitted(&r.Outcome)
	},
}

// KVPath is the operator's key-value API with the root token: PUT
// /v1/kv/KEY and POST /v1/kv-get/KEY. The ledger judges these commands
// with the same gate (the root capability, Cedar policies); the HTTP edge
// applies no per-entity rate limit.
var KVPath = Path{
	Name: "kv",
	Describe: func(_, mode string) string {
		return kvEndpoints(mode) + " with the root token (ledger gate on the root capability; no edge rate limit)"
	},
	Write: func(ctx context.Context, c *client.Client, key, value string) error {
		r, err := c.KVPut(ctx, key, value)
		if err != nil {
			return err
		}
		return permitted(&r.Outcome)
	},
	Read: func(ctx context.Context, c *client.Client, key string) error {
		r, err := c.KVGet(ctx, key)
		if err != nil {
			return err
		}
		return permitted(&r.Outcome)
	},
}

// kvEndpoints names the key-value API requests of a mode.
func kvEndpoints(mode string) string {
	switch mode {
	case ModeRead:
		return "POST /v1/kv-get (kv.get)"
	case ModeMixed:
		return "PUT /v1/kv (kv.put) and POST /v1/kv-get (kv.get) alternating"
	}
	return "PUT /v1/kv (kv.put)"
}

// DefaultPath is the path `dominus bench` measures unless --op says
// otherwise.
var DefaultPath = SyscallPath

// PathByName returns the built-in path called name.
func PathByName(name string) (Path, bool) {
	for _, p := range []Path{SyscallPath, KVPath} {
		if p.Name == name {
			return p, true
		}
	}
	return Path{}, false
}

// permitted returns nil for a permit (in either case: kernels before the
// lower-case API answered PERMIT), or an error naming the decision.
func permitted(o *api.Outcome) error {
	if !strings.EqualFold(o.Decision, api.DecisionPermit) {
		return fmt.Errorf("decision %s (%s)", o.Decision, o.Reason)
	}
	return nil
}

// grantPerWorker grants worker w a capability for kv.put and kv.get on
// bench/w/*.
func grantPerWorker(ctx context.Context, admin *client.Client, _ string, workers int) ([]string, error) {
	tokens := make([]string, workers)
	errs := make([]error, workers)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := admin.Grant(ctx, api.GrantRequest{Entity: fmt.Sprintf("bench-%d", w), Ops: []string{"kv.put", "kv.get"}, Resources: []string{fmt.Sprintf("bench/%d/*", w)}})
			switch {
			case err != nil:
				errs[w] = err
			case permitted(&r.Outcome) != nil || r.Token == "":
				errs[w] = fmt.Errorf("decision %s (%s)", r.Decision, r.Reason)
			default:
				tokens[w] = r.Token
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bench: grant per-client capabilities (the token must hold cap.grant; or measure --op kv): %w", err)
	}
	return tokens, nil
}

// Modes of the closed-loop load.
const (
	ModePut   = "put"   // every request is Path.Write
	ModeRead  = "read"  // every request is Path.Read, of keys written before the run
	ModeMixed = "mixed" // requests alternate Path.Write and Path.Read
)

// Routing of requests to nodes.
const (
	RouteSpread = "spread" // round-robin over every node; followers forward writes to the leader
	RouteLeader = "leader" // every request to the node that was leader when the run started
)

// keysPerWorker bounds the key space: worker w writes bench/w/0 ..
// bench/w/keysPerWorker-1 in turn, so the kv state stays small however
// long the run.
const keysPerWorker = 64

// LoadConfig is one closed-loop run.
type LoadConfig struct {
	URLs       []string // nodes' API URLs
	Token      string
	CACert     string // PEM CA for https URLs
	Clients    int
	Duration   time.Duration
	Warmup     time.Duration
	ValueBytes int
	Mode       string
	Route      string
	LeaderURL  string // for RouteLeader
	Target     string // gate or reference: chooses the credentials (Path.Tokens)
	Path       Path
	// OpTimeout bounds one request; requests are never retried, so an
	// error is counted, not hidden in latency.
	OpTimeout time.Duration
	// ServerCPU, if set, returns the server processes' CPU seconds by
	// name; it is sampled when the measured phase starts and ends.
	ServerCPU func() map[string]float64
}

// LoadResult is what one run measured.
type LoadResult struct {
	Ops        uint64
	Errors     uint64
	ErrorNote  string // the first error seen, if any
	Elapsed    time.Duration
	Hist       *Histogram
	ClientCPUs float64            // this process's CPU seconds during the measured phase
	ServerCPUs map[string]float64 // each server's CPU seconds during it (with ServerCPU)
	// OtherCPUs is the CPU the rest of the machine used during the
	// measured phase: all busy CPU time minus this process and the
	// servers (only when ServerCPU is set). Anything well above zero means
	// the figures shared the machine.
	OtherCPUs float64
	Path      string // what was measured (Path.Describe)
}

// newHTTPClient returns the one http.Client every worker of a run shares:
// keep-alive, with enough idle connections per host for every worker.
func newHTTPClient(clients, hosts int, caCert string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients + 8
	tr.MaxIdleConns = (clients + 8) * hosts
	tr.MaxConnsPerHost = 0
	tr.DisableCompression = true
	if caCert != "" {
		pem, err := os.ReadFile(caCert)
		if err != nil {
			return nil, fmt.Errorf("bench: CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bench: %s holds no PEM certificate", caCert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// value returns a deterministic printable value of n bytes.
func value(n int) string {
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < n; i++ {
		b.WriteByte('a' + byte(i%26))
	}
	return b.String()
}

func benchKey(worker int, n uint64) string {
	return fmt.Sprintf("bench/%d/%d", worker, n%keysPerWorker)
}

// workerClients returns, for each of n workers, one client per URL, all
// sharing hc, holding the worker's token from path.Tokens (or token).
// Clients never retry on their own.
func workerClients(ctx context.Context, path Path, target string, urls []string, token string, hc *http.Client, n int) ([][]*client.Client, error) {
	tokens := make([]string, n)
	for w := range tokens {
		tokens[w] = token
	}
	if path.Tokens != nil {
		admin, err := client.New(client.Config{Addr: urls[0], Token: token, HTTP: hc, RetryFor: 10 * time.Second})
		if err != nil {
			return nil, err
		}
		got, err := path.Tokens(ctx, admin, target, n)
		if err != nil {
			return nil, err
		}
		if got != nil {
			if len(got) != n {
				return nil, fmt.Errorf("bench: %d tokens for %d workers", len(got), n)
			}
			tokens = got
		}
	}
	out := make([][]*client.Client, n)
	for w := range out {
		out[w] = make([]*client.Client, len(urls))
		for i, u := range urls {
			// RetryFor of 1ns: the client's own retry loop never runs.
			c, err := client.New(client.Config{Addr: u, Token: tokens[w], HTTP: hc, RetryFor: time.Nanosecond})
			if err != nil {
				return nil, err
			}
			out[w][i] = c
		}
	}
	return out, nil
}

// RunLoad runs cfg.Clients workers, each issuing requests one after the
// other through one shared HTTP client, for cfg.Warmup (not recorded) and
// then cfg.Duration (recorded). Worker w's n-th request goes to node
// (w+n) mod len(URLs) under RouteSpread. ops/s counts requests that
// started in the measured phase and completed without error, over the
// time from the start of that phase until the last of them completed.
// Credentials (Path.Tokens) and, for read and mixed, the keys to read are
// set up before the warm-up starts.
func RunLoad(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	if cfg.Clients < 1 || len(cfg.URLs) == 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("bench: load needs clients >= 1 (got %d), a URL (got %d) and a duration (got %s)", cfg.Clients, len(cfg.URLs), cfg.Duration)
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	if cfg.Path.Write == nil {
		cfg.Path = DefaultPath
	}
	if cfg.Target == "" {
		cfg.Target = TargetGate
	}
	cfg.Path = cfg.Path.forTarget(cfg.Target)
	urls := cfg.URLs
	if cfg.Route == RouteLeader {
		if cfg.LeaderURL == "" {
			return nil, errors.New("bench: leader routing without a leader URL")
		}
		urls = []string{cfg.LeaderURL}
	}
	hc, err := newHTTPClient(cfg.Clients, len(urls), cfg.CACert, cfg.OpTimeout)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	clients, err := workerClients(ctx, cfg.Path, cfg.Target, urls, cfg.Token, hc, cfg.Clients)
	if err != nil {
		return nil, err
	}
	val := value(cfg.ValueBytes)
	write := func(ctx context.Context, c *client.Client, key string) error { return cfg.Path.Write(ctx, c, key, val) }
	read := func(ctx context.Context, c *client.Client, key string) error { return cfg.Path.Read(ctx, c, key) }
	type opFunc = func(context.Context, *client.Client, string) error
	var ops []opFunc
	switch cfg.Mode {
	case ModePut, "":
		ops = []opFunc{write}
	case ModeRead:
		ops = []opFunc{read}
	case ModeMixed:
		ops = []opFunc{write, read}
	default:
		return nil, fmt.Errorf("bench: unknown load mode %q", cfg.Mode)
	}
	if cfg.Mode == ModeRead || cfg.Mode == ModeMixed {
		if err := prefill(ctx, clients, cfg.Path, val); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	var (
		wg       sync.WaitGroup
		errCount atomic.Uint64
		firstErr atomic.Pointer[string]
		lastDone atomic.Int64 // unix ns of the last measured completion
		hists    = make([]*Histogram, cfg.Clients)
		cpu0     float64
		busy0    float64
		srv0     map[string]float64
		cpuOnce  sync.Once
	)
	cpuMark := func() {
		cpuOnce.Do(func() {
			busy0, _ = MachineBusySeconds()
			cpu0, _ = CPUSeconds(0)
			if cfg.ServerCPU != nil {
				srv0 = cfg.ServerCPU()
			}
		})
	}
	go func() {
		// Mark the CPU counters at the start of the measured phase.
		select {
		case <-time.After(time.Until(measureFrom)):
		case <-ctx.Done():
		}
		cpuMark()
	}()
	for w := 0; w < cfg.Clients; w++ {
		h := &Histogram{}
		hists[w] = h
		mine := clients[w]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := uint64(0); ; n++ {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				c := mine[(w+int(n))%len(mine)]
				op := ops[int(n)%len(ops)]
				octx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
				err := op(octx, c, benchKey(w, n))
				cancel()
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errCount.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				h.Record(t1.Sub(t0))
				for {
					prev := lastDone.Load()
					if t1.UnixNano() <= prev || lastDone.CompareAndSwap(prev, t1.UnixNano()) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	cpuMark()
	cpu1, _ := CPUSeconds(0)
	var srv1 map[string]float64
	if cfg.ServerCPU != nil {
		srv1 = cfg.ServerCPU()
	}
	busy1, _ := MachineBusySeconds()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &LoadResult{Hist: &Histogram{}, Errors: errCount.Load(), ClientCPUs: cpu1 - cpu0}
	if srv1 != nil {
		res.ServerCPUs = map[string]float64{}
		ours := res.ClientCPUs
		for name, v := range srv1 {
			res.ServerCPUs[name] = v - srv0[name]
			ours += v - srv0[name]
		}
		res.OtherCPUs = max(busy1-busy0-ours, 0)
	}
	for _, h := range hists {
		res.Hist.Merge(h)
	}
	res.Ops = res.Hist.Count()
	res.Elapsed = cfg.Duration
	if ld := lastDone.Load(); ld != 0 {
		res.Elapsed = time.Unix(0, ld).Sub(measureFrom)
	}
	if p := firstErr.Load(); p != nil {
		res.ErrorNote = *p
	}
	res.Path = cfg.Path.Describe(cfg.Target, cfg.Mode)
	return res, nil
}

// prefill writes every key the workers will read, each worker's keys with
// its own credentials, with a bounded number of writers.
func prefill(ctx context.Context, clients [][]*client.Client, path Path, val string) error {
	const writers = 32
	type job struct{ w, n int }
	jobs := make(chan job)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				c := clients[j.w][(j.w+j.n)%len(clients[j.w])]
				if err := path.Write(ctx, c, benchKey(j.w, uint64(j.n)), val); err != nil {
					errc <- fmt.Errorf("bench: prefill %s: %w", benchKey(j.w, uint64(j.n)), err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for w := range clients {
		for n := 0; n < keysPerWorker; n++ {
			select {
			case jobs <- job{w, n}:
			case err = <-errc:
				break feed
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}
