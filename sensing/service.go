package sensing

import (
	"net/http"
	"strconv"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/sense"
)

// Service serves the sensing API: signal ingest, baselines, trust,
// posture and its history, and the false-alarm target (target.go).
// Signals, trust adjustments and the target are ledgered commands (the
// ledger decides who may); the reads need audit.read on leader-confirmed
// state (the target: audit.read or operator.manage).
type Service struct {
	kernel.BaseService
	k *kernel.Node
}

// New returns the sensing service.
func New() *Service { return &Service{} }

// Name implements kernel.Service.
func (sv *Service) Name() string { return "sensing" }

// Start implements kernel.Service.
func (sv *Service) Start(k *kernel.Node) error { sv.k = k; return nil }

// Routes implements kernel.Service.
func (sv *Service) Routes() []httpedge.Route {
	return append([]httpedge.Route{
		{Pattern: "POST /v1/signals", Handler: kernel.Command(sv.k, fsm.CmdSignalIngest,
			func(_ *http.Request, req *api.SignalRequest) (any, error) {
				return &fsm.SignalIngest{Kind: req.Kind, Value: req.Value}, nil
			},
			func(_ *http.Request, req *api.SignalRequest, res fsm.Result) any {
				return api.SignalResponse{Outcome: httpedge.Outcome(res), Kind: req.Kind, Value: req.Value, Level: res.ID, Score: int64(res.Version)}
			})},
		{Pattern: "GET /v1/baselines/{entity...}", Handler: sv.handleBaseline},
		{Pattern: "GET /v1/trust/{entity...}", Handler: sv.handleTrust},
		{Pattern: "POST /v1/trust-adjust/{entity...}", Handler: kernel.Command(sv.k, fsm.CmdTrustAdjust,
			func(r *http.Request, req *api.TrustAdjustRequest) (any, error) {
				return &fsm.TrustAdjust{Entity: r.PathValue("entity"), Delta: req.Delta, Reason: req.Reason}, nil
			},
			func(r *http.Request, _ *api.TrustAdjustRequest, res fsm.Result) any {
				return api.TrustAdjustResponse{Outcome: httpedge.Outcome(res), Entity: r.PathValue("entity"), Score: int64(res.Version), Tier: res.ID}
			})},
		{Pattern: "GET /v1/posture", Handler: sv.handlePosture},
		{Pattern: "GET /v1/posture/history", Handler: sv.handlePostureHistory},
		{Pattern: "GET /v1/posture/similar", Handler: sv.handlePostureSimilar},
	}, sv.targetRoutes()...)
}

// sensed runs fn on the sensing state (a fresh one when nothing has been
// sensed yet) under the FSM read lock, after a linearizable read when
// asked.
//
// With as_of in the query, fn runs on the state at that point of history
// (kernel.ReadAsOf) and *at is set to it; at may be nil.
func (sv *Service) sensed(w http.ResponseWriter, r *http.Request, c *httpedge.Caller, at **api.AsOf, fn func(st *fsm.State, s *sense.Sensor)) bool {
	if err := sv.k.RequireScope(r.Context(), c, fsm.OpAuditRead); err != nil {
		httpedge.WriteErr(w, err)
		return false
	}
	return sv.k.ReadAsOf(w, r, c, func(l *fsm.Ledger, point *api.AsOf) {
		if at != nil {
			*at = point
		}
		st := l.State()
		s := st.Sense
		if s == nil {
			s, _ = sense.New(sense.DefaultConfig())
		}
		fn(st, s)
	})
}

