package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// Config configures one kernel node. Start from DefaultConfig.
type Config struct {
	Name            string   // node name: Raft server id, certificate CN
	DataDir         string   // raft/, archive/ live below it
	BindAddr        string   // IP:PORT for Raft and node RPC (one TCP port, multiplexed)
	HTTPAddr        string   // IP:PORT for the HTTP API; empty disables it
	BootstrapExpect int      // bootstrap a new cluster once this many fresh servers are known
	Join            []string // other nodes' BindAddr
	// NonVoter joins the cluster as a non-voting member: it replicates and
	// applies the ledger but neither votes nor counts for quorum.
	NonVoter bool

	TLS          *tlsutil.Files // mutual TLS for Raft/RPC and HTTPS for the API; nil = plaintext (tests, never production)
	HTTPInsecure bool           // serve the HTTP API without TLS even when TLS files are set (loopback dev only)

	// Kernel is the name of the kernel this node belongs to: "sovereign",
	// a domain's name, or the name given to a standalone kernel. A node
	// certificate names it (dominus://<kernel>/<node>); "" takes it from
	// the certificate. Node RPC and Raft are served only to certificates
	// of the same kernel.
	Kernel string
	// AllowLegacyCerts accepts certificates that name no kernel (made
	// before certificates were bound to kernels), for a migration: issue
	// new certificates, roll the nodes, drop the flag.
	AllowLegacyCerts bool
	// JoinSecret is the kernel's join secret (printed by operator init): a
	// node not yet in the configuration of an initialized kernel joins
	// only with it, or after an operator's add-peer.
	JoinSecret string

	// Limits and timing.
	MaxClockSkew     time.Duration // the leader refuses writes when its clock runs ahead of its quorum by more
	MinFreeDiskBytes uint64        // writes fail with disk_full below this much free space in DataDir
	ApplyTimeout     time.Duration // bound on one write, including forwarding
	// ReadConfirmTimeout bounds a read-index round, and a scoped read's
	// confirmation that this node applied everything the leader had
	// committed when it asked; a read that cannot confirm within it is
	// answered stale (503).
	ReadConfirmTimeout time.Duration
	RaftTimeoutScale   float64       // multiplies Raft's heartbeat/election/lease timeouts (e.g. under -race)
	SnapshotThreshold  uint64        // Raft entries between snapshots
	TrailingLogs       uint64        // Raft entries kept behind a snapshot for slow followers
	SnapshotInterval   time.Duration // how often Raft checks whether to snapshot
	RaftLogCache       int           // most recent Raft entries kept in memory (0 = none): replication reads them without raft.db
	MaxRequestBytes    int64
	MaxRestoreBytes    int64   // bound on a snapshot restore's body, spooled to the data dir (413 too_large beyond)
	RateLimitPerSec    float64 // syscalls per second per entity, before Raft; 0 disables
	RateLimitBurst     int

	// HistoryEvery is the number of events between the history service's
	// state checkpoints (as-of reads replay at most this many); nil is
	// its default, 0 keeps none.
	HistoryEvery *uint64

	// EnableDebug serves Go runtime profiles (net/http/pprof) at
	// GET /v1/debug/pprof/{profile} to operators (operator.manage).
	EnableDebug bool

	// ClockOffset shifts this node's clock; for fault tests only.
	ClockOffset time.Duration

	Logger *slog.Logger
	// RaftLogOutput receives hashicorp/raft's own log lines (warnings and
	// above) in hclog's format; nil routes them through Logger (slog, with
	// component=raft), one format with the node's own lines.
	RaftLogOutput io.Writer

	// Network overrides for in-process tests (faultnet); nil uses real TCP
	// dialed from BindAddr's IP.
	Listener net.Listener
	Dial     func(ctx context.Context, addr string) (net.Conn, error)

	// Drivers carry out external effects (ops that are not kv.*), one
	// supervised process per op prefix.
	Drivers []DriverConfig

	// noApplyBatch leaves out the batched forwarding RPC, as a leader
	// built before it did (tests of the follower's fallback).
	noApplyBatch bool

	// Federation (DESIGN.md §4). Role "" is a standalone kernel.
	Role             string        // "", "sovereign" or "domain"
	Domain           string        // the domain a domain kernel governs; "" = "default" when standalone
	JoinToken        string        // domain: the one-time token from `dominus domain create`
	SovereignURLs    []string      // domain: the sovereign's HTTPS API URLs
	BusAddr          string        // IP:PORT (UDP) of the federation bus; "" disables it
	GossipAddr       string        // IP:PORT of the cortex gossip pool; "" disables it
	PassportLifetime time.Duration // sovereign: lifetime of the passports it issues
	RenewEvery       time.Duration // domain: how often the leader renews its passport and view
	WitnessEvery     time.Duration // domain: how often the leader reports its head to the sovereign

	// SenseWindow is the ledger-time window of behavioural baselines,
	// sealed at genesis; 0 = 10 s.
	SenseWindow time.Duration

	// Version is reported in status.
	Version string
}

// DefaultRaftLogCache is how many recent Raft entries a node keeps in
// memory (hashicorp/raft's LogCache, sized as Consul sizes it): the
// leader replicates fresh entries without reading them back from
// raft.db. At most this many entries are pinned, up to MaxEnvelopeBytes
// each.
const DefaultRaftLogCache = 512

// DefaultMaxRestoreBytes is the default bound on a restore's snapshot:
// 4 GiB, the most a snapshot file can hold (its body is one msgpack bin).
const DefaultMaxRestoreBytes = 4 << 30

