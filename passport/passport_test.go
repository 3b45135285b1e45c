package passport

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestVerifyErrors(t *testing.T) {
	p := signed()
	revokedID := func(id string) bool { return id == p.ID }
	wrongPub := map[string]ed25519.PublicKey{"sov-1/k1": otherKey.Public().(ed25519.PublicKey)}
	shortPub := map[string]ed25519.PublicKey{"sov-1/k1": make([]byte, 31)}
	otherID := p.Clone()
	otherID.KeyID = "sov-1/k2"
	otherID = Sign(otherID, sovKey)
	byOther := Sign(sample(), otherKey)
	unsigned := sample()
	empty := sample()
	empty.Domain = ""
	empty = Sign(empty, sovKey)

	cases := []struct {
		name    string
		p       Passport
		trusted map[string]ed25519.PublicKey
		now     int64
		revoked func(string) bool
		want    error // nil: valid
	}{
		{"valid at not_before", p, trusted, p.NotBefore, nil, nil},
		{"valid at expires-1", p, trusted, p.Expires - 1, nil, nil},
		{"valid, revocation list says no", p, trusted, p.NotBefore, func(string) bool { return false }, nil},
		{"expired at exactly expires", p, trusted, p.Expires, nil, ErrExpired},
		{"expired long after", p, trusted, math.MaxInt64, nil, ErrExpired},
		{"not yet valid at not_before-1", p, trusted, p.NotBefore - 1, nil, ErrNotYetValid},
		{"key id not trusted", otherID, trusted, p.NotBefore, nil, ErrUnknownIssuerKey},
		{"no trusted keys", p, nil, p.NotBefore, nil, ErrUnknownIssuerKey},
		{"trusted key of wrong size", p, shortPub, p.NotBefore, nil, ErrUnknownIssuerKey},
		{"trusted id, other key", p, wrongPub, p.NotBefore, nil, ErrBadSignature},
		{"signed by untrusted key under trusted id", byOther, trusted, p.NotBefore, nil, ErrBadSignature},
		{"revoked", p, trusted, p.NotBefore, revokedID, ErrRevoked},
		{"revoked and expired reports expired", p, trusted, p.Expires, revokedID, ErrExpired},
		{"revoked, bad signature reports signature", p, wrongPub, p.NotBefore, revokedID, ErrBadSignature},
		{"unsigned", unsigned, trusted, p.NotBefore, nil, ErrMalformed},
		{"signed but empty domain", empty, trusted, p.NotBefore, nil, ErrMalformed},
	}
	sentinels := []error{ErrMalformed, ErrUnknownIssuerKey, ErrBadSignature, ErrNotYetValid, ErrExpired, ErrRevoked}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.p, c.trusted, c.now, c.revoked)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
			for _, s := range sentinels {
				if s != c.want && errors.Is(err, s) {
					t.Errorf("Verify = %v also matches %v", err, s)
				}
			}
			t.Log(err)
		})
	}
}

func TestRevokedAskedOnlyAfterOtherChecks(t *testing.T) {
	asked := 0
	rev := func(string) bool { asked++; return false }
	p := signed()
	_ = Verify(p, trusted, p.Expires, rev)
	_ = Verify(p, nil, p.NotBefore, rev)
	if asked != 0 {
		t.Fatalf("revoked asked %d times for passports failing earlier checks", asked)
	}
	if err := Verify(p, trusted, p.NotBefore, rev); err != nil || asked != 1 {
		t.Fatalf("Verify = %v, revoked asked %d times, want nil and 1", err, asked)
	}
}

