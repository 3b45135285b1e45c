package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// pairs makes n ops per process over 60 s, every 10th info and every
// 7th fail.
func pairs(seed uint64, procs, n int) []history.Pair {
	rng := rand.New(rand.NewPCG(seed, 1))
	var ps []history.Pair
	for p := 0; p < procs; p++ {
		var t int64
		for i := 0; i < n; i++ {
			d := int64(rng.IntN(5e6)) + 1e5
			k := history.OK
			switch {
			case i%10 == 0:
				k, d = history.Info, 2e9
			case i%7 == 0:
				k = history.Fail
			}
			ps = append(ps, history.Pair{
				Invoke:   history.Op{Process: p, Type: history.Invoke, Time: t},
				Complete: history.Op{Process: p, Type: k, Time: t + d},
			})
			t += d + 1e5
		}
	}
	return ps
}

func render(t *testing.T, tl Timeline) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tl.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
	return buf.Bytes()
}

func TestTimelineIsWellFormedAndShowsFaults(t *testing.T) {
	tl := Timeline{
		Title:  "run <1> & co",
		Lines:  []string{"100 ops"},
		Pairs:  pairs(1, 3, 100),
		Faults: []Span{{Label: "isolate n1 from [n2 n3]", Group: "partition", Start: 1e9, End: 4e9}, {Label: "kill -9 n2", Group: "kill", Start: 5e9, End: 6e9}},
		Phases: []Span{{Label: "heal", Group: "phase", Start: 7e9, End: 8e9}},
	}
	svg := string(render(t, tl))
	for _, want := range []string{"isolate n1 from [n2 n3]", "kill -9 n2", "process 2", "run &lt;1&gt; &amp; co", "heal", outcomeColor[history.Info], outcomeColor[history.Fail]} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestTimelineSizeIsBoundedByWidthNotOps(t *testing.T) {
	small := render(t, Timeline{Pairs: pairs(2, 5, 1000)})
	large := render(t, Timeline{Pairs: pairs(2, 5, 50000)})
	t.Logf("5x1000 ops: %d bytes; 5x50000 ops: %d bytes", len(small), len(large))
	if len(large) > 3*len(small)+200_000 {
		t.Fatalf("50x the ops made the picture %d bytes (from %d)", len(large), len(small))
	}
}

func TestMerge(t *testing.T) {
	got := merge([][2]float64{{5, 6}, {0, 1}, {1.2, 2}, {6.4, 7}, {10, 11}})
	want := [][2]float64{{0, 2}, {5, 7}, {10, 11}}
	if len(got) != len(want) {
		t.Fatalf("merge = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("merge = %v, want %v", got, want)
		}
	}
}
