package kernel

import "github.com/hashicorp/raft"

// unpipelined is the node's Raft transport with pipelined replication
// turned off: the leader sends each follower its next batch (up to
// MaxAppendEntries entries) when the previous one is answered.
//
// hashicorp/raft's netPipeline (v1.7.3) can deadlock: when a follower
// answers Success=false, or replication stops, pipelineDecode returns
// while decodeResponses waits to hand it a response and the sender waits
// to hand decodeResponses the next request; pipelineReplicate never
// reaches its deferred pipeline.Close. The follower then receives
// heartbeats but no entries until the leader restarts, and the leader's
// Shutdown waits forever on that goroutine (seen here: a node's Close
// hung for minutes after a peer left). grafana/pyroscope#5518 describes
// the same deadlock and the same remedy.
type unpipelined struct{ *raft.NetworkTransport }

// AppendEntriesPipeline implements raft.Transport: never pipelined.
func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
