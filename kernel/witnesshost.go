package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/passport"
	"github.com/dominus-kernel/dominus/transport"
)

// FrameHandler answers a bus frame of a service's own type: one that is
// not ledgered. The bus has checked the frame's MAC, its origin node and
// kernel, its destination and the origin's standing before it runs;
// origin is the sending kernel (a domain's name). The answer travels
// back in the ack (at most transport.MaxAckResultBytes); an error is
// answered as a rejection carrying its text.
type FrameHandler func(ctx context.Context, origin string, payload []byte) ([]byte, error)

// HandleFrames serves bus frames of type typ with h (from a service's
// Start). Ledgered frame types cannot be taken.
func (n *Node) HandleFrames(typ string, h FrameHandler) {
	switch typ {
	case "witness", "canon.ack", "syscall":
		panic(fmt.Sprintf("kernel: bus frame type %q is the ledger's", typ))
	}
	n.frameHandlers.Store(typ, h)
}

func (n *Node) frameHandler(typ string) (FrameHandler, bool) {
	h, ok := n.frameHandlers.Load(typ)
	if !ok {
		return nil, false
	}
	return h.(FrameHandler), true
}

// ErrNoSovereign is returned by SendToSovereign on a kernel that is not
// a joined domain.
var ErrNoSovereign = errors.New("kernel: not a domain joined to a sovereign")

// SendToSovereign sends a frame of a service's own type to the
// sovereign over the bus, under this domain's passport, and returns the
// sovereign's answer.
func (n *Node) SendToSovereign(ctx context.Context, typ string, payload []byte) ([]byte, error) {
	fd := n.fed
	if fd == nil {
		return nil, ErrNoSovereign
	}
	var ppID string
	var addrs []string
	n.fedState(func(st *fsm.State, f *fsm.FedState) {
		if st.Meta.Role != fsm.RoleDomain {
			return
		}
		if p, err := passport.Decode(f.Passport); err == nil {
			ppID = p.ID
		}
		if s := f.Peers[fsm.SovereignKernel]; s != nil {
			addrs = s.BusAddrs
		}
	})
	if ppID == "" {
		return nil, ErrNoSovereign
	}
	seq := uint64(n.now().UnixNano()) // like witness frames: a time-ordered sequence, not windowed
	ack, _, err := fd.send(ctx, fsm.SovereignKernel, addrs, transport.Frame{Seq: seq, PassportID: ppID, Type: typ, Payload: payload})
	if err != nil {
		return nil, err
	}
	if ack.Status != transport.AckApplied {
		return nil, fmt.Errorf("the sovereign refused the %s frame: %s", typ, ack.Result)
	}
	return ack.Result, nil
}

// serviceFrame answers a verified frame of a service's type.
func (fd *fed) serviceFrame(ctx context.Context, f transport.Frame, ack transport.Ack, h FrameHandler) ([]byte, error) {
	res, err := h(ctx, f.Origin, f.Payload)
	switch {
	case err != nil:
		msg := err.Error()
		if len(msg) > 1024 {
			msg = msg[:1024]
		}
		ack.Status, ack.Result = transport.AckRejected, []byte(msg)
	case len(res) > transport.MaxAckResultBytes:
		ack.Status, ack.Result = transport.AckRejected, []byte("answer too large")
	default:
		ack.Status, ack.Result = transport.AckApplied, res
	}
	return fd.sealAck(ack)
}
