package kernel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/canon"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// Node is one kernel server: the composition root that wires the ledger
// FSM to Raft, the archive, node RPC and the HTTP API.
type Node struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	tls       *tlsutil.Reloader
	identity  *kernelIdentity    // this node's kernel (name, and id once genesis is known)
	nodeKey   ed25519.PrivateKey // DATA/node.key; only the public half leaves the node
	mux       *mux
	pool      *rpcPool
	fwd       *forwarder
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	snaps     *raft.FileSnapshotStore
	arch      *archive.Archive
	fsm       *ledgerFSM
	raft      *raft.Raft

	rpcHandlers map[string]rpcHandler
	services    []Service // plugged in by New (service.go)
	duties      []*duty   // the services' leader duties
	limiter     *rateLimiter
	reads       *readRounds // coalesced read-index rounds (ConsistentRead, scoped reads)
	effects     *effectRunner
	fed         *fed                       // federation machinery; nil on a standalone kernel
	cortex      atomic.Pointer[cortexNode] // gossip pool; nil without --gossip

	// frameHandlers: bus frame type -> FrameHandler, services' own (witnesshost.go).
	frameHandlers sync.Map

	httpSrv *http.Server
	httpLn  net.Listener

	barrierTerm atomic.Uint64 // the term in which this leader's barrier completed
	clockOffset atomic.Int64  // nanoseconds added to the wall clock (fault tests)
	diskOKAt    atomic.Int64  // unix ns of the last free-space check that passed
	skewMu      sync.Mutex
	skewOff     time.Duration // this leader's clock minus its quorum's median (negative: behind)
	skewChecked time.Time
	skewTerm    uint64     // the term whose skew check completed
	skewRun     sync.Mutex // one skew check at a time

	digestMu    sync.Mutex // status digests, computed outside the FSM lock
	digestSeq   uint64
	digestEpoch uint64
	digestHex   string

	support supportCache // members' protocol support, for Status

	restoreRun sync.Mutex // one snapshot restore at a time on this node (snapshotrestore.go)

	// halted is closed when the ledger stopped applying (stopErr says
	// why): the node must be closed and its binary replaced.
	halted   chan struct{}
	haltOnce sync.Once
	stopErr  error

	closeOnce sync.Once
}

// Errors with API codes (httpedge.Coder): errors.Is matches them.
var (
	ErrNoLeader       error = &httpedge.Error{Code: api.CodeNoLeader, Msg: "no leader elected"}
	ErrNotLeader      error = &httpedge.Error{Code: api.CodeNoLeader, Msg: "this node is not the leader"}
	ErrDiskFull       error = &httpedge.Error{Code: api.CodeDiskFull, Msg: "disk full: free space in the data dir is below the configured minimum; writes are refused"}
	ErrClockSkew      error = &httpedge.Error{Code: api.CodeClockSkew, Msg: "leader clock differs from its quorum's beyond the maximum skew; writes are refused"}
	ErrNotInitialized error = &httpedge.Error{Code: api.CodeNotInitialized, Msg: "kernel not initialized: run `dominus operator init`"}
	ErrAlreadyInit    error = &httpedge.Error{Code: api.CodeAlreadyInit, Msg: "kernel already initialized"}
	ErrUnauthorized   error = &httpedge.Error{Code: api.CodeUnauthorized, Msg: "missing or unknown token"}
)

// errCatchingUp: this node has a log but has not applied genesis yet.
var errCatchingUp error = &httpedge.Error{Code: api.CodeUnavailable, Msg: "this node is catching up with the cluster; retry"}

// ErrCanon is wrapped by start-up errors about the canon.
var ErrCanon = errors.New("canon check failed")

