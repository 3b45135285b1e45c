package kernel

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/httpedge"
)

// registerGate adds the gate's endpoints.
func (n *Node) registerGate(authed func(string, httpedge.Handler, ...string)) {
	authed("POST /v1/syscall", n.handleSyscall)
	authed("POST /v1/caps", n.handleGrant)
	authed("POST /v1/caps/delegate", n.handleDelegate)
	authed("POST /v1/caps/{id}/revoke", Command(n, fsm.CmdCapRevoke, pathCommand(func(id string) any { return &fsm.CapRevoke{ID: id} }), answerID))
	authed("GET /v1/caps", n.handleCapList, fsm.OpCapRead)
	authed("GET /v1/caps/{id}", n.handleCapInspect)
	authed("POST /v1/operators", n.handleOperatorAdd)
	authed("GET /v1/operators", n.handleOperatorList, fsm.OpCapRead)
	authed("POST /v1/operators/{name}/revoke", n.handleOperatorRevoke)
	authed("POST /v1/policies", n.handlePolicySet)
	authed("GET /v1/policies", n.handlePolicyList, fsm.OpAuditRead)
	authed("POST /v1/policies/backtest", n.handleBacktest, fsm.OpAuditRead)
	authed("GET /v1/approvals", n.handleApprovalList, fsm.OpApprovalDecide, fsm.OpAuditRead)
	decide := func(approve bool) httpedge.Handler {
		return Command(n, fsm.CmdApprovalDecide, pathCommand(func(id string) any { return &fsm.ApprovalDecide{ID: id, Approve: approve} }), answerID)
	}
	authed("POST /v1/approvals/{id}/approve", decide(true))
	authed("POST /v1/approvals/{id}/deny", decide(false))
	halt := func(ct fsm.CommandType) httpedge.Handler {
		return Command(n, ct,
			func(_ *http.Request, req *api.HaltRequest) (any, error) {
				return &fsm.HaltCmd{Entity: req.Entity, Reason: req.Reason}, nil
			},
			func(_ *http.Request, req *api.HaltRequest, res fsm.Result) any {
				return api.GrantResponse{Outcome: httpedge.Outcome(res), ID: req.Entity}
			})
	}
	authed("POST /v1/halt", halt(fsm.CmdHalt))
	authed("POST /v1/resume", halt(fsm.CmdResume))
	authed("GET /v1/halts", n.handleHaltList)
	authed("GET /v1/effects", n.handleEffects)
	authed("GET /v1/effects/{seq}", n.handleEffects)
}

func (n *Node) handleEffects(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	// Whether the token audits is a scope check: made on confirmed state.
	if err := n.confirmState(r.Context()); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	own := &caller.Cap
	audit := n.scopeErr(caller.Token, fsm.OpAuditRead, "*") == nil
	want := r.PathValue("seq")
	out := []api.Effect{}
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		st := l.State()
		for _, e := range st.Effects {
			if want != "" && fmt.Sprint(e.Seq) != want {
				continue
			}
			if !audit && (own == nil || own.ID != e.CapID) {
				continue // a holder sees its own effects; auditors see all
			}
			out = append(out, api.Effect{Seq: e.Seq, CapID: e.CapID, Entity: e.Entity, Op: e.Op, Resource: e.Resource, Status: e.Status, Code: e.Code, OutputDigest: e.OutputDigest, CompletedSeq: e.Completed})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	if want != "" {
		if len(out) == 0 {
			httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "no effect " + want + " visible to this token"})
			return
		}
		httpedge.WriteJSON(w, http.StatusOK, out[0])
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func newToken(prefix string) (string, []byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	tok := prefix + hex.EncodeToString(b[:])
	return tok, TokenHash(tok), nil
}

func parseTTL(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, httpedge.BadRequest("ttl %q is not a positive duration", s)
	}
	return int64(d), nil
}

