package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dominus-kernel/dominus/history"
	"github.com/dominus-kernel/dominus/internal/server"
	"github.com/dominus-kernel/dominus/internal/tlsutil"
	"github.com/dominus-kernel/dominus/kernel"
)

func init() { register(agentCmd) }

// agentFile is the optional --config file: the same keys as the flags.
type agentFile struct {
	Name             string   `json:"name"`
	DataDir          string   `json:"data_dir"`
	Bind             string   `json:"bind"`
	HTTP             string   `json:"http"`
	BootstrapExpect  int      `json:"bootstrap_expect"`
	Join             []string `json:"join"`
	NonVoter         bool     `json:"non_voter"`
	TLSCA            string   `json:"tls_ca"`
	TLSCert          string   `json:"tls_cert"`
	TLSKey           string   `json:"tls_key"`
	HTTPInsecure     bool     `json:"http_insecure"`
	Kernel           string   `json:"kernel"`
	AllowLegacyCerts bool     `json:"allow_legacy_certs"`
	JoinSecret       string   `json:"join_secret"`
	MinFreeDiskBytes uint64   `json:"min_free_disk_bytes"`
	HistoryEvery     uint64   `json:"history_checkpoint_every"`
	MaxRestoreBytes  int64    `json:"max_restore_bytes"`
	RaftTimeoutScale float64  `json:"raft_timeout_scale"`
	LogLevel         string   `json:"log_level"`
	Role             string   `json:"role"`
	Domain           string   `json:"domain"`
	JoinToken        string   `json:"join_token"`
	Sovereign        []string `json:"sovereign"`
	Bus              string   `json:"bus"`
	Gossip           string   `json:"gossip"`
}

