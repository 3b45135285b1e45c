package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/passport"
)

var fedSeedFlag = flag.Int64("fed.seed", 0, "seed of the federation tests' Ed25519 keys (0 = time-based)")

const (
	fedSovereignID = "sov"   // the sovereign kernel's id, the Issuer of every passport
	fedSignerNode  = "sov-1" // the sovereign node whose key signs passports (passport KeyID)
	fedLifetime    = int64(time.Hour)
)

// fedKeys holds every Ed25519 key of a federation test, drawn from one
// seeded reader so that a failing run can be repeated.
type fedKeys struct {
	ops    map[string]ed25519.PrivateKey // operator name -> key
	signer ed25519.PrivateKey            // fedSignerNode's passport-signing key
	rogue  ed25519.PrivateKey            // registered nowhere
	nodes  map[string]ed25519.PrivateKey // domain -> its node's key
}

func newFedKeys(t *testing.T) *fedKeys {
	t.Helper()
	seed := *fedSeedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("federation key seed %d (rerun with -fed.seed=%d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	gen := func() ed25519.PrivateKey {
		s := make([]byte, ed25519.SeedSize)
		rng.Read(s)
		return ed25519.NewKeyFromSeed(s)
	}
	k := &fedKeys{ops: map[string]ed25519.PrivateKey{}, nodes: map[string]ed25519.PrivateKey{}}
	// Fixed draw order: the same seed gives the same keys.
	for _, n := range []string{"alice", "bob", "carol", "cara", "dan", "mallory"} {
		k.ops[n] = gen()
	}
	k.signer, k.rogue = gen(), gen()
	for _, d := range []string{"acme", "other", "globex"} {
		k.nodes[d] = gen()
	}
	return k
}

func pubOf(k ed25519.PrivateKey) []byte { return []byte(k.Public().(ed25519.PublicKey)) }

func opToken(name string) []byte     { return tokenHash("operator:" + name) }
func joinToken(domain string) []byte { return tokenHash("join:" + domain) }

// issue returns the encoding of a passport for domain as the sovereign's
// leader signs it: serial, valid from notBefore for fedLifetime, signed
// by key (nil: the registered signer). mut edits it before signing.
func (k *fedKeys) issue(domain string, serial uint64, notBefore int64, key ed25519.PrivateKey, mut ...func(*passport.Passport)) []byte {
	p := passport.Passport{
		ID: PassportID(domain, serial), Domain: domain, Issuer: fedSovereignID, IssuedBy: "alice", Serial: serial,
		NotBefore: notBefore, Expires: notBefore + fedLifetime, Scopes: []string{"bus.*"},
		NodeKeys: [][]byte{pubOf(k.nodes[domain])}, KeyID: fedSignerNode,
	}
	for _, m := range mut {
		m(&p)
	}
	if key == nil {
		key = k.signer
	}
	return passport.Sign(p, key).Encode()
}

// fedLedger is a ledger with its own clock that records every entry it
// applies, so a test can replay the exact stream elsewhere.
type fedLedger struct {
	*testLedger
	t   *testing.T
	now int64
	log [][]byte
	// viewKey, when set, signs every federation view without a signer as
	// the sovereign's signing node does (protocol 4 pins the sovereign
	// keys: views signed otherwise are the tests' forgeries).
	viewKey ed25519.PrivateKey
}

// viewsBy makes f sign its unsigned views with k's signer.
func (f *fedLedger) viewsBy(k *fedKeys) *fedLedger {
	f.viewKey = k.signer
	return f
}

func newFedLedger(t *testing.T) *fedLedger {
	return &fedLedger{testLedger: &testLedger{Ledger: New()}, t: t, now: t0}
}

func (f *fedLedger) tick() int64 { f.now += 1e6; return f.now }

func (f *fedLedger) at(ts int64, ct CommandType, auth []byte, payload any) Applied {
	if u, ok := payload.(*FedUpdate); ok && f.viewKey != nil && len(u.Signatures) == 0 && f.State().Initialized {
		c := *u
		SignFedUpdate(&c, f.State().Meta.Domain, fedSignerNode, f.viewKey)
		payload = &c
	}
	e := f.sign(env(ct, "", auth, ts, payload))
	f.log = append(f.log, e)
	return f.apply(e)
}

func (f *fedLedger) do(ct CommandType, auth []byte, payload any) Applied {
	return f.at(f.tick(), ct, auth, payload)
}

// mustAt applies at ts and fails the test unless it was permitted.
func (f *fedLedger) mustAt(ts int64, what string, ct CommandType, auth []byte, payload any) Applied {
	f.t.Helper()
	a := f.at(ts, ct, auth, payload)
	if a.Event == nil || a.Result.Decision != DecisionPermit {
		f.t.Fatalf("%s: got %s %s (noop %v), want PERMIT", what, a.Result.Decision, a.Result.Reason, a.Result.Noop)
	}
	return a
}

func (f *fedLedger) must(what string, ct CommandType, auth []byte, payload any) Applied {
	f.t.Helper()
	return f.mustAt(f.tick(), what, ct, auth, payload)
}

// rejectAt applies at ts and asserts a DENY with reason r that appended
// its event and changed nothing else (seq, head and time aside).
func (f *fedLedger) rejectAt(ts int64, what string, r Reason, ct CommandType, auth []byte, payload any) Applied {
	f.t.Helper()
	before := stateFields(f.Ledger)
	a := f.at(ts, ct, auth, payload)
	if a.Event == nil || a.Result.Decision != DecisionDeny || a.Result.Reason != r {
		f.t.Errorf("%s: got %s %s (event appended %v), want DENY %s", what, a.Result.Decision, a.Result.Reason, a.Event != nil, r)
	}
	if ch := changedFields(before, stateFields(f.Ledger)); len(ch) > 0 {
		f.t.Errorf("%s: %s %s changed %v; a rejected command may change only seq/head/time", what, a.Result.Decision, a.Result.Reason, ch)
	}
	return a
}

func (f *fedLedger) reject(what string, r Reason, ct CommandType, auth []byte, payload any) Applied {
	f.t.Helper()
	return f.rejectAt(f.tick(), what, r, ct, auth, payload)
}

// unchanged applies and asserts that nothing but seq/head/time changed
// (idempotent permits, no-ops).
func (f *fedLedger) unchanged(what string, ct CommandType, auth []byte, payload any) Applied {
	f.t.Helper()
	before := stateFields(f.Ledger)
	a := f.do(ct, auth, payload)
	if ch := changedFields(before, stateFields(f.Ledger)); len(ch) > 0 {
		f.t.Errorf("%s: changed %v, want no change beyond seq/head", what, ch)
	}
	return a
}

// stateFields is the canonical encoding of every state table, keyed by
// field name (federation fields as "Fed.<name>"), without the chain
// position, the ledger time and the dedup window.
func stateFields(l *Ledger) map[string]string {
	b := l.State().body()
	b.Seq, b.Head, b.Time, b.Dedup, b.Sense, b.History = 0, nil, 0, nil, nil, nil // the sensing fold and the history counters are part of each event
	out := map[string]string{}
	v := reflect.ValueOf(b)
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if name == "Fed" && b.Fed != nil {
			fv := reflect.ValueOf(b.Fed).Elem()
			for j := 0; j < fv.NumField(); j++ {
				if !fv.Type().Field(j).IsExported() {
					continue // caches derived from the encoded fields
				}
				out["Fed."+fv.Type().Field(j).Name] = string(Encode(fv.Field(j).Interface()))
			}
			continue
		}
		out[name] = string(Encode(v.Field(i).Interface()))
	}
	return out
}