func (n *Node) handleSyscall(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.SyscallRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if req.Op == "" || len(req.Op) > fsm.MaxPatternBytes || len(req.Resource) > fsm.MaxKeyBytes || len(req.ApprovalID) > 64 {
		httpedge.WriteErr(w, httpedge.BadRequest("op must be 1..%d bytes, resource at most %d", fsm.MaxPatternBytes, fsm.MaxKeyBytes))
		return
	}
	limit := fsm.MaxArgsBytes
	if req.Op == "kv.put" || req.Op == "kv.cas" {
		limit = 2*fsm.MaxValueBytes + 1024
	}
	if len(req.Args) > limit {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeTooLarge, Msg: fmt.Sprintf("args of %d bytes exceed %d", len(req.Args), limit)})
		return
	}
	c := &caller.Cap
	args := []byte(req.Args)
	if req.Op == "kv.cas" {
		var cr api.KVCASRequest
		if err := json.Unmarshal(args, &cr); err != nil {
			httpedge.WriteErr(w, httpedge.BadRequest("kv.cas args must be a JSON object {expect, expect_absent, expect_version, value}: %v", err))
			return
		}
		args = fsm.Encode(&fsm.KVCAS{Key: req.Resource, ExpectExists: !cr.ExpectAbsent, Expect: []byte(cr.Expect), ExpectVersion: cr.ExpectVersion, Value: []byte(cr.Value)})
	}
	sc := &fsm.Syscall{Op: req.Op, Resource: req.Resource, Args: args, ApprovalID: req.ApprovalID}
	if req.RemoteToken != "" {
		sc.RemoteTokenHash = TokenHash(req.RemoteToken)
	}
	res, err := n.propose(r, caller.Token, fsm.CmdSyscall, sc)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	metricInc("gate.decision." + res.Decision.JSON())
	out := api.SyscallResponse{Outcome: httpedge.Outcome(res), Op: req.Op, Resource: req.Resource, CapID: c.ID, Value: string(res.Value), Found: res.Found, Version: res.Version, UsesLeft: -1}
	if res.Decision == fsm.DecisionEscalate {
		out.EscalationID, out.ApprovalID = res.ID, res.ID
	}
	switch {
	case req.RemoteToken != "":
		if res.Decision == fsm.DecisionPermit {
			out.EventID = res.ID
		}
		out.Value, out.Found = "", false
	case res.Decision == fsm.DecisionPermit && req.Op == "kv.get" && res.Found:
		v := out.Value
		out.Result = &v
	case res.Decision == fsm.DecisionPermit && !strings.HasPrefix(req.Op, "kv."):
		out.Effect = fsm.EffectPending
	}
	if res.Noop { // a deduplicated retry: the capability as it was
		out.UsesLeft = c.Remaining()
	} else {
		out.UsesLeft = res.UsesLeft
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) grantLike(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller, delegate bool) {
	var req api.GrantRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	tok, th, err := newToken("dmc_")
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	var res fsm.Result
	if delegate {
		res, err = n.propose(r, caller.Token, fsm.CmdCapDelegate, &fsm.CapDelegate{TokenHash: th, Entity: req.Entity, Ops: req.Ops, Resources: req.Resources, TTLNs: ttl, Uses: req.Uses})
	} else {
		res, err = n.propose(r, caller.Token, fsm.CmdCapGrant, &fsm.CapGrant{TokenHash: th, Entity: req.Entity, Domain: req.Domain, Ops: req.Ops, Resources: req.Resources, TTLNs: ttl, Uses: req.Uses})
	}
	n.answerGrant(w, tok, caller.Cap.Entity, res, err)
}