// DefaultConfig returns a configuration with production defaults.
func DefaultConfig() Config {
	return Config{
		MaxClockSkew:       2 * time.Second,
		MinFreeDiskBytes:   64 << 20,
		ApplyTimeout:       10 * time.Second,
		ReadConfirmTimeout: DefaultReadConfirmTimeout,
		RaftTimeoutScale:   1,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotInterval:   30 * time.Second,
		RaftLogCache:       DefaultRaftLogCache,
		MaxRequestBytes:    4 << 20,
		MaxRestoreBytes:    DefaultMaxRestoreBytes,
		RateLimitPerSec:    1000,
		RateLimitBurst:     2000,
		Version:            "dev",
		PassportLifetime:   DefaultPassportLifetime,
		RenewEvery:         DefaultRenewEvery,
		WitnessEvery:       DefaultWitnessEvery,
	}
}

// Validate names every offending value.
func (c *Config) Validate() error {
	var errs []string
	if err := validName(c.Name); err != nil {
		errs = append(errs, err.Error())
	}
	if c.DataDir == "" {
		errs = append(errs, "data dir is empty")
	}
	if _, _, err := splitIPPort(c.BindAddr); err != nil {
		errs = append(errs, fmt.Sprintf("bind address %q: %v", c.BindAddr, err))
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			errs = append(errs, fmt.Sprintf("http address %q: %v", c.HTTPAddr, err))
		}
	}
	if c.BootstrapExpect < 0 || c.BootstrapExpect > 9 {
		errs = append(errs, fmt.Sprintf("bootstrap-expect %d is outside 0..9", c.BootstrapExpect))
	}
	if c.NonVoter && c.BootstrapExpect > 0 {
		errs = append(errs, fmt.Sprintf("non-voter with bootstrap-expect %d: a non-voting member joins an existing cluster, it does not bootstrap one", c.BootstrapExpect))
	}
	for _, j := range c.Join {
		if _, _, err := splitIPPort(j); err != nil {
			errs = append(errs, fmt.Sprintf("join address %q: %v", j, err))
		}
	}
	if c.MaxClockSkew < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("max clock skew %s is below 100ms", c.MaxClockSkew))
	}
	if c.ApplyTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("apply timeout %s is below 100ms", c.ApplyTimeout))
	}
	if c.ReadConfirmTimeout < 50*time.Millisecond || c.ReadConfirmTimeout > time.Minute {
		errs = append(errs, fmt.Sprintf("read confirm timeout %s is outside 50ms..1m", c.ReadConfirmTimeout))
	}
	if c.RaftTimeoutScale < 0.1 || c.RaftTimeoutScale > 100 {
		errs = append(errs, fmt.Sprintf("raft timeout scale %v is outside 0.1..100", c.RaftTimeoutScale))
	}
	if c.SnapshotInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("snapshot interval %s is below 100ms", c.SnapshotInterval))
	}
	if c.SnapshotThreshold < 16 {
		errs = append(errs, fmt.Sprintf("snapshot threshold %d is below 16", c.SnapshotThreshold))
	}
	if c.RaftLogCache < 0 || c.RaftLogCache > 1<<16 {
		errs = append(errs, fmt.Sprintf("raft log cache %d is outside 0..65536 entries", c.RaftLogCache))
	}
	if c.MaxRequestBytes < 1<<16 {
		errs = append(errs, fmt.Sprintf("max request bytes %d is below 64KiB", c.MaxRequestBytes))
	}
	if c.MaxRestoreBytes < 1<<20 || c.MaxRestoreBytes > DefaultMaxRestoreBytes {
		errs = append(errs, fmt.Sprintf("max restore bytes %d is outside 1MiB..4GiB", c.MaxRestoreBytes))
	}
	switch c.Role {
	case "":
	case "sovereign":
		if c.Domain != "" && c.Domain != "sovereign" {
			errs = append(errs, "a sovereign kernel has no --domain")
		}
		c.Domain = "sovereign"
	case "domain":
		if c.Domain == "" || c.Domain == "sovereign" || strings.ContainsAny(c.Domain, "/:") {
			errs = append(errs, fmt.Sprintf("a domain kernel needs --domain NAME (not %q, no '/' or ':')", c.Domain))
		}
		if len(c.SovereignURLs) == 0 {
			errs = append(errs, "a domain kernel needs --sovereign URL[,URL]")
		}
	default:
		errs = append(errs, fmt.Sprintf("role %q is not sovereign or domain", c.Role))
	}
	if c.BusAddr != "" {
		if _, _, err := splitIPPort(c.BusAddr); err != nil {
			errs = append(errs, fmt.Sprintf("bus address %q: %v", c.BusAddr, err))
		}
	}
	if c.Role != "" {
		if c.PassportLifetime < 10*time.Second || c.PassportLifetime > 24*time.Hour {
			errs = append(errs, fmt.Sprintf("passport lifetime %s is outside 10s..24h", c.PassportLifetime))
		}
		if c.RenewEvery <= 0 || c.RenewEvery*2 > c.PassportLifetime && c.Role == "domain" {
			errs = append(errs, fmt.Sprintf("renew interval %s must be positive and at most half the passport lifetime", c.RenewEvery))
		}
		if c.WitnessEvery <= 0 {
			errs = append(errs, "witness interval must be positive")
		}
	}
	if len(errs) > 0 {
		return errors.New("kernel config: " + strings.Join(errs, "; "))
	}
	return nil
}

func validName(n string) error {
	if n == "" || len(n) > 64 {
		return fmt.Errorf("node name %q must be 1..64 characters", n)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("node name %q may hold only letters, digits, '-', '_' and '.'", n)
		}
	}
	return nil
}

func splitIPPort(addr string) (net.IP, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, 0, fmt.Errorf("host %q is not an IP address", host)
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p <= 0 || p > 65535 {
		return nil, 0, fmt.Errorf("port %q is not 1..65535", port)
	}
	return ip, p, nil
}
