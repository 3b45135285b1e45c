package history

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/temporal"
)

// Service is the history of a node: it answers the kernel's as-of reads
// (kernel.SetHistory), builds checkpoints in the background, and serves
// an entity's history and the checkpoints' status (audit.read).
type Service struct {
	kernel.BaseService
	cfg       Config
	k         *kernel.Node
	h         *History
	ctx       context.Context // ends at Stop
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	followers chan struct{} // bounds the open follow streams
}

// MaxFollowers bounds the ledger follow streams one node serves at once
// (more are refused as unavailable).
const MaxFollowers = 64

// followPoll is how often a follow stream looks for new events.
const followPoll = 100 * time.Millisecond

// New returns the service; cfg.Dir "" is DATA/history.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

// Name implements kernel.Service.
func (s *Service) Name() string { return "history" }

// Start implements kernel.Service.
func (s *Service) Start(k *kernel.Node) error {
	s.k = k
	if s.cfg.Dir == "" {
		s.cfg.Dir = filepath.Join(k.DataDir(), "history")
	}
	h, err := Open(k, s.cfg)
	if err != nil {
		return err
	}
	s.h = h
	k.SetHistory(h)
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx, s.cancel = ctx, cancel
	s.followers = make(chan struct{}, MaxFollowers)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		h.Run(ctx, time.Second)
	}()
	return nil
}

// Stop implements kernel.Service.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
}

// History is the service's history (tests).
func (s *Service) History() *History { return s.h }

// Routes implements kernel.Service.
func (s *Service) Routes() []httpedge.Route {
	return []httpedge.Route{
		{Pattern: "GET /v1/history/status", Handler: func(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
			httpedge.WriteJSON(w, http.StatusOK, s.h.Status())
		}, Scopes: []string{fsm.OpAuditRead}},
		{Pattern: "GET /v1/history/entity/{entity...}", Handler: s.handleEntity, Scopes: []string{fsm.OpAuditRead}},
		{Pattern: "GET /v1/ledger/follow", Handler: s.handleFollow, Scopes: []string{fsm.OpAuditRead}},
	}
}

// Bounds on an entity history query.
const (
	DefaultHistoryLimit = 1000
	MaxHistoryLimit     = 100_000
)

// point resolves a --from/--to value (seq or RFC 3339 ledger time) to a
// seq; def when empty. A time resolves to the last event at or before it
// (to) or the first after it (from).
func (s *Service) point(r *http.Request, name string, def uint64, from bool) (uint64, error) {
	seq, t, ok, err := kernel.ParseAsOf(r.URL.Query().Get(name))
	if !ok || err != nil {
		return def, err
	}
	if seq != 0 {
		return seq, nil
	}
	at, tm, err := s.h.SeqAt(r.Context(), t)
	if err != nil {
		if from && httpedge.CodeOf(err) == api.CodeNotFound {
			return def, nil // before the first event: from the start
		}
		return 0, err
	}
	if from && tm < t {
		at++
	}
	return at, nil
}

func (s *Service) handleEntity(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	entity := r.PathValue("entity")
	q := r.URL.Query()
	limit := DefaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			httpedge.WriteErr(w, httpedge.BadRequest("limit must be 1..%d", MaxHistoryLimit))
			return
		}
		limit = n
	}
	_, first := s.k.ArchiveFirst()
	from, err := s.point(r, "from", max(first, 1), true)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	to, err := s.point(r, "to", s.k.ArchivedSeq(), false)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out, err := s.h.EntityHistory(r.Context(), entity, q.Get("op"), max(from, first, 1), to, limit)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// syscallTypes are the commands whose events carry a gate decision
// (fsm.SyscallDetail).
var syscallTypes = map[fsm.CommandType]bool{
	fsm.CmdSyscall: true, fsm.CmdKVPut: true, fsm.CmdKVGet: true, fsm.CmdKVDelete: true, fsm.CmdKVCAS: true,
	fsm.CmdGatewaySyscall: true, fsm.CmdBusReceive: true,
}

