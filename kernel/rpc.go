package kernel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// Node-to-node RPC: length-prefixed canonical msgpack frames on a
// connection of kind connRPC. One request, one response, in order; a
// connection may carry many calls.

const (
	maxRPCFrame = fsm.MaxEpochBytes + 1<<20
	rpcTimeout  = 10 * time.Second
)

// RPC methods.
const (
	rpcIdentify     = "identify"
	rpcJoin         = "join"
	rpcApply        = "apply"
	rpcReadIndex    = "read_index"
	rpcArchiveRange = "archive_range"
	rpcClock        = "clock"
	rpcRemovePeer   = "remove_peer"
	rpcTransfer     = "transfer_leadership"
	rpcFedSecrets   = "fed_secrets"
	rpcFedSign      = "fed_sign"
	rpcAddPeer      = "add_peer"
)

type rpcRequest struct {
	Method string `codec:"method"`
	Body   []byte `codec:"body"`
}

type rpcResponse struct {
	Code    string `codec:"code"` // api error code, "" on success
	Message string `codec:"message"`
	Leader  string `codec:"leader"` // the responder's view of the leader's bind address
	Body    []byte `codec:"body"`
}

// errNotDelivered: the request certainly did not reach the peer (the dial
// failed, or it could not be written), so retrying it is safe.
var errNotDelivered error = &httpedge.Error{Code: api.CodeNoLeader, Msg: "request not delivered"}

// rpcError is an error answered by a peer.
type rpcError struct {
	Code, Message, Leader string
}

func (e *rpcError) Error() string { return e.Code + ": " + e.Message }

// APICode implements httpedge.Coder.
func (e *rpcError) APICode() string { return e.Code }

type identifyResponse struct {
	Name        string `codec:"name"`
	BindAddr    string `codec:"bind_addr"`
	HasState    bool   `codec:"has_state"`
	Initialized bool   `codec:"initialized"`
	NodeKey     []byte `codec:"node_key,omitempty"` // federated kernels: the node's public key
	BusAddr     string `codec:"bus_addr,omitempty"`
}

type joinRequest struct {
	Name       string `codec:"name"`
	BindAddr   string `codec:"bind_addr"`
	NonVoter   bool   `codec:"non_voter,omitempty"`
	JoinSecret string `codec:"join_secret,omitempty"` // over mutual TLS to the leader only; never logged or proposed
}

type applyRequest struct {
	Envelope []byte `codec:"envelope"` // canonical envelope without Time; the leader stamps it
}

type applyResponse struct {
	Result wireResult `codec:"result"`
	Index  uint64     `codec:"index"` // the raft index the entry was applied at
}

// wireResult is fsm.Result on the wire.
type wireResult struct {
	Seq       uint64 `codec:"seq"`
	Head      []byte `codec:"head"`
	Time      int64  `codec:"time"`
	Type      uint16 `codec:"type"`
	Decision  uint8  `codec:"decision"`
	Reason    uint16 `codec:"reason"`
	Value     []byte `codec:"value"`
	Found     bool   `codec:"found"`
	Version   uint64 `codec:"version"`
	Duplicate bool   `codec:"duplicate"`
	Noop      bool   `codec:"noop"`
	ID        string `codec:"id"`
	UsesLeft  int64  `codec:"uses_left"`
	Retried   bool   `codec:"retried,omitempty"`
}

func toWire(r fsm.Result) wireResult {
	return wireResult{Seq: r.Seq, Head: append([]byte(nil), r.Head[:]...), Time: r.Time, Type: uint16(r.Type),
		Decision: uint8(r.Decision), Reason: uint16(r.Reason), Value: r.Value, Found: r.Found,
		Version: r.Version, Duplicate: r.Duplicate, Noop: r.Noop, ID: r.ID, UsesLeft: r.UsesLeft, Retried: r.Retried}
}

func fromWire(w wireResult) fsm.Result {
	r := fsm.Result{Seq: w.Seq, Time: w.Time, Type: fsm.CommandType(w.Type), Decision: fsm.Decision(w.Decision),
		Reason: fsm.Reason(w.Reason), Value: w.Value, Found: w.Found, Version: w.Version, Duplicate: w.Duplicate, Noop: w.Noop, ID: w.ID, UsesLeft: w.UsesLeft, Retried: w.Retried}
	copy(r.Head[:], w.Head)
	return r
}

type readIndexResponse struct {
	Index uint64 `codec:"index"`
}

type archiveRangeRequest struct {
	FromIndex  uint64 `codec:"from_index"`
	ToIndex    uint64 `codec:"to_index"`
	MaxRecords int    `codec:"max_records"`
}

type archiveRecord struct {
	Index uint64 `codec:"index"`
	Seq   uint64 `codec:"seq"`
	Kind  uint8  `codec:"kind"`
	Data  []byte `codec:"data"`
}

type archiveRangeResponse struct {
	Records []archiveRecord `codec:"records"`
}

type clockRequest struct {
	SenderTime int64 `codec:"sender_time"`
}

type clockResponse struct {
	Time int64 `codec:"time"`
}

type peerRequest struct {
	ID string `codec:"id"`
}

