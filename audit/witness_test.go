package audit

import (
	"bytes"
	"testing"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

// headsAt replays recs and returns the head at each of seqs.
func headsAt(t *testing.T, recs []archive.Record, seqs ...uint64) []fsm.HeadRef {
	t.Helper()
	l := fsm.New()
	var out []fsm.HeadRef
	for _, r := range recs {
		if err := fsm.ReplayStep(l, r.Index, r.Seq, r.Data); err != nil {
			t.Fatal(err)
		}
		if len(out) < len(seqs) && r.Kind == archive.KindEvent && l.State().Seq == seqs[len(out)] {
			out = append(out, l.Head())
		}
	}
	if len(out) != len(seqs) {
		t.Fatalf("history has no seq %d", seqs[len(out)])
	}
	return out
}

// A history that reproduces every witnessed head passes; one whose head
// at a witnessed seq differs (a rewrite) or that ends before the last
// witnessed seq (a truncation) fails naming the seq — from an export and
// from a data folder alike.
func TestWitness(t *testing.T) {
	h := newHistory(t)
	heads := headsAt(t, h.recs, 50, 100, 200)
	dir := t.TempDir()
	exp := writeFile(t, dir, "all.export", h.export(t, 1, h.recs))
	rep, err := Witness(exp, "", heads, nil)
	if err != nil || !rep.OK {
		t.Fatalf("intact export: %v %+v", err, rep)
	}
	dataDir := t.TempDir()
	h.writeDataDir(t, dataDir, h.recs)
	if rep, err := Witness("", dataDir, heads, nil); err != nil || !rep.OK {
		t.Fatalf("intact data folder: %v %+v", err, rep)
	}

	rewritten := append([]fsm.HeadRef(nil), heads...)
	rewritten[1] = fsm.HeadRef{Seq: 100, Hash: bytes.Repeat([]byte{7}, 32)}
	if rep, err := Witness(exp, "", rewritten, nil); err != nil || rep.OK || rep.BadSeq != 100 {
		t.Fatalf("a witnessed head the history does not reproduce: %v %+v", err, rep)
	}

	var cut []archive.Record
	for _, r := range h.recs {
		if r.Seq <= 150 {
			cut = append(cut, r)
		}
	}
	short := writeFile(t, dir, "short.export", h.export(t, 1, cut))
	if rep, err := Witness(short, "", heads, nil); err != nil || rep.OK || rep.BadSeq != 151 {
		t.Fatalf("a history ending before the last witnessed seq: %v %+v", err, rep)
	}
}