// answerGrant returns a new capability's token exactly once: only with
// the first PERMIT (a deduplicated retry cannot show it again).
func (n *Node) answerGrant(w http.ResponseWriter, tok, grantedBy string, res fsm.Result, err error) {
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out := api.GrantResponse{Outcome: httpedge.Outcome(res), ID: res.ID}
	if res.Decision == fsm.DecisionPermit && !res.Duplicate {
		out.Token = tok
		out.GrantedBy = grantedBy // the caller: grants and delegations record who made them
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) handleGrant(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	n.grantLike(w, r, caller, false)
}

func (n *Node) handleDelegate(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	n.grantLike(w, r, caller, true)
}

func capToAPI(st *fsm.State, c *fsm.Capability) api.Capability {
	out := api.Capability{ID: c.ID, Entity: c.Entity, Operator: c.Operator, Domain: c.Domain, Ops: c.Ops, Resources: c.Resources,
		Uses: c.Uses, Used: c.Used, Reserved: c.Reserved, Remaining: c.Remaining(), Parent: c.Parent, Depth: int(c.Depth),
		GrantedBy: c.GrantedBy, Revoked: c.Revoked, Created: c.Created, Effective: st.Usable(c, st.Time).String()}
	if c.Expires != 0 {
		out.Expires = time.Unix(0, c.Expires).UTC()
	}
	return out
}

func (n *Node) listCaps(filter func(*fsm.Capability) bool) []api.Capability {
	var out []api.Capability
	n.fsm.read(func(l *fsm.Ledger, _ uint64) { out = capsOf(l, filter, nil) })
	return out
}

// capsOf lists the capabilities filter selects, oldest first, marked
// with the point of history they are read at (nil: now).
func capsOf(l *fsm.Ledger, filter func(*fsm.Capability) bool, at *api.AsOf) []api.Capability {
	out := []api.Capability{}
	st := l.State()
	for _, c := range st.Caps {
		if filter(c) {
			ac := capToAPI(st, c)
			ac.AsOf = at
			out = append(out, ac)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return out
}

// readGuard checks op's scope on confirmed state (requireScope), which
// also makes what the route reads next linearizable.
func (n *Node) readGuard(w http.ResponseWriter, r *http.Request, token, op string) bool {
	if err := n.requireScope(r.Context(), token, op); err != nil {
		httpedge.WriteErr(w, err)
		return false
	}
	return true
}

func (n *Node) handleCapList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	entity := r.URL.Query().Get("entity")
	var out []api.Capability
	if n.ReadAsOf(w, r, caller, func(l *fsm.Ledger, at *api.AsOf) {
		out = capsOf(l, func(c *fsm.Capability) bool { return entity == "" || c.Entity == entity }, at)
	}) {
		httpedge.WriteJSON(w, http.StatusOK, out)
	}
}

func (n *Node) handleCapInspect(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	id := r.PathValue("id")
	// A holder may inspect its own capability; others need cap.read.
	if own := &caller.Cap; own == nil || own.ID != id {
		if !n.readGuard(w, r, caller.Token, fsm.OpCapRead) {
			return
		}
	}
	var caps []api.Capability
	if !n.ReadAsOf(w, r, caller, func(l *fsm.Ledger, at *api.AsOf) {
		caps = capsOf(l, func(c *fsm.Capability) bool { return c.ID == id }, at)
	}) {
		return
	}
	if len(caps) == 0 {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "no capability " + id})
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, caps[0])
}

// opName is an op an operator's scope may hold beside governance: the
// ops of the capabilities it grants (a grant lies within its granter's
// scope from protocol 4).
var opName = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)

func (n *Node) handleOperatorAdd(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.OperatorRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if len(req.Scopes) == 0 {
		httpedge.WriteErr(w, httpedge.BadRequest("an operator needs at least one scope (e.g. cap.grant, cap.revoke, policy.set, approval.decide, halt, audit.read)"))
		return
	}
	for _, s := range req.Scopes {
		if !fsm.IsGovernanceOp(s) && s != "*" && !strings.HasSuffix(s, "*") && !opName.MatchString(s) {
			httpedge.WriteErr(w, httpedge.BadRequest("scope %q is neither a governance operation nor an op name or pattern (e.g. kv.put, kv.*)", s))
			return
		}
	}
	if len(req.Resources) == 0 {
		req.Resources = []string{"*"}
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	tok, th, err := newToken("dmo_")
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	res, err := n.propose(r, caller.Token, fsm.CmdCapGrant, &fsm.CapGrant{TokenHash: th, Entity: req.Name, Operator: true, Ops: req.Scopes, Resources: req.Resources, TTLNs: ttl})
	n.answerGrant(w, tok, caller.Cap.Entity, res, err)
}

func (n *Node) handleOperatorList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	httpedge.WriteJSON(w, http.StatusOK, n.listCaps(func(c *fsm.Capability) bool { return c.Operator }))
}

