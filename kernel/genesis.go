package kernel

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/canon"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/hashicorp/raft"
)

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