// New validates the configuration, checks the canon and the stored log
// against the ledger archive, and starts the node with its services.
func New(cfg Config, services ...Service) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := canon.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCanon, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", cfg.Name)
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, log: log, ctx: ctx, cancel: cancel, halted: make(chan struct{}), services: services}
	n.clockOffset.Store(int64(cfg.ClockOffset))
	n.limiter = newRateLimiter(cfg.RateLimitPerSec, cfg.RateLimitBurst)
	n.reads = &readRounds{fetch: n.ReadIndex, base: ctx, timeout: cfg.ReadConfirmTimeout}
	if err := n.open(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	cfg := &n.cfg
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return err
	}
	var err error
	// An inline epoch (protocol 3) is one entry of up to MaxEpochBytes:
	// its record must fit, or the node would stop at it on every start.
	if n.arch, err = archive.Open(filepath.Join(cfg.DataDir, "archive"), archive.Options{Logger: n.log, MaxRecordBytes: fsm.MaxEpochBytes + 1<<20}); err != nil {
		return fmt.Errorf("open ledger archive: %w", err)
	}
	removeRestoreSpools(cfg.DataDir) // the archive's lock says no other process uses the data dir
	if err := n.checkSealedCanon(); err != nil {
		return err
	}
	if cfg.TLS != nil {
		if n.tls, err = tlsutil.NewReloader(*cfg.TLS, n.log); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	} else {
		n.log.Warn("node-to-node traffic is not encrypted: no TLS files configured")
	}
	// Every check before anything listens or joins: a node that cannot
	// serve never enters the configuration.
	kernel, err := n.resolveIdentity()
	if err != nil {
		return err
	}
	if n.identity, err = n.checkDataDir(kernel); err != nil {
		return err
	}
	if err := n.checkFreeDisk(); err != nil {
		return err
	}
	if n.nodeKey, err = loadNodeKey(cfg.DataDir); err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	if cfg.HTTPAddr != "" {
		if err := n.listenHTTP(); err != nil {
			return err
		}
	}
	if n.tls != nil {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.tls.Watch(n.ctx, tlsutil.DefaultWatchInterval) }()
	}
	n.store, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(raftDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true},
	})
	if err != nil {
		return fmt.Errorf("open raft log store: %w", err)
	}
	raftOut := cfg.RaftLogOutput
	if raftOut == nil {
		raftOut = os.Stderr
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: raftOut, Color: hclog.ColorOff}).With("node", cfg.Name)
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog); err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := n.checkLogAgainstArchive(); err != nil {
		return err
	}
	n.fsm = newLedgerFSM(n.arch, n.log)
	n.fsm.observe = n.observe
	n.fsm.onStop = n.stopped
	n.effects = newEffectRunner(n)
	if benchReferenceFSM {
		n.log.Warn("benchmark reference state machine: writes after genesis are counted and hashed, not recorded")
	}
	n.fsm.backfill = n.backfillFromLeader
	n.pool = &rpcPool{n: n, idle: map[string][]net.Conn{}}
	n.fwd = &forwarder{n: n}
	if n.mux, err = newMux(cfg, n.tls, n.log); err != nil {
		return err
	}
	n.mux.rpc = n.serveRPC
	n.mux.identity, n.mux.checkPeer, n.mux.legacy = n.identity, n.checkPeerCert, cfg.AllowLegacyCerts
	n.registerRPC()
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: streamLayer{n.mux}, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})
	rc := n.raftConfig(hlog)
	hasState, err := raft.HasExistingState(n.store, n.store, n.snaps)
	if err != nil {
		return err
	}
	var logs raft.LogStore = n.store
	if n.cfg.RaftLogCache > 0 {
		// Only entries raft-boltdb stored are cached (hashicorp/raft#429
		// was fixed before v1.7); a conflicting suffix is deleted through
		// the cache, which then forgets everything.
		if logs, err = raft.NewLogCache(n.cfg.RaftLogCache, n.store); err != nil {
			return fmt.Errorf("raft log cache: %w", err)
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.store, n.snaps, n.transport); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	// Accept connections only once Raft exists: RPC handlers use it.
	// Federation identity (node key, secrets, the bus) exists before any
	// peer can ask for it.
	if err := n.startFederation(); err != nil {
		return err
	}
	if err := n.startServices(); err != nil {
		return err
	}
	n.mux.serve()
	// A restored snapshot must carry the same sealed canon.
	if err := n.checkStateCanon(); err != nil {
		return err
	}
	if !hasState {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.formCluster() }()
	} else {
		n.log.Info("existing raft state found; rejoining without bootstrap")
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.leaderLoop() }()
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.effects.loop(n.ctx) }()
	if n.httpLn != nil {
		n.serveHTTP()
	}
	return nil
}

func (n *Node) raftConfig(hlog hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.Name)
	rc.Logger = hlog
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * n.cfg.RaftTimeoutScale) }
	rc.HeartbeatTimeout = scale(500 * time.Millisecond)
	rc.ElectionTimeout = scale(500 * time.Millisecond)
	rc.LeaderLeaseTimeout = scale(250 * time.Millisecond)
	rc.CommitTimeout = 5 * time.Millisecond
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.NoLegacyTelemetry = true
	return rc
}

// checkSealedCanon compares the canon hash sealed in the archived genesis
// with this binary's.
func (n *Node) checkSealedCanon() error {
	rec, err := n.arch.ReadSeq(1)
	if errors.Is(err, archive.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read genesis from archive: %w", err)
	}
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil {
		return fmt.Errorf("decode archived genesis: %w", err)
	}
	env, err := fsm.DecodeEnvelope(ae.Entry)
	if err != nil || env.Type != fsm.CmdGenesis {
		return fmt.Errorf("%w: ledger seq 1 is not a genesis entry", ErrCanon)
	}
	var g fsm.Genesis
	if err := fsm.Decode(env.Payload, &g); err != nil || len(g.CanonHash) != 32 {
		return fmt.Errorf("%w: genesis payload does not decode", ErrCanon)
	}
	var sealed [32]byte
	copy(sealed[:], g.CanonHash)
	if err := canon.CheckSealed(sealed); err != nil {
		return fmt.Errorf("%w: %v", ErrCanon, err)
	}
	return nil
}

func (n *Node) checkStateCanon() error {
	var err error
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		if !st.Initialized {
			return
		}
		var sealed [32]byte
		copy(sealed[:], st.Meta.CanonHash)
		if e := canon.CheckSealed(sealed); e != nil {
			err = fmt.Errorf("%w: %v", ErrCanon, e)
			return
		}
		if e := st.VerifyCanonChain(); e != nil {
			err = fmt.Errorf("%w: the ratified amendment chain does not verify: %v", ErrCanon, e)
		}
	})
	return err
}

// ErrLogTampered is wrapped by the start-up error for a stored Raft log
// entry that differs from the ledger archive.
var ErrLogTampered = errors.New("stored raft log does not match the ledger archive")

