package kernel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/passport"
	"github.com/dominus-kernel/dominus/transport"
	"github.com/hashicorp/raft"
)

// notifyOutbox wakes the shipper (an outbox event committed).
func (fd *fed) notifyOutbox() {
	select {
	case fd.kick <- struct{}{}:
	default:
	}
}

// shipLoop ships the outbox on a domain's leader: at once when an event
// commits, and every shipEvery for retries. It runs apart from renewal
// and witnessing, so an unreachable sovereign never holds up the bus.
func (fd *fed) shipLoop() {
	n := fd.n
	t := time.NewTicker(shipEvery)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-fd.kick:
		}
		var domain bool
		n.fsm.read(func(l *fsm.Ledger, _ uint64) { domain = l.State().Initialized && l.State().Meta.Role == fsm.RoleDomain })
		if domain && n.raft.State() == raft.Leader {
			fd.ship(n.ctx)
		}
	}
}

// busPeer names the sender of a bus connection from its certificate:
// "KERNEL/NODE", or "/NODE" for a certificate that names no kernel (only
// with --allow-legacy-certs).
func (n *Node) busPeer(cs tls.ConnectionState) (string, error) {
	id, err := n.tls.PeerIdentity(cs)
	if err != nil {
		return "", err
	}
	if id.Legacy {
		if !n.cfg.AllowLegacyCerts {
			return "", fmt.Errorf("%w: node %q presented a certificate that names no kernel", ErrIdentity, id.Node)
		}
		return "/" + id.Node, nil
	}
	return id.Kernel + "/" + id.Node, nil
}

// send seals and sends one frame to a kernel, trying each of its bus
// addresses, and verifies the ack.
func (fd *fed) send(ctx context.Context, dest string, addrs []string, f transport.Frame) (transport.Ack, []byte, error) {
	if fd.bus == nil {
		return transport.Ack{}, nil, errors.New("this node has no bus (--bus, TLS required)")
	}
	key, ok := fd.linkKey(fd.kernel, dest)
	if !ok {
		return transport.Ack{}, nil, fmt.Errorf("no link key for %s -> %s", fd.kernel, dest)
	}
	f.Version = transport.FrameVersion
	f.Origin, f.OriginNode, f.Destination = fd.kernel, fd.n.cfg.Name, dest
	f.SentAtNs = time.Now().UnixNano()
	frame, err := transport.Encode(f, key)
	if err != nil {
		return transport.Ack{}, nil, err
	}
	var lastErr error = fmt.Errorf("no bus address known for %s", dest)
	// Start where the last exchange with dest succeeded, or one past where
	// it last failed: a destination whose first addresses are unreachable
	// is still reached through the others, whatever the attempt budget.
	fd.mu.Lock()
	first := fd.start[dest]
	fd.mu.Unlock()
	for i := range addrs {
		if ctx.Err() != nil {
			break // the next attempt starts where this one stopped
		}
		idx := (first + i) % len(addrs)
		a := addrs[idx]
		fd.mu.Lock()
		fd.start[dest] = (idx + 1) % len(addrs)
		fd.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		b, err := fd.bus.Send(actx, a, frame)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		ack, err := transport.DecodeAck(b, fd.linkKey)
		if err != nil {
			lastErr = err
			continue
		}
		if ack.Seq != f.Seq || ack.Origin != fd.kernel || ack.Responder != dest || ack.EventDigest != transport.DigestFrame(frame) {
			lastErr = errors.New("ack does not match the event sent")
			continue
		}
		if ack.Status == transport.AckUnavailable {
			lastErr = fmt.Errorf("%s at %s is unavailable", dest, a)
			continue
		}
		fd.mu.Lock()
		fd.start[dest] = idx
		fd.mu.Unlock()
		return ack, frame, nil
	}
	return transport.Ack{}, frame, lastErr
}

