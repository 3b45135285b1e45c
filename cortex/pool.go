package cortex

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// KeyBytes is the size of a gossip encryption key: AES-256-GCM.
const KeyBytes = 32

// MaxKeys bounds the gossip keyring: the primary key and at most one more,
// the key being rotated in or out. The bound also keeps memberlist v0.6.0's
// Keyring.RemoveKey, which shifts the ring's slice in place while packet
// decryption reads it unlocked, from writing to a slot a reader can see:
// with two keys the removed key is always the last one.
const MaxKeys = 2

// gossipLabel is memberlist's cluster label: every packet and stream
// carries it (authenticated when encryption is on), so a cortex never
// merges with another memberlist cluster, nor with a later incompatible
// cortex protocol.
const gossipLabel = "dominus-cortex/1"

// Config configures a Pool. Zero durations and limits take the values of
// DefaultConfig.
type Config struct {
	// Gossip is the node's gossip address, "IP:PORT" (the --gossip flag).
	// The pool binds TCP and UDP there, advertises it, and sends every
	// packet and dials every stream from that IP. The IP must be a
	// specific address, not 0.0.0.0 or ::. Port 0 picks a free port
	// (tests); Addr reports it.
	Gossip string
	// Domain and Node name this node (passport name rule). The memberlist
	// name is Domain#Node, so they must be unique together in the pool.
	Domain, Node string
	// PassportID names the passport that binds Signer's public key to Node.
	PassportID string
	// Signer signs every signal this node publishes.
	Signer ed25519.PrivateKey
	// Verifier gives the key of another node's signals. Required.
	Verifier Verifier
	// Keys is the gossip keyring, KeyBytes each: Keys[0] encrypts, every
	// key decrypts. One or MaxKeys keys.
	Keys [][]byte
	// Clock returns the current ledger time in unix nanoseconds; signals
	// are judged stale or future against it, and it floors Seq. Nil reads
	// the wall clock.
	Clock func() int64
	// MaxAge drops a signal whose window ended longer ago than this.
	MaxAge time.Duration
	// MaxFutureSkew drops a signal whose window ends further ahead than
	// this.
	MaxFutureSkew time.Duration
	// MaxQueued bounds the broadcast queue; beyond it the messages sent the
	// most times are dropped from the queue.
	MaxQueued int
	// MaxStateSignals bounds the signals this node sends in one push/pull
	// state (the freshest first); at most the package's MaxStateSignals.
	MaxStateSignals int
	// MaxTracked bounds the (domain, node, kind) slots kept by Latest.
	// When it is reached, a new slot replaces the one with the oldest
	// window if that window is stale, and is dropped otherwise.
	MaxTracked int
	// RetransmitMult: each queued message is sent
	// RetransmitMult × ceil(log10(members+1)) times by each node that
	// accepted it.
	RetransmitMult int
	// GossipInterval, GossipNodes, ProbeInterval, ProbeTimeout,
	// PushPullInterval and TCPTimeout are memberlist's settings of the
	// same names (defaults: memberlist.DefaultLANConfig).
	GossipInterval   time.Duration
	GossipNodes      int
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	PushPullInterval time.Duration
	TCPTimeout       time.Duration
	// OnAccept, if set, is called with every signal accepted from a peer,
	// on memberlist's receive loop; it must not block.
	OnAccept func(Signal)
	// Logger receives pool and memberlist events. Nil discards.
	Logger *slog.Logger

	// observe is the transport's inbound hook (tests).
	observe func(network string, remote net.Addr)
}