// checkLogAgainstArchive compares every stored command entry the archive
// covers with the bytes the archive recorded for it.
func (n *Node) checkLogAgainstArchive() error {
	first, err := n.store.FirstIndex()
	if err != nil {
		return err
	}
	last, err := n.store.LastIndex()
	if err != nil {
		return err
	}
	archLast, _ := n.arch.Last()
	if last > archLast {
		last = archLast
	}
	checked := 0
	for i := first; i != 0 && i <= last; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue
			}
			return fmt.Errorf("%w: read entry %d: %v", ErrLogTampered, i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		rec, err := n.arch.ReadIndex(i)
		if err != nil {
			return fmt.Errorf("%w: entry %d has no archive record: %v", ErrLogTampered, i, err)
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil {
			return fmt.Errorf("%w: archive record for entry %d: %v", ErrLogTampered, i, err)
		}
		if string(ae.Entry) != string(l.Data) {
			return fmt.Errorf("%w: entry %d (ledger seq %d) differs from the archived bytes", ErrLogTampered, i, rec.Seq)
		}
		checked++
	}
	n.log.Info("checked stored raft log against the ledger archive", "entries", checked)
	return nil
}

// formCluster bootstraps (with BootstrapExpect) or joins (with Join).
func (n *Node) formCluster() {
	if n.cfg.BootstrapExpect == 0 && len(n.cfg.Join) == 0 {
		n.log.Info("no bootstrap-expect and no join addresses: waiting to be added by an existing cluster")
		return
	}
	backoff := 200 * time.Millisecond
	for attempt := 0; attempt < 100_000; attempt++ {
		if n.ctx.Err() != nil {
			return
		}
		if n.hasConfiguration() {
			return
		}
		done, err := n.tryFormCluster()
		if done {
			return
		}
		if err != nil && attempt%10 == 0 {
			n.log.Info("forming cluster", "attempt", attempt, "status", err.Error())
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff = backoff * 3 / 2
		}
	}
}

func (n *Node) hasConfiguration() bool {
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

func (n *Node) tryFormCluster() (bool, error) {
	type peer struct{ name, addr string }
	peers := []peer{{n.cfg.Name, n.cfg.BindAddr}}
	var formed []string
	for _, addr := range n.cfg.Join {
		if addr == n.cfg.BindAddr {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		var id identifyResponse
		err := n.pool.call(ctx, addr, rpcIdentify, struct{}{}, &id)
		cancel()
		if err != nil {
			continue
		}
		if id.HasState {
			formed = append(formed, addr)
			continue
		}
		peers = append(peers, peer{id.Name, id.BindAddr})
	}
	if len(formed) > 0 {
		// A cluster exists: ask it to add us.
		for _, addr := range formed {
			if err := n.requestJoin(addr); err == nil {
				n.log.Info("joined existing cluster", "via", addr)
				return true, nil
			}
		}
		return false, errors.New("a cluster exists but no member accepted the join yet")
	}
	if n.cfg.BootstrapExpect == 0 {
		return false, errors.New("no existing cluster reachable to join")
	}
	if len(peers) < n.cfg.BootstrapExpect {
		return false, fmt.Errorf("found %d of %d expected servers", len(peers), n.cfg.BootstrapExpect)
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].name < peers[j].name })
	var conf raft.Configuration
	for _, p := range peers[:n.cfg.BootstrapExpect] {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.name), Address: raft.ServerAddress(p.addr), Suffrage: raft.Voter})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return false, err
	}
	n.log.Info("bootstrapped cluster", "servers", len(conf.Servers))
	return true, nil
}

func (n *Node) requestJoin(addr string) error {
	for hop := 0; hop < 3; hop++ {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.pool.call(ctx, addr, rpcJoin, &joinRequest{Name: n.cfg.Name, BindAddr: n.cfg.BindAddr, NonVoter: n.cfg.NonVoter, JoinSecret: n.cfg.JoinSecret}, nil)
		cancel()
		var re *rpcError
		if errors.As(err, &re) && re.Code == api.CodeNoLeader && re.Leader != "" && re.Leader != addr {
			addr = re.Leader
			continue
		}
		return err
	}
	return errors.New("join: no leader answered")
}

// leaderLoop runs the leader's periodic duties: the per-term barrier and
// the clock-skew check.
func (n *Node) leaderLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var reconciling atomic.Bool
	var lastReconcile time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case isLeader := <-n.raft.LeaderCh():
			if isLeader {
				n.log.Info("became leader", "term", n.raft.CurrentTerm())
				go n.tookLeadership()
			}
		case <-t.C:
			if n.raft.State() != raft.Leader {
				continue
			}
			n.checkSkew(n.raft.CurrentTerm())
			n.runDuties(time.Now())
			if time.Since(lastReconcile) >= reconcileEvery && reconciling.CompareAndSwap(false, true) {
				lastReconcile = time.Now()
				go func() {
					defer reconciling.Store(false)
					ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
					defer cancel()
					n.reconcileMembers(ctx)
				}()
			}
		}
	}
}

// tookLeadership runs once this node became leader: the term's barrier,
// then what depends on having applied everything committed before the
// term (the bus replay windows, seeded from the ledger).
func (n *Node) tookLeadership() {
	if err := n.ensureBarrier(n.ctx); err != nil {
		return
	}
	if n.fed != nil {
		n.fed.seedWindows()
	}
}

// ensureBarrier makes sure a barrier completed in the current term, so
// this leader has applied everything committed before it took over.
func (n *Node) ensureBarrier(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() == term {
		return nil
	}
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := waitFuture(ctx, n.raft.Barrier(timeout)); err != nil {
		return err
	}
	n.barrierTerm.Store(term)
	return nil
}