func changedFields(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		if before[k] != v {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// sovWorld is a sovereign kernel's ledger with its keys.
type sovWorld struct {
	*fedLedger
	k *fedKeys
}

type fedOp struct{ name, level string }

// threeSovereigns are three sovereign-level operators (carol by the
// default level).
var threeSovereigns = []fedOp{{"alice", LevelSovereign}, {"bob", LevelSovereign}, {"carol", ""}}

func sovereignGenesis(k *fedKeys, ops []fedOp, threshold int) *Genesis {
	g := &Genesis{
		KernelID: fedSovereignID, CanonHash: testCanon[:], Protocol: ProtocolVersion, RootTokenHash: testRootToken[:],
		DedupWindowNs: 60e9, Role: RoleSovereign, Threshold: threshold,
		// The signer is the sovereign's member node: its node key signs
		// passports (fed.signer registers a member's own key only).
		Members: []GenesisMember{{Node: fedSignerNode, PubKey: pubOf(k.signer)}},
	}
	for _, o := range ops {
		g.Operators = append(g.Operators, GenesisOperator{Name: o.name, TokenHash: opToken(o.name), PubKey: pubOf(k.ops[o.name]), Level: o.level})
	}
	return g
}

// newSovereign seals a sovereign and registers fedSignerNode's key.
func newSovereign(t *testing.T, k *fedKeys, ops []fedOp, threshold int) *sovWorld {
	t.Helper()
	w := &sovWorld{fedLedger: newFedLedger(t), k: k}
	w.member, w.memberKey = fedSignerNode, k.signer
	w.must("sovereign genesis", CmdGenesis, nil, sovereignGenesis(k, ops, threshold))
	w.must("register signer", CmdFedSigner, nil, &FedSigner{Node: fedSignerNode, PubKey: pubOf(k.signer)})
	return w
}

func (w *sovWorld) create(domain string) {
	w.t.Helper()
	w.must("create "+domain, CmdFedDomainCreate, opToken("alice"), &FedDomainCreate{Name: domain, JoinTokenHash: joinToken(domain)})
}

func (w *sovWorld) joinPayload(domain string, pp []byte) *FedJoin {
	return &FedJoin{Domain: domain, JoinTokenHash: joinToken(domain), KernelID: domain + "-k", Passport: pp, BusAddrs: []string{"127.0.0.1:7001"}}
}

// join redeems domain's join token with a serial-1 passport.
func (w *sovWorld) join(domain string) []byte {
	w.t.Helper()
	ts := w.tick()
	pp := w.k.issue(domain, 1, ts, nil)
	w.mustAt(ts, "join "+domain, CmdFedJoin, nil, w.joinPayload(domain, pp))
	return pp
}

func (w *sovWorld) renewal(domain string, serial uint64, ts int64) *FedPassport {
	return &FedPassport{Domain: domain, Passport: w.k.issue(domain, serial, ts, nil), BusAddrs: []string{"127.0.0.1:7001"}}
}

func amendSign(key ed25519.PrivateKey, op, id, text string) *FedAmendSign {
	h := sha256.Sum256([]byte(text))
	return &FedAmendSign{ID: id, Operator: op, Signature: ed25519.Sign(key, AmendmentMessage(id, h[:]))}
}

func resumeBy(key ed25519.PrivateKey, op, haltID string) *FedResume {
	return &FedResume{HaltID: haltID, Operator: op, Signature: ed25519.Sign(key, ResumeMessage(haltID))}
}

func witnessBy(key ed25519.PrivateKey, domain string, seq uint64, hash []byte) *FedWitness {
	return &FedWitness{Domain: domain, Seq: seq, Hash: hash, NodeKey: pubOf(key), Node: domain + "-1", Signature: ed25519.Sign(key, WitnessMessage(domain, seq, hash))}
}

func headHash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// 1. Sovereign genesis.

func TestFedSovereignGenesis(t *testing.T) {
	k := newFedKeys(t)
	ops := []fedOp{{"alice", LevelSovereign}, {"bob", LevelSovereign}, {"cara", LevelCoOperator}}
	w := &sovWorld{fedLedger: newFedLedger(t), k: k}
	w.member, w.memberKey = fedSignerNode, k.signer
	a := w.must("genesis", CmdGenesis, nil, sovereignGenesis(k, ops, 2))
	st := w.State()
	if st.Meta.Role != RoleSovereign || st.Fed == nil || st.Fed.Threshold != 2 || len(st.Fed.Operators) != 3 {
		t.Fatalf("sealed role %q fed %v", st.Meta.Role, st.Fed != nil)
	}
	if st.Caps[a.Result.ID] == nil || st.Caps[a.Result.ID].Entity != RootOperatorName {
		t.Fatalf("genesis result id %q is not the root capability", a.Result.ID)
	}
	for _, o := range ops {
		ok := st.Fed.Operators[o.name]
		if ok == nil || !bytes.Equal(ok.PubKey, pubOf(k.ops[o.name])) || ok.Level != o.level || ok.Revoked {
			t.Fatalf("operator %s recorded as %+v", o.name, ok)
		}
		c := st.CapByToken(hex.EncodeToString(opToken(o.name)))
		if c == nil || c.Entity != o.name || !c.Operator || c.GrantedBy != "genesis" || c.Domain != st.Meta.Domain {
			t.Fatalf("operator %s capability %+v", o.name, c)
		}
		want := []string{"*"}
		if o.level == LevelCoOperator {
			want = []string{OpCanonAmend, OpCapRead, OpAuditRead}
		}
		if !slices.Equal(c.Ops, want) {
			t.Fatalf("operator %s (%s) may %v, want %v", o.name, o.level, c.Ops, want)
		}
	}
	// The operators' tokens carry authority: a sovereign operator manages
	// the federation, a co-operator does not.
	w.must("alice creates a domain", CmdFedDomainCreate, opToken("alice"), &FedDomainCreate{Name: "acme", JoinTokenHash: joinToken("acme")})
	w.reject("co-operator creates a domain", ReasonForbidden, CmdFedDomainCreate, opToken("cara"), &FedDomainCreate{Name: "globex", JoinTokenHash: joinToken("globex")})

	bad := []struct {
		name string
		mut  func(*Genesis)
		want Reason
	}{
		{"threshold 0", func(g *Genesis) { g.Threshold = 0 }, ReasonInvalidArgument},
		{"threshold negative", func(g *Genesis) { g.Threshold = -1 }, ReasonInvalidArgument},
		{"threshold above N", func(g *Genesis) { g.Threshold = 4 }, ReasonInvalidArgument},
		{"no operators", func(g *Genesis) { g.Operators, g.Threshold = nil, 1 }, ReasonInvalidArgument},
		{"duplicate names", func(g *Genesis) { g.Operators[2].Name = "alice" }, ReasonInvalidArgument},
		{"operator token is the root token", func(g *Genesis) { g.Operators[1].TokenHash = testRootToken[:] }, ReasonDuplicateToken},
		{"two operators share a token", func(g *Genesis) { g.Operators[2].TokenHash = g.Operators[0].TokenHash }, ReasonDuplicateToken},
		{"operator named root", func(g *Genesis) { g.Operators[0].Name = RootOperatorName }, ReasonInvalidArgument},
		{"short public key", func(g *Genesis) { g.Operators[0].PubKey = g.Operators[0].PubKey[:31] }, ReasonInvalidArgument},
		{"short token hash", func(g *Genesis) { g.Operators[0].TokenHash = g.Operators[0].TokenHash[:16] }, ReasonInvalidArgument},
		{"domain-sovereign level", func(g *Genesis) { g.Operators[0].Level = LevelDomainSovereign }, ReasonInvalidArgument},
		{"domain role with operators", func(g *Genesis) { g.Role, g.Domain, g.Threshold = RoleDomain, "acme", 0 }, ReasonInvalidArgument},
		{"domain role with a threshold", func(g *Genesis) { g.Role, g.Domain, g.Operators = RoleDomain, "acme", nil }, ReasonInvalidArgument},
		{"domain named sovereign", func(g *Genesis) { g.Role, g.Domain, g.Operators, g.Threshold = RoleDomain, SovereignKernel, nil, 0 }, ReasonInvalidArgument},
		{"standalone with operators", func(g *Genesis) { g.Role = RoleStandalone }, ReasonInvalidArgument},
		{"unknown role", func(g *Genesis) { g.Role = "emperor" }, ReasonInvalidArgument},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			f := newFedLedger(t)
			g := sovereignGenesis(k, threeSovereigns, 2)
			c.mut(g)
			f.reject("genesis", c.want, CmdGenesis, nil, g)
			st := f.State()
			if st.Initialized || st.Fed != nil || len(st.Caps) != 0 || st.Meta.Role != "" {
				t.Fatalf("refused genesis left initialized=%v fed=%v caps=%d role=%q", st.Initialized, st.Fed != nil, len(st.Caps), st.Meta.Role)
			}
			// The ledger still takes a valid genesis.
			f.must("valid genesis after a refused one", CmdGenesis, nil, sovereignGenesis(k, threeSovereigns, 2))
		})
	}
}

