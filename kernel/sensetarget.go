package kernel

import (
	"net/http"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/sense"
)

// The false-alarm target of sensing model 2 (fsm/sensing2.go) over HTTP:
// GET /v1/sense/target (audit.read or operator.manage) and POST
// /v1/sense/target (operator.manage on sense; the ledger checks it).

func (n *Node) registerSenseTarget(authed func(string, httpedge.Handler, ...string)) {
	authed("GET /v1/sense/target", n.handleSenseTargetShow, fsm.OpAuditRead, fsm.OpOperatorManage)
	authed("POST /v1/sense/target", n.handleSenseTargetSet)
}

func (n *Node) senseTarget() api.SenseTarget {
	var out api.SenseTarget
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		out = api.SenseTarget{AlertsPerDayMilli: st.SenseAlertTarget(), Protocol: int64(st.Meta.Protocol), Model: 1}
		if st.Meta.Protocol >= fsm.ProtocolSenseModel2 {
			out.Model = 2
		}
	})
	return out
}

func (n *Node) handleSenseTargetShow(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	httpedge.WriteJSON(w, http.StatusOK, n.senseTarget())
}

func (n *Node) handleSenseTargetSet(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.SenseTargetRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if req.AlertsPerDayMilli < 1 || req.AlertsPerDayMilli > sense.MaxAlertsPerDayMilli {
		httpedge.WriteErr(w, httpedge.BadRequest("alerts_per_day_milli must be 1..%d", int64(sense.MaxAlertsPerDayMilli)))
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdSenseTarget, &fsm.SenseTarget{AlertsPerDayMilli: req.AlertsPerDayMilli})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, api.SenseTargetResponse{Outcome: httpedge.Outcome(res), Target: n.senseTarget()})
}
