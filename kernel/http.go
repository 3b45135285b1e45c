package kernel

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/canon"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// listenHTTP binds the HTTP API's port (before the node joins anything).
func (n *Node) listenHTTP() error {
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http on %s: %w: choose a free --http address", n.cfg.HTTPAddr, err)
	}
	n.httpLn = ln
	return nil
}

// serveHTTP serves the HTTP API on the bound listener.
func (n *Node) serveHTTP() {
	ln := n.httpLn
	n.httpSrv = &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	if n.tls != nil && !n.cfg.HTTPInsecure {
		n.httpSrv.TLSConfig = n.tls.ServerConfig(false)
		ln = tls.NewListener(ln, n.httpSrv.TLSConfig)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
}

// routes are the kernel's own HTTP routes (services add theirs).
func (n *Node) routes() []httpedge.Route {
	var out []httpedge.Route
	open := func(pattern string, h http.HandlerFunc) { out = append(out, httpedge.Route{Pattern: pattern, Open: h}) }
	authed := func(pattern string, h httpedge.Handler, scopes ...string) {
		out = append(out, httpedge.Route{Pattern: pattern, Handler: h, Scopes: scopes})
	}
	open("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		httpedge.WriteJSON(w, http.StatusOK, api.Health{Status: "ok"})
	})
	open("GET /v1/ready", n.handleReady)
	open("GET /v1/status", n.handleStatus)
	open("POST /v1/operator/init", n.handleInit)
	authed("GET /v1/operator/raft/peers", n.handlePeers, fsm.OpAuditRead)
	authed("POST /v1/operator/raft/add-peer", n.handleAddPeer)
	authed("POST /v1/operator/raft/remove-peer", n.handleRemovePeer, fsm.OpOperatorManage)
	authed("POST /v1/operator/raft/transfer-leadership", n.handleTransfer, fsm.OpOperatorManage)
	authed("POST /v1/operator/raft/leave", n.handleLeave, fsm.OpOperatorManage)
	authed("POST /v1/operator/raft/snapshot", n.handleRaftSnapshot, fsm.OpOperatorManage)
	authed("GET /v1/debug/pprof/{profile}", n.handlePprof)
	authed("PUT /v1/kv/{key...}", n.handleKVPut)
	authed("DELETE /v1/kv/{key...}", n.handleKVDelete)
	authed("POST /v1/kv-get/{key...}", n.handleKVGet)
	authed("POST /v1/cas/{key...}", n.handleKVCAS)
	authed("GET /v1/ledger/tail", n.handleLedgerTail, fsm.OpAuditRead)
	authed("GET /v1/ledger/event/{seq}", n.handleLedgerShow, fsm.OpAuditRead)
	authed("GET /v1/ledger/verify", n.handleLedgerVerify, fsm.OpAuditRead)
	authed("GET /v1/ledger/export", n.handleLedgerExport, fsm.OpAuditRead)
	authed("POST /v1/snapshot/save", n.handleSnapshotSave)
	authed("POST /v1/snapshot/restore", n.handleSnapshotRestore)
	n.registerGate(authed)
	n.registerProtocol(open, authed)
	n.registerLimits(authed)
	n.registerFederation(open, authed)
	n.registerCortex(open, authed)
	return out
}

func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		httpedge.WriteJSON(w, http.StatusServiceUnavailable, api.Health{Status: "unready", Reason: "no leader"})
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, api.Health{Status: "ready"})
}

