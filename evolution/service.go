package evolution

import (
	"context"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/kernel"
)

// BacktestSpan is how many of the latest seqs a start backtests.
const BacktestSpan = 10_000

// TickEvery is how often the leader looks for a window to close.
const TickEvery = 250 * time.Millisecond

// Service serves governed evolution.
type Service struct {
	kernel.BaseService
	k   *kernel.Node
	now func() time.Time
}

// New returns the evolution service.
func New() *Service { return &Service{now: time.Now} }

// Name implements kernel.Service.
func (sv *Service) Name() string { return "evolution" }

// Start implements kernel.Service.
func (sv *Service) Start(k *kernel.Node) error { sv.k = k; return nil }

// Routes implements kernel.Service.
func (sv *Service) Routes() []httpedge.Route {
	step := func(t fsm.CommandType) httpedge.Handler {
		return kernel.Command(sv.k, t,
			func(r *http.Request, _ *struct{}) (any, error) { return &fsm.EvolveRef{ID: r.PathValue("id")}, nil },
			func(r *http.Request, _ *struct{}, res fsm.Result) any {
				// The ledger answers the phase after the command (a retry
				// answered from the dedup window may not carry it).
				return api.EvolveResponse{Outcome: httpedge.Outcome(res), ID: r.PathValue("id"), Version: res.Version, Phase: string(res.Value)}
			})
	}
	return []httpedge.Route{
		{Pattern: "POST /v1/evolutions", Handler: sv.handleStart},
		{Pattern: "GET /v1/evolutions", Handler: sv.handleList, Scopes: []string{fsm.OpAuditRead}},
		{Pattern: "GET /v1/evolutions/{id}", Handler: sv.handleGet, Scopes: []string{fsm.OpAuditRead}},
		{Pattern: "POST /v1/evolutions/{id}/promote", Handler: step(fsm.CmdEvolvePromote)},
		{Pattern: "POST /v1/evolutions/{id}/abort", Handler: step(fsm.CmdEvolveAbort)},
		{Pattern: "POST /v1/evolutions/{id}/resume", Handler: step(fsm.CmdEvolveResume)},
		{Pattern: "GET /v1/policies/{name}/history", Handler: sv.handleHistory, Scopes: []string{fsm.OpAuditRead}},
		{Pattern: "POST /v1/policies/{name}/rollback", Handler: kernel.Command(sv.k, fsm.CmdPolicyRollback,
			func(r *http.Request, req *api.PolicyRollbackRequest) (any, error) {
				return &fsm.PolicyRollback{Name: r.PathValue("name"), Version: req.Version}, nil
			},
			func(r *http.Request, _ *api.PolicyRollbackRequest, res fsm.Result) any {
				return api.PolicyRollbackResponse{Outcome: httpedge.Outcome(res), Name: r.PathValue("name"), Version: res.Version}
			})},
	}
}

// LeaderDuties implements kernel.Service.
func (sv *Service) LeaderDuties() []kernel.Duty {
	return []kernel.Duty{{Name: "evolve-tick", Every: TickEvery, Run: sv.tick}}
}

// tick proposes evolve.tick for the evolution whose window has ended.
func (sv *Service) tick(ctx context.Context) {
	now := sv.now().UnixNano()
	var id string
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		if e := l.State().CurrentEvolution(); e != nil && e.Due(now) {
			id = e.ID
		}
	})
	if id == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// An error is retried by the next run, or the next leader; a refusal
	// (not_due after a clock step) changes nothing.
	_, _ = sv.k.Apply(cctx, fsm.Envelope{Type: fsm.CmdEvolveTick, Payload: fsm.Encode(&fsm.EvolveRef{ID: id})})
}

// handleStart backtests the candidate on recent history, then proposes
// evolve.start. The caller must hold policy.set on the set: checked on
// this node's state before the backtest runs, so that nobody else makes
// the node walk its archive; the ledger checks it again and decides.
func (sv *Service) handleStart(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.EvolveStartRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if len(req.Text) > fsm.MaxPolicyBytes || req.WindowMs < 0 || req.MinShadow < 0 || len(req.Steps) > fsm.MaxEvolveSteps {
		httpedge.WriteErr(w, httpedge.BadRequest("text, steps, window or min_shadow beyond their bounds"))
		return
	}
	if !sv.mayEvolve(caller.Token, req.Name) {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeForbidden, Msg: "evolve start requires a usable capability scoped to \"policy.set\" on the set " + req.Name})
		return
	}
	var protocol uint16
	var head uint64
	sv.k.Read(func(l *fsm.Ledger, _ uint64) { protocol, head = l.State().Meta.Protocol, l.State().Seq })
	if _, err := kernel.ValidatePolicy(req.Name, req.Text, protocol); err != nil {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodePolicyInvalid, Msg: err.Error()})
		return
	}
	from := uint64(1)
	if head > BacktestSpan {
		from = head - BacktestSpan
	}
	summary, err := sv.backtest(req.Name, req.Text, from, head)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	p := &fsm.EvolveStart{Name: req.Name, Text: req.Text, Steps: req.Steps, WindowNs: req.WindowMs * int64(time.Millisecond), MinShadow: req.MinShadow, Backtest: summary}
	res, err := sv.k.Propose(r, caller, fsm.CmdEvolveStart, p)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, api.EvolveStartResponse{Outcome: httpedge.Outcome(res), ID: res.ID, Backtest: backtestToAPI(summary)})
}