func (n *Node) handleOperatorRevoke(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	name := r.PathValue("name")
	caps := n.listCaps(func(c *fsm.Capability) bool { return c.Operator && c.Entity == name && !c.Revoked })
	if len(caps) == 0 {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeNotFound, Msg: "no active operator " + name})
		return
	}
	var last fsm.Result
	for _, c := range caps {
		r.Header.Del(api.HeaderRequestID)
		res, err := n.propose(r, caller.Token, fsm.CmdCapRevoke, &fsm.CapRevoke{ID: c.ID})
		if err != nil {
			httpedge.WriteErr(w, err)
			return
		}
		last = res
		if res.Decision != fsm.DecisionPermit {
			break
		}
	}
	httpedge.WriteJSON(w, http.StatusOK, api.GrantResponse{Outcome: httpedge.Outcome(last), ID: caps[0].ID})
}

func (n *Node) handlePolicySet(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.PolicyRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	if req.Mode == "" {
		req.Mode = fsm.PolicyActive
	}
	req.Mode = strings.ToUpper(req.Mode)
	var warnings []string
	if req.Text != "" {
		var err error
		if warnings, err = ValidatePolicy(req.Name, req.Text, n.protocolInForce()); err != nil {
			httpedge.WriteErr(w, &httpedge.Error{Code: api.CodePolicyInvalid, Msg: err.Error()})
			return
		}
	}
	res, err := n.propose(r, caller.Token, fsm.CmdPolicySet, &fsm.PolicySet{Name: req.Name, Text: req.Text, Mode: req.Mode})
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, api.PolicyResponse{Outcome: httpedge.Outcome(res), Name: req.Name, PolicyVersion: res.Version, Warnings: warnings})
}

func (n *Node) handlePolicyList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	out := []api.Policy{}
	if !n.ReadAsOf(w, r, caller, func(l *fsm.Ledger, at *api.AsOf) {
		for _, p := range l.State().Policies {
			out = append(out, api.Policy{Name: p.Name, Mode: p.Mode, Version: p.Version, SetBy: p.SetBy, Text: p.Text, AsOf: at})
		}
	}) {
		return
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) handleApprovalList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	state := r.URL.Query().Get("state")
	out := []api.Approval{}
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		for _, a := range l.State().Approvals {
			if state != "" && a.State != state {
				continue
			}
			out = append(out, api.Approval{ID: a.ID, CapID: a.CapID, Entity: a.Entity, Op: a.Op, Resource: a.Resource, ArgsDigest: a.ArgsDigest,
				PolicyVersion: a.PolicyVersion, Why: a.Why, RequestedSeq: a.Requested, Expires: time.Unix(0, a.Expires).UTC(), State: a.State, DecidedBy: a.DecidedBy})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].RequestedSeq < out[j].RequestedSeq })
	httpedge.WriteJSON(w, http.StatusOK, out)
}