// Status reports this node's view.
func (n *Node) Status() api.Status {
	addr, id := n.raft.LeaderWithID()
	s := api.Status{
		Node:         n.cfg.Name,
		Leader:       string(id),
		LeaderAddr:   string(addr),
		RaftState:    n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		AppliedIndex: n.raft.AppliedIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		LastLogIndex: n.raft.LastIndex(),
		CanonHash:    canon.HashHex(),
		Version:      n.cfg.Version,
		Peers:        []api.Peer{},
	}
	n.fsm.mu.RLock()
	st := n.fsm.ledger.State()
	s.Head = api.Head{Seq: st.Seq, Hash: hex.EncodeToString(st.Head[:])}
	dseq, depoch, digest := n.fsm.ledger.DigestLater()
	s.Epoch = st.Epoch
	s.Initialized = st.Initialized
	s.Protocol = st.Meta.Protocol
	s.ProtocolSupported = fsm.ProtocolVersion
	s.KernelID = st.Meta.KernelID
	s.Domain = st.Meta.Domain
	_, s.Halted = st.Halts[""]
	if st.Sense != nil {
		s.Posture = st.Sense.Posture().Level.String()
	}
	fedStatus(st, &s)
	if st.Time > 0 {
		s.LedgerTime = time.Unix(0, st.Time).UTC()
	}
	keys := map[string]string{}
	for _, m := range st.SortedMembers() {
		if k := st.MemberKey(m.Node); k != nil {
			keys[m.Node] = hex.EncodeToString(k)
		}
	}
	n.fsm.mu.RUnlock()
	s.StateDigest = n.digestAt(dseq, depoch, digest)
	s.LastSnapshotIndex, _ = n.lastSnapshot()
	s.Replaying, s.ReplayTarget = replayState(s.AppliedIndex, s.CommitIndex, s.LastLogIndex)
	s.DiskFull = n.DiskFull()
	supports := map[string]uint16{}
	for _, m := range n.cachedMembers() {
		supports[m.node] = m.supports
	}
	supports[n.cfg.Name] = fsm.ProtocolVersion
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			s.Peers = append(s.Peers, api.Peer{ID: string(sv.ID), Address: string(sv.Address), Suffrage: sv.Suffrage.String(), Leader: sv.ID == id,
				Supports: supports[string(sv.ID)], NodeKey: keys[string(sv.ID)]})
		}
	}
	return s
}

// replayState: a node that applies more than replayLag entries behind the
// cluster's commit index is replaying towards it; one that knows no
// commit index yet (just restarted) works towards its last log entry.
func replayState(applied, commit, last uint64) (bool, uint64) {
	target := commit
	if target == 0 {
		target = last
	}
	if applied+replayLag < target {
		return true, target
	}
	return false, 0
}

// replayLag is how far behind its target a node may apply before status
// calls it replaying (a healthy follower trails by a few entries).
const replayLag = 64

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	httpedge.WriteJSON(w, http.StatusOK, n.Status())
}

func (n *Node) handlePeers(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	httpedge.WriteJSON(w, http.StatusOK, n.Status().Peers)
}

func (n *Node) handleRemovePeer(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.RemovePeerRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if req.ID == "" {
		httpedge.WriteErr(w, httpedge.BadRequest("id is required"))
		return
	}
	if err := n.RemovePeer(r.Context(), req.ID); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, map[string]string{"removed": req.ID})
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.TransferLeadershipRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if err := n.TransferLeadership(r.Context(), req.ID); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, map[string]string{"leader": n.Status().Leader})
}

// propose builds an authenticated envelope for the caller and applies it.
func (n *Node) propose(r *http.Request, token string, t fsm.CommandType, payload any) (fsm.Result, error) {
	rid := r.Header.Get(api.HeaderRequestID)
	if len(rid) > fsm.MaxRequestIDBytes {
		return fsm.Result{}, httpedge.BadRequest("request id longer than %d bytes", fsm.MaxRequestIDBytes)
	}
	if fsm.IsInternal(t) {
		// Internal commands come only from the kernel's own nodes; the
		// ledger would refuse this one internal_only anyway.
		return fsm.Result{}, &httpedge.Error{Code: api.CodeForbidden, Msg: fmt.Sprintf("%s is an internal command: no bearer token may propose it", t)}
	}
	env := fsm.Envelope{Type: t, RequestID: rid, Auth: TokenHash(token), Payload: fsm.Encode(payload)}
	return n.Apply(r.Context(), env)
}

func kvResponse(key string, res fsm.Result) api.KVResponse {
	return api.KVResponse{Outcome: httpedge.Outcome(res), Key: key, Value: string(res.Value), Found: res.Found, Version: res.Version,
		Succeeded: res.Decision == fsm.DecisionPermit && res.Reason == fsm.ReasonOK}
}