// checkSkew asks the voters for their clocks and records how far this
// leader's clock is from the median of the voters' clocks it can read, its
// own included (so one skewed follower moves the median by nothing). A
// leader beyond --max-clock-skew either way refuses writes and hands over
// leadership: a fast clock would drag ledger time forward for good, a slow
// one would stall it (capability, passport and approval expiry are judged
// at ledger time). It reports whether a quorum answered (always true for a
// single voter); only then does the result count for the term. The leader
// loop repeats it every second.
func (n *Node) checkSkew(term uint64) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	var peers []raft.Server
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.ID != raft.ServerID(n.cfg.Name) {
			peers = append(peers, s)
		}
	}
	var mu sync.Mutex
	var offsets []time.Duration
	var wg sync.WaitGroup
	for _, s := range peers {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, 500*time.Millisecond)
			defer cancel()
			sent := n.now()
			var cr clockResponse
			if err := n.pool.call(ctx, addr, rpcClock, &clockRequest{SenderTime: sent.UnixNano()}, &cr); err != nil {
				return
			}
			recv := n.now()
			mid := sent.Add(recv.Sub(sent) / 2)
			mu.Lock()
			offsets = append(offsets, mid.Sub(time.Unix(0, cr.Time))) // positive: we are ahead
			mu.Unlock()
		}(string(s.Address))
	}
	wg.Wait()
	if len(offsets)+1 <= voters/2 { // with this leader, not a majority
		return false
	}
	off := medianOffset(offsets)
	n.skewMu.Lock()
	n.skewOff, n.skewChecked, n.skewTerm = off, time.Now(), term
	n.skewMu.Unlock()
	metricGauge("clock.leader_ahead_ms", float32(off.Milliseconds()))
	if off > n.cfg.MaxClockSkew || -off > n.cfg.MaxClockSkew {
		dir := "ahead of"
		if off < 0 {
			dir = "behind"
		}
		n.log.Error("leader clock is "+dir+" its quorum beyond the maximum skew; refusing writes and handing over leadership",
			"offset", off.String(), "max", n.cfg.MaxClockSkew.String())
		_ = n.raft.LeadershipTransfer()
	}
	return true
}

// medianOffset is the median of this leader's offsets from the voters it
// heard from and from itself (0): positive when its clock runs ahead.
func medianOffset(followers []time.Duration) time.Duration {
	all := append([]time.Duration{0}, followers...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all)%2 == 1 {
		return all[len(all)/2]
	}
	// An even count: the one nearer this leader's own clock, so a single
	// skewed peer of two never decides alone.
	a, b := all[len(all)/2-1], all[len(all)/2]
	if abs(a) < abs(b) {
		return a
	}
	return b
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// ErrClockUnverified is returned by a new leader that could not yet
// compare its clock with a quorum's: it stamps nothing until it has.
var ErrClockUnverified error = &httpedge.Error{Code: api.CodeUnavailable, Msg: "leader has not yet verified its clock against a quorum; retry"}

// ensureSkewChecked makes a leader measure its clock against its quorum
// once per term before it stamps any write, so a leader elected with a
// fast clock never drags ledger time forward.
func (n *Node) ensureSkewChecked() error {
	term := n.raft.CurrentTerm()
	n.skewMu.Lock()
	done := n.skewTerm == term
	n.skewMu.Unlock()
	if done {
		return nil
	}
	n.skewRun.Lock()
	defer n.skewRun.Unlock()
	n.skewMu.Lock()
	done = n.skewTerm == term
	n.skewMu.Unlock()
	if done || n.checkSkew(term) {
		return nil
	}
	return ErrClockUnverified
}

func (n *Node) now() time.Time { return time.Now().Add(time.Duration(n.clockOffset.Load())) }

// SetClockOffset shifts this node's clock; for fault tests only.
func (n *Node) SetClockOffset(d time.Duration) { n.clockOffset.Store(int64(d)) }

func (n *Node) leaderAddr() string {
	if n.raft == nil { // still inside raft.NewRaft (a restore at start-up)
		return ""
	}
	addr, _ := n.raft.LeaderWithID()
	return string(addr)
}

// Apply proposes env (without Time) on the leader, forwarding if this
// node is a follower, and waits for the ledger's answer.
func (n *Node) Apply(ctx context.Context, env fsm.Envelope) (fsm.Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	env.Time = 0
	n.signInternal(ctx, &env)
	var data []byte // encoded once, and only if the write is forwarded
	backoff := 10 * time.Millisecond
	for {
		var res fsm.Result
		var err error
		if n.raft.State() == raft.Leader {
			res, _, err = n.applyLocal(ctx, env)
		} else if leader := n.leaderAddr(); leader != "" {
			if data == nil {
				data = fsm.Encode(&env)
			}
			res, err = n.fwd.forward(ctx, leader, data)
		} else {
			err = ErrNoLeader
		}
		if err == nil {
			return res, nil
		}
		code := httpedge.CodeOf(err)
		// Only retry where the entry certainly did not reach the log.
		if !(errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrClockUnverified) || code == api.CodeNoLeader) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%w (after waiting %s)", ErrNoLeader, n.cfg.ApplyTimeout)
		case <-time.After(backoff):
		}
		if backoff < 500*time.Millisecond {
			backoff *= 2
		}
	}
}

