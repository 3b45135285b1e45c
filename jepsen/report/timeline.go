package report

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Span is a labelled interval of the run clock (a fault, a phase).
type Span struct {
	Label string
	Group string // colors spans: partition, kill, pause, loss, latency, clock, membership, snapshot, phase
	Start int64  // ns
	End   int64  // ns
}

// Timeline describes the picture.
type Timeline struct {
	Title  string
	Lines  []string // further header lines (figures, faults)
	Pairs  []history.Pair
	Faults []Span
	Phases []Span // e.g. heal, final reads: shaded lightly, labelled at the bottom
	Width  int    // pixels; default 1600
}

var outcomeColor = map[history.Type]string{history.OK: "#2e9d4a", history.Fail: "#f0a030", history.Info: "#d23c3c"}

var groupColor = map[string]string{
	"partition": "#4a7bd0", "kill": "#c03030", "pause": "#8a4ad0", "loss": "#c89a10", "clock": "#20a0a0", "membership": "#d06aa0", "phase": "#7a7a7a",
	"latency": "#e07020", "snapshot": "#408040",
}

func colorOf(group string) string {
	if c, ok := groupColor[group]; ok {
		return c
	}
	return "#555555"
}

// WriteSVG draws t to w.
func (t Timeline) WriteSVG(w io.Writer) error {
	width := t.Width
	if width <= 0 {
		width = 1600
	}
	const (
		left, right = 110.0, 20.0
		laneH, gap  = 14.0, 3.0
		rowH        = 16.0
		chartH      = 120.0
	)
	// time range
	var t0, t1 int64 = math.MaxInt64, 0
	for _, p := range t.Pairs {
		t0 = min(t0, p.Start())
		t1 = max(t1, p.End())
	}
	for _, s := range append(append([]Span(nil), t.Faults...), t.Phases...) {
		t0 = min(t0, s.Start)
		t1 = max(t1, s.End)
	}
	if t0 == math.MaxInt64 || t1 <= t0 {
		t0, t1 = 0, int64(1e9)
	}
	plotW := float64(width) - left - right
	x := func(ns int64) float64 { return left + plotW*float64(ns-t0)/float64(t1-t0) }

	// lanes
	procSet := map[int]bool{}
	for _, p := range t.Pairs {
		procSet[p.Invoke.Process] = true
	}
	procs := make([]int, 0, len(procSet))
	for p := range procSet {
		procs = append(procs, p)
	}
	sort.Ints(procs)
	lane := map[int]int{}
	for i, p := range procs {
		lane[p] = i
	}
	// fault rows: greedy, no overlaps within a row
	type placed struct {
		s   Span
		row int
	}
	var rowsEnd []float64
	var faults []placed
	fs := append([]Span(nil), t.Faults...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Start < fs[j].Start })
	for _, s := range fs {
		x0 := x(s.Start)
		labelEnd := max(x(s.End), x0+7*float64(len(s.Label)))
		row := -1
		for r, e := range rowsEnd {
			if e+4 < x0 {
				row = r
				break
			}
		}
		if row < 0 {
			row = len(rowsEnd)
			rowsEnd = append(rowsEnd, 0)
		}
		rowsEnd[row] = labelEnd
		faults = append(faults, placed{s, row})
	}
	top := 46.0 + 14*float64(len(t.Lines))
	faultTop := top
	lanesTop := faultTop + rowH*float64(max(1, len(rowsEnd))) + 10
	lanesBottom := lanesTop + float64(len(procs))*(laneH+gap)
	chartTop := lanesBottom + 24
	chartBottom := chartTop + chartH
	height := int(chartBottom + 50 + 12*float64(len(t.Phases)))

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="11">`+"\n", width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%.0f" y="18" font-size="14">%s</text>`+"\n", left, html.EscapeString(t.Title))
	for i, l := range t.Lines {
		p(`<text x="%.0f" y="%.0f">%s</text>`+"\n", left, 32+14*float64(i), html.EscapeString(l))
	}
	// legend
	lx, ly := left, 26+14*float64(len(t.Lines))
	for _, k := range []history.Type{history.OK, history.Fail, history.Info} {
		p(`<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, ly, outcomeColor[k], lx+14, ly+9, k)
		lx += 60
	}
	for _, g := range []string{"partition", "kill", "pause", "loss", "latency", "clock", "membership", "snapshot"} {
		p(`<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s" opacity="0.5"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, ly, colorOf(g), lx+14, ly+9, g)
		lx += 14 + 7*float64(len(g)) + 12
	}
	// shaded fault and phase intervals behind lanes and chart
	for i, s := range t.Phases {
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.10"/>`+"\n",
			x(s.Start), lanesTop-4, math.Max(1, x(s.End)-x(s.Start)), chartBottom-lanesTop+4, colorOf("phase"))
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(s.Start), chartBottom+18, x(s.Start), chartBottom+26+12*float64(i))
		anchor, lx := "start", x(s.Start)+3
		if lx > float64(width)-right-150 {
			anchor, lx = "end", x(s.Start)-3
		}
		p(`<text x="%.1f" y="%.1f" fill="#555" text-anchor="%s">%s</text>`+"\n", lx, chartBottom+28+12*float64(i), anchor, html.EscapeString(s.Label))
	}
	for _, f := range faults {
		c := colorOf(f.s.Group)
		x0, w0 := x(f.s.Start), math.Max(1, x(f.s.End)-x(f.s.Start))
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.13"/>`+"\n", x0, lanesTop-4, w0, chartBottom-lanesTop+4, c)
		y := faultTop + rowH*float64(f.row)
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.55"><title>%s</title></rect>`+"\n", x0, y, w0, rowH-3, c, html.EscapeString(f.s.Label))
		p(`<text x="%.1f" y="%.1f">%s</text>`+"\n", x0+2, y+rowH-6, html.EscapeString(f.s.Label))
	}
	// lanes
	byLane := make([]map[history.Type][][2]float64, len(procs))
	for i := range byLane {
		byLane[i] = map[history.Type][][2]float64{}
	}
	for _, pr := range t.Pairs {
		k := pr.Type()
		x0, x1 := x(pr.Start()), x(pr.End())
		if k != history.OK && x1-x0 < 1.5 {
			x1 = x0 + 1.5
		}
		l := lane[pr.Invoke.Process]
		byLane[l][k] = append(byLane[l][k], [2]float64{x0, x1})
	}
	for i, pr := range procs {
		y := lanesTop + float64(i)*(laneH+gap)
		p(`<text x="%.0f" y="%.1f" text-anchor="end">process %d</text>`+"\n", left-6, y+laneH-3, pr)
		p(`<rect x="%.0f" y="%.1f" width="%.1f" height="%.1f" fill="#f4f4f4"/>`+"\n", left, y, plotW, laneH)
		for _, k := range []history.Type{history.OK, history.Fail, history.Info} {
			for _, iv := range merge(byLane[i][k]) {
				p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", iv[0], y, math.Max(0.5, iv[1]-iv[0]), laneH, outcomeColor[k])
			}
		}
	}
	// completions per second
	secs := int((t1-t0)/1e9) + 1
	counts := map[history.Type][]int{history.OK: make([]int, secs), history.Fail: make([]int, secs), history.Info: make([]int, secs)}
	peak := 1
	for _, pr := range t.Pairs {
		b := int((pr.End() - t0) / 1e9)
		if b >= 0 && b < secs {
			counts[pr.Type()][b]++
			peak = max(peak, counts[pr.Type()][b])
		}
	}
	p(`<rect x="%.0f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#ccc"/>`+"\n", left, chartTop, plotW, chartH)
	p(`<text x="%.0f" y="%.1f" text-anchor="end">ops/s</text>`+"\n", left-6, chartTop+10)
	p(`<text x="%.0f" y="%.1f" text-anchor="end">%d</text>`+"\n", left-6, chartTop+24, peak)
	for _, k := range []history.Type{history.OK, history.Fail, history.Info} {
		var pts strings.Builder
		for s, c := range counts[k] {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(t0+int64(s)*1e9+5e8), chartBottom-chartH*float64(c)/float64(peak))
		}
		p(`<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", outcomeColor[k], pts.String())
	}
	// time axis
	step := niceStep(float64(t1-t0) / 1e9 / 12)
	for s := 0.0; s <= float64(t1-t0)/1e9; s += step {
		xx := x(t0 + int64(s*1e9))
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#bbb"/>`+"\n", xx, chartBottom, xx, chartBottom+4)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%.0fs</text>`+"\n", xx, chartBottom+15, float64(t0)/1e9+s)
	}
	p("</svg>\n")
	return bw.Flush()
}

// merge joins intervals that overlap or nearly touch (half a pixel).
func merge(iv [][2]float64) [][2]float64 {
	if len(iv) == 0 {
		return nil
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
	out := [][2]float64{iv[0]}
	for _, v := range iv[1:] {
		last := &out[len(out)-1]
		if v[0] <= last[1]+0.5 {
			last[1] = math.Max(last[1], v[1])
			continue
		}
		out = append(out, v)
	}
	return out
}

func niceStep(raw float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600} {
		if s >= raw {
			return s
		}
	}
	return 1200
}