func (sv *Service) handleBaseline(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	entity := r.PathValue("entity")
	var out api.Baseline
	var at *api.AsOf
	if !sv.sensed(w, r, caller, &at, func(st *fsm.State, s *sense.Sensor) {
		rep := s.Deviation(entity, st.Time)
		out = api.Baseline{Entity: entity, Observations: rep.Windows, Established: rep.Established, Deviation: rep.Score,
			Escalate: rep.Escalate, Events: rep.Events, Metrics: []api.MetricReport{}}
		if rep.Score > 0 {
			out.Top = rep.Top.String()
		}
		for i, m := range rep.Metrics {
			out.Metrics = append(out.Metrics, api.MetricReport{Metric: sense.Metric(i).String(), Value: m.Value, Mean: m.Mean, Scale: m.Scale, Score: m.Score})
		}
	}) {
		return
	}
	out.AsOf = at
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (sv *Service) handleTrust(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	entity := r.PathValue("entity")
	var out api.TrustReport
	var at *api.AsOf
	if !sv.sensed(w, r, caller, &at, func(_ *fsm.State, s *sense.Sensor) {
		t := s.Trust(entity)
		out = api.TrustReport{Entity: entity, Known: t.Known, Score: t.Score, Tier: t.Tier}
	}) {
		return
	}
	out.AsOf = at
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func signalMap(v sense.SignalVector) map[string]int64 {
	out := make(map[string]int64, len(v))
	for k, x := range v {
		out[sense.SignalKind(k).String()] = x
	}
	return out
}

func snapshotToAPI(s sense.Snapshot) api.PostureSnapshot {
	return api.PostureSnapshot{Seq: s.Seq, Time: time.Unix(0, s.Time).UTC(), Level: s.Level.String(), Score: s.Sensitivity, Signals: signalMap(s.Signals)}
}

func (sv *Service) handlePosture(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var out api.Posture
	var at *api.AsOf
	if !sv.sensed(w, r, caller, &at, func(_ *fsm.State, s *sense.Sensor) {
		p := s.Posture()
		out = api.Posture{Level: p.Level.String(), Score: p.Sensitivity, Signals: signalMap(p.Signals)}
		if p.Set {
			t := time.Unix(0, p.Time).UTC()
			out.Since = &t
		}
	}) {
		return
	}
	out.AsOf = at
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (sv *Service) handlePostureHistory(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	out := []api.PostureSnapshot{}
	if !sv.sensed(w, r, caller, nil, func(_ *fsm.State, s *sense.Sensor) {
		for _, sn := range s.Archive() {
			out = append(out, snapshotToAPI(sn))
		}
	}) {
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// handlePostureSimilar answers "have we seen this before, and what
// happened next": ?incident_level=N&...&k=K; kinds not given are taken
// from the current posture.
func (sv *Service) handlePostureSimilar(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	q := r.URL.Query()
	k := 3
	if s := q.Get("k"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 100 {
			httpedge.WriteErr(w, httpedge.BadRequest("k must be 1..100"))
			return
		}
		k = v
	}
	var given [sense.NumSignals]*int64
	for i := range given {
		name := sense.SignalKind(i).String()
		if s := q.Get(name); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				httpedge.WriteErr(w, httpedge.BadRequest("%s must be an integer", name))
				return
			}
			given[i] = &v
		}
	}
	for name := range q {
		if _, err := sense.ParseSignalKind(name); err != nil && name != "k" && name != "consistent" {
			httpedge.WriteErr(w, httpedge.BadRequest("unknown signal kind %q", name))
			return
		}
	}
	out := []api.PostureMatch{}
	var serr error
	if !sv.sensed(w, r, caller, nil, func(_ *fsm.State, s *sense.Sensor) {
		v := s.Posture().Signals
		for i, g := range given {
			if g != nil {
				v[i] = *g
			}
		}
		ms, err := s.Similar(v, k)
		if err != nil {
			serr = err
			return
		}
		for _, m := range ms {
			pm := api.PostureMatch{Snapshot: snapshotToAPI(m.Snapshot), Distance: m.Distance}
			if m.HasNext {
				nx := snapshotToAPI(m.Next)
				pm.Next = &nx
			}
			out = append(out, pm)
		}
	}) {
		return
	}
	if serr != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("%v", serr))
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}