// Federation commands run only on the role they belong to.
func TestFedCommandsCheckTheRole(t *testing.T) {
	k := newFedKeys(t)
	standalone := newFedLedger(t)
	standalone.must("standalone genesis", CmdGenesis, nil, &Genesis{KernelID: "k1", CanonHash: testCanon[:], Protocol: ProtocolVersion, RootTokenHash: testRootToken[:], DedupWindowNs: 60e9})
	sov := newSovereign(t, k, threeSovereigns, 2)
	dom := newDomainLedger(t, "acme").viewsBy(k)
	root := testRootToken[:]
	cases := []struct {
		name string
		l    *fedLedger
		ct   CommandType
		auth []byte
		p    any
	}{
		{"standalone domain create", standalone, CmdFedDomainCreate, root, &FedDomainCreate{Name: "acme", JoinTokenHash: joinToken("acme")}},
		{"standalone signer", standalone, CmdFedSigner, nil, &FedSigner{Node: fedSignerNode, PubKey: pubOf(k.signer)}},
		{"standalone halt", standalone, CmdFedHalt, root, &FedHaltCmd{Reason: "x"}},
		{"standalone update", standalone, CmdFedUpdate, nil, k.view("acme", nil, nil)},
		{"standalone remote call", standalone, CmdSyscall, root, &Syscall{Op: "kv.put", Resource: "other:orders/1", RemoteTokenHash: tokenHash("x")}},
		{"sovereign update", sov.fedLedger, CmdFedUpdate, nil, k.view("acme", nil, nil)},
		{"sovereign bus receive", sov.fedLedger, CmdBusReceive, nil, &BusReceive{Origin: "acme", Seq: 1, Entity: "a", Op: "kv.put", Resource: "k"}},
		{"sovereign bus delivered", sov.fedLedger, CmdBusDelivered, nil, &BusDelivered{Dest: "acme", Seq: 1}},
		{"sovereign remote call", sov.fedLedger, CmdSyscall, root, &Syscall{Op: "kv.put", Resource: "other:orders/1", RemoteTokenHash: tokenHash("x")}},
		{"domain join", dom, CmdFedJoin, nil, &FedJoin{Domain: "acme", JoinTokenHash: joinToken("acme"), KernelID: "x"}},
		{"domain signer", dom, CmdFedSigner, nil, &FedSigner{Node: fedSignerNode, PubKey: pubOf(k.signer)}},
		{"domain halt", dom, CmdFedHalt, root, &FedHaltCmd{Reason: "x"}},
		{"domain amendment", dom, CmdFedAmendPropose, root, &FedAmendPropose{Text: "new canon"}},
		{"domain resume", dom, CmdFedResume, nil, resumeBy(k.ops["alice"], "alice", "fh-1")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.l.t = t
			c.l.reject(c.name, ReasonWrongRole, c.ct, c.auth, c.p)
		})
	}
}

// 2. Domain creation and joining.

func TestFedDomainCreateAndJoin(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	w.reject("the same signing key again", ReasonAlreadyExists, CmdFedSigner, nil, &FedSigner{Node: fedSignerNode, PubKey: pubOf(k.signer)})

	w.create("acme")
	d := w.State().Fed.Domains["acme"]
	if d == nil || d.JoinTokenHash != hex.EncodeToString(joinToken("acme")) || !slices.Equal(d.Scopes, []string{"bus.*"}) || d.CreatedBy != "alice" || d.KernelID != "" {
		t.Fatalf("domain record %+v", d)
	}
	create := func(name string, jt []byte) *FedDomainCreate { return &FedDomainCreate{Name: name, JoinTokenHash: jt} }
	w.reject("create by unknown token", ReasonUnknownToken, CmdFedDomainCreate, tokenHash("nobody"), create("globex", joinToken("globex")))
	w.reject("create twice", ReasonAlreadyExists, CmdFedDomainCreate, opToken("bob"), create("acme", joinToken("acme2")))
	w.reject("create sovereign", ReasonInvalidArgument, CmdFedDomainCreate, opToken("bob"), create(SovereignKernel, joinToken("s")))
	w.reject("create with colon", ReasonInvalidArgument, CmdFedDomainCreate, opToken("bob"), create("a:b", joinToken("ab")))
	w.reject("create with short join hash", ReasonInvalidArgument, CmdFedDomainCreate, opToken("bob"), create("globex", joinToken("globex")[:8]))

	type joinCase struct {
		name string
		key  ed25519.PrivateKey
		nb   int64 // NotBefore relative to the ledger time of the join
		mut  func(*passport.Passport)
		edit func(*FedJoin)
		want Reason
	}
	cases := []joinCase{
		{name: "wrong join token", edit: func(j *FedJoin) { j.JoinTokenHash = joinToken("guess") }, want: ReasonJoinTokenInvalid},
		{name: "unknown domain", edit: func(j *FedJoin) { j.Domain = "globex" }, want: ReasonJoinTokenInvalid},
		{name: "unregistered signing key", key: k.rogue, mut: func(p *passport.Passport) { p.KeyID = "sov-9" }, want: ReasonBadSignature},
		{name: "registered key id, wrong key", key: k.rogue, want: ReasonBadSignature},
		{name: "serial 2", mut: func(p *passport.Passport) { p.Serial, p.ID = 2, PassportID("acme", 2) }, want: ReasonInvalidArgument},
		{name: "other domain", mut: func(p *passport.Passport) { p.Domain, p.ID = "globex", PassportID("globex", 1) }, want: ReasonInvalidArgument},
		{name: "id not from serial", mut: func(p *passport.Passport) { p.ID = PassportID("acme", 7) }, want: ReasonInvalidArgument},
		{name: "wider scopes", mut: func(p *passport.Passport) { p.Scopes = []string{"*"} }, want: ReasonInvalidArgument},
		{name: "narrower scopes", mut: func(p *passport.Passport) { p.Scopes = []string{"bus.syscall"} }, want: ReasonInvalidArgument},
		{name: "other issuer", mut: func(p *passport.Passport) { p.Issuer = "sov2" }, want: ReasonInvalidArgument},
		{name: "post-dated NotBefore", nb: 5e9, want: ReasonInvalidArgument},
		{name: "NotBefore before the issue skew", nb: -PassportIssueSkew - 1, want: ReasonInvalidArgument},
		{name: "already expired", nb: -10, mut: func(p *passport.Passport) { p.Expires = p.NotBefore + 5 }, want: ReasonExpired},
		{name: "garbage passport", edit: func(j *FedJoin) { j.Passport = []byte("not a passport") }, want: ReasonMalformed},
		{name: "empty kernel id", edit: func(j *FedJoin) { j.KernelID = "" }, want: ReasonInvalidArgument},
		{name: "overlong bus address", edit: func(j *FedJoin) { j.BusAddrs = []string{string(make([]byte, 65))} }, want: ReasonInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			ts := w.tick()
			var muts []func(*passport.Passport)
			if c.mut != nil {
				muts = append(muts, c.mut)
			}
			j := w.joinPayload("acme", k.issue("acme", 1, ts+c.nb, c.key, muts...))
			if c.edit != nil {
				c.edit(j)
			}
			w.rejectAt(ts, "join", c.want, CmdFedJoin, nil, j)
			if w.State().Fed.Domains["acme"].KernelID != "" {
				t.Fatal("a refused join redeemed the token")
			}
		})
	}
	w.t = t

	ts := w.tick()
	pp := k.issue("acme", 1, ts, nil)
	a := w.mustAt(ts, "join", CmdFedJoin, nil, w.joinPayload("acme", pp))
	if a.Result.ID != PassportID("acme", 1) || !bytes.Equal(a.Result.Value, pp) {
		t.Fatalf("join answered id %q, passport returned %v", a.Result.ID, bytes.Equal(a.Result.Value, pp))
	}
	d = w.State().Fed.Domains["acme"]
	if d.KernelID != "acme-k" || d.Serial != 1 || !bytes.Equal(d.Passport, pp) || len(w.State().Fed.Passports) != 1 {
		t.Fatalf("joined record %+v", d)
	}

	// Redeeming again from the same kernel is idempotent: the stored
	// passport comes back whatever the new proposal carries.
	again := w.joinPayload("acme", k.issue("acme", 1, w.now, k.rogue))
	a = w.unchanged("join again", CmdFedJoin, nil, again)
	if a.Result.Decision != DecisionPermit || !bytes.Equal(a.Result.Value, pp) {
		t.Fatalf("repeated join: %s %s, passport returned %v", a.Result.Decision, a.Result.Reason, bytes.Equal(a.Result.Value, pp))
	}
	other := w.joinPayload("acme", pp)
	other.KernelID = "impostor-k"
	w.reject("join from another kernel", ReasonAlreadyRedeemed, CmdFedJoin, nil, other)
	wrong := w.joinPayload("acme", pp)
	wrong.JoinTokenHash = joinToken("guess")
	w.reject("wrong join token after joining", ReasonJoinTokenInvalid, CmdFedJoin, nil, wrong)
}

// 3. Renewal and revocation.

