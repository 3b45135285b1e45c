package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressInterval throttles a progress bar to about ten redraws a second.
const progressInterval = 100 * time.Millisecond

const progressWidth = 30

// progressBar draws a one-line bar on a terminal. On anything that is not
// a terminal (a pipe, a file, a test buffer) it draws nothing, so scripts
// never see it.
type progressBar struct {
	w     io.Writer // nil: disabled
	label string
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer, label string) *progressBar {
	if !isTerminal(w) {
		return &progressBar{label: label}
	}
	return &progressBar{w: w, label: label}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update redraws the bar for done out of total, at most every
// progressInterval. It has the signature of audit.Progress.
func (p *progressBar) update(done, total uint64) {
	if p.w == nil {
		return
	}
	now := time.Now()
	if p.drawn && now.Sub(p.last) < progressInterval {
		return
	}
	p.last, p.drawn = now, true
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	fill := int(frac * progressWidth)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%%", p.label,
		strings.Repeat("#", fill), strings.Repeat(".", progressWidth-fill), int(frac*100))
}

// finish erases the bar.
func (p *progressBar) finish() {
	if p.w != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
