package kernel

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// History answers reads at an earlier point of the ledger, off the Raft
// write path (package history implements it from this node's archive and
// its checkpoints, and installs itself with SetHistory). Without one,
// as-of reads are refused as unavailable.
type History interface {
	// At runs fn on the ledger state right after event seq, read only.
	At(ctx context.Context, seq uint64, fn func(l *fsm.Ledger)) error
	// SeqAt is the last event at or before ledger time t, and its time.
	SeqAt(ctx context.Context, t int64) (seq uint64, at int64, err error)
	// TimeOf is the ledger time of event seq.
	TimeOf(seq uint64) (int64, error)
}

// SetHistory installs the node's history (a service does, in Start).
func (n *Node) SetHistory(h History) { n.history.Store(&h) }

func (n *Node) historyOrNil() History {
	if p := n.history.Load(); p != nil {
		return *p
	}
	return nil
}

// errNoHistory: nothing answers as-of reads on this node.
var errNoHistory error = &httpedge.Error{Code: api.CodeUnavailable, Msg: "this node keeps no queryable history (the history service is not running)"}

// ParseAsOf reads an as-of point: a seq, or an RFC 3339 time (ledger
// time). ok is false for an empty string.
func ParseAsOf(s string) (seq uint64, t int64, ok bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0, false, nil
	}
	if v, perr := strconv.ParseUint(s, 10, 64); perr == nil {
		if v == 0 {
			return 0, 0, true, httpedge.BadRequest("as-of seq must be at least 1")
		}
		return v, 0, true, nil
	}
	tm, terr := time.Parse(time.RFC3339Nano, s)
	if terr != nil {
		return 0, 0, true, httpedge.BadRequest("as-of %q is neither a seq nor an RFC 3339 time (e.g. 2026-12-08T10:00:00Z)", s)
	}
	return 0, tm.UnixNano(), true, nil
}

// ResolveAsOf turns the request's as_of query value into a point of
// history: the seq itself (it must be in the ledger), or the last event
// at or before the time. nil when the request names none.
func (n *Node) ResolveAsOf(ctx context.Context, r *http.Request) (*api.AsOf, error) {
	seq, t, ok, err := ParseAsOf(r.URL.Query().Get("as_of"))
	if !ok || err != nil {
		return nil, err
	}
	h := n.historyOrNil()
	if h == nil {
		return nil, errNoHistory
	}
	if seq == 0 {
		s, at, err := h.SeqAt(ctx, t)
		if err != nil {
			return nil, err
		}
		return &api.AsOf{Seq: s, Time: time.Unix(0, at).UTC()}, nil
	}
	if last := n.ArchivedSeq(); seq > last {
		return nil, &httpedge.Error{Code: api.CodeNotFound, Msg: "seq " + strconv.FormatUint(seq, 10) + " is beyond this node's ledger (at " + strconv.FormatUint(last, 10) + ")"}
	}
	at, err := h.TimeOf(seq)
	if err != nil {
		return nil, err
	}
	return &api.AsOf{Seq: seq, Time: time.Unix(0, at).UTC()}, nil
}

// ReadAsOf runs fn on the state a read route answers from: the current
// applied state, or — when the request names as_of — the state at that
// point of history, which needs audit.read besides what the route needs.
// at is nil for a current read. It answers errors itself and reports
// whether fn ran.
func (n *Node) ReadAsOf(w http.ResponseWriter, r *http.Request, c *httpedge.Caller, fn func(l *fsm.Ledger, at *api.AsOf)) bool {
	if r.URL.Query().Get("as_of") == "" {
		n.fsm.read(func(l *fsm.Ledger, _ uint64) { fn(l, nil) })
		return true
	}
	err := n.RequireScope(r.Context(), c, fsm.OpAuditRead)
	var at *api.AsOf
	if err == nil {
		at, err = n.ResolveAsOf(r.Context(), r)
	}
	if err == nil {
		err = n.historyOrNil().At(r.Context(), at.Seq, func(l *fsm.Ledger) { fn(l, at) })
	}
	if err != nil {
		httpedge.WriteErr(w, err)
		return false
	}
	return true
}

// handleKVGetAsOf is kv get with as_of: a ledgered kv.get judged on the
// current state (the caller's capability must allow the read now), the
// event recording the seq, and then the value at that seq from history.
func (n *Node) handleKVGetAsOf(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller, key string) {
	at, err := n.ResolveAsOf(r.Context(), r)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdKVGet, &fsm.KVKey{Key: key, AsOf: at.Seq})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out := kvResponse(key, res)
	out.AsOf = at
	out.Version = 0
	if res.Decision == fsm.DecisionPermit {
		err = n.historyOrNil().At(r.Context(), at.Seq, func(l *fsm.Ledger) {
			if e := l.State().KV[key]; e != nil {
				out.Value, out.Found, out.Version = string(e.Value), true, e.Version
			}
		})
		if err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		if !out.Found {
			out.Reason = fsm.ReasonNotFound.String()
		}
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// Hooks the history service reads the archive through.

// ArchivedRecords calls fn, in order, for each record (events and noops)
// of this node's archive whose Raft index is at least from.
func (n *Node) ArchivedRecords(from uint64, fn func(rec archive.Record) error) error {
	return n.arch.IterateIndex(from, fn)
}

// ArchivedRecord is the archive's record of event seq.
func (n *Node) ArchivedRecord(seq uint64) (archive.Record, error) { return n.arch.ReadSeq(seq) }

// ArchiveFirst is the first record's Raft index and seq: a node that
// joined from a snapshot holds history from there on.
func (n *Node) ArchiveFirst() (index, seq uint64) { return n.arch.First() }

// Done is closed when the node begins to close: long-lived responses (a
// ledger follow stream) end then, before the HTTP server shuts down.
func (n *Node) Done() <-chan struct{} { return n.ctx.Done() }

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }
