package fsm

import "fmt"

// proposer is who may propose a command (internal.go, SECURITY.md's
// command table).
type proposer uint8

const (
	// proposerCaller: a bearer token's hash; the apply loop finds its
	// capability (unknown_token otherwise) and handles its request id,
	// and the spec's op names the governance scope it must cover.
	proposerCaller proposer = iota + 1
	// proposerInternal: no token; a member node of the kernel, with its
	// signed evidence from protocol 4 (memberEvidence).
	proposerInternal
	// proposerGenesis: the first entry, before any member exists.
	proposerGenesis
)

func (k proposer) String() string {
	switch k {
	case proposerCaller:
		return "caller"
	case proposerInternal:
		return "internal"
	case proposerGenesis:
		return "genesis"
	}
	return fmt.Sprintf("proposer(%d)", uint8(k))
}

// handlerSpec is one command's entry in the handler table: who may
// propose it, and its handler with the payload still encoded.
type handlerSpec struct {
	proposer proposer
	// op is the governance op a caller's capability must cover, when it
	// does not depend on the payload ("" otherwise).
	op  string
	run func(l *Ledger, c *call) outcome
}

var handlers = map[CommandType]handlerSpec{}

func register(t CommandType, spec handlerSpec) {
	if _, dup := handlers[t]; dup {
		panic(fmt.Sprintf("fsm: command %s registered twice", t))
	}
	if _, named := commandNames[t]; !named {
		panic(fmt.Sprintf("fsm: command %d has no name", t))
	}
	handlers[t] = spec
}

// typedSpec declares a command whose payload is a P: who proposes it,
// what it governs, and its handler, which receives the payload decoded.
// The steps run in this order, each a DENY that stops the command:
//
//  1. genesis only: the ledger is not yet initialized (subject "genesis";
//     already_initialized);
//  2. the payload decodes canonically (decoded, or Decode), and is
//     wellFormed (malformed);
//  3. the event's actor (actor, actorOf) is named;
//  4. the role, when roleFirst;
//  5. the event's subject is named;
//  6. the protocol in force has the command (since; unsupported_protocol);
//  7. the role (wrong_role), when not roleFirst;
//  8. the caller's capability is usable and covers op on resource
//     (expired, revoked, forbidden ...);
//  9. run.
//
// Every field but proposer and run is optional.
type typedSpec[P any] struct {
	proposer proposer
	// decoded is the payload as the entry's preparation decoded it
	// (entryPrep), instead of decoding it again; false: malformed.
	decoded func(c *call) (*P, bool)
	// wellFormed rejects a payload that decodes but is not one this
	// protocol knows (malformed).
	wellFormed func(l *Ledger, p *P) bool
	// actor, or actorOf the payload, is who the event is attributed to
	// (internal commands: no capability names one).
	actor   string
	actorOf func(p *P) string
	// subject is what the event is about.
	subject func(l *Ledger, p *P) string
	// since reports whether the protocol in force has the command.
	since func(l *Ledger) bool
	// role is the federation role the kernel must have (RoleSovereign,
	// RoleDomain); roleFirst checks it before the subject is named.
	role      string
	roleFirst bool
	// op, or opOf the payload, is the governance op the caller's
	// capability must cover on resource, or resourceOf the payload and
	// the ledger (neither: the subject). Without an op, run judges the
	// capability itself (the gate, delegation).
	op         string
	opOf       func(p *P) string
	resource   string
	resourceOf func(l *Ledger, p *P) string
	run        func(l *Ledger, c *call, p *P) outcome
}

// registerTyped registers the handler spec declares for t.
func registerTyped[P any](t CommandType, spec typedSpec[P]) {
	caller := spec.proposer == proposerCaller
	switch {
	case spec.proposer == 0 || spec.run == nil:
		panic(fmt.Sprintf("fsm: command %s has no proposer or handler", t))
	case !caller && (spec.op != "" || spec.opOf != nil || spec.resource != "" || spec.resourceOf != nil):
		panic(fmt.Sprintf("fsm: command %s governs an op but has no caller", t))
	case caller && (spec.actor != "" || spec.actorOf != nil):
		panic(fmt.Sprintf("fsm: command %s names an actor for its caller", t))
	case spec.roleFirst && spec.role == "":
		panic(fmt.Sprintf("fsm: command %s checks no role first", t))
	}
	register(t, handlerSpec{proposer: spec.proposer, op: spec.op, run: spec.apply})
}

// apply runs the steps of typedSpec for one entry.
func (s *typedSpec[P]) apply(l *Ledger, c *call) outcome {
	if s.proposer == proposerGenesis {
		c.subject = "genesis"
		if l.st.Initialized {
			return deny(ReasonAlreadyInitialized)
		}
	}
	var p *P
	if s.decoded != nil {
		var ok bool
		if p, ok = s.decoded(c); !ok {
			return deny(ReasonMalformed)
		}
	} else {
		p = new(P)
		if err := Decode(c.env.Payload, p); err != nil {
			return deny(ReasonMalformed)
		}
	}
	if s.wellFormed != nil && !s.wellFormed(l, p) {
		return deny(ReasonMalformed)
	}
	switch {
	case s.actorOf != nil:
		c.actor = s.actorOf(p)
	case s.actor != "":
		c.actor = s.actor
	}
	if s.roleFirst {
		if _, r := l.fed(s.role); r != ReasonOK {
			return deny(r)
		}
	}
	if s.subject != nil {
		c.subject = s.subject(l, p)
	}
	if s.since != nil && !s.since(l) {
		return deny(ReasonUnsupportedProtocol)
	}
	if s.role != "" && !s.roleFirst {
		if _, r := l.fed(s.role); r != ReasonOK {
			return deny(r)
		}
	}
	if op := s.governs(p); op != "" {
		resource := c.subject
		switch {
		case s.resourceOf != nil:
			resource = s.resourceOf(l, p)
		case s.resource != "":
			resource = s.resource
		}
		if r := l.govern(c, op, resource); r != ReasonOK {
			return deny(r)
		}
	}
	return s.run(l, c, p)
}

func (s *typedSpec[P]) governs(p *P) string {
	if s.opOf != nil {
		return s.opOf(p)
	}
	return s.op
}