// applyLocal stamps and proposes envelope bytes on this leader.
// signInternal gives an internal command this node's member evidence
// (fsm/internal.go): its node name and its node key's signature over the
// kernel id, the command and its payload. The ledger verifies it against
// the key it holds for this member (protocol 4). Commands with a caller
// token, genesis, and commands proposed before the kernel id is known
// are left as they are.
func (n *Node) signInternal(ctx context.Context, env *fsm.Envelope) {
	if len(env.Auth) != 0 || env.Node != "" || !fsm.IsInternal(env.Type) || n.nodeKey == nil {
		return
	}
	var kid string
	var keyed bool
	read := func() {
		n.fsm.read(func(l *fsm.Ledger, _ uint64) {
			st := l.State()
			kid, keyed = st.Meta.KernelID, st.MemberKey(n.cfg.Name) != nil
		})
	}
	if read(); kid == "" {
		// The genesis may be committed but not applied here yet (a
		// follower that forwarded it): catch up with the leader first.
		if err := n.ConsistentRead(ctx); err == nil {
			read()
		}
	}
	if kid == "" {
		return
	}
	fsm.SignMember(env, kid, n.cfg.Name, n.nodeKey)
	if !keyed && env.Type != fsm.CmdMemberUpdate {
		// A node the ledger holds no key for yet (it joined a moment ago;
		// the leader records it within seconds) records its own first,
		// or its command would not verify.
		n.recordSelf()
	}
}

// recordSelf proposes this node's own member record, signed with its key
// (the ledger accepts that once, for a node it holds no key for).
func (n *Node) recordSelf() {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
	defer cancel()
	u := &fsm.MemberUpdate{Node: n.cfg.Name, PubKey: n.NodePublicKey(), Addr: n.cfg.BindAddr}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == n.cfg.Name {
				u.Addr, u.NonVoter = string(s.Address), s.Suffrage != raft.Voter
			}
		}
	}
	n.proposeMember(ctx, u)
}

func (n *Node) applyLocal(ctx context.Context, env fsm.Envelope) (fsm.Result, uint64, error) {
	if n.raft.State() != raft.Leader {
		return fsm.Result{}, 0, ErrNotLeader
	}
	if err := n.checkDisk(); err != nil {
		return fsm.Result{}, 0, err
	}
	if err := n.ensureSkewChecked(); err != nil {
		return fsm.Result{}, 0, err
	}
	n.skewMu.Lock()
	off := n.skewOff
	n.skewMu.Unlock()
	if off > n.cfg.MaxClockSkew || -off > n.cfg.MaxClockSkew {
		return fsm.Result{}, 0, fmt.Errorf("%w (this leader's clock is %s from its quorum's median, max %s)", ErrClockSkew, off, n.cfg.MaxClockSkew)
	}
	env.Time = n.now().UnixNano()
	stamped := fsm.Encode(&env)
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	start := time.Now()
	f := n.raft.Apply(stamped, timeout)
	if err := waitApplied(f, timeout+n.cfg.ApplyTimeout); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return fsm.Result{}, 0, ErrNotLeader
		}
		return fsm.Result{}, 0, err
	}
	metricSince("apply", start)
	res, ok := f.Response().(fsm.Result)
	if !ok {
		return fsm.Result{}, 0, fmt.Errorf("unexpected apply response %T", f.Response())
	}
	return res, f.Index(), nil
}

// ReadIndex returns an index such that a read served after the local FSM
// applied it is linearizable: on the leader, a barrier once per term, the
// last log index, then a leadership check; followers ask the leader. It
// returns by ctx's end. Callers go through n.reads, which coalesces
// rounds.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() == raft.Leader {
		if err := n.ensureBarrier(ctx); err != nil {
			return 0, err
		}
		// Every acknowledged write was applied by this leader's FSM before
		// it was acknowledged, so the FSM's applied index covers them all;
		// it is also an index every replica's FSM will reach (Raft's own
		// noop and barrier entries never reach an FSM).
		var idx uint64
		n.fsm.read(func(_ *fsm.Ledger, last uint64) { idx = last })
		if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			return 0, ErrNotLeader
		}
		return idx, nil
	}
	leader := n.leaderAddr()
	if leader == "" {
		return 0, ErrNoLeader
	}
	var r readIndexResponse
	if err := n.pool.call(ctx, leader, rpcReadIndex, struct{}{}, &r); err != nil {
		return 0, err
	}
	return r.Index, nil
}

// ConsistentRead waits until this node has applied a linearizable read
// index, from a read-index round that started after the call (rounds are
// coalesced: one serves every caller that arrived while the previous one
// ran).
func (n *Node) ConsistentRead(ctx context.Context) error {
	idx, err := n.reads.index(ctx)
	if err != nil {
		return err
	}
	return n.fsm.waitApplied(ctx, idx)
}

// waitFuture waits for a Raft future, or for ctx's end.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // ends when the future resolves or raft shuts down
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) observe(r fsm.Result) {
	if r.Noop {
		return
	}
	if _, id := n.identity.get(); id == "" {
		n.learnKernelID()
	}
	if r.Type == fsm.CmdSyscall && r.Decision == fsm.DecisionPermit && n.effects != nil {
		n.effects.notify()
	}
	if r.Type == fsm.CmdSyscall && r.Decision == fsm.DecisionPermit && n.fed != nil && strings.Contains(r.ID, "/") {
		n.fed.notifyOutbox() // a cross-domain call entered the outbox
	}
	lag := time.Since(time.Unix(0, r.Time))
	if lag < -n.cfg.MaxClockSkew {
		metricInc("clock.leader_stamp_ahead")
		n.log.Warn("leader's time stamp is ahead of this node's clock beyond the maximum skew", "ahead", (-lag).String(), "seq", r.Seq)
	}
}