// EntityHistory lists entity's gate decisions with seq in [from, to],
// oldest first, at most limit, each with the state it was judged
// against. op "" is every op.
func (h *History) EntityHistory(ctx context.Context, entity, op string, from, to uint64, limit int) ([]api.HistoryEntry, error) {
	out := []api.HistoryEntry{}
	if from > to {
		return out, nil
	}
	rec, err := h.src.ArchivedRecord(from)
	if err != nil {
		return nil, notFound("seq %d is not in this node's archive: %v", from, err)
	}
	owners := map[string]string{} // cap id -> entity
	n := 0
	err = h.src.ArchivedRecords(rec.Index, func(rec archive.Record) error {
		if rec.Kind != archive.KindEvent {
			return nil
		}
		if rec.Seq > to || len(out) >= limit {
			return errStop
		}
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil || ae.Event == nil {
			return err
		}
		ev := ae.Event
		if !syscallTypes[ev.Type] || len(ev.Detail) == 0 {
			return nil
		}
		var d fsm.SyscallDetail
		if fsm.Decode(ev.Detail, &d) != nil || d.CapID == "" || op != "" && d.Op != op {
			return nil
		}
		who := d.Request.Principal
		if !d.Judged {
			who = h.capOwner(owners, d.CapID)
		}
		if who != entity {
			return nil
		}
		e := api.HistoryEntry{
			Seq: ev.Seq, Time: time.Unix(0, ev.Time).UTC(), Op: d.Op, Resource: d.Resource,
			Decision: ev.Decision.JSON(), Reason: ev.Reason.String(), UsesLeft: d.UsesLeft,
			PolicyVersion: d.PolicyVersion, CapID: d.CapID, AsOf: d.AsOf,
		}
		if d.Judged {
			e.Tier, e.Trust, e.Posture = d.Request.Tier, d.Request.Trust, d.Request.Posture
		}
		if hc := d.Request.History; hc != nil {
			e.History = make(map[string]int64, len(temporal.Names))
			for i, v := range hc.Values() {
				e.History[temporal.Names[i]] = v
			}
		}
		out = append(out, e)
		return nil
	})
	if err != nil && err != errStop {
		return nil, err
	}
	return out, nil
}

// capOwner is the entity of capability id, read from its grant event
// (ids are "cap-<seq of the grant>").
func (h *History) capOwner(cache map[string]string, id string) string {
	if e, ok := cache[id]; ok {
		return e
	}
	e := ""
	if len(id) > 4 && id[:4] == "cap-" {
		if seq, err := strconv.ParseUint(id[4:], 10, 64); err == nil {
			if ev, _, _, err := h.event(seq); err == nil {
				var g fsm.GrantDetail
				if fsm.Decode(ev.Detail, &g) == nil && g.CapID == id {
					e = g.Entity
				}
			}
		}
	}
	if len(cache) < 10_000 {
		cache[id] = e
	}
	return e
}

// handleFollow streams the events from ?from= on (0 or absent: after the
// head) as newline-delimited JSON (api.Event per line), as this node
// archives them, until the client goes away or the node stops.
func (s *Service) handleFollow(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	from := s.k.ArchivedSeq() + 1
	if v := r.URL.Query().Get("from"); v != "" && v != "0" {
		f, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			httpedge.WriteErr(w, httpedge.BadRequest("from must be a seq"))
			return
		}
		from = max(f, 1)
	}
	select {
	case s.followers <- struct{}{}:
		defer func() { <-s.followers }()
	default:
		httpedge.WriteErr(w, unavailable("this node serves %d ledger follow streams already; retry later or follow another node", MaxFollowers))
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		if last := s.k.ArchivedSeq(); last >= from {
			rec, err := s.k.ArchivedRecord(from)
			if err != nil {
				return // history before this node's archive: nothing to stream
			}
			err = s.k.ArchivedRecords(rec.Index, func(rec archive.Record) error {
				if rec.Kind != archive.KindEvent || rec.Seq < from {
					return nil
				}
				if rec.Seq > last {
					return errStop
				}
				ev, ok, err := kernel.EventFromArchive(rec)
				if err != nil || !ok {
					return err
				}
				if err := enc.Encode(ev); err != nil {
					return err
				}
				from = rec.Seq + 1
				return nil
			})
			if err != nil && err != errStop {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-s.k.Done():
			return
		case <-t.C:
		}
	}
}
