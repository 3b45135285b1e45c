package kernel

import (
	"context"
	"crypto"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

// Hooks a service needs beyond Read, Propose and RequireScope: the
// node's archive (read only), its node key as a signer, and node RPC to
// the kernel's other members.

// ArchivedSeq is the last ledger seq in this node's archive.
func (n *Node) ArchivedSeq() uint64 {
	_, seq := n.arch.Last()
	return seq
}

// ArchivedEvents calls fn, in seq order, for each event in this node's
// archive from seq from on, with the chain head after it. The archive
// checks each frame; fn must not keep ev.
func (n *Node) ArchivedEvents(from uint64, fn func(ev *fsm.Event, head []byte) error) error {
	return n.arch.Iterate(from, func(rec archive.Record) error {
		if rec.Kind != archive.KindEvent {
			return nil
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil {
			return err
		}
		if ae.Event == nil {
			return nil
		}
		return fn(ae.Event, ae.Head)
	})
}

// NodeSigner signs with this node's key (DATA/node.key), whose public
// half the ledger records as the node's member key; nil before the node
// has a key. A service signs only messages that cannot be taken for the
// kernel's own (member evidence, witness and join messages carry their
// own prefixes).
func (n *Node) NodeSigner() crypto.Signer {
	if n.nodeKey == nil {
		return nil
	}
	return n.nodeKey
}

// CallMember invokes a node-RPC method (a service's) on the member at
// addr; in and out are msgpack structs.
func (n *Node) CallMember(ctx context.Context, addr, method string, in, out any) error {
	return n.pool.call(ctx, addr, method, in, out)
}
