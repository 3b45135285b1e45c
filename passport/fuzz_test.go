package passport

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode: Decode never panics, fails only with ErrMalformed, and every
// accepted input is the canonical encoding of a well-formed passport.
func FuzzDecode(f *testing.F) {
	f.Add(signed().Encode())
	f.Add(sample().Encode())
	p := sample()
	p.Scopes, p.NodeKeys = nScopes(MaxScopes), nKeys(MaxNodeKeys)
	f.Add(Sign(p, sovKey).Encode())
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Decode accepted a malformed passport: %v", err)
		}
		if !bytes.Equal(p.Encode(), data) {
			t.Fatal("decode→encode does not round-trip")
		}
		// Verify never panics on anything Decode returns.
		_ = Verify(p, trusted, t0, nil)
	})
}

// FuzzDecodeRevocations: the same properties for revocation lists.
func FuzzDecodeRevocations(f *testing.F) {
	var r Revocations
	_ = r.Add("pp-1", t0+hour, t0)
	_ = r.Add("pp-2", t0+hour, t0)
	f.Add(r.Encode())
	f.Add([]byte(revocationsMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRevocations(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeRevocations error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(r.Encode(), data) {
			t.Fatal("decode→encode does not round-trip")
		}
		for _, e := range r.Entries() {
			if !r.Contains(e.ID) {
				t.Fatalf("decoded list does not contain its entry %q", e.ID)
			}
		}
	})
}
