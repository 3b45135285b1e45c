package kernel

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Raft's hclog lines become slog records: level mapped, below the level
// dropped, key-value pairs and With/Named context as attributes, and a
// standard-library writer's "[ERROR]" prefix read as the level.
func TestRaftLinesGoThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	l := newRaftLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft", hclog.Warn)
	l.Info("dropped below warn")
	l.With("peer", "n2").Warn("heartbeat timeout", "term", 3)
	l.Named("snapshot").Error("failed")
	l.StandardLogger(nil).Print("[ERROR] raft-net: failed to accept")
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not one slog record per line: %q", line)
		}
		recs = append(recs, m)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3: %s", len(recs), buf.String())
	}
	if r := recs[0]; r["level"] != "WARN" || r["msg"] != "heartbeat timeout" || r["peer"] != "n2" || r["term"] != float64(3) || r["component"] != "raft" {
		t.Fatalf("warn record: %v", r)
	}
	if r := recs[1]; r["level"] != "ERROR" || r["subsystem"] != "snapshot" {
		t.Fatalf("named record: %v", r)
	}
	if r := recs[2]; r["level"] != "ERROR" || r["msg"] != "raft-net: failed to accept" {
		t.Fatalf("standard logger record: %v", r)
	}
	if !l.IsWarn() || l.IsInfo() {
		t.Fatal("levels")
	}
}
