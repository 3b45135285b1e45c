package transparency

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// Config configures the service.
type Config struct {
	// DataDir is the node's data dir (checkpoints go under it).
	DataDir string
	// CheckpointEvery is how often the leader signs a checkpoint when
	// the tree grew.
	CheckpointEvery time.Duration
	// FollowEvery is how often the tree takes what the archive gained.
	FollowEvery time.Duration
	Logger      *slog.Logger
}

// DefaultConfig is the configuration for a node whose data dir is dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{DataDir: dataDir, CheckpointEvery: 10 * time.Second, FollowEvery: 20 * time.Millisecond}
}

// Node-RPC methods of the service.
const (
	rpcPut  = "transparency_put"  // the leader hands a member a checkpoint it signed
	rpcSign = "transparency_sign" // a member asks the leader to sign one now
)

// Service keeps the node's Merkle tree and its checkpoints.
type Service struct {
	kernel.BaseService
	cfg   Config
	log   *slog.Logger
	k     *kernel.Node
	tree  *tlog.Tree
	store *store

	mu     sync.Mutex // the tree's tip, updated with each leaf
	head   []byte     // chain head at seq tree.Size()
	time   int64      // ledger time of that event
	broken error      // why the tree stopped following, if it did

	signMu   sync.Mutex // one signing at a time
	cosignMu sync.Mutex // the sovereign: one countersignature at a time
	sovSize  uint64     // a domain: the last size the sovereign countersigned (under mu)
	stop     chan struct{}
	done     chan struct{}
	ctx      context.Context // canceled by Stop
	cancel   context.CancelFunc
	wg       sync.WaitGroup // background countersign requests
	bgMu     sync.Mutex     // guards stopping against wg.Add
	stopping bool
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 10 * time.Second
	}
	if cfg.FollowEvery <= 0 {
		cfg.FollowEvery = 20 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, log: log.With("service", "transparency"), tree: tlog.NewTree(), head: fsm.ZeroHead[:]}
}

// Name implements kernel.Service.
func (s *Service) Name() string { return "transparency" }

// Start implements kernel.Service: it opens the checkpoint store and
// starts the tree following the archive (the rebuild runs in the
// background; proofs wait for the sizes they need).
func (s *Service) Start(k *kernel.Node) error {
	st, err := openStore(s.cfg.DataDir)
	if err != nil {
		return err
	}
	s.k, s.store = k, st
	s.startWitnessing(k)
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.follow()
	return nil
}

// Stop implements kernel.Service.
func (s *Service) Stop() {
	if s.stop != nil {
		s.bgMu.Lock()
		s.stopping = true
		s.bgMu.Unlock()
		s.cancel()
		s.wg.Wait()
		close(s.stop)
		<-s.done
	}
}

// Tree is the node's tree (read-only use: proofs, roots).
func (s *Service) Tree() *tlog.Tree { return s.tree }

