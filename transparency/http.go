package transparency

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/transparency/tlog"
)

// Routes implements kernel.Service.
func (s *Service) Routes() []httpedge.Route {
	return []httpedge.Route{
		{Pattern: "GET /v1/ledger/checkpoint", Handler: s.handleCheckpoint, Scopes: []string{fsm.OpAuditRead}},
		{Pattern: "POST /v1/ledger/checkpoint", Handler: s.handleSign, Scopes: []string{fsm.OpSnapshot}},
		{Pattern: "GET /v1/ledger/checkpoint/keys", Open: s.handleKeys},
		{Pattern: "GET /v1/ledger/proof/inclusion/{seq}", Handler: s.handleInclusion, Scopes: []string{fsm.OpAuditRead}},
		{Pattern: "GET /v1/ledger/proof/consistency", Handler: s.handleConsistency, Scopes: []string{fsm.OpAuditRead}},
	}
}

// checkpointJSON parses a stored note for reading (its signatures were
// verified when it was made or accepted).
func checkpointJSON(note []byte) (api.Checkpoint, error) {
	text, sigs, err := tlog.SplitNote(note)
	if err != nil {
		return api.Checkpoint{}, err
	}
	c, err := tlog.ParseCheckpoint(text)
	if err != nil {
		return api.Checkpoint{}, err
	}
	return api.Checkpoint{KernelID: c.KernelID, TreeSize: c.Size, Root: hex.EncodeToString(c.Root), Head: hex.EncodeToString(c.Head),
		Time: c.Time, Signers: sigs, Note: string(note)}, nil
}

func (s *Service) handleCheckpoint(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	note, _ := s.store.last()
	if r.URL.Query().Get("countersigned") != "" {
		note = s.store.lastWhere(countersigned)
	}
	if note == nil {
		httpedge.WriteErr(w, httpedge.Errorf(api.CodeNotFound, "no checkpoint signed yet (POST /v1/ledger/checkpoint signs one)"))
		return
	}
	out, err := checkpointJSON(note)
	httpedge.Answer(w, out, err)
}

func (s *Service) handleSign(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	var note []byte
	var err error
	if s.k.Raft().State() == raft.Leader {
		note, err = s.sign(r.Context())
	} else if addr, _ := s.k.Raft().LeaderWithID(); addr == "" {
		err = httpedge.Errorf(api.CodeNoLeader, "no leader to sign a checkpoint")
	} else {
		var resp signResponse
		if err = s.k.CallMember(r.Context(), string(addr), rpcSign, &struct{}{}, &resp); err == nil {
			note = resp.Note
			err = s.accept(r.Context(), note)
		}
	}
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out, err := checkpointJSON(note)
	httpedge.Answer(w, out, err)
}

func (s *Service) handleKeys(w http.ResponseWriter, r *http.Request) {
	out, err := s.memberKeys()
	httpedge.Answer(w, out, err)
}

func hexAll(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}

// proofSize is the tree size a proof is asked against: ?tree_size=N, or
// the latest checkpoint's (which it then carries).
func (s *Service) proofSize(r *http.Request) (uint64, []byte, error) {
	if q := r.URL.Query().Get("tree_size"); q != "" {
		n, err := strconv.ParseUint(q, 10, 64)
		if err != nil || n == 0 {
			return 0, nil, httpedge.BadRequest("tree_size %q: want a positive integer", q)
		}
		return n, s.store.get(n), nil
	}
	note, size := s.store.last()
	if note == nil {
		return 0, nil, httpedge.Errorf(api.CodeNotFound, "no checkpoint signed yet: sign one, or name a tree_size")
	}
	return size, note, nil
}

var errFound = errors.New("found")

func (s *Service) handleInclusion(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		httpedge.WriteErr(w, httpedge.BadRequest("seq %q: want a positive integer", r.PathValue("seq")))
		return
	}
	size, note, err := s.proofSize(r)
	if err == nil && seq > size {
		err = httpedge.BadRequest("seq %d is beyond the tree size %d", seq, size)
	}
	if err == nil {
		err = s.waitSize(r.Context(), size)
	}
	var out api.InclusionProof
	if err == nil {
		var p [][]byte
		p, err = s.tree.InclusionProof(seq-1, size)
		out = api.InclusionProof{Seq: seq, LeafIndex: seq - 1, TreeSize: size, Proof: hexAll(p), Checkpoint: string(note)}
	}
	if err == nil {
		var root []byte
		root, err = s.tree.Root(size)
		out.Root = hex.EncodeToString(root)
	}
	if err == nil {
		err = s.k.ArchivedEvents(seq, func(ev *fsm.Event, head []byte) error {
			out.EventHash = hex.EncodeToString(head)
			out.EventRecord = base64.StdEncoding.EncodeToString(fsm.Encode(ev))
			return errFound
		})
		if errors.Is(err, errFound) {
			err = nil
		} else if err == nil {
			err = httpedge.Errorf(api.CodeNotFound, "event %d is not in this node's archive", seq)
		}
	}
	httpedge.Answer(w, out, err)
}

func (s *Service) handleConsistency(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	q := r.URL.Query()
	from, err1 := strconv.ParseUint(q.Get("from"), 10, 64)
	to, err2 := strconv.ParseUint(q.Get("to"), 10, 64)
	if err1 != nil || err2 != nil || from == 0 || from > to {
		httpedge.WriteErr(w, httpedge.BadRequest("from=%q to=%q: want tree sizes 0 < from <= to", q.Get("from"), q.Get("to")))
		return
	}
	if err := s.waitSize(r.Context(), to); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	p, err := s.tree.ConsistencyProof(from, to)
	out := api.ConsistencyProof{FromSize: from, ToSize: to, Proof: hexAll(p), From: string(s.store.get(from)), To: string(s.store.get(to))}
	if err == nil {
		var a, b []byte
		a, err = s.tree.Root(from)
		if err == nil {
			b, err = s.tree.Root(to)
		}
		out.FromRoot, out.ToRoot = hex.EncodeToString(a), hex.EncodeToString(b)
	}
	httpedge.Answer(w, out, err)
}