// ship sends the oldest pending outbox event of each destination and
// records the answer. Events to one destination go in sequence order.
func (fd *fed) ship(ctx context.Context) {
	n := fd.n
	type dest struct {
		events []fsm.OutEvent // pending, in sequence order
		addrs  []string
	}
	var ppID string
	dests := map[string]*dest{}
	var order []string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		p, err := passport.Decode(f.Passport)
		if err != nil {
			return
		}
		ppID = p.ID
		for _, e := range f.Outbox {
			if e.Status != fsm.BusStatePending {
				continue
			}
			d := dests[e.Dest]
			if d == nil {
				d = &dest{}
				if pr := f.Peers[e.Dest]; pr != nil {
					d.addrs = pr.BusAddrs
				}
				dests[e.Dest] = d
				order = append(order, e.Dest)
			}
			if len(d.events) < maxShipPerTick {
				d.events = append(d.events, *e)
			}
		}
	})
	// Each destination's events go one at a time in sequence order (its
	// inbox applies them in that order); a failure leaves the rest of that
	// destination for the next tick.
	for _, name := range order {
		d := dests[name]
		for _, e := range d.events {
			if ctx.Err() != nil || !fd.shipOne(ctx, e, d.addrs, ppID) {
				break
			}
		}
	}
}

// maxShipPerTick bounds the events shipped to one destination per tick.
const maxShipPerTick = 512

// shipOne sends one outbox event and records the answer; false when it
// was not delivered.
func (fd *fed) shipOne(ctx context.Context, e fsm.OutEvent, addrs []string, ppID string) bool {
	n := fd.n
	payload := fsm.Encode(&fsm.BusReceive{Origin: fd.kernel, Seq: e.Seq, PassportID: ppID, Entity: e.Entity, Op: e.Op,
		Resource: e.Resource, Args: e.Args, TokenHash: e.TokenHash})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ack, _, err := fd.send(cctx, e.Dest, addrs, transport.Frame{Seq: e.Seq, PassportID: ppID, Type: "syscall", Payload: payload})
	cancel()
	if err != nil {
		metricInc("bus.send_failed")
		n.log.Debug("bus send failed; will retry", "event", e.ID, "err", err)
		return false
	}
	var res fsm.BusResult
	if len(ack.Result) > 0 {
		if err := fsm.Decode(ack.Result, &res); err != nil {
			n.log.Warn("bus ack carries an unreadable result", "event", e.ID, "err", err)
			return false
		}
	}
	d := fsm.BusDelivered{Dest: e.Dest, Seq: e.Seq, Rejected: ack.Status == transport.AckRejected, Result: res}
	if _, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdBusDelivered, Payload: fsm.Encode(&d)}); err != nil {
		n.log.Warn("recording bus delivery", "event", e.ID, "err", err)
		return false
	}
	metricInc("bus.delivered")
	return true
}

// handleFrame is the bus handler: verify, drop a replay the ledger
// already applied, apply through the ledger, ack.
func (fd *fed) handleFrame(ctx context.Context, peerNode string, b []byte) ([]byte, error) {
	f, env, err := fd.verifyFrame(peerNode, b)
	if err != nil {
		return nil, err
	}
	ack := transport.Ack{Version: transport.FrameVersion, Origin: f.Origin, Responder: fd.kernel, Seq: f.Seq, EventDigest: transport.DigestFrame(b)}
	if h, ok := fd.n.frameHandler(f.Type); ok {
		return fd.serviceFrame(ctx, f, ack, h)
	}
	if env.Type == fsm.CmdBusReceive {
		dropped, err := fd.screenReplay(f, &ack)
		if err != nil {
			return nil, err
		}
		if dropped {
			return fd.sealAck(ack)
		}
	}
	res, err := fd.n.Apply(ctx, env)
	if env.Type == fsm.CmdBusReceive {
		fd.windows.advance(f.Origin, fd.inbox(f.Origin, 0).next)
	}
	switch {
	case err != nil, res.Reason == fsm.ReasonSequenceGap:
		ack.Status = transport.AckUnavailable // the sender retries
	case res.Duplicate:
		ack.Status = transport.AckDuplicate
	case res.Reason == fsm.ReasonPassportInvalid, res.Reason == fsm.ReasonWrongRole, res.Reason == fsm.ReasonMalformed:
		ack.Status = transport.AckRejected
	default:
		ack.Status = transport.AckApplied
	}
	if err == nil {
		ack.Result = ackResult(env.Type, res)
	}
	return fd.sealAck(ack)
}