// TestTamperEachField changes each signed field of a signed passport, so
// that it stays well-formed, and requires Verify to fail the signature.
// The mutation table must cover every field but Signature.
func TestTamperEachField(t *testing.T) {
	mutations := map[string]func(p *Passport){
		"ID":        func(p *Passport) { p.ID = IDFor(43) },
		"Domain":    func(p *Passport) { p.Domain = "payments2" },
		"Issuer":    func(p *Passport) { p.Issuer = "sov-2" },
		"IssuedBy":  func(p *Passport) { p.IssuedBy = "mallory" },
		"Serial":    func(p *Passport) { p.Serial++ },
		"NotBefore": func(p *Passport) { p.NotBefore-- },
		"Expires":   func(p *Passport) { p.Expires++ },
		"Scopes":    func(p *Passport) { p.Scopes = []string{"*"} },
		"NodeKeys":  func(p *Passport) { p.NodeKeys = SortedNodeKeys(append(p.NodeKeys, nodeKey(9))) },
		"KeyID":     func(p *Passport) { p.KeyID = "sov-1/k2" },
	}
	// Also tampering inside a field, not only replacing it.
	inner := map[string]func(p *Passport){
		"scope byte":     func(p *Passport) { p.Scopes[0] = "bus.receivf" },
		"node key byte":  func(p *Passport) { p.NodeKeys[0][5] ^= 1 },
		"drop a scope":   func(p *Passport) { p.Scopes = p.Scopes[:2] },
		"signature byte": func(p *Passport) { p.Signature[10] ^= 0x80 },
	}
	typ := reflect.TypeFor[Passport]()
	for i := range typ.NumField() {
		f := typ.Field(i).Name
		if _, ok := mutations[f]; !ok && f != "Signature" {
			t.Errorf("field %s has no tamper case", f)
		}
	}
	tr := map[string]ed25519.PublicKey{"sov-1/k1": trusted["sov-1/k1"], "sov-1/k2": trusted["sov-1/k1"]}
	run := func(name string, mutate func(*Passport)) {
		p := signed()
		now := p.NotBefore + 1
		mutate(&p)
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: tampered passport must stay well-formed: %v", name, err)
		}
		if err := Verify(p, tr, now, nil); !errors.Is(err, ErrBadSignature) {
			t.Errorf("tamper %s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	for name, m := range mutations { // order irrelevant: each case is independent
		run(name, m)
	}
	for name, m := range inner {
		run(name, m)
	}
	if err := Verify(signed(), tr, t0, nil); err != nil {
		t.Fatalf("untampered passport: %v", err)
	}
}

func TestSignDeterministic(t *testing.T) {
	a, b := signed(), signed()
	if !bytes.Equal(a.Signature, b.Signature) || !bytes.Equal(a.Encode(), b.Encode()) {
		t.Fatal("signing the same passport twice gave different bytes")
	}
	// Re-signing a signed passport replaces the signature with the same one.
	if c := Sign(a, sovKey); !bytes.Equal(c.Encode(), a.Encode()) {
		t.Fatal("re-signing changed the encoding")
	}
	// The result shares no memory with the input.
	in := sample()
	out := Sign(in, sovKey)
	in.Scopes[0] = "x"
	in.NodeKeys[0][0] ^= 1
	if err := Verify(out, trusted, t0, nil); err != nil {
		t.Fatalf("mutating Sign's input changed its output: %v", err)
	}
	if len(in.Signature) != 0 {
		t.Fatal("Sign wrote into its input")
	}
}

func TestValidateBounds(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(p *Passport)
		ok     bool
	}{
		{"sample", func(p *Passport) {}, true},
		{"empty id", func(p *Passport) { p.ID = "" }, false},
		{"empty domain", func(p *Passport) { p.Domain = "" }, false},
		{"empty issuer", func(p *Passport) { p.Issuer = "" }, false},
		{"empty issued_by", func(p *Passport) { p.IssuedBy = "" }, false},
		{"empty key id", func(p *Passport) { p.KeyID = "" }, false},
		{"domain at max length", func(p *Passport) { p.Domain = name(MaxNameBytes) }, true},
		{"domain too long", func(p *Passport) { p.Domain = name(MaxNameBytes + 1) }, false},
		{"domain with space", func(p *Passport) { p.Domain = "pay ments" }, false},
		{"issued_by with newline", func(p *Passport) { p.IssuedBy = "alice\n" }, false},
		{"serial 0", func(p *Passport) { p.Serial = 0 }, false},
		{"negative not_before", func(p *Passport) { p.NotBefore = -1; p.Expires = 5 }, false},
		{"not_before 0", func(p *Passport) { p.NotBefore = 0; p.Expires = 1 }, true},
		{"expires == not_before", func(p *Passport) { p.Expires = p.NotBefore }, false},
		{"expires < not_before", func(p *Passport) { p.Expires = p.NotBefore - 1 }, false},
		{"lifetime 1ns", func(p *Passport) { p.Expires = p.NotBefore + 1 }, true},
		{"lifetime max", func(p *Passport) { p.Expires = p.NotBefore + MaxLifetime }, true},
		{"lifetime max+1", func(p *Passport) { p.Expires = p.NotBefore + MaxLifetime + 1 }, false},
		{"expires MaxInt64", func(p *Passport) { p.Expires = math.MaxInt64 }, false},
		{"no scopes", func(p *Passport) { p.Scopes = nil }, false},
		{"max scopes", func(p *Passport) { p.Scopes = nScopes(MaxScopes) }, true},
		{"too many scopes", func(p *Passport) { p.Scopes = nScopes(MaxScopes + 1) }, false},
		{"unsorted scopes", func(p *Passport) { p.Scopes = []string{"bus.send", "bus.receive"} }, false},
		{"duplicate scope", func(p *Passport) { p.Scopes = []string{"bus.send", "bus.send"} }, false},
		{"empty scope", func(p *Passport) { p.Scopes = []string{""} }, false},
		{"star scope", func(p *Passport) { p.Scopes = []string{"*"} }, true},
		{"star in middle", func(p *Passport) { p.Scopes = []string{"bus.*.x"} }, false},
		{"two stars", func(p *Passport) { p.Scopes = []string{"bus**"} }, false},
		{"scope at max length", func(p *Passport) { p.Scopes = []string{name(MaxScopeBytes)} }, true},
		{"scope too long", func(p *Passport) { p.Scopes = []string{name(MaxScopeBytes + 1)} }, false},
		{"no node keys", func(p *Passport) { p.NodeKeys = nil }, false},
		{"max node keys", func(p *Passport) { p.NodeKeys = nKeys(MaxNodeKeys) }, true},
		{"too many node keys", func(p *Passport) { p.NodeKeys = nKeys(MaxNodeKeys + 1) }, false},
		{"short node key", func(p *Passport) { p.NodeKeys = [][]byte{make([]byte, 31)} }, false},
		{"long node key", func(p *Passport) { p.NodeKeys = [][]byte{make([]byte, 33)} }, false},
		{"unsorted node keys", func(p *Passport) { p.NodeKeys[0], p.NodeKeys[1] = p.NodeKeys[1], p.NodeKeys[0] }, false},
		{"duplicate node key", func(p *Passport) { p.NodeKeys = [][]byte{nodeKey(1), nodeKey(1)} }, false},
		{"signature 64 bytes", func(p *Passport) { p.Signature = make([]byte, 64) }, true},
		{"signature 63 bytes", func(p *Passport) { p.Signature = make([]byte, 63) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := sample()
			c.mutate(&p)
			err := p.Validate()
			if c.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate = %v, does not wrap ErrMalformed", err)
			}
			// The decoder agrees with Validate.
			_, derr := Decode(p.Encode())
			if c.ok != (derr == nil) {
				t.Fatalf("Decode = %v, want ok=%v", derr, c.ok)
			}
			if !c.ok && len(p.Signature) == 0 {
				// Signing a malformed passport does not make it valid.
				if err := Verify(Sign(p, sovKey), trusted, p.NotBefore, nil); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Verify of signed malformed passport = %v, want ErrMalformed", err)
				}
				t.Log(err)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	p := sample()
	p.Scopes = []string{"bus.receive", "bus.send", "witness.*"}
	star := sample()
	star.Scopes = []string{"*"}
	cases := []struct {
		p     Passport
		scope string
		want  bool
	}{
		{p, "bus.send", true},
		{p, "bus.receive", true},
		{p, "bus.sen", false},       // exact means exact: no prefix
		{p, "bus.send.more", false}, // nor extension
		{p, "bus.sendx", false},
		{p, "witness.submit", true},
		{p, "witness.", true}, // '*' matches any suffix, the empty one too
		{p, "witness", false},
		{p, "witness.a/b", true}, // including '/'
		{p, "canon.ack", false},
		{p, "", false},
		{p, "witness.*", false}, // a request is concrete, never a pattern
		{p, "bus.send ", false},
		{star, "anything.at/all", true},
		{star, "", false},
		{star, "*", false},
		{star, name(MaxScopeBytes), true},
		{star, name(MaxScopeBytes + 1), false},
		{Passport{}, "bus.send", false},
	}
	for _, c := range cases {
		if got := Allows(c.p, c.scope); got != c.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", c.p.Scopes, c.scope, got, c.want)
		}
	}
}

func TestStanding(t *testing.T) {
	p := sample()
	e := p.Expires
	cases := []struct {
		name       string
		now, slack int64
		fresh      bool
	}{
		{"before expiry, no slack", e - 1, 0, true},
		{"at expiry, no slack", e, 0, false},
		{"negative slack is 0", e, -hour, false},
		{"within slack", e + hour/2, hour, true},
		{"at expiry+slack", e + hour, hour, false},
		{"slack clamped to MaxRenewalSlack", e + MaxRenewalSlack, 100 * hour, false},
		{"just inside clamped slack", e + MaxRenewalSlack - 1, 100 * hour, true},
	}
	for _, c := range cases {
		if got := Fresh(p, c.now, c.slack); got != c.fresh {
			t.Errorf("%s: Fresh(now=expires%+d, slack=%d) = %v, want %v", c.name, c.now-e, c.slack, got, c.fresh)
		}
	}
	if d := StandingDeadline(p, 0); d != e {
		t.Errorf("StandingDeadline(slack 0) = %d, want Expires %d", d, e)
	}
	p.Expires = math.MaxInt64 - 5
	if d := StandingDeadline(p, hour); d != math.MaxInt64 {
		t.Errorf("StandingDeadline near MaxInt64 = %d, want saturation", d)
	}
	// The stated bound: a passport issued at or before r is not honoured
	// anywhere from r + RevocationBound on, whatever the slack.
	r := t0
	q := sample()
	q.NotBefore, q.Expires = r, r+MaxLifetime
	for _, slack := range []int64{0, 1, hour, MaxRenewalSlack, math.MaxInt64} {
		if Fresh(q, r+RevocationBound, slack) {
			t.Errorf("slack %d: still fresh at r+RevocationBound", slack)
		}
	}
}

func TestHelpers(t *testing.T) {
	if IDFor(42) != "pp-42" {
		t.Errorf("IDFor(42) = %q", IDFor(42))
	}
	p := sample()
	if !HasNodeKey(p, nodeKey(2)) || HasNodeKey(p, nodeKey(9)) {
		t.Error("HasNodeKey is wrong")
	}
	in := [][]byte{nodeKey(3), nodeKey(1), nodeKey(3), nodeKey(2)}
	before := [][]byte{nodeKey(3), nodeKey(1), nodeKey(3), nodeKey(2)}
	got := SortedNodeKeys(in)
	if len(got) != 3 {
		t.Fatalf("SortedNodeKeys kept %d keys, want 3", len(got))
	}
	for i := 1; i < len(got); i++ {
		if bytes.Compare(got[i-1], got[i]) >= 0 {
			t.Fatal("SortedNodeKeys not strictly sorted")
		}
	}
	for _, k := range got {
		k[0] ^= 1
	}
	if !reflect.DeepEqual(in, before) {
		t.Fatal("SortedNodeKeys aliases or reorders its input")
	}
	c := p.Clone()
	c.NodeKeys[0][0] ^= 1
	c.Scopes[0] = "x"
	if reflect.DeepEqual(c, p) {
		t.Fatal("Clone shares memory")
	}
}

func TestDecodeCopiesInput(t *testing.T) {
	b := signed().Encode()
	p, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if err := Verify(p, trusted, t0, nil); err != nil {
		t.Fatalf("zeroing the input changed the decoded passport: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := signed().Encode()
	cases := map[string][]byte{
		"empty":          nil,
		"short magic":    good[:3],
		"bad version":    append([]byte("DPP\x02"), good[4:]...),
		"truncated":      good[:len(good)-1],
		"trailing byte":  append(bytes.Clone(good), 0),
		"huge":           make([]byte, maxEncodedBytes+1),
		"only magic":     []byte(magic),
		"length too big": append([]byte(magic), 0xff, 0xff, 0xff, 0xff),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, want ErrMalformed", name, err)
		}
	}
	if p, err := Decode(good); err != nil || !bytes.Equal(p.Encode(), good) {
		t.Fatalf("good encoding: %v", err)
	}
}