func agentCmd() *cobra.Command {
	var (
		f          agentFile
		configPath string
		joinFlag   string
		skew       time.Duration
		clockShift time.Duration
		hookAllow  string
		execAllow  string
		driverTime time.Duration
		hookIdem   bool
		sovFlag    string
		lifetime   time.Duration
		renewEvery time.Duration
		witnessEv  time.Duration
		senseWin   time.Duration
		snapThresh uint64
		trailing   uint64
		logCache   int
		snapEvery  time.Duration
		debug      bool
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a kernel node (Raft member, ledger, HTTP API)",
		Long: `Run one kernel node. A new cluster forms when --bootstrap-expect nodes
that have no state find each other through --join; a node restarted on its
existing data rejoins without bootstrapping. SIGHUP reloads TLS files.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Every flag is also DOMINUS_FLAG_NAME: a flag on the command
			// line wins, then the environment, then --config.
			if err := flagsFromEnv(cmd); err != nil {
				return err
			}
			if configPath != "" {
				var file agentFile
				data, err := os.ReadFile(configPath)
				if err != nil {
					return err
				}
				dec := json.NewDecoder(strings.NewReader(string(data)))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&file); err != nil {
					return fmt.Errorf("config %s: %w", configPath, err)
				}
				mergeAgentFile(cmd, &f, file, &joinFlag)
			}
			cfg := kernel.DefaultConfig()
			cfg.Name, cfg.DataDir, cfg.BindAddr, cfg.HTTPAddr = f.Name, f.DataDir, f.Bind, f.HTTP
			cfg.BootstrapExpect = f.BootstrapExpect
			cfg.NonVoter = f.NonVoter
			for _, j := range strings.Split(joinFlag, ",") {
				if j = strings.TrimSpace(j); j != "" {
					cfg.Join = append(cfg.Join, j)
				}
			}
			switch {
			case f.TLSCA != "" && f.TLSCert != "" && f.TLSKey != "":
				cfg.TLS = &tlsutil.Files{CA: f.TLSCA, Cert: f.TLSCert, Key: f.TLSKey}
			case f.TLSCA != "" || f.TLSCert != "" || f.TLSKey != "":
				return usageError(fmt.Errorf("--tls-ca, --tls-cert and --tls-key go together"))
			}
			cfg.HTTPInsecure = f.HTTPInsecure
			cfg.Kernel, cfg.AllowLegacyCerts, cfg.JoinSecret = f.Kernel, f.AllowLegacyCerts, f.JoinSecret
			if cfg.JoinSecret == "" {
				cfg.JoinSecret = os.Getenv(EnvJoinSecret)
			}
			cfg.Role, cfg.Domain, cfg.JoinToken = f.Role, f.Domain, f.JoinToken
			if sovFlag == "" && len(f.Sovereign) > 0 {
				sovFlag = strings.Join(f.Sovereign, ",")
			}
			for _, u := range strings.Split(sovFlag, ",") {
				if u = strings.TrimSpace(u); u != "" {
					cfg.SovereignURLs = append(cfg.SovereignURLs, u)
				}
			}
			if cfg.Role != "" {
				// The bus is UDP: by default it shares --bind's IP and port
				// number (a TCP port), so one address names the node.
				cfg.BusAddr = f.Bus
				if cfg.BusAddr == "" {
					cfg.BusAddr = f.Bind
				}
				cfg.GossipAddr = f.Gossip
			}
			if lifetime != 0 {
				cfg.PassportLifetime = lifetime
			}
			if renewEvery != 0 {
				cfg.RenewEvery = renewEvery
			}
			if witnessEv != 0 {
				cfg.WitnessEvery = witnessEv
			}
			cfg.SenseWindow = senseWin
			if snapThresh != 0 {
				cfg.SnapshotThreshold = snapThresh
			}
			if trailing != 0 {
				cfg.TrailingLogs = trailing
			}
			cfg.RaftLogCache = logCache
			cfg.EnableDebug = debug
			if snapEvery != 0 {
				cfg.SnapshotInterval = snapEvery
			}
			if skew != 0 {
				cfg.MaxClockSkew = skew
			}
			cfg.MinFreeDiskBytes = f.MinFreeDiskBytes
			cfg.HistoryEvery = &f.HistoryEvery
			cfg.MaxRestoreBytes = f.MaxRestoreBytes
			if f.RaftTimeoutScale != 0 {
				cfg.RaftTimeoutScale = f.RaftTimeoutScale
			}
			cfg.ClockOffset = clockShift
			for _, d := range []struct {
				kind, prefix, allow string
				idem                bool
			}{{"webhook", "webhook.", hookAllow, hookIdem}, {"exec", "exec.", execAllow, false}} {
				if d.allow == "" {
					continue
				}
				argv, err := driverArgv(d.kind, d.allow, driverTime)
				if err != nil {
					return err
				}
				cfg.Drivers = append(cfg.Drivers, kernel.DriverConfig{Prefix: d.prefix, Command: argv, Idempotent: d.idem, Timeout: driverTime + 5*time.Second})
			}
			cfg.Version = Version
			level := slog.LevelInfo
			if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
				return usageError(fmt.Errorf("--log-level %q: %v", f.LogLevel, err))
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if _, err := kernel.SetupMetrics(cfg.Name); err != nil {
				return err
			}
			node, err := server.New(cfg)
			if err != nil {
				return err
			}
			defer node.Close()
			cfg.Logger.Info("agent started", "bind", cfg.BindAddr, "http", node.HTTPAddr(), "tls", cfg.TLS != nil)
			sigs := make(chan os.Signal, 4)
			signal.Notify(sigs, syscall.SIGHUP)
			defer signal.Stop(sigs)
			for {
				select {
				case <-cmd.Context().Done():
					cfg.Logger.Info("agent stopping")
					return nil
				case <-node.Stopped():
					return fmt.Errorf("this node stopped applying its ledger: %w", node.StopErr())
				case <-sigs:
					if err := node.ReloadTLS(); err != nil {
						cfg.Logger.Error("TLS reload failed; keeping the old material", "err", err)
					} else {
						cfg.Logger.Info("TLS material reloaded")
					}
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "JSON config file with the same keys as the flags (flags win)")
	fl.StringVar(&f.Name, "name", "", "node name (Raft id; must match its certificate's CN)")
	fl.StringVar(&f.DataDir, "data-dir", "", "data directory (raft log, snapshots, ledger archive)")
	fl.StringVar(&f.Bind, "bind", "", "IP:PORT for Raft and node RPC; every outgoing node connection is dialed from this IP")
	fl.StringVar(&f.HTTP, "http", "", "IP:PORT for the HTTP API")
	fl.IntVar(&f.BootstrapExpect, "bootstrap-expect", 0, "bootstrap a new cluster once this many fresh nodes are known")
	fl.StringVar(&joinFlag, "join", "", "comma-separated --bind addresses of other nodes")
	fl.BoolVar(&f.NonVoter, "non-voter", false, "join as a non-voting member: replicates and applies the ledger, never votes or counts for quorum")
	fl.StringVar(&f.TLSCA, "tls-ca", "", "CA certificate (PEM)")
	fl.StringVar(&f.TLSCert, "tls-cert", "", "node certificate (PEM)")
	fl.StringVar(&f.TLSKey, "tls-key", "", "node key (PEM)")
	fl.BoolVar(&f.HTTPInsecure, "http-insecure", false, "serve the HTTP API without TLS even with TLS files (loopback development only)")
	fl.StringVar(&f.Kernel, "kernel", "", "the kernel this node belongs to; must match its certificate (default: the certificate's)")
	fl.BoolVar(&f.AllowLegacyCerts, "allow-legacy-certs", false, "accept certificates that name no kernel (migration only: issue kernel-bound certificates, roll the nodes, drop the flag)")
	fl.StringVar(&f.JoinSecret, "join-secret", "", "the kernel's join secret (from operator init), to join an initialized kernel; also "+EnvJoinSecret)
	fl.DurationVar(&skew, "max-clock-skew", 0, "refuse writes on a leader whose clock runs ahead of its quorum by more (default 2s)")
	fl.Uint64Var(&f.MinFreeDiskBytes, "min-free-disk", 64<<20, "refuse writes when the data dir has less free space (bytes)")
	fl.Uint64Var(&f.HistoryEvery, "history-checkpoint-every", history.DefaultEvery, "events between state checkpoints under DATA/history (an as-of read replays at most this many); 0 keeps none")
	fl.Int64Var(&f.MaxRestoreBytes, "max-restore-bytes", kernel.DefaultMaxRestoreBytes, "refuse a snapshot restore above this many bytes (413 too_large), 1 MiB to 4 GiB; the body is spooled to the data dir")
	fl.Float64Var(&f.RaftTimeoutScale, "raft-timeout-scale", 1, "multiply Raft timeouts")
	fl.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	fl.DurationVar(&clockShift, "test-clock-offset", 0, "shift this node's clock (fault testing only)")
	_ = fl.MarkHidden("test-clock-offset")
	fl.StringVar(&hookAllow, "driver-webhook-allow", "", "enable the webhook driver (op webhook.call) for URLs with these comma-separated prefixes")
	fl.BoolVar(&hookIdem, "driver-webhook-idempotent", false, "the webhook receivers deduplicate on X-Dominus-Syscall-Id: re-run lost webhook effects instead of recording them indeterminate")
	fl.StringVar(&execAllow, "driver-exec-allow", "", "enable the exec driver (op exec.run) for these comma-separated command paths")
	fl.DurationVar(&driverTime, "driver-timeout", 10*time.Second, "time limit of one external effect")
	fl.StringVar(&f.Role, "role", "", "federation role: sovereign or domain (empty: a standalone kernel)")
	fl.StringVar(&f.Domain, "domain", "", "domain kernels: the domain this kernel governs")
	fl.StringVar(&f.JoinToken, "join-token", "", "domain kernels: the one-time join `token` from 'dominus domain create'")
	fl.StringVar(&sovFlag, "sovereign", "", "domain kernels: comma-separated URLs of the sovereign's HTTP API")
	fl.StringVar(&f.Bus, "bus", "", "IP:PORT (UDP) of the federation bus (default: the --bind address, over UDP)")
	fl.StringVar(&f.Gossip, "gossip", "", "IP:PORT of the cortex gossip pool (default: none)")
	fl.DurationVar(&lifetime, "passport-lifetime", 0, "sovereign: lifetime of issued passports (default 10m)")
	fl.DurationVar(&renewEvery, "renew-every", 0, "domain: how often the leader renews its passport and federation view (default 5s)")
	fl.Uint64Var(&snapThresh, "snapshot-threshold", 0, "Raft entries between snapshots (default 8192)")
	fl.Uint64Var(&trailing, "trailing-logs", 0, "Raft entries kept behind a snapshot for slow followers (default 10240)")
	fl.IntVar(&logCache, "raft-log-cache", kernel.DefaultRaftLogCache, "most recent Raft entries kept in memory for replication (0 disables)")
	fl.DurationVar(&snapEvery, "snapshot-interval", 0, "how often Raft checks whether to snapshot (default 30s)")
	fl.BoolVar(&debug, "enable-debug", false, "serve Go runtime profiles at /v1/debug/pprof/{profile} to operators (operator.manage)")
	fl.DurationVar(&senseWin, "sense-window", 0, "ledger-time window of behavioural baselines, sealed at genesis (default 10s)")
	fl.DurationVar(&witnessEv, "witness-every", 0, "domain: how often the leader reports its signed head to the sovereign (default 10s)")
	return cmd
}

// EnvFlag is the environment variable of an agent flag: --some-flag is
// DOMINUS_SOME_FLAG.
func EnvFlag(name string) string {
	return "DOMINUS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// flagsFromEnv sets each flag not given on the command line from its
// environment variable (EnvFlag), if that is set; it then counts as set,
// so --config does not override it.
func flagsFromEnv(cmd *cobra.Command) error {
	var err error
	cmd.LocalNonPersistentFlags().VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || fl.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(EnvFlag(fl.Name))
		if !ok {
			return
		}
		if e := cmd.Flags().Set(fl.Name, v); e != nil {
			err = usageError(fmt.Errorf("%s=%q: %v", EnvFlag(fl.Name), v, e))
		}
	})
	return err
}

// mergeAgentFile fills every flag the user did not set from the file.
func mergeAgentFile(cmd *cobra.Command, f *agentFile, file agentFile, join *string) {
	set := func(name string) bool { return cmd.Flags().Changed(name) }
	if !set("name") {
		f.Name = file.Name
	}
	if !set("data-dir") {
		f.DataDir = file.DataDir
	}
	if !set("bind") {
		f.Bind = file.Bind
	}
	if !set("http") {
		f.HTTP = file.HTTP
	}
	if !set("bootstrap-expect") {
		f.BootstrapExpect = file.BootstrapExpect
	}
	if !set("join") && len(file.Join) > 0 {
		*join = strings.Join(file.Join, ",")
	}
	if !set("non-voter") {
		f.NonVoter = file.NonVoter
	}
	if !set("tls-ca") {
		f.TLSCA = file.TLSCA
	}
	if !set("tls-cert") {
		f.TLSCert = file.TLSCert
	}
	if !set("tls-key") {
		f.TLSKey = file.TLSKey
	}
	if !set("kernel") {
		f.Kernel = file.Kernel
	}
	if !set("allow-legacy-certs") {
		f.AllowLegacyCerts = file.AllowLegacyCerts
	}
	if !set("join-secret") {
		f.JoinSecret = file.JoinSecret
	}
	if !set("http-insecure") {
		f.HTTPInsecure = file.HTTPInsecure
	}
	if !set("max-restore-bytes") && file.MaxRestoreBytes != 0 {
		f.MaxRestoreBytes = file.MaxRestoreBytes
	}
	if !set("history-checkpoint-every") && file.HistoryEvery != 0 {
		f.HistoryEvery = file.HistoryEvery
	}
	if !set("min-free-disk") && file.MinFreeDiskBytes != 0 {
		f.MinFreeDiskBytes = file.MinFreeDiskBytes
	}
	if !set("raft-timeout-scale") && file.RaftTimeoutScale != 0 {
		f.RaftTimeoutScale = file.RaftTimeoutScale
	}
	if !set("log-level") && file.LogLevel != "" {
		f.LogLevel = file.LogLevel
	}
	if !set("role") {
		f.Role = file.Role
	}
	if !set("domain") {
		f.Domain = file.Domain
	}
	if !set("join-token") {
		f.JoinToken = file.JoinToken
	}
	if !set("sovereign") {
		f.Sovereign = file.Sovereign
	}
	if !set("bus") {
		f.Bus = file.Bus
	}
	if !set("gossip") {
		f.Gossip = file.Gossip
	}
}
