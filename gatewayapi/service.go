package gatewayapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
	"github.com/dominus-kernel/dominus/kernel"
)

// DefaultReportTimeout is how long a caller-executed effect may stay
// pending before the leader records it as indeterminate.
const DefaultReportTimeout = 10 * time.Minute

// CodeUnreported is the code of an effect completed as indeterminate
// because no report arrived in time.
const CodeUnreported = -408

// maxTimeoutsPerRun bounds the completions one duty run proposes.
const maxTimeoutsPerRun = 256

// Service serves the gateway routes and the report timeout.
type Service struct {
	kernel.BaseService
	k       *kernel.Node
	timeout time.Duration
	now     func() time.Time
}

// New returns the gateway service; a caller-executed effect unreported
// after timeout (DefaultReportTimeout when 0) becomes indeterminate.
func New(timeout time.Duration) *Service {
	if timeout <= 0 {
		timeout = DefaultReportTimeout
	}
	return &Service{timeout: timeout, now: time.Now}
}

// Name implements kernel.Service.
func (sv *Service) Name() string { return "gateway" }

// Start implements kernel.Service.
func (sv *Service) Start(k *kernel.Node) error { sv.k = k; return nil }

// Routes implements kernel.Service.
func (sv *Service) Routes() []httpedge.Route {
	return []httpedge.Route{
		{Pattern: "POST /v1/gateway/syscall", Handler: sv.handleSyscall},
		{Pattern: "GET /v1/gateway/capability", Handler: sv.handleCapability},
		{Pattern: "POST /v1/effects/{seq}/report", Handler: kernel.Command(sv.k, fsm.CmdEffectReport,
			func(r *http.Request, req *api.EffectReportRequest) (any, error) {
				seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
				if err != nil {
					return nil, httpedge.BadRequest("effect %q is not a seq", r.PathValue("seq"))
				}
				return &fsm.EffectReport{Seq: seq, Status: req.Status, Code: req.Code, OutputDigest: req.OutputDigest}, nil
			},
			func(r *http.Request, req *api.EffectReportRequest, res fsm.Result) any {
				seq, _ := strconv.ParseUint(r.PathValue("seq"), 10, 64)
				return api.EffectReportResponse{Outcome: httpedge.Outcome(res), Effect: seq, Status: req.Status}
			})},
	}
}

// LeaderDuties implements kernel.Service.
func (sv *Service) LeaderDuties() []kernel.Duty {
	return []kernel.Duty{{Name: "caller-effect-timeout", Every: time.Second, Run: sv.expire}}
}

func (sv *Service) handleSyscall(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	gwToken := r.Header.Get(api.HeaderGatewayToken)
	if _, err := sv.k.Authenticate(gwToken); err != nil {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeUnauthorized, Msg: "the gateway token (" + api.HeaderGatewayToken + ") names no capability"})
		return
	}
	var req api.GatewaySyscallRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if len(req.Args) > fsm.MaxArgsBytes {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeTooLarge, Msg: fmt.Sprintf("args of %d bytes exceed %d", len(req.Args), fsm.MaxArgsBytes)})
		return
	}
	p := &fsm.GatewaySyscall{Op: req.Op, Resource: req.Resource, Args: []byte(req.Args), ApprovalID: req.ApprovalID, Gateway: kernel.TokenHash(gwToken)}
	res, err := sv.k.Propose(r, caller, fsm.CmdGatewaySyscall, p)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out := api.SyscallResponse{Outcome: httpedge.Outcome(res), Op: req.Op, Resource: req.Resource, CapID: caller.Cap.ID, UsesLeft: res.UsesLeft}
	switch res.Decision {
	case fsm.DecisionEscalate:
		out.EscalationID, out.ApprovalID = res.ID, res.ID
	case fsm.DecisionPermit:
		out.Effect = fsm.EffectPending
	}
	if res.Noop {
		out.UsesLeft = caller.Cap.Remaining()
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (sv *Service) handleCapability(w http.ResponseWriter, _ *http.Request, caller *httpedge.Caller) {
	c := caller.Cap
	out := api.Capability{ID: c.ID, Entity: c.Entity, Operator: c.Operator, Domain: c.Domain, Ops: c.Ops, Resources: c.Resources,
		Uses: c.Uses, Used: c.Used, Reserved: c.Reserved, Remaining: c.Remaining(), Parent: c.Parent, Depth: int(c.Depth),
		GrantedBy: c.GrantedBy, Revoked: c.Revoked, Created: c.Created}
	if c.Expires != 0 {
		out.Expires = time.Unix(0, c.Expires).UTC()
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// expire completes as indeterminate the caller-executed effects pending
// longer than the timeout (the leader's clock against the permit's
// ledger time, which the leaders stamped).
func (sv *Service) expire(ctx context.Context) {
	cutoff := sv.now().Add(-sv.timeout).UnixNano()
	var due []uint64
	sv.k.Read(func(l *fsm.Ledger, _ uint64) {
		for _, e := range l.State().PendingEffects() {
			if e.Caller && e.Permitted <= cutoff && len(due) < maxTimeoutsPerRun {
				due = append(due, e.Seq)
			}
		}
	})
	for _, seq := range due {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := sv.k.Apply(cctx, fsm.Envelope{Type: fsm.CmdEffectComplete, Payload: fsm.Encode(&fsm.EffectComplete{Seq: seq, Status: fsm.EffectIndeterminate, Code: CodeUnreported})})
		cancel()
		if err != nil {
			return // the next run, or the next leader, tries again
		}
	}
}