// follow appends what the archive gains to the tree until Stop.
func (s *Service) follow() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.FollowEvery)
	defer t.Stop()
	for {
		if err := s.catchUp(); err != nil {
			s.mu.Lock()
			s.broken = err
			s.mu.Unlock()
			s.log.Error("the Merkle tree stopped following the archive", "err", err)
			return
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

var errStopped = errors.New("transparency: stopped")

// catchUp appends every archived event after the tree's size, checking
// that each links to the head before it and hashes to its own.
func (s *Service) catchUp() error {
	size := s.tree.Size()
	if s.k.ArchivedSeq() <= size {
		return nil
	}
	err := s.k.ArchivedEvents(size+1, func(ev *fsm.Event, head []byte) error {
		s.mu.Lock()
		prev := s.head
		s.mu.Unlock()
		if ev.Seq != s.tree.Size()+1 {
			return fmt.Errorf("transparency: the archive holds seq %d where the tree needs %d (history that starts after genesis serves no proofs)", ev.Seq, s.tree.Size()+1)
		}
		if h := fsm.ChainHash(prev, ev); !bytes.Equal(ev.Prev, prev) || !bytes.Equal(h[:], head) {
			return fmt.Errorf("transparency: archived event %d does not link to the head before it", ev.Seq)
		}
		s.tree.Append(head)
		s.mu.Lock()
		s.head, s.time = append([]byte(nil), head...), ev.Time
		s.mu.Unlock()
		select {
		case <-s.stop:
			return errStopped
		default:
			return nil
		}
	})
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

// tip is the tree's size with the chain head and ledger time at it.
func (s *Service) tip() (size uint64, head []byte, t int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Size(), s.head, s.time, s.broken
}

// waitSize waits (bounded by ctx) until the tree holds size leaves.
func (s *Service) waitSize(ctx context.Context, size uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		n, _, _, broken := s.tip()
		if broken != nil {
			return httpedge.Errorf(api.CodeUnavailable, "the Merkle tree is unavailable on this node: %v", broken)
		}
		if n >= size {
			return nil
		}
		select {
		case <-ctx.Done():
			return httpedge.Errorf(api.CodeUnavailable, "the tree holds %d events, not yet %d", n, size)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *Service) kernelID() string {
	var id string
	s.k.Read(func(l *fsm.Ledger, _ uint64) { id = l.State().Meta.KernelID })
	return id
}

// memberKeys are the verifier keys of every member key the ledger holds.
func (s *Service) memberKeys() (api.CheckpointKeys, error) {
	var out api.CheckpointKeys
	var err error
	s.k.Read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		out.KernelID = st.Meta.KernelID
		out.KeyName = tlog.KeyName(st.Meta.KernelID)
		for _, m := range st.SortedMembers() {
			if len(m.PubKey) != ed25519.PublicKeySize {
				continue
			}
			vk, e := tlog.VerifierKey(out.KeyName, m.PubKey)
			if e != nil {
				err = e
				return
			}
			out.Keys = append(out.Keys, api.CheckpointKey{Node: m.Node, Key: vk, Since: m.Since, Removed: m.Removed})
		}
	})
	if out.KernelID == "" {
		return out, httpedge.Errorf(api.CodeNotInitialized, "the kernel has no genesis yet")
	}
	out.Text = fmt.Sprintf("# checkpoint keys of kernel %s: its member nodes' keys as its ledger records them\n", out.KernelID)
	for _, k := range out.Keys {
		state := ""
		if k.Removed {
			state = ", removed since"
		}
		out.Text += fmt.Sprintf("# node %s, recorded at seq %d%s\n%s\n", k.Node, k.Since, state, k.Key)
	}
	return out, err
}

// sign signs a checkpoint of the tree as it is now, stores it and hands
// it to the other members. Leader only.
func (s *Service) sign(ctx context.Context) ([]byte, error) {
	s.signMu.Lock()
	defer s.signMu.Unlock()
	if s.k.Raft().State() != raft.Leader {
		return nil, httpedge.Errorf(api.CodeNoLeader, "this node does not lead")
	}
	key, ok := s.k.NodeSigner().(ed25519.PrivateKey)
	if !ok {
		return nil, httpedge.Errorf(api.CodeUnavailable, "this node has no node key")
	}
	// Sign only a size at which the ledger already holds this node's key
	// (audit replay checks the signer against the members at that seq),
	// and at least what the archive holds now.
	recorded, err := s.keyRecordedBy(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := s.waitSize(ctx, max(recorded, s.k.ArchivedSeq())); err != nil {
		return nil, err
	}
	size, head, t, broken := s.tip()
	if broken != nil {
		return nil, httpedge.Errorf(api.CodeUnavailable, "the Merkle tree is unavailable on this node: %v", broken)
	}
	if size == 0 {
		return nil, httpedge.Errorf(api.CodeNotInitialized, "the ledger has no events yet")
	}
	root, err := s.tree.Root(size)
	if err != nil {
		return nil, err
	}
	kid := s.kernelID()
	note, err := tlog.Sign(tlog.Checkpoint{KernelID: kid, Size: size, Root: root, Head: head, Time: t}, tlog.NewSigner(tlog.KeyName(kid), key))
	if err != nil {
		return nil, err
	}
	if err := s.store.put(size, note); err != nil {
		return nil, err
	}
	s.push(ctx, note)
	s.background(func(ctx context.Context) { // a domain hands it to the sovereign now, not at the next period
		if err := s.requestCosign(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("checkpoint not countersigned by the sovereign", "err", err)
		}
	})
	return note, nil
}

// background runs fn on its own goroutine until Stop, unless stopping.
func (s *Service) background(fn func(ctx context.Context)) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.stopping {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// keyRecordedBy is a seq by which the ledger holds pub as a member key
// (the applied seq when it is seen there).
func (s *Service) keyRecordedBy(pub ed25519.PublicKey) (uint64, error) {
	var at uint64
	s.k.Read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		for _, m := range st.SortedMembers() {
			if bytes.Equal(m.PubKey, pub) {
				at = st.Seq
				return
			}
		}
	})
	if at == 0 {
		return 0, httpedge.Errorf(api.CodeUnavailable, "the ledger does not hold this node's key yet")
	}
	return at, nil
}

// push hands a checkpoint to every other server of the configuration;
// one that misses it gets the next.
func (s *Service) push(ctx context.Context, note []byte) {
	f := s.k.Raft().GetConfiguration()
	if f.Error() != nil {
		return
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == s.k.Name() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := s.k.CallMember(cctx, string(srv.Address), rpcPut, &putRequest{Note: note}, nil); err != nil {
			s.log.Warn("checkpoint not handed to a member", "node", srv.ID, "err", err)
		}
		cancel()
	}
}

type putRequest struct {
	Note []byte `codec:"note"`
}

type signResponse struct {
	Note []byte `codec:"note"`
}

// RPCs implements kernel.Service.
func (s *Service) RPCs() map[string]kernel.RPCHandler {
	return map[string]kernel.RPCHandler{
		rpcPut: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			var req putRequest
			if err := fsm.Decode(body, &req); err != nil {
				return nil, err
			}
			return fsm.Encode(&struct{}{}), s.accept(ctx, req.Note)
		},
		rpcSign: func(ctx context.Context, peer string, body []byte) ([]byte, error) {
			note, err := s.sign(ctx)
			if err != nil {
				return nil, err
			}
			return fsm.Encode(&signResponse{Note: note}), nil
		},
	}
}

// accept stores a checkpoint the leader signed: it must verify against
// the member keys this node's ledger holds and match this node's tree.
func (s *Service) accept(ctx context.Context, note []byte) error {
	// This node's ledger holds the signer's key once it has applied the
	// checkpoint's size (the leader signs no earlier).
	unverified, err := parseNote(note)
	if err != nil {
		return err
	}
	if err := s.waitSize(ctx, unverified.Size); err != nil {
		return err
	}
	keys, err := s.memberKeys()
	if err != nil {
		return err
	}
	kk, err := tlog.ParseKeys(keys.Text)
	if err != nil {
		return err
	}
	c, err := tlog.Open(note, kk)
	if err != nil {
		return err
	}
	if c.KernelID != keys.KernelID {
		return fmt.Errorf("transparency: a checkpoint of kernel %s", c.KernelID)
	}
	root, err := s.tree.Root(c.Size)
	if err != nil {
		return err
	}
	if !bytes.Equal(root, c.Root) {
		s.log.Error("a checkpoint's root differs from this node's tree", "size", c.Size, "root", fmt.Sprintf("%x", c.Root), "ours", fmt.Sprintf("%x", root))
		return fmt.Errorf("transparency: checkpoint %d has root %x, this node's tree %x", c.Size, c.Root, root)
	}
	return s.store.put(c.Size, note)
}

// LeaderDuties implements kernel.Service: sign a checkpoint when the
// tree grew since the latest.
func (s *Service) LeaderDuties() []kernel.Duty {
	return []kernel.Duty{{Name: "transparency.checkpoint", Every: s.cfg.CheckpointEvery, Run: func(ctx context.Context) {
		size, _, _, broken := s.tip()
		if _, last := s.store.last(); broken != nil || size == 0 || size <= last {
			return
		}
		if _, err := s.sign(ctx); err != nil {
			s.log.Warn("periodic checkpoint not signed", "err", err)
		}
	}}, {Name: "transparency.countersign", Every: s.cfg.CheckpointEvery, Run: func(ctx context.Context) {
		if err := s.requestCosign(ctx); err != nil {
			s.log.Warn("checkpoint not countersigned by the sovereign", "err", err)
		}
	}}}
}