func checkKey(key string) error {
	if key == "" || len(key) > fsm.MaxKeyBytes {
		return httpedge.BadRequest("key must be 1..%d bytes", fsm.MaxKeyBytes)
	}
	return nil
}

func (n *Node) kvAnswer(w http.ResponseWriter, key string, res fsm.Result, err error) {
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	// Every decision is an answer: DENY and ESCALATE are 200 with the
	// decision and reason in the body, like PERMIT.
	httpedge.WriteJSON(w, http.StatusOK, kvResponse(key, res))
}

// keyAndBody reads the {key} of the path and the JSON body, answering
// the error itself when either is bad.
func keyAndBody(w http.ResponseWriter, r *http.Request, body any) (string, bool) {
	key := r.PathValue("key")
	err := checkKey(key)
	if err == nil {
		err = httpedge.DecodeBody(r, body)
	}
	if err != nil {
		httpedge.WriteErr(w, err)
		return "", false
	}
	return key, true
}

func (n *Node) handleKVPut(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.KVPutRequest
	key, ok := keyAndBody(w, r, &req)
	if !ok {
		return
	}
	if len(req.Value) > fsm.MaxValueBytes {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeTooLarge, Msg: fmt.Sprintf("value of %d bytes exceeds %d", len(req.Value), fsm.MaxValueBytes)})
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdKVPut, &fsm.KVPut{Key: key, Value: []byte(req.Value)})
	n.kvAnswer(w, key, res, err)
}

func (n *Node) handleKVGet(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	if r.URL.Query().Get("as_of") != "" {
		key := r.PathValue("key")
		if err := checkKey(key); err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		n.handleKVGetAsOf(w, r, caller, key)
		return
	}
	n.kvKeyOnly(w, r, caller, fsm.CmdKVGet)
}

func (n *Node) handleKVDelete(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	n.kvKeyOnly(w, r, caller, fsm.CmdKVDelete)
}

// kvKeyOnly proposes a kv command that takes only the key.
func (n *Node) kvKeyOnly(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller, ct fsm.CommandType) {
	key := r.PathValue("key")
	if err := checkKey(key); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	res, err := n.propose(r, caller.Token, ct, &fsm.KVKey{Key: key})
	n.kvAnswer(w, key, res, err)
}

func (n *Node) handleKVCAS(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.KVCASRequest
	key, ok := keyAndBody(w, r, &req)
	if !ok {
		return
	}
	if len(req.Value) > fsm.MaxValueBytes || len(req.Expect) > fsm.MaxValueBytes {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeTooLarge, Msg: "value exceeds the limit"})
		return
	}
	p := &fsm.KVCAS{Key: key, ExpectExists: !req.ExpectAbsent, Expect: []byte(req.Expect), ExpectVersion: req.ExpectVersion, Value: []byte(req.Value)}
	res, err := n.propose(r, caller.Token, fsm.CmdKVCAS, p)
	n.kvAnswer(w, key, res, err)
}

// EventFromArchive converts an archived record to its API form.
func EventFromArchive(rec archive.Record) (api.Event, bool, error) {
	ae, err := fsm.DecodeArchived(rec.Data)
	if err != nil {
		return api.Event{}, false, err
	}
	if ae.Event == nil {
		return api.Event{}, false, nil
	}
	ev := ae.Event
	out := api.Event{
		Seq: ev.Seq, Time: time.Unix(0, ev.Time).UTC(), Epoch: ev.Epoch, Index: ev.Index, Type: ev.Type.String(),
		Actor: ev.Actor, RequestID: ev.RequestID, Subject: ev.Subject, Decision: ev.Decision.JSON(), Reason: ev.Reason.String(),
		PayloadHash: hex.EncodeToString(ev.PayloadHash), Prev: hex.EncodeToString(ev.Prev), Hash: hex.EncodeToString(ae.Head),
	}
	addDetail(&out, ev)
	return out, true, nil
}