// learnKernelID records the kernel id in the data dir once the ledger
// knows it (genesis applied here, or a snapshot installed).
func (n *Node) learnKernelID() {
	var id string
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { id = l.State().Meta.KernelID })
	if err := n.identity.learnID(id); err != nil {
		n.log.Error("kernel identity", "err", err)
	}
}

func (n *Node) backfillFromLeader(ctx context.Context, from, to uint64) ([]archive.Record, error) {
	leader := n.leaderAddr()
	if leader == "" {
		return nil, ErrNoLeader
	}
	var resp archiveRangeResponse
	if err := n.pool.call(ctx, leader, rpcArchiveRange, &archiveRangeRequest{FromIndex: from, ToIndex: to, MaxRecords: 1024}, &resp); err != nil {
		return nil, err
	}
	out := make([]archive.Record, len(resp.Records))
	for i, r := range resp.Records {
		out[i] = archive.Record{Index: r.Index, Seq: r.Seq, Kind: archive.Kind(r.Kind), Data: r.Data}
	}
	return out, nil
}

func (n *Node) registerRPC() {
	n.rpcHandlers = map[string]rpcHandler{
		rpcIdentify: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			init := false
			n.fsm.read(func(l *fsm.Ledger, _ uint64) { init = l.State().Initialized })
			return fsm.Encode(&identifyResponse{Name: n.cfg.Name, BindAddr: n.cfg.BindAddr, HasState: n.hasConfiguration(), Initialized: init,
				NodeKey: n.NodePublicKey(), BusAddr: n.cfg.BusAddr}), nil
		},
		rpcFedSecrets: n.serveSecrets,
		rpcFedSign:    n.serveSign,
		rpcJoin: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req joinRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			if n.tls != nil && peer != req.Name {
				return nil, fmt.Errorf("join refused: certificate names %q, request claims %q", peer, req.Name)
			}
			if n.raft.State() != raft.Leader {
				return nil, ErrNotLeader
			}
			if err := n.admitJoin(req); err != nil {
				n.log.Warn("join refused", "id", req.Name, "address", req.BindAddr, "err", err)
				return nil, err
			}
			if err := n.checkJoinerProtocol(ctx, req.Name, req.BindAddr); err != nil {
				return nil, err
			}
			add, kind := n.raft.AddVoter, "voter"
			if req.NonVoter {
				add, kind = n.raft.AddNonvoter, "non-voter"
			}
			if err := add(raft.ServerID(req.Name), raft.ServerAddress(req.BindAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
				return nil, err
			}
			n.log.Info("added "+kind, "id", req.Name, "address", req.BindAddr)
			return nil, nil
		},
		rpcApply: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req applyRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			res, idx, err := n.applyForwarded(ctx, req.Envelope)
			if err != nil {
				return nil, err
			}
			return fsm.Encode(&applyResponse{Result: toWire(res), Index: idx}), nil
		},
		rpcReadIndex: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			if n.raft.State() != raft.Leader {
				return nil, ErrNotLeader
			}
			idx, err := n.reads.index(ctx) // one leadership check serves every follower asking meanwhile
			if err != nil {
				return nil, err
			}
			return fsm.Encode(&readIndexResponse{Index: idx}), nil
		},
		rpcArchiveRange: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req archiveRangeRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			if req.MaxRecords <= 0 || req.MaxRecords > 4096 {
				req.MaxRecords = 4096
			}
			var resp archiveRangeResponse
			size := 0
			stop := errors.New("page full")
			err := n.arch.IterateIndex(req.FromIndex+1, func(r archive.Record) error {
				if r.Index > req.ToIndex || len(resp.Records) >= req.MaxRecords || size > 32<<20 {
					return stop
				}
				size += len(r.Data)
				resp.Records = append(resp.Records, archiveRecord{Index: r.Index, Seq: r.Seq, Kind: uint8(r.Kind), Data: r.Data})
				return nil
			})
			if err != nil && !errors.Is(err, stop) {
				return nil, err
			}
			return fsm.Encode(&resp), nil
		},
		rpcClock: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			return fsm.Encode(&clockResponse{Time: n.now().UnixNano()}), nil
		},
		rpcRemovePeer: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req peerRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			return nil, n.removePeerLocal(req.ID)
		},
		rpcProtocol: n.serveProtocol,
		rpcAddPeer: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req addPeerRPC
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			return nil, n.addPeerLocal(ctx, req)
		},
		rpcTransfer: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req peerRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			return nil, n.transferLocal(req.ID)
		},
	}
	if !n.cfg.noApplyBatch {
		n.rpcHandlers[rpcApplyBatch] = func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			return n.serveApplyBatch(ctx, body)
		}
	}
}

func (n *Node) removePeerLocal(id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	return n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error()
}

func (n *Node) transferLocal(id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if id == "" {
		return n.raft.LeadershipTransfer().Error()
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return n.raft.LeadershipTransferToServer(s.ID, s.Address).Error()
		}
	}
	return fmt.Errorf("no server %q in the configuration", id)
}

// onLeader runs a leader-only admin action here or on the leader.
func (n *Node) onLeader(ctx context.Context, method, id string, local func(string) error) error {
	if n.raft.State() == raft.Leader {
		return local(id)
	}
	leader := n.leaderAddr()
	if leader == "" {
		return ErrNoLeader
	}
	return n.pool.call(ctx, leader, method, &peerRequest{ID: id}, nil)
}