// sealAck encodes an ack under the key of the link back to its origin.
func (fd *fed) sealAck(ack transport.Ack) ([]byte, error) {
	key, ok := fd.linkKey(fd.kernel, ack.Origin)
	if !ok {
		return nil, transport.ErrUnknownLink
	}
	return transport.EncodeAck(ack, key)
}

// verifyFrame decodes a frame and checks, before anything reaches the
// ledger, its sender, destination, standing and payload; it returns the
// command the frame proposes.
func (fd *fed) verifyFrame(peerNode string, b []byte) (transport.Frame, fsm.Envelope, error) {
	f, err := transport.Decode(b, fd.linkKey)
	if err != nil {
		metricInc("bus.rejected.frame")
		return f, fsm.Envelope{}, err
	}
	// The sender's certificate names the origin's node, and (a
	// kernel-bound certificate) the origin kernel: peerNode is
	// "KERNEL/NODE", or "/NODE" for a legacy certificate.
	peerKernel, node, _ := strings.Cut(peerNode, "/")
	if f.OriginNode != node || (peerKernel != "" && peerKernel != f.Origin) {
		metricInc("bus.rejected.origin")
		return f, fsm.Envelope{}, errBusOrigin
	}
	if f.Destination != fd.kernel {
		metricInc("bus.rejected.destination")
		return f, fsm.Envelope{}, errBusNotForUs
	}
	if !fd.standing(f.Origin, f.PassportID) {
		metricInc("bus.rejected.standing")
		return f, fsm.Envelope{}, errBusStanding
	}
	env, err := fd.frameCommand(f)
	return f, env, err
}

// frameCommand is the command a verified frame proposes, by its type and
// this kernel's role.
func (fd *fed) frameCommand(f transport.Frame) (fsm.Envelope, error) {
	role := fd.n.cfg.Role
	if _, ok := fd.n.frameHandler(f.Type); ok {
		return fsm.Envelope{}, nil // a service's frame: not ledgered (witnesshost.go)
	}
	switch {
	case f.Type == "witness" && role == fsm.RoleSovereign:
		var w fsm.FedWitness
		if err := fsm.Decode(f.Payload, &w); err != nil || w.Domain != f.Origin {
			metricInc("bus.rejected.payload")
			return fsm.Envelope{}, fmt.Errorf("%w: witness payload", transport.ErrMalformed)
		}
		return fsm.Envelope{Type: fsm.CmdFedWitness, Payload: f.Payload}, nil
	case f.Type == "canon.ack" && role == fsm.RoleSovereign:
		var a fsm.FedCanonAck
		if err := fsm.Decode(f.Payload, &a); err != nil || a.Domain != f.Origin {
			metricInc("bus.rejected.payload")
			return fsm.Envelope{}, fmt.Errorf("%w: canon acknowledgement payload", transport.ErrMalformed)
		}
		return fsm.Envelope{Type: fsm.CmdFedCanonAck, Payload: f.Payload}, nil
	case f.Type == "syscall" && role == fsm.RoleDomain:
		var p fsm.BusReceive
		if err := fsm.Decode(f.Payload, &p); err != nil || p.Origin != f.Origin || p.Seq != f.Seq || p.PassportID != f.PassportID {
			metricInc("bus.rejected.payload")
			return fsm.Envelope{}, fmt.Errorf("%w: syscall payload does not match its frame", transport.ErrMalformed)
		}
		return fsm.Envelope{Type: fsm.CmdBusReceive, Payload: f.Payload}, nil
	}
	metricInc("bus.rejected.type")
	return fsm.Envelope{}, errBusEventType
}

// standing applies fsm.State.PeerStanding, the ledger's own rule, before
// anything reaches the ledger.
func (fd *fed) standing(origin, ppID string) bool {
	ok := false
	fd.n.fedState(func(st *fsm.State, _ *fsm.FedState) {
		_, r := st.PeerStanding(origin, ppID, fd.n.now().UnixNano())
		ok = r == fsm.ReasonOK
	})
	return ok
}

// Bus refusal sentinels (counted by the transport under ErrRefused).
var (
	errBusNotForUs  = errors.New("bus: event is not addressed to this kernel")
	errBusStanding  = errors.New("bus: sender has no standing (passport unknown, expired or revoked)")
	errBusOrigin    = errors.New("bus: origin node does not match the TLS peer")
	errBusEventType = errors.New("bus: unknown event type")
)