// DefaultConfig returns the default durations and limits.
func DefaultConfig() Config {
	lan := memberlist.DefaultLANConfig()
	return Config{
		MaxAge:           5 * time.Minute,
		MaxFutureSkew:    time.Minute,
		MaxQueued:        1024,
		MaxTracked:       4096,
		MaxStateSignals:  256,
		RetransmitMult:   lan.RetransmitMult,
		GossipInterval:   lan.GossipInterval,
		GossipNodes:      lan.GossipNodes,
		ProbeInterval:    lan.ProbeInterval,
		ProbeTimeout:     lan.ProbeTimeout,
		PushPullInterval: lan.PushPullInterval,
		TCPTimeout:       lan.TCPTimeout,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	def := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	defInt := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&c.MaxAge, d.MaxAge)
	def(&c.MaxFutureSkew, d.MaxFutureSkew)
	def(&c.GossipInterval, d.GossipInterval)
	def(&c.ProbeInterval, d.ProbeInterval)
	def(&c.ProbeTimeout, d.ProbeTimeout)
	def(&c.PushPullInterval, d.PushPullInterval)
	def(&c.TCPTimeout, d.TCPTimeout)
	defInt(&c.MaxQueued, d.MaxQueued)
	defInt(&c.MaxTracked, d.MaxTracked)
	defInt(&c.MaxStateSignals, d.MaxStateSignals)
	defInt(&c.RetransmitMult, d.RetransmitMult)
	defInt(&c.GossipNodes, d.GossipNodes)
	if c.Clock == nil {
		c.Clock = func() int64 { return time.Now().UnixNano() }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate names every offending value.
func (c *Config) Validate() error {
	var errs []string
	if _, err := parseGossip(c.Gossip); err != nil {
		errs = append(errs, err.Error())
	}
	for _, f := range [...]struct{ field, v string }{{"domain", c.Domain}, {"node", c.Node}, {"passport id", c.PassportID}} {
		if err := checkName(f.v); err != nil {
			errs = append(errs, fmt.Sprintf("%s %q: %v", f.field, f.v, err))
		}
	}
	if len(c.Signer) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Sprintf("signer has %d bytes, want %d", len(c.Signer), ed25519.PrivateKeySize))
	}
	if c.Verifier == nil {
		errs = append(errs, "verifier is nil")
	}
	if err := checkKeys(c.Keys); err != nil {
		errs = append(errs, err.Error())
	}
	if c.MaxAge < time.Second || c.MaxAge > 24*time.Hour {
		errs = append(errs, fmt.Sprintf("max age %s is outside 1s..24h", c.MaxAge))
	}
	if c.MaxFutureSkew < 0 || c.MaxFutureSkew > time.Hour {
		errs = append(errs, fmt.Sprintf("max future skew %s is outside 0..1h", c.MaxFutureSkew))
	}
	if c.MaxQueued < 1 || c.MaxQueued > 1<<16 {
		errs = append(errs, fmt.Sprintf("max queued %d is outside 1..65536", c.MaxQueued))
	}
	if c.MaxTracked < 1 || c.MaxTracked > 1<<20 {
		errs = append(errs, fmt.Sprintf("max tracked %d is outside 1..1048576", c.MaxTracked))
	}
	if c.MaxStateSignals < 1 || c.MaxStateSignals > MaxStateSignals {
		errs = append(errs, fmt.Sprintf("max state signals %d is outside 1..%d", c.MaxStateSignals, MaxStateSignals))
	}
	if c.RetransmitMult < 1 || c.RetransmitMult > 16 {
		errs = append(errs, fmt.Sprintf("retransmit mult %d is outside 1..16", c.RetransmitMult))
	}
	if c.GossipNodes < 1 || c.GossipNodes > 64 {
		errs = append(errs, fmt.Sprintf("gossip nodes %d is outside 1..64", c.GossipNodes))
	}
	for _, d := range [...]struct {
		name string
		v    time.Duration
	}{{"gossip interval", c.GossipInterval}, {"probe interval", c.ProbeInterval}, {"probe timeout", c.ProbeTimeout}, {"push/pull interval", c.PushPullInterval}, {"tcp timeout", c.TCPTimeout}} {
		if d.v < time.Millisecond || d.v > 10*time.Minute {
			errs = append(errs, fmt.Sprintf("%s %s is outside 1ms..10m", d.name, d.v))
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		errs = append(errs, fmt.Sprintf("probe timeout %s is not below probe interval %s", c.ProbeTimeout, c.ProbeInterval))
	}
	if len(errs) > 0 {
		return errors.New("cortex config: " + strings.Join(errs, "; "))
	}
	return nil
}

func parseGossip(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gossip address %q is not IP:PORT: %v", s, err)
	}
	a := ap.Addr().Unmap()
	if a.IsUnspecified() || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("gossip address %q must name one IP (not unspecified, no zone)", s)
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

func checkKeys(keys [][]byte) error {
	if len(keys) < 1 || len(keys) > MaxKeys {
		return fmt.Errorf("%d gossip keys, want 1..%d", len(keys), MaxKeys)
	}
	for i, k := range keys {
		if len(k) != KeyBytes {
			return fmt.Errorf("gossip key %d has %d bytes, want %d", i, len(k), KeyBytes)
		}
	}
	if len(keys) == 2 && bytes.Equal(keys[0], keys[1]) {
		return errors.New("gossip keys 0 and 1 are the same key")
	}
	return nil
}

// GenerateKey returns a new random gossip key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeyBytes)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("cortex: generate gossip key: %w", err)
	}
	return k, nil
}

