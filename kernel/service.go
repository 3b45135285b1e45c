package kernel

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// Service is a subsystem that plugs into a kernel node: its HTTP routes
// with the scope each needs, its node-RPC methods, its leader duties,
// and its start and stop. New hands a node its services; the node never
// imports them.
//
// Lifecycle: Start runs once, after Raft and the archive exist and
// before the node serves node RPC or HTTP; then RPCs and Routes are read
// once; LeaderDuties run on the leader while it leads; Stop runs once on
// Close, services in reverse order, before Raft shuts down.
type Service interface {
	// Name is the service's name in logs and errors.
	Name() string
	// Start attaches the service to its node.
	Start(k *Node) error
	// Routes are the service's HTTP routes (httpedge.Route says what
	// each needs before its handler runs).
	Routes() []httpedge.Route
	// RPCs are the node-RPC methods the service serves to members of
	// its kernel; a method name is unique across the node.
	RPCs() map[string]RPCHandler
	// LeaderDuties run on the leader, each at most once at a time.
	LeaderDuties() []Duty
	// Stop releases what Start took.
	Stop()
}

// RPCHandler serves one node-RPC method; peer is the verified name of the
// calling member (mux.go admits members only).
type RPCHandler = rpcHandler

// Duty is periodic work of the leader.
type Duty struct {
	Name  string
	Every time.Duration
	Run   func(ctx context.Context)
}

// BaseService gives a Service's optional parts their empty form.
type BaseService struct{}

func (BaseService) Routes() []httpedge.Route    { return nil }
func (BaseService) RPCs() map[string]RPCHandler { return nil }
func (BaseService) LeaderDuties() []Duty        { return nil }
func (BaseService) Stop()                       {}

// startServices starts the node's services and adds their RPC methods.
func (n *Node) startServices() error {
	for i, s := range n.services {
		if err := s.Start(n); err != nil {
			for j := i - 1; j >= 0; j-- {
				n.services[j].Stop()
			}
			n.services = nil
			return fmt.Errorf("service %s: %w", s.Name(), err)
		}
		for m, h := range s.RPCs() {
			if _, dup := n.rpcHandlers[m]; dup {
				return fmt.Errorf("service %s: node-RPC method %q is already served", s.Name(), m)
			}
			n.rpcHandlers[m] = h
		}
		for _, d := range s.LeaderDuties() {
			n.duties = append(n.duties, &duty{Duty: d})
		}
	}
	return nil
}

func (n *Node) stopServices() {
	for i := len(n.services) - 1; i >= 0; i-- {
		n.services[i].Stop()
	}
}

// duty is a Duty and when it last ran.
type duty struct {
	Duty
	last    time.Time
	running atomic.Bool
}

// runDuties starts each due duty that is not running (leaderLoop's tick).
func (n *Node) runDuties(now time.Time) {
	for _, d := range n.duties {
		if now.Sub(d.last) < d.Every || !d.running.CompareAndSwap(false, true) {
			continue
		}
		d.last = now
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer d.running.Store(false)
			d.Run(n.ctx)
		}()
	}
}

// Read runs fn on the applied ledger state under the FSM's read lock; fn
// must not keep references into the state or block.
func (n *Node) Read(fn func(l *fsm.Ledger, applied uint64)) { n.fsm.read(fn) }

// Propose applies a command on the caller's behalf: its token's hash is
// the envelope's Auth, the request id comes from the request's header.
func (n *Node) Propose(r *http.Request, c *httpedge.Caller, t fsm.CommandType, payload any) (fsm.Result, error) {
	return n.propose(r, c.Token, t, payload)
}

// RequireScope is nil when one of ops holds for the caller on state
// confirmed by the leader (stale when it cannot be confirmed, forbidden
// when no op holds): for a route that checks its scope after validating
// its input.
func (n *Node) RequireScope(ctx context.Context, c *httpedge.Caller, ops ...string) error {
	return n.requireAnyScope(ctx, c.Token, ops...)
}

// Command is the handler of a route that proposes one command on the
// caller's behalf: decode the JSON body into Req (none when Req is
// struct{}), build the payload (an error answers as it is), propose,
// and answer the result (every decision is 200 with the decision in the
// body).
func Command[Req any](k *Node, t fsm.CommandType, build func(r *http.Request, req *Req) (any, error), answer func(r *http.Request, req *Req, res fsm.Result) any) httpedge.Handler {
	return func(w http.ResponseWriter, r *http.Request, c *httpedge.Caller) {
		var req Req
		if _, none := any(req).(struct{}); !none {
			if err := httpedge.DecodeBody(r, &req); err != nil {
				httpedge.WriteErr(w, err)
				return
			}
		}
		payload, err := build(r, &req)
		if err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		res, err := k.Propose(r, c, t, payload)
		if err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		httpedge.WriteJSON(w, http.StatusOK, answer(r, &req, res))
	}
}