func (sv *Service) handleList(w http.ResponseWriter, _ *http.Request, _ *httpedge.Caller) {
	out := []api.Evolution{}
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		if es := l.State().Evolve; es != nil {
			for i := range es.Evolutions {
				out = append(out, evolutionToAPI(&es.Evolutions[i]))
			}
		}
	})
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (sv *Service) handleGet(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	var out *api.Evolution
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		if e := l.State().Evolution(r.PathValue("id")); e != nil {
			a := evolutionToAPI(e)
			out = &a
		}
	})
	if out == nil {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "no evolution " + r.PathValue("id")})
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (sv *Service) handleHistory(w http.ResponseWriter, r *http.Request, _ *httpedge.Caller) {
	name := r.PathValue("name")
	out := []api.PolicyVersion{}
	var found bool
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		h := st.History(name)
		if h == nil {
			// A set installed before versions were kept is its own version 1.
			if rec := st.Policies[name]; rec != nil && rec.Mode == fsm.PolicyActive {
				found = true
				out = append(out, api.PolicyVersion{Version: 1, Seq: rec.Version, By: rec.SetBy, Text: rec.Text, Time: time.Unix(0, 0).UTC()})
			}
			return
		}
		found = true
		for _, v := range h.Versions {
			out = append(out, api.PolicyVersion{Version: v.Version, Seq: v.Seq, Time: time.Unix(0, v.Time).UTC(), By: v.By, Via: v.Via, Text: v.Text})
		}
	})
	if !found {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "no versions of policy set " + name})
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func backtestToAPI(b fsm.EvolveBacktest) api.EvolveBacktest {
	return api.EvolveBacktest{From: b.From, To: b.To, Evaluated: b.Evaluated, Changed: b.Changed, Relaxations: b.Relaxations}
}

func countsToAPI(c fsm.CohortCounts) api.EvolveCounts {
	return api.EvolveCounts{Decisions: c.Decisions, Deny: c.Deny, Escalate: c.Escalate, Effects: c.Effects, EffectErrors: c.EffectErrors}
}

func shadowToAPI(t *fsm.ShadowTally) api.EvolveShadow {
	out := api.EvolveShadow{Judged: t.Judged, Changed: t.Changed, ByTransition: map[string]int64{},
		Entities: append([]string{}, t.Entities...), EntitiesMore: t.EntitiesMore}
	for _, tr := range t.Transitions {
		out.ByTransition[tr.From.JSON()+"->"+tr.To.JSON()] += tr.Count
	}
	return out
}

func evolutionToAPI(e *fsm.Evolution) api.Evolution {
	out := api.Evolution{
		ID: e.ID, Name: e.Name, Phase: e.Phase, Weight: e.Weight(), Steps: append([]int64{}, e.Steps...), Step: e.Step,
		WindowMs: e.WindowNs / int64(time.Millisecond), WindowEnd: time.Unix(0, e.WindowEnd).UTC(), MinShadow: e.MinShadow,
		Relaxed: e.Relaxed, PausedFrom: e.PausedFrom, StartedBy: e.StartedBy, StartedSeq: e.Started, ClosedSeq: e.Closed, ClosedBy: e.ClosedBy,
		Backtest: backtestToAPI(e.Backtest), Shadow: shadowToAPI(&e.Shadow), Canary: countsToAPI(e.Canary), Baseline: countsToAPI(e.Baseline),
		Verdicts: []api.EvolveVerdict{}, Text: e.Text,
	}
	for _, v := range e.Verdicts {
		av := api.EvolveVerdict{Phase: v.Phase, Step: v.Step, Weight: v.Weight, Verdict: v.Verdict, Note: v.Note, Seq: v.Seq,
			Time: time.Unix(0, v.Time).UTC(), Metrics: map[string]api.EvolveMetric{}}
		for _, m := range v.Metrics {
			av.Metrics[m.Name] = metricToAPI(m)
		}
		if v.Shadow != nil {
			s := shadowToAPI(v.Shadow)
			av.Shadow = &s
		}
		out.Verdicts = append(out.Verdicts, av)
	}
	return out
}

// metricToAPI turns ppm rates and p-values into fractions (the ledger
// judged on the integers; these are for people and scripts).
func metricToAPI(m fsm.MetricResult) api.EvolveMetric {
	out := api.EvolveMetric{Test: m.Test, CanaryN: m.CanaryN, BaselineN: m.BaselineN, Outcome: m.Outcome,
		Canary: float64(m.Canary), Baseline: float64(m.Baseline), Threshold: float64(m.Threshold)}
	if m.Test == fsm.TestFisherOneSided {
		out.Canary, out.Baseline, out.Threshold = out.Canary/fsm.PPM, out.Baseline/fsm.PPM, out.Threshold/fsm.PPM
	}
	if m.P >= 0 {
		p := float64(m.P) / fsm.PPM
		out.P = &p
	}
	return out
}

// mayEvolve reports whether token's capability, on this node's state, is
// usable and covers policy.set on set name.
func (sv *Service) mayEvolve(token, name string) bool {
	ok := false
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		c := st.CapByToken(hex.EncodeToString(kernel.TokenHash(token)))
		ok = st.Usable(c, st.Time) == fsm.ReasonOK && st.Covers(c, fsm.OpPolicySet, name)
	})
	return ok
}