// Pool is one node's membership in the cortex: a memberlist cluster over
// encrypted gossip that carries signed signals.
type Pool struct {
	cfg       Config
	logger    *slog.Logger
	transport *boundTransport
	keyring   *memberlist.Keyring
	keyMu     sync.Mutex // serialises keyring changes
	recv      *receiver
	queue     *memberlist.TransmitLimitedQueue
	ml        atomic.Pointer[memberlist.Memberlist]

	seqMu sync.Mutex
	seq   uint64 // last Seq published

	published atomic.Uint64
	relayed   atomic.Uint64
	pruned    atomic.Uint64
	merged    atomic.Uint64

	lifeMu sync.Mutex // orders Leave and Shutdown
	down   bool       // Shutdown has run
}

// New binds the gossip address and starts a one-member cluster; Join adds
// it to the others.
func New(cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	addr, _ := parseGossip(cfg.Gossip)
	keys := make([][]byte, len(cfg.Keys))
	for i, k := range cfg.Keys {
		keys[i] = slices.Clone(k)
	}
	keyring, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, fmt.Errorf("cortex: keyring: %w", err)
	}
	logger := cfg.Logger.With("domain", cfg.Domain, "node", cfg.Node)
	p := &Pool{
		cfg:     cfg,
		logger:  logger,
		keyring: keyring,
		recv: newReceiver(receiverConfig{
			verifier:      cfg.Verifier,
			clock:         cfg.Clock,
			maxAge:        cfg.MaxAge,
			maxFutureSkew: cfg.MaxFutureSkew,
			maxTracked:    cfg.MaxTracked,
		}),
	}
	p.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       p.numMembers,
		RetransmitMult: cfg.RetransmitMult,
	}
	t, err := listen(addr, logger, cfg.observe)
	if err != nil {
		return nil, err
	}
	p.transport = t

	mc := memberlist.DefaultLANConfig()
	mc.Name = memberName(cfg.Domain, cfg.Node)
	mc.Transport = t
	mc.Label = gossipLabel
	mc.BindAddr = t.addr.Addr().String()
	mc.BindPort = int(t.addr.Port())
	mc.AdvertiseAddr = mc.BindAddr
	mc.AdvertisePort = mc.BindPort
	mc.Keyring = keyring
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.Delegate = (*delegate)(p)
	mc.RetransmitMult = cfg.RetransmitMult
	mc.GossipInterval = cfg.GossipInterval
	mc.GossipNodes = cfg.GossipNodes
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = cfg.TCPTimeout
	mc.Logger = log.New(&memberlistLog{logger: logger}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = t.Shutdown()
		return nil, fmt.Errorf("cortex: start memberlist: %w", err)
	}
	p.ml.Store(ml)
	logger.Info("cortex: gossip started", "addr", t.addr.String())
	return p, nil
}

func memberName(domain, node string) string { return domain + "#" + node }

