package kernel

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// raftLogger routes hashicorp/raft's hclog lines into the node's slog
// logger, so an agent's log is one structured format: a raft line is a
// slog record with component=raft (or raft/<name>), its level mapped,
// its key-value pairs as attributes.
type raftLogger struct {
	l       *slog.Logger
	name    string
	level   *atomic.Int32 // hclog.Level, shared by With and Named children
	implied []any
}

func newRaftLogger(l *slog.Logger, name string, level hclog.Level) hclog.Logger {
	lv := &atomic.Int32{}
	lv.Store(int32(level))
	return &raftLogger{l: l.With("component", name), name: name, level: lv}
}

func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < hclog.Level(r.level.Load()) {
		return
	}
	r.l.Log(context.Background(), slogLevel(level), msg, args...)
}

func (r *raftLogger) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLogger) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLogger) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }

func (r *raftLogger) enabled(l hclog.Level) bool { return l >= hclog.Level(r.level.Load()) }
func (r *raftLogger) IsTrace() bool              { return r.enabled(hclog.Trace) }
func (r *raftLogger) IsDebug() bool              { return r.enabled(hclog.Debug) }
func (r *raftLogger) IsInfo() bool               { return r.enabled(hclog.Info) }
func (r *raftLogger) IsWarn() bool               { return r.enabled(hclog.Warn) }
func (r *raftLogger) IsError() bool              { return r.enabled(hclog.Error) }
func (r *raftLogger) ImpliedArgs() []any         { return r.implied }

func (r *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{l: r.l.With(args...), name: r.name, level: r.level, implied: append(append([]any(nil), r.implied...), args...)}
}

func (r *raftLogger) Name() string { return r.name }

func (r *raftLogger) Named(name string) hclog.Logger {
	n := name
	if r.name != "" {
		n = r.name + "/" + name
	}
	return &raftLogger{l: r.l.With("subsystem", name), name: n, level: r.level, implied: r.implied}
}

func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{l: r.l.With("subsystem", name), name: name, level: r.level, implied: r.implied}
}

func (r *raftLogger) SetLevel(level hclog.Level) { r.level.Store(int32(level)) }
func (r *raftLogger) GetLevel() hclog.Level      { return hclog.Level(r.level.Load()) }

func (r *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(r.StandardWriter(opts), "", 0)
}

func (r *raftLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return raftLogWriter{r}
}

// raftLogWriter turns standard-library log lines into records at warn
// (or the level a "[ERROR]"-style prefix names).
type raftLogWriter struct{ r *raftLogger }

func (w raftLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := hclog.Warn
	for _, c := range []struct {
		tag string
		l   hclog.Level
	}{{"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error}, {"[WARN]", hclog.Warn}, {"[INFO]", hclog.Info}, {"[DEBUG]", hclog.Debug}, {"[TRACE]", hclog.Trace}} {
		if rest, ok := strings.CutPrefix(msg, c.tag); ok {
			msg, level = strings.TrimSpace(rest), c.l
			break
		}
	}
	w.r.Log(level, msg)
	return len(p), nil
}
