package sensing

import (
	"net/http"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/sense"
)

// The false-alarm target of sensing model 2 (fsm/sensing2.go):
// GET /v1/sense/target (audit.read or operator.manage) and POST
// /v1/sense/target (operator.manage on sense; the ledger checks it).

func (sv *Service) targetRoutes() []httpedge.Route {
	return []httpedge.Route{
		{Pattern: "GET /v1/sense/target", Handler: sv.handleTargetShow, Scopes: []string{fsm.OpAuditRead, fsm.OpOperatorManage}},
		{Pattern: "POST /v1/sense/target", Handler: kernel.Command(sv.k, fsm.CmdSenseTarget,
			func(_ *http.Request, req *api.SenseTargetRequest) (any, error) {
				if req.AlertsPerDayMilli < 1 || req.AlertsPerDayMilli > sense.MaxAlertsPerDayMilli {
					return nil, httpedge.BadRequest("alerts_per_day_milli must be 1..%d", int64(sense.MaxAlertsPerDayMilli))
				}
				return &fsm.SenseTarget{AlertsPerDayMilli: req.AlertsPerDayMilli}, nil
			},
			func(_ *http.Request, _ *api.SenseTargetRequest, res fsm.Result) any {
				return api.SenseTargetResponse{Outcome: httpedge.Outcome(res), Target: sv.target()}
			})},
	}
}

// target is the target in force and the model the gate runs.
func (sv *Service) target() api.SenseTarget {
	var out api.SenseTarget
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		out = api.SenseTarget{AlertsPerDayMilli: st.SenseAlertTarget(), Protocol: int64(st.Meta.Protocol), Model: 1}
		if st.Meta.Protocol >= fsm.ProtocolSenseModel2 {
			out.Model = 2
		}
	})
	return out
}

func (sv *Service) handleTargetShow(w http.ResponseWriter, _ *http.Request, _ *httpedge.Caller) {
	httpedge.WriteJSON(w, http.StatusOK, sv.target())
}