// addDetail copies the gate detail a person or script wants to see.
func addDetail(out *api.Event, ev *fsm.Event) {
	if len(ev.Detail) == 0 {
		return
	}
	switch ev.Type {
	case fsm.CmdCapGrant, fsm.CmdCapDelegate:
		var d fsm.GrantDetail
		if fsm.Decode(ev.Detail, &d) == nil {
			out.GrantedBy, out.CapID = d.GrantedBy, d.CapID
		}
	case fsm.CmdSyscall, fsm.CmdGatewaySyscall, fsm.CmdKVPut, fsm.CmdKVGet, fsm.CmdKVDelete, fsm.CmdKVCAS:
		var d fsm.SyscallDetail
		if fsm.Decode(ev.Detail, &d) == nil {
			out.Op, out.CapID, out.ApprovalID, out.Matched = d.Op, d.CapID, d.ApprovalID, d.Policy.Matched
			for _, s := range d.Shadow {
				out.Shadow = append(out.Shadow, s.Set+":"+s.Outcome.Decision.JSON()+":"+s.Outcome.Reason.String())
			}
		}
	}
}

func (n *Node) handleLedgerTail(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	count := 20
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 10000 {
			httpedge.WriteErr(w, httpedge.BadRequest("n must be 1..10000"))
			return
		}
		count = v
	}
	_, last := n.arch.Last()
	from := uint64(1)
	if last > uint64(count) {
		from = last - uint64(count) + 1
	}
	evs := make([]api.Event, 0, count)
	err := n.arch.Iterate(from, func(rec archive.Record) error {
		ev, ok, err := EventFromArchive(rec)
		if err != nil {
			return err
		}
		if ok && len(evs) < count {
			evs = append(evs, ev)
		}
		return nil
	})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, evs)
}

func (n *Node) handleLedgerShow(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		httpedge.WriteErr(w, httpedge.BadRequest("seq must be a positive integer"))
		return
	}
	rec, err := n.arch.ReadSeq(seq)
	if errors.Is(err, archive.ErrNotFound) {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: fmt.Sprintf("no event at seq %d", seq)})
		return
	}
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	ev, _, err := EventFromArchive(rec)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, ev)
}

// VerifyArchive re-checks every link of the archive from genesis.
func (n *Node) VerifyArchive() api.VerifyResponse {
	prev := fsm.HeadRef{Hash: fsm.ZeroHead[:]}
	var events uint64
	err := n.arch.Iterate(1, func(rec archive.Record) error {
		next, err := fsm.VerifyChain(prev, rec.Data)
		if err != nil {
			return err
		}
		if next.Seq != rec.Seq {
			return &fsm.VerifyError{Seq: prev.Seq + 1, Reason: fmt.Sprintf("record claims seq %d", rec.Seq)}
		}
		if next.Seq != prev.Seq {
			events++
		}
		prev = next
		return nil
	})
	out := api.VerifyResponse{OK: err == nil, Head: api.Head{Seq: prev.Seq, Hash: hex.EncodeToString(prev.Hash)}, Events: events}
	if err != nil {
		var ve *fsm.VerifyError
		var ce *archive.CorruptError
		switch {
		case errors.As(err, &ve):
			out.BadSeq = ve.Seq
		case errors.As(err, &ce):
			out.BadSeq = ce.AfterSeq + 1
		default:
			out.BadSeq = prev.Seq + 1
		}
		out.Message = err.Error()
		return out
	}
	// The archive must end where the live ledger is.
	h, _ := n.Head()
	if h.Seq != prev.Seq || hex.EncodeToString(h.Hash) != out.Head.Hash {
		out.OK = false
		out.BadSeq = prev.Seq
		out.Message = fmt.Sprintf("archive ends at %s, ledger head is %s", prev, h)
	}
	return out
}

func (n *Node) handleLedgerVerify(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	httpedge.WriteJSON(w, http.StatusOK, n.VerifyArchive())
}

