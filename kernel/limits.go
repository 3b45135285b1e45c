package kernel

import (
	"net/http"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// The replicated limits (fsm/limits.go) over HTTP: GET
// /v1/operator/limits (audit.read or operator.manage) and POST
// /v1/operator/limits (operator.manage; the ledger checks it again).

func (n *Node) registerLimits(authed func(string, httpedge.Handler, ...string)) {
	authed("GET /v1/operator/limits", n.handleLimitsShow, fsm.OpAuditRead, fsm.OpOperatorManage)
	authed("POST /v1/operator/limits", n.handleLimitsSet)
}

func (n *Node) limits() api.Limits {
	var out api.Limits
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		lim := st.EffectiveLimits()
		out = api.Limits{DedupPerCaller: lim.DedupPerCaller, KVBytes: lim.KVBytes, KVBytesUsed: st.KVBytes(), Rates: []api.EntityRate{}, EvolveAutoPromote: fsm.AutoPromoteNever}
		if lim.EvolveAutoPromote != "" {
			out.EvolveAutoPromote = lim.EvolveAutoPromote
		}
		for _, r := range lim.Rates {
			out.Rates = append(out.Rates, api.EntityRate{Entity: r.Entity, PerSecond: r.PerSecond})
		}
	})
	return out
}

func (n *Node) handleLimitsShow(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	httpedge.WriteJSON(w, http.StatusOK, n.limits())
}

func (n *Node) handleLimitsSet(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.LimitsRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if req.DedupPerCaller < 0 || req.KVBytes < 0 || len(req.Rates) > fsm.MaxRateLimits {
		httpedge.WriteErr(w, httpedge.BadRequest("limits must not be negative, and at most %d rates at once", fsm.MaxRateLimits))
		return
	}
	switch req.EvolveAutoPromote {
	case "", fsm.AutoPromoteNever, fsm.AutoPromoteTightening:
	default:
		httpedge.WriteErr(w, httpedge.BadRequest("evolve_auto_promote must be %q or %q", fsm.AutoPromoteNever, fsm.AutoPromoteTightening))
		return
	}
	p := fsm.LimitsSet{DedupPerCaller: req.DedupPerCaller, KVBytes: req.KVBytes, EvolveAutoPromote: req.EvolveAutoPromote}
	for _, rt := range req.Rates {
		if rt.PerSecond < 0 {
			httpedge.WriteErr(w, httpedge.BadRequest("rate of %s: must not be negative", rt.Entity))
			return
		}
		p.Rates = append(p.Rates, fsm.EntityRate{Entity: rt.Entity, PerSecond: rt.PerSecond})
	}
	res, err := n.propose(r, caller.Token, fsm.CmdLimitsSet, &p)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, api.LimitsResponse{Outcome: httpedge.Outcome(res), Limits: n.limits()})
}