func writeFrame(w io.Writer, v any) error {
	b := fsm.Encode(v)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r io.Reader, v any) error { return readFrameMax(r, v, maxRPCFrame) }

func readFrameMax(r io.Reader, v any, max uint32) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > max {
		return fmt.Errorf("rpc frame of %d bytes exceeds %d", n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return fsm.Decode(b, v)
}

// membersOnlyRPC are the methods that read or change data, membership or
// secrets: served only to members of this kernel's Raft configuration.
// The others (identify, join, protocol) serve nodes of this kernel that
// are not members yet; nodes of other kernels never get a connection.
var membersOnlyRPC = map[string]bool{
	rpcApply: true, rpcApplyBatch: true, rpcReadIndex: true, rpcArchiveRange: true, rpcClock: true,
	rpcRemovePeer: true, rpcTransfer: true, rpcFedSecrets: true, rpcFedSign: true, rpcAddPeer: true,
}

// rpcHandler serves one method; peer is the verified certificate name
// (or the remote address without TLS).
type rpcHandler func(ctx context.Context, peer string, body []byte) ([]byte, error)

// serveRPC answers calls on one connection until it closes.
func (n *Node) serveRPC(conn net.Conn, peer string) {
	br := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		var req rpcRequest
		if err := readFrame(br, &req); err != nil {
			if !errors.Is(err, io.EOF) {
				n.log.Debug("rpc connection closed", "peer", peer, "err", err)
			}
			return
		}
		h := n.rpcHandlers[req.Method]
		var resp rpcResponse
		switch {
		case h == nil:
			resp.Code, resp.Message = "bad_request", "unknown rpc method "+req.Method
		case membersOnlyRPC[req.Method] && n.tls != nil && !n.isMember(peer):
			metricInc("rpc.non_member_refused")
			n.log.Warn("refused node rpc from a node outside the configuration", "peer", peer, "method", req.Method)
			resp.Code, resp.Message = api.CodeForbidden, fmt.Sprintf("%s is not a member of this kernel's configuration: %s is served to members only", peer, req.Method)
		default:
			ctx, cancel := context.WithTimeout(n.ctx, rpcTimeout)
			body, err := h(ctx, peer, req.Body)
			cancel()
			if err != nil {
				resp.Code, resp.Message = httpedge.CodeOf(err), err.Error()
			}
			resp.Body = body
		}
		resp.Leader = n.leaderAddr()
		_ = conn.SetWriteDeadline(time.Now().Add(rpcTimeout))
		if err := writeFrame(conn, &resp); err != nil {
			return
		}
	}
}

// rpcPool keeps a few idle connections per peer.
type rpcPool struct {
	n    *Node
	mu   sync.Mutex
	idle map[string][]net.Conn
}

// rpcIdlePerPeer bounds the idle mutual-TLS connections kept per peer (a
// new handshake costs ~1 ms of CPU). Batched forwarding needs only a few;
// the bound is sized for a follower that forwards each write in its own
// call, as it does to a leader without apply_batch (see forward.go).
const rpcIdlePerPeer = 512

func (p *rpcPool) get(ctx context.Context, addr string, fresh bool) (c net.Conn, pooled bool, err error) {
	if !fresh {
		p.mu.Lock()
		if cs := p.idle[addr]; len(cs) > 0 {
			c := cs[len(cs)-1]
			p.idle[addr] = cs[:len(cs)-1]
			p.mu.Unlock()
			return c, true, nil
		}
		p.mu.Unlock()
	}
	c, err = p.n.mux.dialKind(ctx, addr, connRPC)
	return c, false, err
}

func (p *rpcPool) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[addr]) >= rpcIdlePerPeer {
		c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *rpcPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cs := range p.idle {
		for _, c := range cs {
			c.Close()
		}
	}
	p.idle = map[string][]net.Conn{}
}

// call invokes method on the node at addr. in and out are msgpack structs.
func (p *rpcPool) call(ctx context.Context, addr, method string, in, out any) error {
	req := &rpcRequest{Method: method, Body: fsm.Encode(in)}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(rpcTimeout)
	}
	var c net.Conn
	for attempt := 0; ; attempt++ {
		conn, pooled, err := p.get(ctx, addr, attempt > 0)
		if err != nil {
			return fmt.Errorf("%w: %v", errNotDelivered, err)
		}
		_ = conn.SetDeadline(deadline)
		err = writeFrame(conn, req)
		if err == nil {
			c = conn
			break
		}
		conn.Close()
		// An idle pooled connection may have been closed under us; a
		// request that could not be written was not delivered, so one
		// retry on a fresh connection is safe.
		if !pooled || attempt > 0 {
			return fmt.Errorf("%w: %v", errNotDelivered, err)
		}
	}
	var resp rpcResponse
	if err := readFrame(c, &resp); err != nil {
		c.Close()
		return err
	}
	_ = c.SetDeadline(time.Time{})
	p.put(addr, c)
	if resp.Code != "" {
		return &rpcError{Code: resp.Code, Message: resp.Message, Leader: resp.Leader}
	}
	if out != nil {
		return fsm.Decode(resp.Body, out)
	}
	return nil
}