func (n *Node) handleLedgerExport(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	from := uint64(1)
	if s := r.URL.Query().Get("from"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v == 0 {
			httpedge.WriteErr(w, httpedge.BadRequest("from must be a positive integer"))
			return
		}
		from = v
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	ew, err := archive.NewExportWriter(w, archive.ExportHeader{FromSeq: from, Meta: []byte(n.cfg.Name)})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	_, last := n.arch.Last()
	if err := n.arch.Iterate(from, func(rec archive.Record) error {
		if rec.Seq > last {
			return io.EOF
		}
		return ew.Write(rec)
	}); err != nil && !errors.Is(err, io.EOF) {
		n.log.Error("ledger export aborted", "err", err)
		return // the missing trailer tells the reader the export is incomplete
	}
	if err := ew.Close(); err != nil {
		n.log.Error("ledger export trailer", "err", err)
	}
}

// handleSnapshotSave streams a snapshot of the current state and records
// its head as a cluster checkpoint, so it can later be restored.
func (n *Node) handleSnapshotSave(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	if err := n.requireScope(r.Context(), caller.Token, fsm.OpSnapshot); err != nil {
		httpedge.WriteErr(w, err) // on confirmed state: the snapshot below is linearizable
		return
	}
	var snap []byte
	var head fsm.HeadRef
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { snap, head = l.Snapshot(), l.Head() })
	if snap == nil {
		httpedge.WriteErr(w, errStateTooLarge)
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdCheckpoint, &fsm.Checkpoint{Seq: head.Seq, Hash: head.Hash})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if res.Decision != fsm.DecisionPermit {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeForbidden, Msg: "checkpoint denied: " + res.Reason.String()})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(snap)
}

// Events calls fn for every ledger event from seq on, in order, from this
// node's archive.
//
// The FSM publishes a batch to readers just before the batch's archive
// fsync, so Events first waits (briefly, bounded) until the archive holds
// every event the state already shows: a caller that saw an effect
// complete in the state also sees its completion event.
func (n *Node) Events(from uint64, fn func(api.Event) error) error {
	var seq uint64
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { seq = l.State().Seq })
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if _, archived := n.arch.Last(); archived >= seq {
			break
		}
	}
	return n.arch.Iterate(from, func(rec archive.Record) error {
		ev, ok, err := EventFromArchive(rec)
		if err != nil || !ok {
			return err
		}
		return fn(ev)
	})
}

// handleLeave removes this node from the Raft configuration (handing
// leadership over first if it leads); the process keeps running as a
// non-member until it is stopped.
func (n *Node) handleLeave(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	if err := n.Leave(r.Context()); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, map[string]string{"left": n.cfg.Name})
}

// handleRaftSnapshot takes a Raft snapshot on this node now (an operator's
// compaction; the ledger is unchanged, nothing is proposed).
func (n *Node) handleRaftSnapshot(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	res, err := n.RaftSnapshot()
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, res)
}

// handlePprof serves a Go runtime profile of this process (net/http/pprof:
// profile and trace take ?seconds=N; heap, allocs, goroutine, block,
// mutex, threadcreate take ?debug=N; block and mutex stay empty, their
// sampling is never turned on) when the agent runs with
// --enable-debug.
func (n *Node) handlePprof(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	if !n.cfg.EnableDebug {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "debug endpoints are off on this node (start the agent with --enable-debug)"})
		return
	}
	if err := n.requireScope(r.Context(), caller.Token, fsm.OpOperatorManage); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	switch name := r.PathValue("profile"); name {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "heap", "allocs", "goroutine", "block", "mutex", "threadcreate":
		pprof.Handler(name).ServeHTTP(w, r)
	default:
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: fmt.Sprintf("no profile %q (profile, trace, heap, allocs, goroutine, block, mutex, threadcreate)", name)})
	}
}

// digestAt computes (or reuses) the state digest captured at seq/epoch,
// outside the FSM lock so status never stalls applies.
func (n *Node) digestAt(seq, epoch uint64, compute func() [32]byte) string {
	n.digestMu.Lock()
	defer n.digestMu.Unlock()
	if n.digestSeq == seq && n.digestEpoch == epoch && n.digestHex != "" {
		return n.digestHex
	}
	d := compute()
	n.digestSeq, n.digestEpoch, n.digestHex = seq, epoch, hex.EncodeToString(d[:])
	return n.digestHex
}