func (p *Pool) numMembers() int {
	if ml := p.ml.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

// Addr returns the bound gossip address, with the port picked if Config
// asked for port 0.
func (p *Pool) Addr() string { return p.transport.addr.String() }

// Join contacts each seed ("IP:PORT") and merges membership with those
// that answer. It returns how many answered; the error is nil if any did.
// A seed whose keyring shares no key with this node's never answers.
func (p *Pool) Join(seeds []string) (int, error) {
	for _, s := range seeds {
		if _, err := netip.ParseAddrPort(s); err != nil {
			return 0, fmt.Errorf("cortex: seed %q is not IP:PORT: %w", s, err)
		}
	}
	n, err := p.ml.Load().Join(seeds)
	if err != nil {
		return n, fmt.Errorf("cortex: join: %w", err)
	}
	return n, nil
}

// Member is one node of the pool as this node sees it.
type Member struct {
	Domain, Node string
	Addr         string // advertised gossip address
}

// Members returns the live members, this node included, sorted by domain
// and node.
func (p *Pool) Members() []Member {
	nodes := p.ml.Load().Members()
	out := make([]Member, 0, len(nodes))
	for _, n := range nodes {
		m := Member{Node: n.Name, Addr: n.Address()}
		if d, nd, ok := strings.Cut(n.Name, "#"); ok {
			m.Domain, m.Node = d, nd
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if c := strings.Compare(a.Domain, b.Domain); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out
}

// NumMembers returns the number of live members, this node included.
func (p *Pool) NumMembers() int { return p.ml.Load().NumMembers() }

// ErrPublish wraps every reason Publish refuses a signal.
var ErrPublish = errors.New("cortex: publish refused")

// Publish signs a signal of kind with value for the window ending at
// window (ledger time, unix ns) as this node, records it in Latest and
// queues it for gossip. Seq is max(previous Seq + 1, Clock()), where the
// previous Seq includes this node's own signals heard back from peers: a
// restarted node's signals rise above those it sent before, because its
// clock has moved on or because push/pull brought its old signals back.
// Publish refuses a value outside the kind's bounds and a window peers
// would drop as stale or future.
func (p *Pool) Publish(kind Kind, value int64, window int64) (Signal, error) {
	now := p.cfg.Clock()
	if window < satSub(now, int64(p.cfg.MaxAge)) || window > satAdd(now, int64(p.cfg.MaxFutureSkew)) {
		return Signal{}, fmt.Errorf("%w: window %d is not within [now-%s, now+%s] of %d", ErrPublish, window, p.cfg.MaxAge, p.cfg.MaxFutureSkew, now)
	}
	p.seqMu.Lock()
	defer p.seqMu.Unlock()
	seq := p.seq + 1
	if now > 0 && uint64(now) > seq {
		seq = uint64(now)
	}
	s := Signal{Domain: p.cfg.Domain, Node: p.cfg.Node, Kind: kind, Value: value, Window: window, Seq: seq, PassportID: p.cfg.PassportID}
	wire, err := Seal(s, p.cfg.Signer)
	if err != nil {
		return Signal{}, fmt.Errorf("%w: %w", ErrPublish, err)
	}
	if err := p.recv.record(s, wire, now); err != nil {
		return Signal{}, fmt.Errorf("%w: %w", ErrPublish, err)
	}
	p.seq = seq
	p.published.Add(1)
	p.enqueue(keyOf(s).name(), wire)
	return s, nil
}

// enqueue adds msg to the broadcast queue under name, replacing a queued
// message of the same name, and prunes the queue to MaxQueued.
func (p *Pool) enqueue(name string, msg []byte) {
	p.queue.QueueBroadcast(&broadcast{name: name, msg: msg})
	if n := p.queue.NumQueued(); n > p.cfg.MaxQueued {
		p.queue.Prune(p.cfg.MaxQueued)
		p.pruned.Add(uint64(n - p.cfg.MaxQueued))
	}
}

// receive runs msg through the receiver and relays what it accepts.
func (p *Pool) receive(msg []byte) (Signal, error) {
	s, err := p.recv.receive(msg)
	if err != nil {
		if r := ReasonOf(err); r != DropDuplicate {
			p.logger.Debug("cortex: signal dropped", "reason", string(r), "err", err)
		}
		return Signal{}, err
	}
	if s.Domain == p.cfg.Domain && s.Node == p.cfg.Node {
		// This node's own signal from before a restart: publish above it.
		p.seqMu.Lock()
		p.seq = max(p.seq, s.Seq)
		p.seqMu.Unlock()
	}
	p.relayed.Add(1)
	p.enqueue(keyOf(s).name(), slices.Clone(msg))
	if p.cfg.OnAccept != nil {
		p.cfg.OnAccept(s)
	}
	return s, nil
}

// mergeState checks a peer's push/pull state and receives each signal in
// it. A state whose framing is wrong is dropped whole and counted once.
func (p *Pool) mergeState(buf []byte) {
	msgs, err := decodeState(buf)
	if err != nil {
		reason := DropMalformed
		if errors.Is(err, ErrOversized) {
			reason = DropOversized
		}
		_ = p.recv.drop(reason, err)
		p.logger.Warn("cortex: push/pull state dropped", "reason", string(reason), "err", err)
		return
	}
	accepted, reasons := 0, make(map[DropReason]int)
	for _, m := range msgs {
		if _, err := p.receive(m); err != nil {
			reasons[ReasonOf(err)]++
		} else {
			accepted++
		}
	}
	p.merged.Add(1)
	p.logger.Debug("cortex: push/pull state merged", "signals", len(msgs), "result", stateSummary(accepted, reasons))
}

// Latest returns the latest accepted signal of every (domain, node, kind),
// this node's own included, sorted by domain, node and kind. The slice is
// the caller's.
func (p *Pool) Latest() []Signal { return p.recv.snapshot() }

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Published uint64 // signals this node published
	Accepted  uint64 // signals accepted, this node's own included
	Relayed   uint64 // accepted peer signals queued for gossip again
	Pruned    uint64 // messages dropped from a full broadcast queue
	Merged    uint64 // push/pull states received and merged
	Queued    int    // messages waiting in the broadcast queue
	Tracked   int    // (domain, node, kind) slots held by Latest
	Members   int    // live members, this node included
	// Dropped counts dropped messages by reason; every reason is present.
	Dropped map[DropReason]uint64
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		Published: p.published.Load(),
		Accepted:  p.recv.accepted.Load(),
		Relayed:   p.relayed.Load(),
		Pruned:    p.pruned.Load(),
		Merged:    p.merged.Load(),
		Queued:    p.queue.NumQueued(),
		Tracked:   p.recv.tracked(),
		Members:   p.NumMembers(),
		Dropped:   p.recv.droppedCounts(),
	}
}

// Dropped returns how many messages were dropped for reason.
func (p *Pool) Dropped(reason DropReason) uint64 {
	return p.recv.dropped[dropIndex(reason)].Load()
}

// InstallKey adds key to this node's keyring: it decrypts with it but
// still encrypts with the primary key. Installing a key already on the
// ring does nothing; the ring holds at most MaxKeys keys. See the package
// documentation for rotating keys across the pool.
func (p *Pool) InstallKey(key []byte) error {
	if len(key) != KeyBytes {
		return fmt.Errorf("cortex: gossip key has %d bytes, want %d", len(key), KeyBytes)
	}
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	keys := p.keyring.GetKeys()
	if slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) }) {
		return nil
	}
	if len(keys) >= MaxKeys {
		return fmt.Errorf("cortex: keyring already holds %d keys (limit %d); remove the old key first", len(keys), MaxKeys)
	}
	return p.keyring.AddKey(slices.Clone(key))
}