// RemovePeer removes a server from the configuration (via the leader).
func (n *Node) RemovePeer(ctx context.Context, id string) error {
	return n.onLeader(ctx, rpcRemovePeer, id, n.removePeerLocal)
}

// TransferLeadership hands leadership to id, or to any follower.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.onLeader(ctx, rpcTransfer, id, n.transferLocal)
}

// RaftSnapshot takes a Raft snapshot of this node's ledger now and lets
// Raft compact its log behind it, keeping TrailingLogs entries. A node
// that has applied nothing takes none and describes its last one (Taken
// false).
func (n *Node) RaftSnapshot() (api.RaftSnapshotResponse, error) {
	res := api.RaftSnapshotResponse{Node: n.cfg.Name}
	f := n.raft.Snapshot()
	switch err := f.Error(); {
	case err == nil:
		meta, rc, err := f.Open()
		if err != nil {
			return res, fmt.Errorf("open the snapshot just taken: %w", err)
		}
		_ = rc.Close()
		res.Index, res.Term, res.Taken = meta.Index, meta.Term, true
	case errors.Is(err, raft.ErrNothingNewToSnapshot):
		res.Index, res.Term = n.lastSnapshot()
	default:
		return res, fmt.Errorf("raft snapshot: %w", err)
	}
	var err error
	if res.FirstLogIndex, err = n.store.FirstIndex(); err != nil {
		return res, err
	}
	if res.LastLogIndex, err = n.store.LastIndex(); err != nil {
		return res, err
	}
	return res, nil
}

// lastSnapshot is the index and term of the last Raft snapshot this node
// took or installed (0, 0 for none).
func (n *Node) lastSnapshot() (index, term uint64) {
	st := n.raft.Stats()
	index, _ = strconv.ParseUint(st["last_snapshot_index"], 10, 64)
	term, _ = strconv.ParseUint(st["last_snapshot_term"], 10, 64)
	return index, term
}

// InitResult is what sealing genesis hands out once: the root token and
// the kernel's join secret (the ledger keeps only their hashes).
type InitResult struct {
	RootToken  string
	JoinSecret string
	Result     fsm.Result
}

// Init seals genesis and returns the root token, which exists only in
// this answer: the ledger keeps its SHA-256.
func (n *Node) Init(ctx context.Context) (string, fsm.Result, error) {
	r, err := n.InitAt(ctx, 0)
	return r.RootToken, r.Result, err
}

// InitAt is Init under protocol (0: the newest every voter implements),
// with the join secret.
func (n *Node) InitAt(ctx context.Context, protocol uint16) (InitResult, error) {
	if n.cfg.Role == fsm.RoleDomain {
		return n.InitializeDomain(ctx, "")
	}
	if n.cfg.Role == fsm.RoleSovereign {
		return InitResult{}, httpedge.BadRequest("a sovereign kernel is initialized with its named operators (operator init --operators)")
	}
	protocol, err := n.genesisProtocol(ctx, protocol)
	if err != nil {
		return InitResult{}, err
	}
	var kid [8]byte
	if _, err := rand.Read(kid[:]); err != nil {
		return InitResult{}, err
	}
	return n.genesis(ctx, "kernel-"+hex.EncodeToString(kid[:]), nil, 0, protocol)
}

// genesisProtocol is the protocol a new ledger is sealed under: the one
// requested, which every voter must implement, or by default the newest
// every voter implements (this binary's newest if a voter cannot be
// asked).
func (n *Node) genesisProtocol(ctx context.Context, requested uint16) (uint16, error) {
	if requested > fsm.ProtocolVersion {
		return 0, httpedge.BadRequest("protocol %d: this node implements protocols 1 to %d", requested, fsm.ProtocolVersion)
	}
	actx, cancel := context.WithTimeout(ctx, memberSupportTimeout)
	defer cancel()
	newest := fsm.ProtocolVersion
	members, err := n.askMembers(actx)
	if err == nil {
		newest, err = minVoterSupport(members)
	}
	switch {
	case err != nil && requested == 0:
		n.log.Warn("sealing genesis under this binary's newest protocol: a voter did not say which it implements", "protocol", fsm.ProtocolVersion, "err", err)
		return fsm.ProtocolVersion, nil
	case err != nil:
		return 0, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: err.Error()}
	case requested == 0:
		return newest, nil
	case requested > newest:
		return 0, &httpedge.Error{Code: api.CodeProtocolUnsupported, Msg: fmt.Sprintf("protocol %d: a voter implements protocols only up to %d", requested, newest)}
	}
	return requested, nil
}

// genesis seals the ledger with a new root token, a join secret, the
// reachable voters' node keys and this node's role.
func (n *Node) genesis(ctx context.Context, kernelID string, ops []fsm.GenesisOperator, threshold int, protocol uint16) (InitResult, error) {
	var initialized bool
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { initialized = l.State().Initialized })
	if initialized {
		return InitResult{}, ErrAlreadyInit
	}
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return InitResult{}, err
	}
	token := "dmr_" + hex.EncodeToString(tok[:])
	secret, err := newJoinSecret()
	if err != nil {
		return InitResult{}, err
	}
	sum := sha256.Sum256([]byte(token))
	ch := canon.Hash()
	g := fsm.Genesis{KernelID: kernelID, CanonHash: ch[:], Protocol: protocol, RootTokenHash: sum[:],
		Domain: n.cfg.Domain, Role: n.cfg.Role, Operators: ops, Threshold: threshold, SenseWindowNs: int64(n.cfg.SenseWindow),
		JoinSecretHash: fsm.JoinSecretHash(secret), Members: n.genesisMembers(ctx)}
	res, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdGenesis, Payload: fsm.Encode(&g)})
	if err != nil {
		return InitResult{Result: res}, err
	}
	if res.Decision != fsm.DecisionPermit {
		if res.Reason == fsm.ReasonAlreadyInitialized {
			return InitResult{Result: res}, ErrAlreadyInit
		}
		return InitResult{Result: res}, fmt.Errorf("genesis denied: %s", res.Reason)
	}
	return InitResult{RootToken: token, JoinSecret: secret, Result: res}, nil
}