func TestFedPassportRenewalAndRevocation(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, []fedOp{{"alice", LevelSovereign}, {"bob", LevelSovereign}, {"cara", LevelCoOperator}}, 2)
	w.create("acme")
	w.join("acme")

	ts := w.tick()
	a := w.mustAt(ts, "renew to serial 2", CmdFedPassport, nil, w.renewal("acme", 2, ts))
	d := w.State().Fed.Domains["acme"]
	if a.Result.ID != PassportID("acme", 2) || d.Serial != 2 || len(w.State().Fed.Passports) != 2 {
		t.Fatalf("renewal: id %q serial %d passports %d", a.Result.ID, d.Serial, len(w.State().Fed.Passports))
	}
	ts = w.tick()
	w.rejectAt(ts, "serial 2 again", ReasonInvalidArgument, CmdFedPassport, nil, w.renewal("acme", 2, ts))
	ts = w.tick()
	w.rejectAt(ts, "serial skipped", ReasonInvalidArgument, CmdFedPassport, nil, w.renewal("acme", 4, ts))
	ts = w.tick()
	w.rejectAt(ts, "forged renewal", ReasonBadSignature, CmdFedPassport, nil, &FedPassport{Domain: "acme", Passport: k.issue("acme", 3, ts, k.rogue)})
	ts = w.tick()
	ack := w.renewal("acme", 3, ts)
	ack.CanonAck = 1
	w.rejectAt(ts, "ack of a canon version that does not exist", ReasonInvalidArgument, CmdFedPassport, nil, ack)
	w.reject("renew an unknown domain", ReasonNotFound, CmdFedPassport, nil, &FedPassport{Domain: "globex", Passport: k.issue("globex", 1, w.now, nil)})

	revoke := func(id string) *FedPassportRevoke { return &FedPassportRevoke{ID: id} }
	w.reject("revoke by unknown token", ReasonUnknownToken, CmdFedPassportRevoke, tokenHash("nobody"), revoke(PassportID("acme", 2)))
	w.reject("revoke by co-operator", ReasonForbidden, CmdFedPassportRevoke, opToken("cara"), revoke(PassportID("acme", 2)))
	w.reject("revoke unknown id", ReasonNotFound, CmdFedPassportRevoke, opToken("alice"), revoke(PassportID("acme", 9)))
	w.must("revoke current passport", CmdFedPassportRevoke, opToken("alice"), revoke(PassportID("acme", 2)))
	f := w.State().Fed
	if !f.IsRevoked(PassportID("acme", 2)) {
		t.Fatal("revoked passport not on the revocation list")
	}
	for _, r := range f.Passports {
		if r.Domain == "acme" && !r.Revoked {
			t.Fatalf("passport %s of the revoked domain not marked revoked", r.ID)
		}
	}
	ts = w.tick()
	w.rejectAt(ts, "renew after revocation", ReasonRevoked, CmdFedPassport, nil, w.renewal("acme", 3, ts))
	w.reject("revoke twice", ReasonRevoked, CmdFedPassportRevoke, opToken("bob"), revoke(PassportID("acme", 2)))
	w.reject("witness from a revoked domain", ReasonRevoked, CmdFedWitness, nil, witnessBy(k.nodes["acme"], "acme", 1, headHash("h1")))
}

// A revoked domain stays unrenewable after its revocation entry leaves the
// bounded revocation list (which prunes entries once the revoked passport
// can no longer be honoured anywhere).
func TestFedRevocationStopsRenewalAfterListPruning(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	w.create("acme")
	w.create("globex")
	w.join("acme")
	w.join("globex")
	w.must("revoke acme", CmdFedPassportRevoke, opToken("alice"), &FedPassportRevoke{ID: PassportID("acme", 1)})
	ts := w.tick()
	w.rejectAt(ts, "renew revoked acme", ReasonRevoked, CmdFedPassport, nil, w.renewal("acme", 2, ts))

	// Past acme's passport lifetime plus the largest renewal slack, a
	// revocation of another domain prunes acme's entry from the list.
	w.now += fedLifetime + passport.MaxRenewalSlack + 1e9
	ts = w.tick()
	w.mustAt(ts, "renew globex", CmdFedPassport, nil, w.renewal("globex", 2, ts))
	w.must("revoke globex", CmdFedPassportRevoke, opToken("alice"), &FedPassportRevoke{ID: PassportID("globex", 2)})
	if w.State().Fed.IsRevoked(PassportID("acme", 1)) {
		t.Log("acme's revocation entry is still listed")
	}
	ts = w.tick()
	w.rejectAt(ts, "renew revoked acme after the list was pruned", ReasonRevoked, CmdFedPassport, nil, w.renewal("acme", 2, ts))
	if d := w.State().Fed.Domains["acme"]; d.Serial != 1 {
		t.Errorf("BUG federation.go applyFedPassport: revoked domain acme renewed to serial %d once its revocation entry was pruned", d.Serial)
	}
}

// 4. Amendments.

func TestFedAmendments(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	text := "Article 1. Agents act only under a capability.\n"
	w.reject("propose by unknown token", ReasonUnknownToken, CmdFedAmendPropose, tokenHash("nobody"), &FedAmendPropose{Text: text})
	w.reject("propose empty text", ReasonInvalidArgument, CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: ""})
	id := w.must("propose", CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: text}).Result.ID
	sum := sha256.Sum256([]byte(text))
	am := w.State().Fed.amendment(id)
	if am == nil || am.State != AmendPending || !bytes.Equal(am.Hash, sum[:]) || am.Version != 1 || am.Proposer != "alice" {
		t.Fatalf("proposal %+v", am)
	}

	w.must("alice signs", CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id, text))
	if am := w.State().Fed.amendment(id); am.State != AmendPending || w.State().Fed.Canon.Version != 0 || !slices.Equal(am.Signers, []string{"alice"}) {
		t.Fatalf("one of two signatures: state %s signers %v canon %d", am.State, am.Signers, w.State().Fed.Canon.Version)
	}
	w.reject("alice again", ReasonDuplicateSignature, CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id, text))
	w.reject("bob over other text", ReasonBadSignature, CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", id, text+" and more"))
	w.reject("bob over other id", ReasonBadSignature, CmdFedAmendSign, nil, &FedAmendSign{ID: id, Operator: "bob", Signature: amendSign(k.ops["bob"], "bob", "amd-999", text).Signature})
	w.reject("bob with alice's key", ReasonBadSignature, CmdFedAmendSign, nil, amendSign(k.ops["alice"], "bob", id, text))
	w.reject("operator not in genesis", ReasonBadSignature, CmdFedAmendSign, nil, amendSign(k.ops["mallory"], "mallory", id, text))
	short := amendSign(k.ops["bob"], "bob", id, text)
	short.Signature = short.Signature[:32]
	w.reject("short signature", ReasonBadSignature, CmdFedAmendSign, nil, short)
	w.reject("unknown amendment", ReasonNotFound, CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", "amd-999", text))

	a := w.must("bob signs", CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", id, text))
	f := w.State().Fed
	if a.Result.Version != 1 || f.Canon.Version != 1 || !bytes.Equal(f.Canon.Hash, sum[:]) || f.amendment(id).State != AmendRatified || f.Canon.Since != a.Result.Time {
		t.Fatalf("after two sovereign signatures: result version %d canon %+v state %s", a.Result.Version, f.Canon, f.amendment(id).State)
	}
	w.reject("carol after ratification", ReasonAmendmentClosed, CmdFedAmendSign, nil, amendSign(k.ops["carol"], "carol", id, text))
	w.reject("propose the current canon", ReasonInvalidArgument, CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: text})

	// Veto by a sovereign operator closes a pending amendment.
	vtext := "Article 2. Nothing.\n"
	vid := w.must("propose again", CmdFedAmendPropose, opToken("bob"), &FedAmendPropose{Text: vtext}).Result.ID
	w.must("alice signs it", CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", vid, vtext))
	w.reject("veto by unknown token", ReasonUnknownToken, CmdFedAmendVeto, tokenHash("nobody"), &FedAmendVeto{ID: vid})
	w.reject("veto of unknown amendment", ReasonNotFound, CmdFedAmendVeto, opToken("carol"), &FedAmendVeto{ID: "amd-999"})
	w.must("carol vetoes", CmdFedAmendVeto, opToken("carol"), &FedAmendVeto{ID: vid})
	if am := w.State().Fed.amendment(vid); am.State != AmendVetoed || am.VetoedBy != "carol" {
		t.Fatalf("vetoed amendment %+v", am)
	}
	w.reject("sign a vetoed amendment", ReasonAmendmentClosed, CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", vid, vtext))
	w.reject("veto twice", ReasonAmendmentClosed, CmdFedAmendVeto, opToken("alice"), &FedAmendVeto{ID: vid})
	if w.State().Fed.Canon.Version != 1 {
		t.Fatalf("canon moved to %d", w.State().Fed.Canon.Version)
	}
}

// Signing after the amendment's time to live (ledger time, from the
// envelopes) is refused and, being refused, changes nothing.
func TestFedAmendSignAfterExpiry(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	text := "Article 9. Expiring.\n"
	id := w.must("propose", CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: text}).Result.ID
	w.must("alice signs", CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id, text))
	exp := w.State().Fed.amendment(id).Expires
	w.now = exp
	w.rejectAt(exp, "bob at the expiry", ReasonAmendmentClosed, CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", id, text))
	if f := w.State().Fed; f.Canon.Version != 0 {
		t.Fatalf("expired amendment ratified: canon %d", f.Canon.Version)
	}
	if s := w.State().Fed.amendment(id).State; s != AmendPending {
		t.Errorf("BUG federation.go applyFedAmendSign: a DENY amendment_closed moved amendment %s from pending to %s", id, s)
	}
}

// A pending amendment over a canon that has since changed is closed; the
// refusal changes nothing.
func TestFedAmendSignAfterSupersession(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	t1, t2 := "Article 3. First.\n", "Article 3. Second.\n"
	id1 := w.must("propose 1", CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: t1}).Result.ID
	id2 := w.must("propose 2", CmdFedAmendPropose, opToken("bob"), &FedAmendPropose{Text: t2}).Result.ID
	w.must("alice signs 1", CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id1, t1))
	w.must("bob signs 1", CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", id1, t1))
	if w.State().Fed.Canon.Version != 1 {
		t.Fatal("amendment 1 not ratified")
	}
	w.reject("sign 2 over the old canon", ReasonAmendmentClosed, CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id2, t2))
	if s := w.State().Fed.amendment(id2).State; s != AmendPending {
		t.Errorf("BUG federation.go applyFedAmendSign: a DENY amendment_closed moved amendment %s from pending to %s", id2, s)
	}
}

