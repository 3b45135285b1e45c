package kernel

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	history     atomic.Pointer[History]    // answers as-of reads (asof.go); nil: none
	reserve     *diskReserve               // space kept for finishing writes when the disk fills (diskreserve.go)

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
	// Raft's own lines (warnings and above) go through the node's slog
	// logger, one format with everything else; a test may send them to a
	// writer of its own instead.
	hlog := newRaftLogger(n.log, "raft", hclog.Warn)
	if cfg.RaftLogOutput != nil {
		hlog = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: cfg.RaftLogOutput, Color: hclog.ColorOff}).With("node", cfg.Name)
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog); err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := n.checkLogAgainstArchive(); err != nil {
		return err
	}
	n.fsm = newLedgerFSM(n.arch, n.log)
	n.fsm.observe = n.observe
	n.fsm.onStop = n.stopped
	n.fsm.onDiskFull = n.diskFullChanged
	n.fsm.onNoSpace = n.noSpace
	n.reserve = newDiskReserve(n.cfg.DataDir, reserveSize(n.cfg.DataDir))
	if ok, err := n.reserve.take(); err != nil {
		n.log.Warn("no disk reserve: a full disk will stop writes without finishing those in flight", "err", err)
	} else if !ok {
		n.log.Warn("the data dir has no room for the disk reserve: a full disk will stop writes without finishing those in flight; free space", "data_dir", n.cfg.DataDir, "reserve_bytes", DiskReserveBytes)
	}
	n.fsm.done = n.ctx.Done()
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
	var logs raft.LogStore = &spaceLogStore{LogStore: n.store, onNoSpace: n.noSpace}
	if n.cfg.RaftLogCache > 0 {
		// Only entries raft-boltdb stored are cached (hashicorp/raft#429
		// was fixed before v1.7); a conflicting suffix is deleted through
		// the cache, which then forgets everything.
		if logs, err = raft.NewLogCache(n.cfg.RaftLogCache, logs); err != nil {
			return fmt.Errorf("raft log cache: %w", err)
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.store, n.snaps, unpipelined{n.transport}); err != nil {
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