// waitApplied waits for an Apply future, but not forever: raft's timeout
// bounds only the enqueueing, and a future whose entry is neither
// committed nor failed (seen once in a kill-and-restart test) would hold
// the caller for good. Past limit the outcome is unknown: the entry may
// still commit, and the caller is told so (a timeout, never a refusal).
func waitApplied(f raft.ApplyFuture, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // ends when the future resolves or raft shuts down
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("%w: the write's outcome is unknown after %s (it may still commit)", context.DeadlineExceeded, limit)
	}
}

// TokenHash returns the SHA-256 of a bearer token.
func TokenHash(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

// Authenticate checks a token against the ledger's principals without
// going through Raft (unknown tokens never reach the log).
func (n *Node) Authenticate(token string) (*fsm.Capability, error) {
	if token == "" {
		return nil, ErrUnauthorized
	}
	h := hex.EncodeToString(TokenHash(token))
	var p *fsm.Capability
	var init bool
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		init = l.State().Initialized
		if q := l.State().CapByToken(h); q != nil {
			c := *q
			p = &c
		}
	})
	if !init {
		if n.raft.LastIndex() > 0 {
			// A restarted node replays its log once it learns the commit
			// index: it is catching up, not uninitialized.
			return nil, errCatchingUp
		}
		return nil, ErrNotInitialized
	}
	if p == nil {
		return nil, ErrUnauthorized
	}
	return p, nil
}

// stopped records that the ledger stopped applying (on Raft's FSM
// goroutine: it only records and signals; whoever waits on Stopped closes
// the node).
func (n *Node) stopped(err error) {
	n.haltOnce.Do(func() {
		n.stopErr = err
		metricInc("fsm.stopped")
		close(n.halted)
	})
}

// Stopped is closed when this node's ledger stopped applying because an
// entry needs rules its binary does not implement; StopErr says which.
// The node serves nothing useful after that: close it and start a binary
// that implements them.
func (n *Node) Stopped() <-chan struct{} { return n.halted }

// StopErr is why Stopped was closed.
func (n *Node) StopErr() error {
	select {
	case <-n.halted:
		return n.stopErr
	default:
		return nil
	}
}

// Raft exposes the Raft instance (tests and status).
func (n *Node) Raft() *raft.Raft { return n.raft }

// Name is the node name.
func (n *Node) Name() string { return n.cfg.Name }

// HTTPAddr is the bound HTTP address ("" if disabled).
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// Head returns the current head and state digest.
func (n *Node) Head() (fsm.HeadRef, [32]byte) {
	n.fsm.mu.RLock()
	h := n.fsm.ledger.Head()
	seq, epoch, compute := n.fsm.ledger.DigestLater()
	n.fsm.mu.RUnlock()
	var d [32]byte
	b, _ := hex.DecodeString(n.digestAt(seq, epoch, compute))
	copy(d[:], b)
	return h, d
}

// Close stops the node. Safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = n.httpSrv.Shutdown(ctx)
			cancel()
		} else if n.httpLn != nil {
			n.httpLn.Close()
		}
		n.stopServices()
		n.fed.close()
		if n.raft != nil {
			_ = n.raft.Shutdown().Error()
		}
		if n.transport != nil {
			_ = n.transport.Close()
		}
		if n.mux != nil {
			n.mux.close()
		}
		if n.pool != nil {
			n.pool.closeAll()
		}
		n.wg.Wait()
		if n.store != nil {
			_ = n.store.Close()
		}
		if n.arch != nil {
			if err := n.arch.Close(); err != nil {
				n.log.Error("ledger archive close failed: records answered since the last sync may not be durable in the archive (the Raft log still holds them and a restart re-applies them)", "err", err)
			}
		}
	})
	return nil
}

var _ io.Closer = (*Node)(nil)

// ReloadTLS re-reads the TLS files (SIGHUP); the old material stays on error.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return errors.New("no TLS configured")
	}
	return n.tls.Reload()
}

// LogFirstIndex is the oldest entry still in the Raft log store (entries
// before it were compacted into a snapshot).
func (n *Node) LogFirstIndex() (uint64, error) { return n.store.FirstIndex() }

// Leave removes this node from the cluster: a leader hands leadership to
// a follower first, then the (new) leader removes this server.
func (n *Node) Leave(ctx context.Context) error {
	if n.raft.State() == raft.Leader {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			return fmt.Errorf("hand over leadership before leaving: %w", err)
		}
	}
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	for {
		err := n.RemovePeer(ctx, n.cfg.Name)
		if err == nil {
			n.log.Info("left the cluster")
			return nil
		}
		if time.Now().After(deadline) || httpedge.CodeOf(err) != api.CodeNoLeader {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