// Co-operators propose and sign, but without a sovereign operator among
// the signers nothing ratifies, and they cannot veto or halt.
func TestFedCoOperatorsDoNotRatifyAlone(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, []fedOp{{"alice", LevelSovereign}, {"cara", LevelCoOperator}, {"dan", LevelCoOperator}}, 2)
	text := "Article 4. Proposed by co-operators.\n"
	id := w.must("cara proposes", CmdFedAmendPropose, opToken("cara"), &FedAmendPropose{Text: text}).Result.ID
	w.must("cara signs", CmdFedAmendSign, nil, amendSign(k.ops["cara"], "cara", id, text))
	a := w.must("dan signs", CmdFedAmendSign, nil, amendSign(k.ops["dan"], "dan", id, text))
	if f := w.State().Fed; f.amendment(id).State != AmendPending || f.Canon.Version != 0 || a.Result.Version != 0 {
		t.Fatalf("two co-operators (threshold 2) moved the amendment to %s, canon %d", f.amendment(id).State, f.Canon.Version)
	}
	w.reject("co-operator veto", ReasonForbidden, CmdFedAmendVeto, opToken("cara"), &FedAmendVeto{ID: id})
	w.reject("co-operator halt", ReasonForbidden, CmdFedHalt, opToken("dan"), &FedHaltCmd{Reason: "x"})
	a = w.must("alice signs", CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id, text))
	if f := w.State().Fed; f.amendment(id).State != AmendRatified || f.Canon.Version != 1 || a.Result.Version != 1 {
		t.Fatalf("with a sovereign signer: state %s canon %d", f.amendment(id).State, f.Canon.Version)
	}
}

// 5. Witnessing.

func TestFedWitness(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	w.create("acme")
	w.create("globex")
	w.join("acme")
	node := k.nodes["acme"]
	h10 := headHash("head 10")
	w.must("witness 10", CmdFedWitness, nil, witnessBy(node, "acme", 10, h10))
	ws := w.State().Fed.Witness["acme"]
	if len(ws) != 1 || ws[0].Seq != 10 || !bytes.Equal(ws[0].Hash, h10) || ws[0].Node != "acme-1" || ws[0].Time != w.State().Time {
		t.Fatalf("witness records %+v", ws)
	}
	w.reject("key not in the passport", ReasonBadSignature, CmdFedWitness, nil, witnessBy(k.rogue, "acme", 11, headHash("head 11")))
	w.reject("another domain's node key", ReasonBadSignature, CmdFedWitness, nil, witnessBy(k.nodes["globex"], "acme", 11, headHash("head 11")))
	forged := witnessBy(node, "acme", 11, headHash("head 11"))
	forged.Seq = 12
	w.reject("signature over another seq", ReasonBadSignature, CmdFedWitness, nil, forged)
	forged = witnessBy(node, "acme", 11, headHash("head 11"))
	forged.Signature = forged.Signature[:10]
	w.reject("short signature", ReasonBadSignature, CmdFedWitness, nil, forged)
	w.reject("lower seq", ReasonWitnessConflict, CmdFedWitness, nil, witnessBy(node, "acme", 9, headHash("head 9")))
	w.reject("same seq, other hash", ReasonWitnessConflict, CmdFedWitness, nil, witnessBy(node, "acme", 10, headHash("rewritten 10")))
	w.reject("same seq, same hash", ReasonAlreadyExists, CmdFedWitness, nil, witnessBy(node, "acme", 10, h10))
	w.reject("bad hash length", ReasonInvalidArgument, CmdFedWitness, nil, witnessBy(node, "acme", 11, h10[:16]))
	w.reject("domain not joined", ReasonNotFound, CmdFedWitness, nil, witnessBy(k.nodes["globex"], "globex", 1, h10))
	w.must("witness 11", CmdFedWitness, nil, witnessBy(node, "acme", 11, headHash("head 11")))
	if n := len(w.State().Fed.Witness["acme"]); n != 2 {
		t.Fatalf("%d witness records, want 2", n)
	}
}

// 6. Federation halt and resume.

