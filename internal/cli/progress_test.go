package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressBarOnlyOnTerminals(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressBar(&buf, "replaying")
	p.update(1, 2)
	p.finish()
	if buf.Len() != 0 {
		t.Fatalf("progress drawn on a buffer: %q", buf.String())
	}
}

func TestProgressBarThrottled(t *testing.T) {
	var buf bytes.Buffer
	p := &progressBar{w: &buf, label: "replaying"}
	start := time.Now()
	const calls = 100_000
	for i := uint64(0); i <= calls; i++ {
		p.update(i, calls)
	}
	elapsed := time.Since(start)
	draws := strings.Count(buf.String(), "\r")
	if limit := 1 + int(elapsed/progressInterval); draws < 1 || draws > limit {
		t.Fatalf("%d draws in %v, want 1 to %d", draws, elapsed, limit)
	}
	p.finish()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Fatal("finish does not erase the bar")
	}
}