func (n *Node) handleHaltList(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	out := []api.Halt{}
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		for _, h := range l.State().Halts {
			out = append(out, api.Halt{Entity: h.Entity, Reason: h.Reason, By: h.By, Seq: h.Seq})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Entity < out[j].Entity })
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// Backtest re-judges recorded syscalls in [from, to] that reached the
// policy stage, each from its recorded Cedar request, against the current
// ACTIVE sets with set name replaced by text (or text added as a new set),
// under the Cedar model of the protocol in force now. It is read-only and
// nothing cascades: uses, trust and approvals are as recorded.
func (n *Node) Backtest(req api.BacktestRequest) (api.BacktestResponse, error) {
	protocol := n.protocolInForce()
	sets, head, err := n.backtestSets(req, protocol)
	if err != nil {
		return api.BacktestResponse{}, err
	}
	to := req.To
	if to == 0 || to > head {
		to = head
	}
	from := req.From
	if from == 0 {
		from = 1
	}
	tally := newBacktestTally(from, to)
	stop := errors.New("done")
	err = n.arch.Iterate(from, func(rec archive.Record) error {
		if rec.Seq > to {
			return stop
		}
		if rec.Kind != archive.KindEvent {
			return nil
		}
		ae, err := fsm.DecodeArchived(rec.Data)
		if err != nil || ae.Event == nil || len(ae.Event.Detail) == 0 {
			return err
		}
		switch ae.Event.Type {
		case fsm.CmdSyscall, fsm.CmdGatewaySyscall, fsm.CmdKVPut, fsm.CmdKVGet, fsm.CmdKVDelete, fsm.CmdKVCAS:
		default:
			return nil
		}
		var d fsm.SyscallDetail
		if err := fsm.Decode(ae.Event.Detail, &d); err != nil || !d.Judged {
			return nil
		}
		tally.out.Evaluated++
		d.Request.ArgsDigest = d.ArgsDigest // recorded beside the request
		now := fsm.EvaluatePolicies(sets, d.Request, protocol)
		if now.Decision != d.Policy.Decision || now.Reason != d.Policy.Reason {
			tally.changed(ae.Event.Seq, d.Policy.Decision, now.Decision)
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return tally.out, err
	}
	return tally.done(), nil
}

// backtestSets compiles the ACTIVE policy sets a backtest judges with:
// the current ones, with set req.Name replaced by req.Text (or req.Text
// added as a new set). It also returns the ledger's head seq.
func (n *Node) backtestSets(req api.BacktestRequest, protocol uint16) ([]*fsm.CompiledSet, uint64, error) {
	if _, err := ValidatePolicy("backtest", req.Text, protocol); err != nil {
		return nil, 0, &httpedge.Error{Code: api.CodePolicyInvalid, Msg: err.Error()}
	}
	var recs []fsm.PolicyRecord
	var head uint64
	n.fsm.read(func(l *fsm.Ledger, _ uint64) {
		head = l.State().Seq
		for _, p := range l.State().Policies {
			recs = append(recs, *p)
		}
	})
	name := req.Name
	if name == "" {
		name = "backtest-candidate"
	}
	replaced := false
	for i := range recs {
		if recs[i].Name == name {
			recs[i].Text, recs[i].Mode, replaced = req.Text, fsm.PolicyActive, true
		}
	}
	if !replaced {
		recs = append(recs, fsm.PolicyRecord{Name: name, Text: req.Text, Mode: fsm.PolicyActive})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	var sets []*fsm.CompiledSet
	for _, p := range recs {
		if p.Mode != fsm.PolicyActive {
			continue
		}
		cs, err := fsm.CompilePolicySet(p.Name, p.Mode, p.Version, p.Text)
		if err != nil {
			return nil, 0, &httpedge.Error{Code: api.CodePolicyInvalid, Msg: err.Error()}
		}
		sets = append(sets, cs)
	}
	return sets, head, nil
}

// backtestTally gathers a backtest's changed decisions by transition
// ("permit->deny"), in the order of the ledger.
type backtestTally struct {
	out   api.BacktestResponse
	trans map[string]*api.BacktestTransition
}

func newBacktestTally(from, to uint64) *backtestTally {
	return &backtestTally{
		out:   api.BacktestResponse{From: from, To: to, ByTransition: map[string]int{}, Examples: []uint64{}, Transitions: []api.BacktestTransition{}},
		trans: map[string]*api.BacktestTransition{},
	}
}

// changed counts the decision of seq, recorded as was, that is now now.
func (b *backtestTally) changed(seq uint64, was, now fsm.Decision) {
	b.out.Changed++
	if len(b.out.Examples) < api.MaxBacktestExamples {
		b.out.Examples = append(b.out.Examples, seq)
	}
	k := was.JSON() + "->" + now.JSON()
	t := b.trans[k]
	if t == nil {
		t = &api.BacktestTransition{From: was.JSON(), To: now.JSON()}
		b.trans[k] = t
	}
	t.Count++
	b.out.ByTransition[k] = t.Count
	if len(t.Examples) < api.MaxBacktestExamples {
		t.Examples = append(t.Examples, seq)
	}
}

// done returns the answer, its transitions sorted by name.
func (b *backtestTally) done() api.BacktestResponse {
	keys := make([]string, 0, len(b.trans))
	for k := range b.trans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.out.Transitions = append(b.out.Transitions, *b.trans[k])
	}
	return b.out
}

func (n *Node) handleBacktest(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.BacktestRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out, err := n.Backtest(req)
	if err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}

// pathCommand builds a command from the route's {id} alone (no body).
func pathCommand(build func(id string) any) func(*http.Request, *struct{}) (any, error) {
	return func(r *http.Request, _ *struct{}) (any, error) { return build(r.PathValue("id")), nil }
}

// answerID answers a command on the route's {id} with its outcome.
func answerID(r *http.Request, _ *struct{}, res fsm.Result) any {
	return api.GrantResponse{Outcome: httpedge.Outcome(res), ID: r.PathValue("id")}
}
