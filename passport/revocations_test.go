package passport

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestRevocationsAddContains(t *testing.T) {
	var r Revocations
	exp := t0 + hour
	for _, id := range []string{"pp-3", "pp-1", "pp-2"} {
		if err := r.Add(id, exp, t0); err != nil {
			t.Fatal(err)
		}
	}
	if !r.Contains("pp-1") || !r.Contains("pp-2") || !r.Contains("pp-3") || r.Contains("pp-4") || r.Contains("") {
		t.Fatalf("Contains wrong: %v", r.Entries())
	}
	ids := []string{}
	for _, e := range r.Entries() {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []string{"pp-1", "pp-2", "pp-3"}) {
		t.Fatalf("entries not sorted: %v", ids)
	}
	// Adding again is idempotent and keeps the later expiry.
	if err := r.Add("pp-2", exp-5, t0); err != nil || r.Len() != 3 || r.Entries()[1].Expires != exp {
		t.Fatalf("re-add with earlier expiry: err %v, entries %v", err, r.Entries())
	}
	if err := r.Add("pp-2", exp+5, t0); err != nil || r.Entries()[1].Expires != exp+5 {
		t.Fatalf("re-add with later expiry: err %v, entries %v", err, r.Entries())
	}
	for _, bad := range []string{"", "has space", name(MaxNameBytes + 1)} {
		if err := r.Add(bad, exp, t0); !errors.Is(err, ErrMalformed) {
			t.Errorf("Add(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	if err := r.Add("pp-9", 0, t0); !errors.Is(err, ErrMalformed) {
		t.Errorf("Add with expires 0 = %v, want ErrMalformed", err)
	}
	var nilList *Revocations
	if nilList.Contains("pp-1") || nilList.Len() != 0 || nilList.Entries() != nil {
		t.Error("nil list is not empty")
	}
}

func TestRevocationsEviction(t *testing.T) {
	var r Revocations
	exp := t0 + hour
	if err := r.Add("pp-1", exp, t0); err != nil {
		t.Fatal(err)
	}
	dl := exp + MaxRenewalSlack
	if n := r.Prune(dl - 1); n != 0 || !r.Contains("pp-1") {
		t.Fatalf("pruned %d at deadline-1; an entry still needed was evicted", n)
	}
	if n := r.Prune(dl); n != 1 || r.Contains("pp-1") {
		t.Fatalf("pruned %d at deadline, want 1", n)
	}
	// A revocation whose passport is already past its deadline needs no entry.
	if err := r.Add("pp-2", exp, dl); err != nil || r.Len() != 0 {
		t.Fatalf("Add past deadline: err %v, len %d", err, r.Len())
	}
	if err := r.Add("pp-2", exp, dl-1); err != nil || !r.Contains("pp-2") {
		t.Fatalf("Add before deadline: err %v", err)
	}
}

func TestRevocationsFull(t *testing.T) {
	var r Revocations
	for i := range MaxRevocations {
		// Half the entries expire early and become prunable.
		exp := t0 + 10*hour
		if i%2 == 0 {
			exp = t0 + hour
		}
		if err := r.Add(fmt.Sprintf("pp-%05d", i), exp, t0); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	before := r.Encode()
	err := r.Add("pp-new", t0+10*hour, t0)
	if !errors.Is(err, ErrRevocationsFull) || errors.Is(err, ErrMalformed) {
		t.Fatalf("Add to a full list = %v, want ErrRevocationsFull only", err)
	}
	t.Log(err)
	if !bytes.Equal(before, r.Encode()) {
		t.Fatal("a refused Add changed the list")
	}
	// Re-adding an existing id needs no room.
	if err := r.Add("pp-00001", t0+11*hour, t0); err != nil {
		t.Fatalf("re-add to a full list: %v", err)
	}
	// Once the early half is past its deadline, there is room again and
	// no still-needed entry was dropped.
	later := t0 + hour + MaxRenewalSlack
	if err := r.Add("pp-new", t0+10*hour, later); err != nil {
		t.Fatalf("Add after prunable entries: %v", err)
	}
	if r.Len() != MaxRevocations/2+1 {
		t.Fatalf("len %d, want %d", r.Len(), MaxRevocations/2+1)
	}
	for i := 1; i < MaxRevocations; i += 2 {
		if !r.Contains(fmt.Sprintf("pp-%05d", i)) {
			t.Fatalf("unexpired revocation pp-%05d was dropped", i)
		}
	}
}

// TestEvictionNeverChangesAVerdict: for a revoked passport, a bus receiver
// applying Verify (at the event's recording time) and Fresh (at its own
// time) reaches the same verdict with the full list and with the list
// pruned at its own time, for every slack up to and beyond the maximum.
func TestEvictionNeverChangesAVerdict(t *testing.T) {
	p := signed()
	full := &Revocations{}
	if err := full.Add(p.ID, p.Expires, p.NotBefore); err != nil {
		t.Fatal(err)
	}
	points := []int64{p.NotBefore, p.Expires - 1, p.Expires, p.Expires + 1,
		p.Expires + MaxRenewalSlack - 1, p.Expires + MaxRenewalSlack, p.Expires + MaxRenewalSlack + 1, p.Expires + 10*MaxRenewalSlack}
	for _, now := range points {
		pruned := &Revocations{}
		if err := pruned.Add(p.ID, p.Expires, p.NotBefore); err != nil {
			t.Fatal(err)
		}
		pruned.Prune(now)
		for _, origin := range points {
			if origin > now {
				continue
			}
			for _, slack := range []int64{0, hour / 2, MaxRenewalSlack, 2 * MaxRenewalSlack} {
				accept := func(r *Revocations) bool {
					return Verify(p, trusted, origin, r.Contains) == nil && Fresh(p, now, slack)
				}
				if accept(full) {
					t.Fatalf("revoked passport accepted with the full list (origin %d now %d)", origin, now)
				}
				if accept(pruned) {
					t.Fatalf("pruning at now=expires%+d evicted a needed entry: accepted at origin=expires%+d slack %d",
						now-p.Expires, origin-p.Expires, slack)
				}
			}
		}
	}
}

func TestRevocationsEncodingOrderIndependent(t *testing.T) {
	seed := uint64(20260101)
	t.Log("seed", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("pp-%d", rng.IntN(1000))
	}
	build := func(order []string) []byte {
		var r Revocations
		for _, id := range order {
			if err := r.Add(id, t0+hour, t0); err != nil {
				t.Fatal(err)
			}
		}
		return r.Encode()
	}
	want := build(ids)
	for range 20 {
		shuffled := slices.Clone(ids)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := build(shuffled); !bytes.Equal(got, want) {
			t.Fatal("insertion order changed the encoding")
		}
	}
	r, err := DecodeRevocations(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Encode(), want) {
		t.Fatal("decode→encode changed the bytes")
	}
	for _, id := range ids {
		if !r.Contains(id) {
			t.Fatalf("decoded list lost %s", id)
		}
	}
}

func TestDecodeRevocationsRejects(t *testing.T) {
	enc := func(entries ...Revocation) []byte {
		return (&Revocations{entries: entries}).Encode()
	}
	good := enc(Revocation{"pp-1", 5}, Revocation{"pp-2", 6})
	cases := map[string][]byte{
		"empty":          nil,
		"bad magic":      append([]byte("DRL\x02"), good[4:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"unsorted":       enc(Revocation{"pp-2", 5}, Revocation{"pp-1", 6}),
		"duplicate":      enc(Revocation{"pp-1", 5}, Revocation{"pp-1", 6}),
		"empty id":       enc(Revocation{"", 5}),
		"bad id":         enc(Revocation{"p p", 5}),
		"zero expires":   enc(Revocation{"pp-1", 0}),
		"count too big":  append([]byte(revocationsMagic), 0, 0, 0x10, 0x01),
		"count too long": append([]byte(revocationsMagic), 0, 0, 0, 9, 0, 0, 0, 1, 'a'),
	}
	for name, b := range cases {
		if _, err := DecodeRevocations(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: DecodeRevocations = %v, want ErrMalformed", name, err)
		}
	}
	if r, err := DecodeRevocations(good); err != nil || r.Len() != 2 {
		t.Fatalf("good: %v", err)
	}
	if r, err := DecodeRevocations(enc()); err != nil || r.Len() != 0 {
		t.Fatalf("empty list: %v", err)
	}
}