// UseKey makes an installed key the primary: this node encrypts
// everything it sends with it from now on. Every member should have
// installed it first, or they drop this node's gossip until they do.
func (p *Pool) UseKey(key []byte) error {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if err := p.keyring.UseKey(key); err != nil {
		return fmt.Errorf("cortex: use key: %w", err)
	}
	return nil
}

// RemoveKey removes a key that is not the primary from this node's
// keyring; gossip encrypted with it is dropped from now on. Removing a key
// not on the ring does nothing.
func (p *Pool) RemoveKey(key []byte) error {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if bytes.Equal(key, p.keyring.GetPrimaryKey()) {
		return errors.New("cortex: cannot remove the primary gossip key; use another key first")
	}
	return p.keyring.RemoveKey(key)
}

// Keys returns copies of the keyring's keys, the primary first.
func (p *Pool) Keys() [][]byte {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	keys := p.keyring.GetKeys()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = slices.Clone(k)
	}
	return out
}

// Leave tells the other members this node is leaving and waits up to
// timeout for the message to go out. Shutdown must still be called.
func (p *Pool) Leave(timeout time.Duration) error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.down {
		return errors.New("cortex: leave after shutdown")
	}
	if err := p.ml.Load().Leave(timeout); err != nil {
		return fmt.Errorf("cortex: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip and closes the sockets without telling the other
// members; they notice by failure detection. Safe to call twice.
func (p *Pool) Shutdown() error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	p.down = true
	if err := p.ml.Load().Shutdown(); err != nil {
		return fmt.Errorf("cortex: shutdown: %w", err)
	}
	return nil
}

// delegate is the Pool as memberlist's Delegate.
type delegate Pool

// NodeMeta returns no metadata: everything a node says travels as a
// signed signal.
func (d *delegate) NodeMeta(int) []byte { return nil }

// NotifyMsg receives one gossiped message. memberlist reuses buf after the
// call; the receive path copies what it keeps.
func (d *delegate) NotifyMsg(buf []byte) { _, _ = (*Pool)(d).receive(buf) }

// GetBroadcasts hands memberlist the queued messages that fit.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends the freshest latest signals on push/pull (state.go).
func (d *delegate) LocalState(bool) []byte {
	return encodeState(d.recv.freshest(d.cfg.Clock(), d.cfg.MaxStateSignals))
}

// MergeRemoteState runs every signal of a peer's push/pull state through
// the receive path.
func (d *delegate) MergeRemoteState(buf []byte, join bool) { (*Pool)(d).mergeState(buf) }

// broadcast is one queued signal message, named by its slot so that a
// newer signal replaces an older one still in the queue.
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}
func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}

// memberlistLog turns memberlist's "[LEVEL] memberlist: text" lines into
// slog records.
type memberlistLog struct{ logger *slog.Logger }

func (w *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	level := slog.LevelInfo
	for _, l := range [...]struct {
		prefix string
		level  slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			level, line = l.level, strings.TrimSpace(rest)
			break
		}
	}
	w.logger.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}
