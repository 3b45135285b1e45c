package kernel

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dominus-kernel/dominus/driver"
)

// DriverConfig names a driver process for ops starting with Prefix.
type DriverConfig struct {
	Prefix     string   // e.g. "webhook." or "exec."
	Command    []string // argv of the driver process
	Idempotent bool     // safe to re-run on the same syscall id after a lost completion
	Timeout    time.Duration
}

// errDriverLost means the driver died or hung mid-request: whether the
// effect happened is unknown.
var errDriverLost = errors.New("driver lost the request")

// supervisor runs one driver process, restarting it when it dies. Calls
// are serialized: one request in flight per driver.
type supervisor struct {
	cfg DriverConfig
	log *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	out      *bufio.Reader
	done     chan struct{}
	restarts int
	nextTry  time.Time
	closed   bool
}

func newSupervisor(cfg DriverConfig, log *slog.Logger) *supervisor {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &supervisor{cfg: cfg, log: log.With("driver", cfg.Prefix)}
}

// start launches the process (called with mu held).
func (s *supervisor) start() error {
	if s.closed {
		return errors.New("driver supervisor closed")
	}
	if wait := time.Until(s.nextTry); wait > 0 {
		// Calls are serialized anyway: wait out the restart backoff.
		time.Sleep(wait)
	}
	cmd := exec.Command(s.cfg.Command[0], s.cfg.Command[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = logWriter{s.log}
	if err := cmd.Start(); err != nil {
		s.backoff()
		return fmt.Errorf("start driver %s: %w", s.cfg.Command[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.stdin, s.out, s.done = cmd, stdin, bufio.NewReaderSize(stdout, 64<<10), done
	s.log.Info("driver started", "pid", cmd.Process.Pid, "restarts", s.restarts)
	return nil
}

func (s *supervisor) backoff() {
	s.restarts++
	d := time.Duration(s.restarts) * 100 * time.Millisecond
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	s.nextTry = time.Now().Add(d)
}

// kill stops the process (called with mu held).
func (s *supervisor) kill() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	s.backoff()
}

// Pid returns the running driver's pid (0 if none); for tests.
func (s *supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Call sends one request and waits for its response, the timeout, or the
// driver's death. A lost request returns errDriverLost.
func (s *supervisor) Call(ctx context.Context, req driver.Request) (driver.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		select {
		case <-s.done:
			s.log.Warn("driver exited; restarting")
			s.cmd = nil
			s.backoff()
		default:
		}
	}
	if s.cmd == nil {
		if err := s.start(); err != nil {
			return driver.Response{}, err
		}
	}
	line, _ := json.Marshal(req)
	if _, err := s.stdin.Write(append(line, '\n')); err != nil {
		s.kill()
		return driver.Response{}, fmt.Errorf("%w: write: %v", errDriverLost, err)
	}
	type result struct {
		resp driver.Response
		err  error
	}
	ch := make(chan result, 1)
	out := s.out
	go func() {
		b, err := out.ReadBytes('\n')
		if err != nil {
			ch <- result{err: err}
			return
		}
		var r driver.Response
		err = json.Unmarshal(b, &r)
		ch <- result{resp: r, err: err}
	}()
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			s.kill()
			return driver.Response{}, fmt.Errorf("%w: %v", errDriverLost, r.err)
		}
		s.restarts = 0
		return r.resp, nil
	case <-timer.C:
		s.log.Warn("driver timed out; killing it", "id", req.ID, "timeout", s.cfg.Timeout.String())
		s.kill()
		<-ch
		return driver.Response{}, fmt.Errorf("%w: timeout after %s", errDriverLost, s.cfg.Timeout)
	case <-ctx.Done():
		s.kill()
		<-ch
		return driver.Response{}, fmt.Errorf("%w: %v", errDriverLost, ctx.Err())
	}
}

func (s *supervisor) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cmd != nil {
		_ = s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(2 * time.Second):
		}
		s.kill()
	}
}

type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.log.Info("driver: " + line)
		}
	}
	return len(p), nil
}
