package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/dominus-kernel/dominus/archive"
	"github.com/dominus-kernel/dominus/fsm"
)

var (
	rootToken  = sha256.Sum256([]byte("audit test root token"))
	otherToken = sha256.Sum256([]byte("audit test unknown token"))
	canonHash  = sha256.Sum256([]byte("audit test canon"))
)

const t0 = int64(1_750_000_000_000_000_000)

func entry(t fsm.CommandType, rid string, auth []byte, ts int64, payload any) []byte {
	e := fsm.Envelope{Type: t, RequestID: rid, Auth: auth, Time: ts}
	if payload != nil {
		e.Payload = fsm.Encode(payload)
	}
	return fsm.Encode(&e)
}

// history is a ledger built entry by entry through the real fsm, with the
// archive records a kernel would have written and snapshots on the way.
type history struct {
	recs      []archive.Record
	final     *fsm.Ledger
	snapshots map[uint64][]byte // by head seq
}

// buildHistory applies n seeded entries after genesis: puts, gets,
// deletes, compare-and-swaps, retries (noops), unknown tokens, malformed
// bytes, plus one entry before genesis (a seq-0 noop). Raft indexes have
// gaps, as configuration entries leave in a real log.
func buildHistory(t *testing.T, seed int64, n int) *history {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	h := &history{final: fsm.New(), snapshots: map[uint64][]byte{}}
	var index uint64
	apply := func(data []byte) {
		index += 1 + uint64(rng.Intn(3)/2) // occasionally skip an index
		a := h.final.Apply(index, data)
		kind := archive.KindNoop
		if a.Event != nil {
			kind = archive.KindEvent
		}
		h.recs = append(h.recs, archive.Record{Index: index, Seq: h.final.State().Seq, Kind: kind, Data: fsm.EncodeArchived(data, a)})
		if a.Event != nil && rng.Intn(10) == 0 {
			h.snapshots[h.final.State().Seq] = h.final.Snapshot()
		}
	}
	ts := t0
	apply(entry(fsm.CmdKVPut, "early", rootToken[:], ts, &fsm.KVPut{Key: "k", Value: []byte("v")}))
	apply(entry(fsm.CmdGenesis, "", nil, ts, &fsm.Genesis{
		KernelID: "audit-test", CanonHash: canonHash[:], Protocol: fsm.ProtocolVersion,
		RootTokenHash: rootToken[:], DedupWindowNs: 60e9,
	}))
	// sent keeps each request id's command, so that a retry repeats it
	// (from protocol 4 a request id sent with another payload is a DENY
	// request_id_reused, not a noop).
	type sentCmd struct {
		t       fsm.CommandType
		auth    []byte
		payload any
	}
	sent := map[string]sentCmd{}
	var rids []string
	for i := 0; i < n; i++ {
		ts += int64(rng.Intn(2_000_000_000))
		key := fmt.Sprintf("key/%d", rng.Intn(24))
		val := fmt.Sprintf("value-%d-%d", i, rng.Intn(1000))
		rid := fmt.Sprintf("rid-%d", i)
		if len(rids) > 0 && rng.Intn(10) == 0 {
			rid = rids[rng.Intn(len(rids))] // a retry: a noop inside the window
			if c, ok := sent[rid]; ok {
				apply(entry(c.t, rid, c.auth, ts, c.payload))
				continue
			}
		}
		rids = append(rids, rid)
		auth := rootToken[:]
		if rng.Intn(25) == 0 {
			auth = otherToken[:]
		}
		var c sentCmd
		switch rng.Intn(9) {
		case 0, 1, 2, 3:
			c = sentCmd{fsm.CmdKVPut, auth, &fsm.KVPut{Key: key, Value: []byte(val)}}
		case 4:
			c = sentCmd{fsm.CmdKVGet, auth, &fsm.KVKey{Key: key}}
		case 5:
			c = sentCmd{fsm.CmdKVDelete, auth, &fsm.KVKey{Key: key}}
		case 6:
			c = sentCmd{fsm.CmdKVCAS, auth, &fsm.KVCAS{Key: key, ExpectExists: rng.Intn(2) == 0, Expect: []byte(val), Value: []byte(val + "!")}}
		case 7:
			c = sentCmd{fsm.CmdKVCAS, auth, &fsm.KVCAS{Key: key, Value: []byte(val)}}
		default:
			e := make([]byte, 1+rng.Intn(10))
			rng.Read(e)
			apply(e)
			continue
		}
		sent[rid] = c
		apply(entry(c.t, rid, c.auth, ts, c.payload))
	}
	if h.final.State().Seq < uint64(n/2) {
		t.Fatalf("seed %d: history has only %d events for %d entries", seed, h.final.State().Seq, n)
	}
	return h
}

func (h *history) noops() int {
	c := 0
	for _, r := range h.recs {
		if r.Kind == archive.KindNoop {
			c++
		}
	}
	return c
}

// snapshotSeqs returns the seqs with a snapshot, ascending.
func (h *history) snapshotSeqs() []uint64 {
	var out []uint64
	for s := range h.snapshots {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// writeDataDir archives the records in dir/archive, in several segments.
func (h *history) writeDataDir(t *testing.T, dir string, recs []archive.Record) {
	t.Helper()
	a, err := archive.Open(filepath.Join(dir, ArchiveDirName), archive.Options{SegmentBytes: 8 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += 17 {
		if err := a.Append(recs[i:min(i+17, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// export returns an export of the records with Seq >= from.
func (h *history) export(t *testing.T, from uint64, recs []archive.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewExportWriter(&buf, archive.ExportHeader{FromSeq: from, Meta: []byte("audit-test")})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Seq < from {
			continue
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Frame and export layouts, as documented in the archive package
// (frame.go, export.go). The tests parse them independently to know which
// record a byte belongs to.
const (
	frameHeaderSize   = 26
	frameTrailerSize  = 4
	exportTrailerSize = 29
)

// span is one record's frame in a file.
type span struct {
	start, end int // [start, end)
	seq        uint64
	kind       archive.Kind
}

// parseFrames splits b (a run of record frames) into spans, offset by base.
func parseFrames(t *testing.T, b []byte, base int) []span {
	t.Helper()
	var out []span
	for off := 0; off < len(b); {
		if len(b)-off < frameHeaderSize {
			t.Fatalf("fixture: partial frame header at %d", base+off)
		}
		n := int(binary.BigEndian.Uint32(b[off+2 : off+6]))
		end := off + frameHeaderSize + n + frameTrailerSize
		out = append(out, span{
			start: base + off, end: base + end,
			seq:  binary.BigEndian.Uint64(b[off+14 : off+22]),
			kind: archive.Kind(b[off+1]),
		})
		off = end
	}
	return out
}

// exportSpans returns the record frames of an export.
func exportSpans(t *testing.T, b []byte) []span {
	t.Helper()
	fixed := len(archive.ExportMagic) + 2 + 8 + 4
	metaLen := int(binary.BigEndian.Uint32(b[fixed-4 : fixed]))
	hdr := fixed + metaLen + 4
	return parseFrames(t, b[hdr:len(b)-exportTrailerSize], hdr)
}

// firstUntrusted is the BadSeq a damaged frame must produce: the seq of
// an event, or the seq after a noop (a noop moves no seq; the first seq it
// leaves unvouched for is the next one).
func (s span) firstUntrusted() uint64 {
	if s.kind == archive.KindNoop {
		return s.seq + 1
	}
	return s.seq
}

func spanAt(spans []span, off int) (span, bool) {
	for _, s := range spans {
		if off >= s.start && off < s.end {
			return s, true
		}
	}
	return span{}, false
}