func TestFedHaltAndResume(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	w.must("grant agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("sov-agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	put := &Syscall{Op: "kv.put", Resource: "notes/1", Args: []byte("x")}
	w.must("put before the halt", CmdSyscall, tokenHash("sov-agent"), put)
	w.reject("resume while running", ReasonNotHalted, CmdFedResume, nil, resumeBy(k.ops["alice"], "alice", "fh-1"))
	w.reject("halt by unknown token", ReasonUnknownToken, CmdFedHalt, tokenHash("nobody"), &FedHaltCmd{Reason: "x"})

	id := w.must("alice halts", CmdFedHalt, opToken("alice"), &FedHaltCmd{Reason: "incident"}).Result.ID
	if h := w.State().Fed.Halt; h == nil || h.ID != id || h.By != "alice" || h.Reason != "incident" {
		t.Fatalf("halt %+v", h)
	}
	w.reject("put while halted", ReasonHalted, CmdSyscall, tokenHash("sov-agent"), put)
	w.reject("second halt", ReasonAlreadyExists, CmdFedHalt, opToken("bob"), &FedHaltCmd{Reason: "again"})
	// Governance goes on while halted.
	w.create("acme")

	a := w.must("alice consents", CmdFedResume, nil, resumeBy(k.ops["alice"], "alice", id))
	if a.Result.Found || w.State().Fed.Halt == nil {
		t.Fatal("one signature of a threshold of two resumed the federation")
	}
	w.reject("put after one consent", ReasonHalted, CmdSyscall, tokenHash("sov-agent"), put)
	w.reject("alice again", ReasonDuplicateSignature, CmdFedResume, nil, resumeBy(k.ops["alice"], "alice", id))
	w.reject("bob with alice's key", ReasonBadSignature, CmdFedResume, nil, resumeBy(k.ops["alice"], "bob", id))
	w.reject("operator not in genesis", ReasonBadSignature, CmdFedResume, nil, resumeBy(k.ops["mallory"], "mallory", id))
	w.reject("bob over another halt", ReasonBadSignature, CmdFedResume, nil, &FedResume{HaltID: id, Operator: "bob", Signature: resumeBy(k.ops["bob"], "bob", "fh-999").Signature})
	w.reject("wrong halt id", ReasonNotHalted, CmdFedResume, nil, resumeBy(k.ops["bob"], "bob", "fh-999"))
	w.reject("invalid operator name", ReasonInvalidArgument, CmdFedResume, nil, resumeBy(k.ops["bob"], "", id))

	a = w.must("bob consents", CmdFedResume, nil, resumeBy(k.ops["bob"], "bob", id))
	if f := w.State().Fed; !a.Result.Found || f.Halt != nil || f.LastHalt != id {
		t.Fatalf("two consents: resumed %v halt %+v last %q", a.Result.Found, f.Halt, f.LastHalt)
	}
	w.must("put after resume", CmdSyscall, tokenHash("sov-agent"), put)
	w.reject("replayed consent", ReasonNotHalted, CmdFedResume, nil, resumeBy(k.ops["carol"], "carol", id))

	// Consents are bound to their halt: old signatures do not resume a new one.
	id2 := w.must("halt again", CmdFedHalt, opToken("bob"), &FedHaltCmd{Reason: "second"}).Result.ID
	if id2 == id {
		t.Fatalf("halt id %q reused", id)
	}
	w.reject("old consent for new halt", ReasonBadSignature, CmdFedResume, nil, &FedResume{HaltID: id2, Operator: "alice", Signature: resumeBy(k.ops["alice"], "alice", id).Signature})
}

// 7. Domain side: the federation view, the outbox and the bus.

func newDomainLedger(t *testing.T, domain string) *fedLedger {
	t.Helper()
	f := newFedLedger(t)
	f.must("genesis "+domain, CmdGenesis, nil, &Genesis{
		KernelID: domain + "-k", CanonHash: testCanon[:], Protocol: ProtocolVersion, RootTokenHash: testRootToken[:],
		DedupWindowNs: 60e9, Domain: domain, Role: RoleDomain,
	})
	return f
}

// view is the federation view a domain's leader proposes: self's serial-1
// passport, the sovereign's signing key, the sovereign and the given
// peers with their serial-1 passports. Passports are valid from t0.
func (k *fedKeys) view(self string, peers, revoked []string) *FedUpdate {
	u := &FedUpdate{
		SovereignID: fedSovereignID, SovereignKeys: []NodeKey{{Node: fedSignerNode, PubKey: pubOf(k.signer)}},
		Passport: k.issue(self, 1, t0, nil), Revoked: revoked, Canon: CanonState{Hash: testCanon[:]}, Threshold: 2,
		Peers:     []PeerRecord{{Kernel: SovereignKernel, BusAddrs: []string{"127.0.0.1:7000"}}},
		Operators: []OperatorKey{{Name: "alice", PubKey: pubOf(k.signer), Level: LevelSovereign}, {Name: "bob", PubKey: pubOf(k.rogue), Level: LevelSovereign}},
	}
	for _, p := range peers {
		u.Peers = append(u.Peers, PeerRecord{Kernel: p, Passport: k.issue(p, 1, t0, nil), BusAddrs: []string{"127.0.0.1:7100"}})
	}
	return u
}

func TestFedDomainUpdate(t *testing.T) {
	k := newFedKeys(t)
	d := newDomainLedger(t, "acme").viewsBy(k)
	cases := []struct {
		name string
		edit func(*FedUpdate)
		want Reason
	}{
		{"passport by a key not in SovereignKeys", func(u *FedUpdate) { u.Passport = k.issue("acme", 1, t0, k.rogue) }, ReasonBadSignature},
		{"passport naming an unknown key", func(u *FedUpdate) {
			u.Passport = k.issue("acme", 1, t0, nil, func(p *passport.Passport) { p.KeyID = "sov-9" })
		}, ReasonBadSignature},
		{"passport of another domain", func(u *FedUpdate) { u.Passport = k.issue("other", 1, t0, nil) }, ReasonInvalidArgument},
		{"issuer is not the sovereign", func(u *FedUpdate) { u.SovereignID = "sov2" }, ReasonInvalidArgument},
		{"forged peer passport", func(u *FedUpdate) { u.Peers[1].Passport = k.issue("other", 1, t0, k.rogue) }, ReasonBadSignature},
		{"peer passport of another domain", func(u *FedUpdate) { u.Peers[1].Kernel = "globex" }, ReasonInvalidArgument},
		{"self as a peer", func(u *FedUpdate) { u.Peers[1] = PeerRecord{Kernel: "acme", Passport: k.issue("acme", 1, t0, nil)} }, ReasonInvalidArgument},
		{"no sovereign keys", func(u *FedUpdate) { u.SovereignKeys = nil }, ReasonInvalidArgument},
		{"short sovereign key", func(u *FedUpdate) { u.SovereignKeys[0].PubKey = u.SovereignKeys[0].PubKey[:8] }, ReasonInvalidArgument},
		{"canon text not matching its hash", func(u *FedUpdate) { u.Canon = CanonState{Version: 1, Hash: headHash("x")}; u.CanonText = "y" }, ReasonInvalidArgument},
		{"garbage passport", func(u *FedUpdate) { u.Passport = []byte("nope") }, ReasonMalformed},
		{"threshold above the operators", func(u *FedUpdate) { u.Threshold = 3 }, ReasonInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			u := k.view("acme", []string{"other"}, nil)
			c.edit(u)
			d.reject("update", c.want, CmdFedUpdate, nil, u)
		})
	}
	d.t = t
	d.must("valid update", CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	f := d.State().Fed
	if f.SovereignID != fedSovereignID || len(f.Peers) != 2 || f.Peers["other"] == nil || f.Peers[SovereignKernel] == nil ||
		!bytes.Equal(f.SovereignKeys[fedSignerNode], pubOf(k.signer)) || f.Threshold != 2 {
		t.Fatalf("view %+v", f)
	}
	u := k.view("acme", []string{"other"}, nil)
	u.SovereignID = "sov2"
	u.Passport = k.issue("acme", 1, t0, nil, func(p *passport.Passport) { p.Issuer = "sov2" })
	d.reject("another sovereign", ReasonInvalidArgument, CmdFedUpdate, nil, u)
	u = k.view("acme", []string{"other"}, nil)
	u.Passport = k.issue("acme", 2, t0, nil)
	d.must("renewed passport", CmdFedUpdate, nil, u)
	d.reject("older passport", ReasonInvalidArgument, CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))

	// A new canon takes effect as the domain records it.
	canon := "Article 1. Amended.\n"
	u = k.view("acme", []string{"other"}, nil)
	u.Passport = k.issue("acme", 2, t0, nil)
	u.Canon, u.CanonText = CanonState{Version: 1, Hash: headHash(canon)}, canon
	a := d.must("canon 1", CmdFedUpdate, nil, u)
	if c := d.State().Fed.Canon; c.Version != 1 || !bytes.Equal(c.Hash, headHash(canon)) || c.Since != a.Result.Time {
		t.Fatalf("canon %+v", c)
	}
	u.Canon, u.CanonText = CanonState{Hash: testCanon[:]}, ""
	d.reject("canon going back", ReasonInvalidArgument, CmdFedUpdate, nil, u)

	// The sovereign's halt reaches the domain with the view.
	d.must("grant agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("acme/agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	u = k.view("acme", []string{"other"}, nil)
	u.Passport = k.issue("acme", 2, t0, nil)
	u.Canon, u.CanonText = CanonState{Version: 1, Hash: headHash(canon)}, canon
	u.Halt = &FedHalt{ID: "fh-7", Reason: "incident", By: "alice", Since: t0, Resumers: []string{"bob"}}
	d.must("halted view", CmdFedUpdate, nil, u)
	if h := d.State().Fed.Halt; h == nil || h.ID != "fh-7" || len(h.Resumers) != 0 {
		t.Fatalf("halt %+v", h)
	}
	d.reject("local put while the federation is halted", ReasonHalted, CmdSyscall, tokenHash("acme/agent"), &Syscall{Op: "kv.put", Resource: "orders/1"})
	d.reject("remote put while the federation is halted", ReasonHalted, CmdSyscall, tokenHash("acme/agent"), &Syscall{Op: "kv.put", Resource: "other:orders/1", RemoteTokenHash: tokenHash("g")})
	u.Halt = nil
	d.must("resumed view", CmdFedUpdate, nil, u)
	if f := d.State().Fed; f.Halt != nil || f.LastHalt != "fh-7" {
		t.Fatalf("after resume: halt %+v last %q", f.Halt, f.LastHalt)
	}
	d.must("local put after resume", CmdSyscall, tokenHash("acme/agent"), &Syscall{Op: "kv.put", Resource: "orders/1"})
}

func busEvent(ev *OutEvent, origin, passportID string) *BusReceive {
	return &BusReceive{Origin: origin, Seq: ev.Seq, PassportID: passportID, Entity: ev.Entity, Op: ev.Op, Resource: ev.Resource, Args: ev.Args, TokenHash: ev.TokenHash}
}

func TestFedDomainBus(t *testing.T) {
	k := newFedKeys(t)
	acme := newDomainLedger(t, "acme").viewsBy(k)
	other := newDomainLedger(t, "other").viewsBy(k)
	acme.must("acme view", CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	other.must("other view", CmdFedUpdate, nil, k.view("other", []string{"acme"}, nil))

	// The sender: a granted agent's remote calls enter the outbox in order.
	acme.must("grant agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("acme/agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	grant := tokenHash("other/grant for acme/agent")
	rcall := func(res, val string, tok []byte) *Syscall {
		return &Syscall{Op: "kv.put", Resource: res, Args: []byte(val), RemoteTokenHash: tok}
	}
	for i := uint64(1); i <= 3; i++ {
		a := acme.must("remote call", CmdSyscall, tokenHash("acme/agent"), rcall(fmt.Sprintf("other:orders/%d", i), fmt.Sprintf("v%d", i), grant))
		want := fmt.Sprintf("other/%d", i)
		ev := acme.State().Fed.OutEventByID(want)
		if a.Result.ID != want || ev == nil || ev.Seq != i || ev.Dest != "other" || ev.Entity != "agent" || ev.Op != "kv.put" ||
			ev.Resource != fmt.Sprintf("orders/%d", i) || ev.Status != BusStatePending || !bytes.Equal(ev.TokenHash, grant) || ev.Created != a.Result.Seq {
			t.Fatalf("call %d: id %q event %+v", i, a.Result.ID, ev)
		}
	}
	if f := acme.State().Fed; f.NextOut["other"] != 3 || len(f.Outbox) != 3 {
		t.Fatalf("next out %d, outbox %d", f.NextOut["other"], len(f.Outbox))
	}
	if len(acme.State().KV) != 0 {
		t.Fatalf("a remote call wrote locally: %v", acme.State().KV)
	}
	acme.reject("unknown peer", ReasonNotFound, CmdSyscall, tokenHash("acme/agent"), rcall("nowhere:orders/1", "v", grant))
	acme.reject("the sovereign is no bus destination", ReasonNotFound, CmdSyscall, tokenHash("acme/agent"), rcall("sovereign:orders/1", "v", grant))
	acme.reject("own domain", ReasonInvalidArgument, CmdSyscall, tokenHash("acme/agent"), rcall("acme:orders/1", "v", grant))
	acme.reject("short remote token", ReasonInvalidArgument, CmdSyscall, tokenHash("acme/agent"), rcall("other:orders/1", "v", grant[:8]))

	// The receiver applies events in order through its own gate.
	other.must("grant acme/agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: grant, Entity: "acme/agent", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}})
	otherGrant := tokenHash("other/grant for globex/agent")
	other.must("grant globex/agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: otherGrant, Entity: "globex/agent", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}})
	ev := func(i int) *BusReceive {
		return busEvent(acme.State().Fed.OutEventByID(fmt.Sprintf("other/%d", i)), "acme", PassportID("acme", 1))
	}
	a1 := other.must("event 1", CmdBusReceive, nil, ev(1))
	var res1 BusResult
	if err := Decode(a1.Result.Value, &res1); err != nil || res1.Decision != DecisionPermit || res1.Seq != a1.Result.Seq {
		t.Fatalf("event 1 result %+v (%v)", res1, err)
	}
	if e := other.State().KV["orders/1"]; e == nil || string(e.Value) != "v1" || other.State().Fed.Inbox["acme"].Next != 2 {
		t.Fatalf("event 1 not applied: %+v", e)
	}

	seq := other.State().Seq
	dup := other.unchanged("event 1 again", CmdBusReceive, nil, ev(1))
	if !dup.Result.Noop || !dup.Result.Duplicate || dup.Event != nil || dup.Result.Reason != ReasonDuplicateEvent ||
		dup.Result.Seq != seq || other.State().Seq != seq || !bytes.Equal(dup.Result.Value, a1.Result.Value) {
		t.Fatalf("duplicate: %+v (seq %d, was %d)", dup.Result, other.State().Seq, seq)
	}
	other.reject("gap", ReasonSequenceGap, CmdBusReceive, nil, ev(3))
	stale := ev(2)
	stale.PassportID = PassportID("acme", 7)
	other.reject("event under an unknown passport", ReasonPassportInvalid, CmdBusReceive, nil, stale)
	other.must("event 2", CmdBusReceive, nil, ev(2))
	if e := other.State().KV["orders/2"]; e == nil || string(e.Value) != "v2" {
		t.Fatal("event 2 not applied")
	}

	// A token granted to another entity: the gate refuses, and the event
	// is consumed (by design: an in-sequence event from a peer with
	// standing is answered exactly once, whatever the gate decides).
	forbidden := ev(3)
	forbidden.TokenHash = otherGrant
	before := stateFields(other.Ledger)
	a3 := other.do(CmdBusReceive, nil, forbidden)
	expect(t, a3, DecisionDeny, ReasonForbidden)
	if ch := changedFields(before, stateFields(other.Ledger)); !slices.Equal(ch, []string{"Fed.Inbox"}) {
		t.Fatalf("a gate refusal changed %v, want only the inbox position", ch)
	}
	if other.State().Fed.Inbox["acme"].Next != 4 || other.State().KV["orders/3"] != nil {
		t.Fatal("refused event not consumed, or applied")
	}

	// The origin's passport, revoked in the sovereign's list, ends its standing.
	other.must("view with acme revoked", CmdFedUpdate, nil, k.view("other", []string{"acme"}, []string{PassportID("acme", 1)}))
	next := *ev(3)
	next.Seq, next.TokenHash = 4, grant
	other.reject("event from a revoked origin", ReasonPassportInvalid, CmdBusReceive, nil, &next)

	// The sender records the answers; a repeat changes nothing.
	a := acme.must("delivered 1", CmdBusDelivered, nil, &BusDelivered{Dest: "other", Seq: 1, Result: res1})
	oe := acme.State().Fed.OutEventByID("other/1")
	if oe.Status != BusStateDelivered || oe.Delivered != a.Result.Seq || oe.Remote.Seq != res1.Seq || oe.Remote.Decision != DecisionPermit {
		t.Fatalf("delivered event %+v", oe)
	}
	rep := acme.unchanged("delivered 1 again", CmdBusDelivered, nil, &BusDelivered{Dest: "other", Seq: 1, Result: res1})
	if !rep.Result.Noop || !rep.Result.Duplicate || rep.Event != nil {
		t.Fatalf("repeated delivery: %+v", rep.Result)
	}
	acme.reject("delivery of an unknown event", ReasonNotFound, CmdBusDelivered, nil, &BusDelivered{Dest: "other", Seq: 9})
	var res3 BusResult
	if err := Decode(a3.Result.Value, &res3); err != nil || res3.Reason != ReasonForbidden {
		t.Fatalf("event 3 result %+v (%v)", res3, err)
	}
	acme.must("rejected 3", CmdBusDelivered, nil, &BusDelivered{Dest: "other", Seq: 3, Rejected: true, Result: res3})
	if oe := acme.State().Fed.OutEventByID("other/3"); oe.Status != BusStateRejected || oe.Remote.Reason != ReasonForbidden {
		t.Fatalf("rejected event %+v", oe)
	}
}

// A remote call refused after its approval was checked must leave the
// approval unused, like every other DENY.
func TestFedRemoteCallRefusalKeepsTheApproval(t *testing.T) {
	k := newFedKeys(t)
	acme := newDomainLedger(t, "acme").viewsBy(k)
	acme.must("view", CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	acme.must("grant agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("acme/agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	acme.must("policy", CmdPolicySet, testRootToken[:], &PolicySet{Name: "remote", Mode: PolicyActive,
		Text: `@escalate("remote writes need a human")
forbid(principal, action == Action::"kv.put", resource) when { resource.path like "nowhere:*" };`})
	req := &Syscall{Op: "kv.put", Resource: "nowhere:orders/1", Args: []byte("v"), RemoteTokenHash: tokenHash("g")}
	a := acme.do(CmdSyscall, tokenHash("acme/agent"), req)
	expect(t, a, DecisionEscalate, ReasonApprovalRequired)
	apr := a.Result.ID
	acme.must("approve", CmdApprovalDecide, testRootToken[:], &ApprovalDecide{ID: apr, Approve: true})
	withApproval := *req
	withApproval.ApprovalID = apr
	acme.reject("approved call to a domain that is not a peer", ReasonNotFound, CmdSyscall, tokenHash("acme/agent"), &withApproval)
	if s := acme.State().Approvals[apr].State; s != ApprovalApproved {
		t.Errorf("BUG gatecmds.go syscall: approval %s is %s after the call it approved was denied not_found", apr, s)
	}
}

// 8. Determinism: the same stream gives the same chain and state on any
// replica, with or without a snapshot in between.

// sovereignStream runs a federation flow on a sovereign, refusals
// included, and returns its ledger.
func sovereignStream(t *testing.T, k *fedKeys) *fedLedger {
	w := newSovereign(t, k, []fedOp{{"alice", LevelSovereign}, {"bob", LevelSovereign}, {"cara", LevelCoOperator}}, 2)
	w.create("acme")
	w.create("globex")
	w.join("acme")
	ts := w.tick()
	w.at(ts, CmdFedJoin, nil, w.joinPayload("globex", k.issue("globex", 1, ts, k.rogue))) // refused
	w.join("globex")
	ts = w.tick()
	w.at(ts, CmdFedPassport, nil, w.renewal("acme", 2, ts))
	w.do(CmdFedWitness, nil, witnessBy(k.nodes["acme"], "acme", 5, headHash("5")))
	w.do(CmdFedWitness, nil, witnessBy(k.nodes["acme"], "acme", 4, headHash("4"))) // conflict
	text := "Article 5. Deterministic.\n"
	id := w.do(CmdFedAmendPropose, opToken("cara"), &FedAmendPropose{Text: text}).Result.ID
	w.do(CmdFedAmendSign, nil, amendSign(k.ops["cara"], "cara", id, text))
	w.do(CmdFedAmendSign, nil, amendSign(k.ops["cara"], "cara", id, text)) // duplicate
	w.do(CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id, text))
	w.do(CmdFedCanonAck, nil, &FedCanonAck{Domain: "acme", Version: 1})
	h := w.do(CmdFedHalt, opToken("bob"), &FedHaltCmd{Reason: "drill"}).Result.ID
	w.do(CmdFedResume, nil, resumeBy(k.ops["alice"], "alice", h))
	w.do(CmdFedResume, nil, resumeBy(k.ops["cara"], "cara", h))
	w.do(CmdFedPassportRevoke, opToken("alice"), &FedPassportRevoke{ID: PassportID("globex", 1)})
	w.now += AckDeadline
	w.do(CmdFedSuspend, nil, &FedSuspend{Domain: "globex"})
	return w.fedLedger
}

// domainStream runs the bus flow between two domains and returns both.
func domainStream(t *testing.T, k *fedKeys) (*fedLedger, *fedLedger) {
	acme := newDomainLedger(t, "acme").viewsBy(k)
	other := newDomainLedger(t, "other").viewsBy(k)
	acme.do(CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	other.do(CmdFedUpdate, nil, k.view("other", []string{"acme"}, nil))
	acme.do(CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("acme/agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}, Uses: 3})
	grant := tokenHash("grant")
	other.do(CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: grant, Entity: "acme/agent", Ops: []string{"kv.put"}, Resources: []string{"orders/*"}})
	for i := 1; i <= 4; i++ { // the fourth exhausts the uses
		acme.do(CmdSyscall, tokenHash("acme/agent"), &Syscall{Op: "kv.put", Resource: fmt.Sprintf("other:orders/%d", i), Args: []byte{byte(i)}, RemoteTokenHash: grant})
	}
	for _, i := range []int{1, 1, 3, 2, 3} {
		e := acme.State().Fed.OutEventByID(fmt.Sprintf("other/%d", i))
		a := other.do(CmdBusReceive, nil, busEvent(e, "acme", PassportID("acme", 1)))
		var r BusResult
		if a.Event != nil && Decode(a.Result.Value, &r) == nil {
			acme.do(CmdBusDelivered, nil, &BusDelivered{Dest: "other", Seq: uint64(i), Result: r})
		}
	}
	other.do(CmdFedUpdate, nil, k.view("other", []string{"acme"}, []string{PassportID("acme", 1)}))
	late := busEvent(acme.State().Fed.OutEventByID("other/3"), "acme", PassportID("acme", 1))
	late.Seq = 4
	other.do(CmdBusReceive, nil, late) // the origin is revoked
	other.do(CmdKVPut, testRootToken[:], &KVPut{Key: "local", Value: []byte("x")})
	return acme, other
}

func TestFedDeterminism(t *testing.T) {
	k := newFedKeys(t)
	acme, other := domainStream(t, k)
	for _, c := range []struct {
		name string
		ref  *fedLedger
	}{{"sovereign", sovereignStream(t, k)}, {"domain acme", acme}, {"domain other", other}} {
		t.Run(c.name, func(t *testing.T) {
			checkFedReplay(t, c.ref)
		})
	}
}

func checkFedReplay(t *testing.T, ref *fedLedger) {
	stream := ref.log
	if len(stream) < 10 {
		t.Fatalf("stream of %d entries is too short to mean anything", len(stream))
	}
	replay := func(l *Ledger, from int) {
		for i := from; i < len(stream); i++ {
			l.Apply(uint64(i+1), stream[i])
		}
	}
	a, b := New(), New()
	replay(a, 0)
	replay(b, 0)
	for _, l := range []*Ledger{a, b} {
		if l.State().Head != ref.State().Head || l.Digest() != ref.Digest() || l.State().Seq != ref.State().Seq {
			t.Fatalf("replica diverged: seq %d head %x digest %x, reference seq %d head %x digest %x",
				l.State().Seq, l.State().Head, l.Digest(), ref.State().Seq, ref.State().Head, ref.Digest())
		}
	}
	if ref.State().Fed == nil {
		t.Fatal("the stream sealed no federation state")
	}
	// Snapshot after every entry, restore into a fresh ledger, continue.
	for cut := 1; cut < len(stream); cut++ {
		l := New()
		for i := 0; i < cut; i++ {
			l.Apply(uint64(i+1), stream[i])
		}
		snap := l.Snapshot()
		r := New()
		if _, err := r.Restore(snap); err != nil {
			t.Fatalf("cut %d: restore: %v", cut, err)
		}
		if r.Digest() != l.Digest() {
			t.Fatalf("cut %d: restored digest differs", cut)
		}
		replay(r, cut)
		if r.State().Head != ref.State().Head || r.Digest() != ref.Digest() {
			t.Fatalf("cut %d: snapshot, restore and continue gives head %x digest %x, uninterrupted %x %x",
				cut, r.State().Head, r.Digest(), ref.State().Head, ref.Digest())
		}
	}
}

// DigestLater's digest is the state's at the call even when federation
// state changes before it is computed: Apply mutates the federation maps
// and outbox events in place, and status readers compute the digest
// outside the lock that blocks Apply.
func TestDigestLaterIgnoresLaterFederationChanges(t *testing.T) {
	k := newFedKeys(t)
	acme := newDomainLedger(t, "acme").viewsBy(k)
	acme.must("acme view", CmdFedUpdate, nil, k.view("acme", []string{"other"}, nil))
	acme.must("grant agent", CmdCapGrant, testRootToken[:], &CapGrant{TokenHash: tokenHash("acme/agent"), Entity: "agent", Ops: []string{"kv.put"}, Resources: []string{"*"}})
	call := func(i int) {
		acme.must("remote call", CmdSyscall, tokenHash("acme/agent"), &Syscall{Op: "kv.put", Resource: fmt.Sprintf("other:orders/%d", i), Args: []byte("v"),
			RemoteTokenHash: tokenHash("other/grant for acme/agent")})
	}
	call(1)
	seq, _, compute := acme.DigestLater()
	want := acme.Digest()
	call(2) // NextOut["other"] 1 -> 2, in place
	acme.must("delivered", CmdBusDelivered, nil, &BusDelivered{Dest: "other", Seq: 1, Result: BusResult{Decision: DecisionPermit, Seq: 7}})
	if ev := acme.State().Fed.OutEventByID("other/1"); ev == nil || ev.Status != BusStateDelivered {
		t.Fatalf("event other/1 after delivery: %+v", ev)
	}
	if acme.Digest() == want {
		t.Fatal("the later applies did not change the digest: the test shows nothing")
	}
	if got := compute(); got != want {
		t.Fatalf("digest captured at seq %d changed with later applies: %x, want %x", seq, got, want)
	}
}

// InboxLink.Stored answers for an applied seq whose result is still
// kept, and for nothing else.
func TestInboxLinkStored(t *testing.T) {
	in := &InboxLink{Origin: "acme", Next: 5, Recent: []BusResult{{Seq: 30}, {Seq: 40}}} // results of 3 and 4
	for _, c := range []struct {
		seq    uint64
		ok     bool
		ledger uint64
	}{{4, true, 40}, {3, true, 30}, {2, false, 0}, {1, false, 0}, {0, false, 0}, {5, false, 0}, {9, false, 0}} {
		res, ok := in.Stored(c.seq)
		if ok != c.ok || res.Seq != c.ledger {
			t.Errorf("Stored(%d) = %+v %v, want ok %v ledger seq %d", c.seq, res, ok, c.ok, c.ledger)
		}
	}
	var none *InboxLink
	if _, ok := none.Stored(1); ok {
		t.Error("a nil link answered")
	}
}
